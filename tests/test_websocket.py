"""archlab.engines.websocket: a handler served by the websockets library on 127.0.0.1 answers
several real clients at once, frees its port when stopped, refuses a handler it could not call
with one clear sentence, and cannot keep a kernel from exiting."""

from __future__ import annotations

import base64
import hashlib
import socket
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from archlab.engines import EngineError
from archlab.engines.websocket import running, serve_websocket


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _chat_server():
    clients, lock = set(), threading.Lock()

    def chat(ws):
        with lock:
            clients.add(ws)
        try:
            for message in ws:
                with lock:                      # one broadcast at a time: every client sees one order
                    for c in list(clients):
                        c.send(message)
        finally:
            with lock:
                clients.discard(ws)

    return serve_websocket(chat, name="chat"), clients


def test_chat_broadcasts_to_every_client_in_one_order():
    svc, clients = _chat_server()
    try:
        assert svc.url == f"ws://127.0.0.1:{svc.port}" and svc.running and svc in running()
        people = [svc.connect() for _ in range(4)]
        # The server lists a connection once its handshake is done, a moment before the handler
        # has joined the chat: wait for both, or an early message misses a late joiner.
        deadline = time.monotonic() + 5
        while (len(svc.connections) < 4 or len(clients) < 4) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(svc.connections) == 4 and len(clients) == 4
        for i, ws in enumerate(people):
            ws.send(f"hello from {i}")
        seen = [[ws.recv(timeout=5) for _ in range(4)] for ws in people]
        assert sorted(seen[0]) == [f"hello from {i}" for i in range(4)]
        assert all(s == seen[0] for s in seen), "every client sees the same order"
        people[0].send(b"\x00\x01binary")
        assert all(ws.recv(timeout=5) == b"\x00\x01binary" for ws in people)
        for ws in people:
            ws.close()
    finally:
        svc.stop()


def test_the_handshake_is_rfc_6455():
    svc = serve_websocket(lambda ws: ws.send(ws.recv()), name="echo")
    try:
        with socket.create_connection(("127.0.0.1", svc.port), timeout=5) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
            head = b""
            while b"\r\n\r\n" not in head:
                head += s.recv(4096)
        assert head.startswith(b"HTTP/1.1 101")
        assert b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" in head
        expected = base64.b64encode(hashlib.sha1(b"dGhlIHNhbXBsZSBub25jZQ==258EAFA5-E914-47DA-95CA-C5AB0DC85B11")
                                    .digest())
        assert expected == b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    finally:
        svc.stop()


def test_stop_frees_the_port_and_closes_clients_with_going_away():
    from websockets.exceptions import ConnectionClosed

    svc, _ = _chat_server()
    ws = svc.connect()
    port = svc.port
    assert _listening(port)
    t0 = time.monotonic()
    svc.stop()
    assert time.monotonic() - t0 < 5
    assert not svc.running and svc not in running() and not _listening(port)
    with pytest.raises(ConnectionClosed) as closed:
        ws.recv(timeout=5)
    assert closed.value.rcvd.code == 1001
    assert svc.connections == []
    svc.stop()   # twice is harmless


def test_a_handler_that_ignores_its_connection_cannot_hang_stop():
    release = threading.Event()
    svc = serve_websocket(lambda ws: release.wait(30), name="stuck")
    ws = svc.connect()
    t0 = time.monotonic()
    svc.stop(timeout=0.5)
    assert time.monotonic() - t0 < 3 and not _listening(svc.port)
    release.set()
    ws.close()


@pytest.mark.parametrize("handler, words", [
    ("not a function", "handler function"),
    (lambda: None, "one argument"),
    (lambda ws, path: None, "one argument"),
])
def test_a_bad_handler_is_refused_in_one_sentence(handler, words):
    with pytest.raises(EngineError, match=words) as e:
        serve_websocket(handler)
    assert str(e.value).count(". ") == 0 and str(e.value).endswith(".")


def test_a_bad_option_is_refused_in_one_sentence():
    with pytest.raises(EngineError, match="option"):
        serve_websocket(lambda ws: None, colour="blue")


def test_a_connected_client_does_not_keep_the_kernel_alive():
    script = textwrap.dedent("""
        from archlab.engines.websocket import serve_websocket
        svc = serve_websocket(lambda ws: [ws.send(m) for m in ws])
        ws = svc.connect()
        ws.send("x"); assert ws.recv(timeout=5) == "x"
        print(svc.port, flush=True)
        # exits with the client still connected and the handler still waiting in recv
    """)
    t0 = time.monotonic()
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert time.monotonic() - t0 < 15
    assert not _listening(int(out.stdout.split()[0]))


def test_a_client_that_vanishes_without_a_close_frame_logs_nothing(caplog):
    svc = serve_websocket(lambda ws: [ws.send(m) for m in ws], name="vanish")
    try:
        with socket.create_connection(("127.0.0.1", svc.port), timeout=5) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
            head = b""
            while b"\r\n\r\n" not in head:
                head += s.recv(4096)
        deadline = time.monotonic() + 5
        while svc.connections and time.monotonic() < deadline:
            time.sleep(0.01)
        assert svc.connections == []
        assert not [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")], caplog.text
    finally:
        svc.stop()
