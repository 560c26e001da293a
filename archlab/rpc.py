"""gRPC and Protocol Buffers for the notebooks: compile a .proto written in a cell, serve a
servicer on 127.0.0.1 in this kernel, and count the bytes a protocol really puts on the wire.

    pb2, pb2_grpc = rpc.compile_proto(PROTO_TEXT)          # protoc runs once per distinct text
    svc = rpc.serve(pb2_grpc.add_CatalogServicer_to_server, Catalog())
    stub = svc.stub(pb2_grpc.CatalogStub)                 # a channel that never uses a proxy
    stub.GetProduct(pb2.ProductRequest(sku="SKU-000001"), timeout=1.0)
    tap = rpc.tap(svc.port)                               # a TCP relay that counts bytes each way
    far = rpc.tap(svc.port, delay_ms=5)                   # ... and one that adds 5 ms each way (a 10 ms RTT)

Each compiled .proto gets its own descriptor pool, so a cell can be edited and rerun, and two
versions of one message (`package x; message Person`) can live side by side in a kernel: that
is how the schema-evolution cells decode old bytes with new code. The generated code is never
written into the repository: protoc runs into a private temporary directory.
"""

from __future__ import annotations

import atexit
import hashlib
import os
import queue
import re
import socket
import subprocess
import sys
import threading
import time
import types
from concurrent import futures
from pathlib import Path

from .engines.base import EngineError, temp_dir

__all__ = ["GrpcService", "Tap", "channel", "compile_proto", "serve", "tap"]

# gRPC's C core logs routine events (a GOAWAY when a server stops) at INFO; a notebook shows errors only.
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")

# A proxy from the environment (http_proxy, grpc_proxy) would send a call to 127.0.0.1 elsewhere.
CHANNEL_OPTIONS = (("grpc.enable_http_proxy", 0),)

_lock = threading.Lock()
_compiled: dict[str, tuple[types.ModuleType, types.ModuleType]] = {}
_workdir: Path | None = None
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _protoc_include() -> str:
    import grpc_tools

    return str(Path(grpc_tools.__file__).parent / "_proto")     # google/protobuf/*.proto


def compile_proto(text: str, name: str = "schema") -> tuple[types.ModuleType, types.ModuleType]:
    """Compile the .proto source `text` with grpc_tools.protoc and return (pb2, pb2_grpc).

    pb2 holds the message classes and enums (as protoc's `*_pb2.py` would), pb2_grpc the stub,
    servicer base class and `add_*Servicer_to_server` function of every service. The same text
    compiles once per kernel (cached by content hash); a changed text gets fresh modules in a
    private descriptor pool, so reruns and several versions of one message never clash."""
    if not isinstance(text, str) or not text.strip():
        raise EngineError("compile_proto() needs the text of a .proto file (a non-empty string).")
    if not _NAME.fullmatch(name):
        raise EngineError(f"compile_proto() needs a module name made of letters, digits and _, not {name!r}.")
    key = hashlib.sha256(f"{name}\0{text}".encode()).hexdigest()[:16]
    with _lock:
        if key not in _compiled:
            _compiled[key] = _compile(text, name, key)
        return _compiled[key]


