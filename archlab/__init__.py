"""archlab: the toolkit the course notebooks import.

    import archlab
    pg = archlab.postgres()          # a real PostgreSQL server on 127.0.0.1, started once per kernel
    r = archlab.redis().client()     # a real Redis server on a unix socket
    s3 = archlab.s3().client()       # a real S3 API (moto's server) on 127.0.0.1, via boto3
    nc = await archlab.nats().connect()   # a real NATS server with JetStream on 127.0.0.1
    svc = archlab.serve(flask_app)   # any WSGI app as a real HTTP service on 127.0.0.1
    orders = archlab.datasets.load("orders")

Submodules load on first use so that `import archlab` stays fast.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_SUBMODULES = {"architecture", "bloom", "caching", "datasets", "engines", "exercises", "explain", "hashing",
               "linearizability", "messaging", "progress", "ratelimit", "realtime", "rpc", "serialization",
               "sessions", "sim", "storage_costs", "timeline", "widgets", "workloads"}


def postgres(**settings):
    """The kernel's PostgreSQL server (see archlab.engines.postgres)."""
    from .engines import postgres as _postgres

    return _postgres(**settings)


def redis(**config):
    """The kernel's Redis server (see archlab.engines.redis)."""
    from .engines import redis as _redis

    return _redis(**config)


def s3():
    """The kernel's S3 server (see archlab.engines.s3)."""
    from .engines import s3 as _s3

    return _s3()


def nats():
    """The kernel's NATS server with JetStream (see archlab.engines.nats)."""
    from .engines import nats as _nats

    return _nats()


def serve(app, name: str = "service"):
    """Serve a WSGI app on 127.0.0.1 in a background thread (see archlab.engines.http)."""
    from .engines import serve as _serve

    return _serve(app, name)


def __getattr__(name: str):
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'archlab' has no attribute {name!r}")
