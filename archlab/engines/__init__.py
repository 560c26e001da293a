"""Real engines started on demand inside the kernel: PostgreSQL, Redis, an S3 API (moto), NATS with
JetStream, and HTTP services (DuckDB and SQLite are in-process libraries and need no launcher)."""

from .base import EngineError
from .http import HttpService, serve
from .nats import NatsServer, nats
from .postgres import PostgresServer, postgres
from .redis import RedisServer, redis
from .s3 import S3Server, s3

__all__ = ["EngineError", "HttpService", "NatsServer", "PostgresServer", "RedisServer", "S3Server", "nats", "postgres",
           "redis", "s3", "serve"]
