"""Real WebSocket servers for the notebooks: a handler function served by the `websockets`
library (its threaded, synchronous API) on 127.0.0.1 at a port the OS picks.

A handler is `def handler(ws): ...`; it runs in its own thread once per connected client,
after the RFC 6455 opening handshake, and the connection closes when it returns. `ws.recv()`
waits for the client's next message, `ws.send(text_or_bytes)` pushes one, and iterating over
`ws` reads messages until the client leaves. A chat server, a push feed or an echo service is a
few lines, and many clients can stay connected at once.

Like the HTTP services (archlab/engines/http.py) these are not singletons: a notebook starts as
many as it needs, stops one to show what clients see when it goes away (close code 1001, "going
away"), and every one still running is shut down when the kernel exits. The accept loop runs in
a daemon thread, so the per-connection threads it starts are daemons too, and a client left
connected can never keep the kernel from exiting.
"""

from __future__ import annotations

import atexit
import inspect
import threading

from .base import EngineError

_running: list[WebSocketService] = []
_lock = threading.Lock()


def _check_handler(handler) -> None:
    if not callable(handler):
        raise EngineError(f"serve_websocket() needs a handler function taking one argument, the connection "
                          f"(def handler(ws): ...), not {type(handler).__name__}.")
    try:
        inspect.signature(handler).bind(object())
    except TypeError:
        raise EngineError(f"serve_websocket() calls the handler with one argument, the connection, but "
                          f"{getattr(handler, '__name__', 'it')}{inspect.signature(handler)} cannot take exactly "
                          f"one: write it as def handler(ws): ....") from None
    except ValueError:   # a builtin without a signature: let it try
        pass


def _quiet_on_disconnect(handler):
    """The handler, but a client that leaves (even without a close frame, as a raw socket or a crashed
    browser does) just ends it: websockets would otherwise log a traceback for every such client."""
    from websockets.exceptions import ConnectionClosed

    def run(ws):
        try:
            handler(ws)
        except ConnectionClosed:
            pass

    return run


class WebSocketService:
    """One WebSocket server in a background thread. Use `serve_websocket(handler)` rather than constructing it."""

    def __init__(self, handler, name: str = "websocket", host: str = "127.0.0.1", **options):
        try:
            from websockets.sync.server import serve
        except ImportError as e:  # pragma: no cover - install problem
            raise EngineError("The websockets library is not installed in this environment: run `make lab` or "
                              "`pip install -e .` first.") from e
        _check_handler(handler)
        self.name = name
        self.host = host
        try:
            # Port 0: the OS picks a free port at bind time, so parallel kernels never collide.
            self._server = serve(_quiet_on_disconnect(handler), host, 0, **options)
        except TypeError as e:
            raise EngineError(f"The WebSocket service {name!r} got an option websockets.sync.server.serve does not "
                              f"take: {e}.") from e
        except Exception as e:
            raise EngineError(f"The WebSocket service {name!r} did not start on {host}: {e}.") from e
        self.port = self._server.socket.getsockname()[1]
        self.url = f"ws://{host}:{self.port}"
        # A daemon accept loop: the connection threads it creates inherit daemon=True.
        self._thread = threading.Thread(target=self._server.serve_forever, name=f"archlab-ws-{name}", daemon=True)
        self._thread.start()
        self._stopped = False
        with _lock:
            _running.append(self)

    def connect(self, path: str = "/", **options):
        """A synchronous websockets client connected to this server (`.send`, `.recv`, `.close`; also a
        context manager), never through a proxy from the environment (that would send 127.0.0.1
        traffic elsewhere). It is a plain connection (websockets' `legacy=True`), so a notebook can
        keep several open across cells and close them when it likes."""
        from websockets.sync.client import connect

        options = {"proxy": None, "legacy": True, **options}
        return connect(self.url + path, **options)

    @property
    def connections(self) -> list:
        """The connections open right now (one per connected client)."""
        return list(self._server.connections) if self.running else []

    @property
    def running(self) -> bool:
        return not self._stopped and self._thread.is_alive()

    def stop(self, timeout: float = 5.0) -> None:
        """Close the listening socket (the port is free again), close every open connection with
        code 1001 "going away" and wait up to `timeout` seconds for the handlers to return."""
        if self._stopped:
            return
        self._stopped = True
        closer = threading.Thread(target=self._server.shutdown, name=f"archlab-ws-stop-{self.name}", daemon=True)
        closer.start()
        closer.join(timeout)       # a handler that ignores its closed connection cannot hang the kernel
        self._thread.join(timeout=1)
        with _lock:
            if self in _running:
                _running.remove(self)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    def __repr__(self) -> str:
        return f"<WebSocket service {self.name!r} on {self.url}{'' if self.running else ' (stopped)'}>"


def serve_websocket(handler, name: str = "websocket", **options) -> WebSocketService:
    """Serve `handler(ws)` over WebSocket on 127.0.0.1 at a free port in background threads; `.url`
    is its ws:// address, `.connect()` a client for it, `.stop()` takes it down. `options` go to
    `websockets.sync.server.serve` (e.g. `compression=None`, `max_size=2**20`)."""
    return WebSocketService(handler, name, **options)


def running() -> list[WebSocketService]:
    """The WebSocket services this kernel started and has not stopped."""
    with _lock:
        return list(_running)


@atexit.register
def _stop_all() -> None:
    for service in running():
        service.stop(timeout=2.0)