def _compile(text: str, name: str, key: str):
    global _workdir
    if _workdir is None:
        _workdir = temp_dir("rpc")
    out = _workdir / key
    out.mkdir(exist_ok=True)
    (out / f"{name}.proto").write_text(text)
    cmd = [sys.executable, "-m", "grpc_tools.protoc", "-I.", f"-I{_protoc_include()}", "--grpc_python_out=.",
           "--descriptor_set_out=descriptors.pb", "--include_imports", f"{name}.proto"]
    try:
        done = subprocess.run(cmd, cwd=out, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:   # pragma: no cover - install problem
        raise EngineError(f"protoc (grpc_tools) could not run: {e}; is grpcio-tools installed (`make lab`)?") from e
    if done.returncode != 0:
        errors = [_describe(line, name) for line in done.stderr.splitlines() if line.strip()]
        raise EngineError(f"The .proto did not compile: {'; '.join(errors) or 'protoc failed'}.")

    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
    from google.protobuf.internal import enum_type_wrapper

    files = descriptor_pb2.FileDescriptorSet.FromString((out / "descriptors.pb").read_bytes())
    pool = descriptor_pool.DescriptorPool()
    for f in files.file:
        pool.Add(f)
    fd = pool.FindFileByName(f"{name}.proto")
    pb2 = types.ModuleType(f"{name}_pb2", f"Messages of {name}.proto, compiled by archlab.rpc (key {key}).")
    pb2.DESCRIPTOR = fd
    pb2.PROTO = text
    for enum in fd.enum_types_by_name.values():
        setattr(pb2, enum.name, enum_type_wrapper.EnumTypeWrapper(enum))
        for value in enum.values:
            setattr(pb2, value.name, value.number)
    for message in fd.message_types_by_name.values():
        setattr(pb2, message.name, message_factory.GetMessageClass(message))

    grpc_src = (out / f"{name}_pb2_grpc.py").read_text()
    pb2_grpc = types.ModuleType(f"{name}_pb2_grpc", f"Services of {name}.proto, compiled by archlab.rpc.")
    saved = sys.modules.get(pb2.__name__)
    sys.modules[pb2.__name__] = pb2          # the generated code says `import <name>_pb2`
    try:
        exec(compile(grpc_src, str(out / f"{name}_pb2_grpc.py"), "exec"), pb2_grpc.__dict__)
    finally:
        if saved is None:
            sys.modules.pop(pb2.__name__, None)
        else:
            sys.modules[pb2.__name__] = saved
    return pb2, pb2_grpc


def _describe(line: str, name: str) -> str:
    """'schema.proto:3:27: Expected ";".' -> 'line 3, column 27: Expected ";"'."""
    m = re.match(rf"^{re.escape(name)}\.proto:(\d+):(\d+):\s*(.*)$", line.strip())
    if m:
        return f"line {m.group(1)}, column {m.group(2)}: {m.group(3).rstrip('.')}"
    return line.strip().removeprefix(f"{name}.proto: ").rstrip(".")


# ---------------------------------------------------------------- servers and channels

_running: list[GrpcService] = []
_all: list[GrpcService] = []        # every service this kernel made, for closing channels at exit


def channel(target: str):
    """An insecure channel to `target` ("127.0.0.1:port") that ignores proxy settings."""
    import grpc

    return grpc.insecure_channel(target, options=CHANNEL_OPTIONS)


class GrpcService:
    """A grpc.server in this kernel on 127.0.0.1. Use `archlab.rpc.serve(...)` to make one."""

    def __init__(self, add_to_server, servicer, name: str = "grpc", workers: int = 8):
        import grpc

        if not callable(add_to_server):
            raise EngineError("serve() needs the add_<Service>Servicer_to_server function from pb2_grpc as its "
                              f"first argument, not {type(add_to_server).__name__}.")
        self.name = name
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers,
                                                              thread_name_prefix=f"archlab-grpc-{name}"))
        try:
            add_to_server(servicer, self._server)
        except Exception as e:
            raise EngineError(f"The gRPC service {name!r} could not register its servicer: {e}.") from e
        # Port 0: the OS picks a free port at bind time, so parallel kernels never collide.
        self.port = self._server.add_insecure_port("127.0.0.1:0")
        if not self.port:
            raise EngineError(f"The gRPC service {name!r} could not bind a port on 127.0.0.1.")
        self.target = f"127.0.0.1:{self.port}"
        self._server.start()
        self._channels: list = []
        self._stub_cache: dict = {}
        self._stopped = False
        with _lock:
            _running.append(self)
            _all.append(self)

    def channel(self):
        """A new channel to this server (closed at exit; after stop() its calls fail with UNAVAILABLE)."""
        ch = channel(self.target)
        self._channels.append(ch)
        return ch

    def stub(self, stub_class):
        """`stub_class` (e.g. pb2_grpc.CatalogStub) on one shared channel to this server."""
        if stub_class not in self._stub_cache:
            self._stub_cache[stub_class] = stub_class(self.channel())
        return self._stub_cache[stub_class]

    @property
    def running(self) -> bool:
        return not self._stopped

    def stop(self, grace: float | None = None) -> None:
        """Stop the server (calls in flight are cancelled after `grace` seconds) and free the port."""
        if self._stopped:
            return
        self._stopped = True
        self._server.stop(grace).wait(timeout=10)
        # Channels stay open: a client calling now gets UNAVAILABLE, as it would from a crashed server.
        with _lock:
            if self in _running:
                _running.remove(self)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    def __repr__(self) -> str:
        return f"<gRPC service {self.name!r} on {self.target}{'' if self.running else ' (stopped)'}>"


