"""Real engines started on demand inside the kernel: PostgreSQL and Redis (DuckDB and
SQLite are in-process libraries and need no launcher)."""

from .base import EngineError
from .postgres import PostgresServer, postgres
from .redis import RedisServer, redis

__all__ = ["EngineError", "PostgresServer", "RedisServer", "postgres", "redis"]
