"""Real HTTP services for the notebooks: any WSGI application (a Flask app, or a plain
`app(environ, start_response)` function) served by werkzeug in a thread of this kernel, on
127.0.0.1 at a port the OS picks.

Unlike the databases these are not singletons: a notebook starts as many services as its
architecture needs (a farm behind a load balancer, a gateway and its backends), stops one to
show a failure, and every one still running is shut down when the kernel exits.
"""

from __future__ import annotations

import atexit
import threading

from .base import EngineError

_running: list[HttpService] = []
_lock = threading.Lock()


class HttpService:
    """One HTTP server in a background thread. Use `archlab.serve(app)` rather than constructing it."""

    def __init__(self, app, name: str = "service", host: str = "127.0.0.1"):
        try:
            from werkzeug.serving import WSGIRequestHandler, make_server
        except ImportError as e:  # pragma: no cover - install problem
            raise EngineError("werkzeug is not installed in this environment: run `make lab` or "
                              "`pip install -e .` first.") from e
        if not callable(app):
            raise EngineError(f"serve() needs a WSGI application (a Flask app or a function taking environ and "
                              f"start_response), not {type(app).__name__}.")

        class QuietHandler(WSGIRequestHandler):
            def log_request(self, *args, **kwargs):   # no access-log line per request in the notebook
                pass

        self.name = name
        self.host = host
        try:
            # Port 0: the OS picks a free port at bind time, so parallel kernels never collide.
            self._server = make_server(host, 0, app, threaded=True, request_handler=QuietHandler)
        except Exception as e:
            raise EngineError(f"The HTTP service {name!r} did not start on {host}: {e}.") from e
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.url = f"http://{host}:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"archlab-http-{name}", daemon=True)
        self._thread.start()
        self._stopped = False
        with _lock:
            _running.append(self)

    def session(self):
        """A requests.Session that ignores proxy settings from the environment (a proxy would
        turn a request to 127.0.0.1 into one that leaves the machine)."""
        import requests

        s = requests.Session()
        s.trust_env = False
        return s

    @property
    def running(self) -> bool:
        return not self._stopped and self._thread.is_alive()

    def stop(self) -> None:
        """Stop accepting connections and free the port (a crash, as far as clients can tell)."""
        if self._stopped:
            return
        self._stopped = True
        try:
            self._server.shutdown()
            self._server.server_close()
        except Exception:  # already gone
            pass
        self._thread.join(timeout=5)
        with _lock:
            if self in _running:
                _running.remove(self)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    def __repr__(self) -> str:
        return f"<HTTP service {self.name!r} on {self.url}{'' if self.running else ' (stopped)'}>"


def serve(app, name: str = "service") -> HttpService:
    """Serve `app` (WSGI) on 127.0.0.1 at a free port in a background thread; `.url` is its
    address, `.session()` a requests session for it, `.stop()` takes it down."""
    return HttpService(app, name)


def running() -> list[HttpService]:
    """The services this kernel started and has not stopped."""
    with _lock:
        return list(_running)


@atexit.register
def _stop_all() -> None:
    for service in running():
        service.stop()