def serve(add_to_server, servicer, name: str = "grpc", workers: int = 8) -> GrpcService:
    """Serve `servicer` with `add_to_server` (pb2_grpc.add_<Service>Servicer_to_server) on
    127.0.0.1 at a free port, handled by a pool of `workers` threads."""
    return GrpcService(add_to_server, servicer, name, workers)


def running() -> list[GrpcService]:
    with _lock:
        return list(_running)


# ---------------------------------------------------------------- counting bytes on the wire

class Tap:
    """A TCP relay on 127.0.0.1 in front of `port` that counts the bytes going each way: point a
    client at `tap.port` instead of the server's, and read `to_server` / `to_client`.

    With `delay_ms` > 0 it also plays a network: every chunk is delivered `delay_ms` after it was
    received, in both directions, so a request and its answer cost one round trip (2 x delay_ms) more,
    and a new connection one more round trip before its first byte (the TCP handshake)."""

    def __init__(self, port: int, name: str = "tap", delay_ms: float = 0.0):
        if delay_ms < 0:
            raise EngineError(f"tap() needs a delay of 0 ms or more, not {delay_ms}.")
        self.name, self.upstream, self.delay = name, port, delay_ms / 1000
        self.to_server = self.to_client = self.connections = 0
        self._count_lock = threading.Lock()
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self.port = self._listener.getsockname()[1]
        self._sockets: list[socket.socket] = []
        self._stopped = False
        threading.Thread(target=self._accept, name=f"archlab-tap-{name}", daemon=True).start()
        with _lock:
            _taps.append(self)

    def reset(self) -> None:
        with self._count_lock:
            self.to_server = self.to_client = 0

    def _accept(self) -> None:
        while not self._stopped:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            opened = time.monotonic()
            try:
                server = socket.create_connection(("127.0.0.1", self.upstream), timeout=5)
                server.settimeout(None)
            except OSError:
                client.close()
                continue
            for s in (client, server):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._sockets += [client, server]
            with self._count_lock:
                self.connections += 1
            for src, dst, counter in ((client, server, "to_server"), (server, client, "to_client")):
                threading.Thread(target=self._pump, args=(src, dst, counter, opened), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, counter: str, opened: float) -> None:
        line: queue.Queue | None = None
        if self.delay:
            line = queue.Queue()
            threading.Thread(target=self._deliver, args=(line, dst), daemon=True).start()
        handshake_done = opened + 2 * self.delay
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                with self._count_lock:
                    setattr(self, counter, getattr(self, counter) + len(data))
                if line is None:
                    dst.sendall(data)
                else:
                    line.put((max(time.monotonic(), handshake_done) + self.delay, data))
        except OSError:
            pass
        if line is None:
            self._close_write(dst)
        else:
            line.put((time.monotonic() + self.delay, b""))

    def _deliver(self, line: queue.Queue, dst: socket.socket) -> None:
        """Send each chunk at its due time, in order (a link with a fixed one-way latency)."""
        while True:
            due, data = line.get()
            wait = due - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            if not data:
                break
            try:
                dst.sendall(data)
            except OSError:
                break
        self._close_write(dst)

    @staticmethod
    def _close_write(dst: socket.socket) -> None:
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        for s in [self._listener, *self._sockets]:
            try:
                s.shutdown(socket.SHUT_RDWR)      # wakes the thread blocked in accept() or recv()
            except OSError:
                pass
            try:
                s.close()
            except OSError:
                pass
        with _lock:
            if self in _taps:
                _taps.remove(self)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    def __repr__(self) -> str:
        delay = f", {self.delay * 1000:g} ms each way" if self.delay else ""
        return (f"<tap {self.name!r} 127.0.0.1:{self.port} -> {self.upstream}{delay}: {self.to_server} bytes to the "
                f"server, {self.to_client} to the client>")


_taps: list[Tap] = []


def tap(port: int, name: str = "tap", delay_ms: float = 0.0) -> Tap:
    """A byte-counting TCP relay on 127.0.0.1 in front of `port`, optionally adding `delay_ms` of
    one-way latency (see Tap)."""
    return Tap(port, name, delay_ms)


@atexit.register
def _stop_all() -> None:
    for service in running():
        service.stop()
    for service in _all:
        for ch in service._channels:
            ch.close()
    for t in list(_taps):
        t.stop()
