"""archlab.nats() and archlab.serve(): real servers on 127.0.0.1 that start lazily, answer real
clients, keep JetStream data across a restart, and are gone when the kernel that started them
ends, even when it is killed."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time

import pytest

import archlab
from archlab.engines import EngineError


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _nats_pids() -> set[int]:
    out = subprocess.run(["pgrep", "-f", "nats-server --addr 127.0.0.1"], capture_output=True, text=True).stdout
    return {int(p) for p in out.split()}


def test_nats_jetstream_round_trip_and_persistence_across_restart():
    server = archlab.nats()
    assert archlab.nats() is server and server.url == f"nats://127.0.0.1:{server.port}"

    async def publish_then_count():
        nc = await server.connect()
        js = nc.jetstream()
        try:
            await js.delete_stream("t")
        except Exception:
            pass
        await js.add_stream(name="t", subjects=["t.*"])
        for i in range(5):
            ack = await js.publish("t.x", str(i).encode())
        sub = await js.pull_subscribe("t.*", durable="c")
        got = [m.data for m in await sub.fetch(5, timeout=2)]
        await nc.close()
        return ack.seq, got

    seq, got = asyncio.run(publish_then_count())
    assert (seq, got) == (5, [b"0", b"1", b"2", b"3", b"4"])
    port = server.port
    server.restart()
    assert server.port == port

    async def count():
        nc = await server.connect()
        n = (await nc.jetstream().stream_info("t")).state.messages
        await nc.close()
        return n

    assert asyncio.run(count()) == 5, "JetStream's file store survives a restart"
    server.restart(wipe=True)
    with pytest.raises(Exception, match="not found"):
        asyncio.run(count())


def test_nats_binds_loopback_only():
    server = archlab.nats()
    assert "--addr 127.0.0.1" in " ".join(server._proc.args)
    with socket.socket() as s:          # the port is not served on the wildcard address's other interfaces
        s.settimeout(0.5)
        others = {a[4][0] for a in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)} - {"127.0.0.1"}
        for other in others:
            assert s.connect_ex((other, server.port)) != 0


@pytest.mark.parametrize("how", ["exit", "kill"])
def test_servers_are_gone_when_the_kernel_ends(how):
    """A child Python starts NATS and an HTTP service, then exits normally or is SIGKILLed."""
    script = textwrap.dedent("""
        import sys, time, archlab
        n = archlab.nats()
        s = archlab.serve(lambda env, start: (start("200 OK", []), [b"ok"])[1])
        print(n.port, s.port, n._proc.pid, flush=True)
        if sys.argv[1] == "kill":
            time.sleep(60)
    """)
    before = _nats_pids()
    child = subprocess.Popen([sys.executable, "-c", script, how], stdout=subprocess.PIPE, text=True)
    nats_port, http_port, pid = map(int, child.stdout.readline().split())
    if how == "kill":
        assert _listening(nats_port) and _listening(http_port)
        os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=30)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and (pid in _nats_pids() or _listening(nats_port)):
        time.sleep(0.05)
    assert pid not in _nats_pids() - before and not _listening(nats_port), "nats-server outlived its kernel"
    assert not _listening(http_port)


def test_http_service_answers_and_stops():
    from flask import Flask

    app = Flask("t")

    @app.get("/hello/<name>")
    def hello(name):
        return {"hello": name}

    svc = archlab.serve(app, "hello")
    assert svc.url.startswith("http://127.0.0.1:")
    assert svc.session().get(f"{svc.url}/hello/ada", timeout=5).json() == {"hello": "ada"}
    assert svc in archlab.engines.http.running()
    svc.stop()
    assert not svc.running and not _listening(svc.port) and svc not in archlab.engines.http.running()
    svc.stop()   # twice is harmless


def test_serve_refuses_what_is_not_an_app():
    with pytest.raises(EngineError, match="needs a WSGI application"):
        archlab.serve("app.py")
