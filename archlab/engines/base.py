"""What every engine launcher shares: one instance per kernel, a private temporary
directory, clean-up at interpreter exit, and one-sentence errors."""

from __future__ import annotations

import atexit
import shutil
import socket
import tempfile
import threading
import time
from pathlib import Path


class EngineError(RuntimeError):
    """An engine could not start or answer; the message is one sentence for the learner."""


_lock = threading.Lock()
_instances: dict[str, object] = {}


def singleton(name: str, factory):
    """Return the instance called `name`, creating it with `factory()` on first use and
    recording how long that took as its `startup_seconds`."""
    with _lock:
        inst = _instances.get(name)
        if inst is None:
            t0 = time.perf_counter()
            inst = factory()
            inst.startup_seconds = time.perf_counter() - t0
            _instances[name] = inst
        return inst


def forget(name: str) -> None:
    with _lock:
        _instances.pop(name, None)


def temp_dir(prefix: str) -> Path:
    """A private directory removed at exit (engines keep their data here, never in the repo)."""
    path = Path(tempfile.mkdtemp(prefix=f"archlab-{prefix}-"))
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (the OS picks it, so parallel kernels never collide)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
