"""Real engines started on demand inside the kernel: PostgreSQL, Redis, an S3 API (moto), NATS with
JetStream, HTTP and WebSocket services (DuckDB and SQLite are in-process libraries and need no launcher)."""

from .base import EngineError
from .http import HttpService, serve
from .nats import NatsServer, nats
from .postgres import PostgresServer, postgres
from .redis import RedisServer, redis
from .s3 import S3Server, s3
from .websocket import WebSocketService, serve_websocket

__all__ = ["EngineError", "HttpService", "NatsServer", "PostgresServer", "RedisServer", "S3Server", "WebSocketService",
           "nats", "postgres", "redis", "s3", "serve", "serve_websocket"]
