"""Real engines started on demand inside the kernel: PostgreSQL, Redis and an S3 API (moto)
(DuckDB and SQLite are in-process libraries and need no launcher)."""

from .base import EngineError
from .postgres import PostgresServer, postgres
from .redis import RedisServer, redis
from .s3 import S3Server, s3

__all__ = ["EngineError", "PostgresServer", "RedisServer", "S3Server", "postgres", "redis", "s3"]
