"""archlab.realtime: the event feed is the same stream for the same seed and publishes on its
schedule; retry_model agrees with its closed forms and with a direct simulation; mesh_figure is
fast and valid for every value the widget's controls allow; the mesh certificates load into ssl
contexts that do mutual TLS and reject a caller without one; the order log is seeded."""

from __future__ import annotations

import itertools
import math
import random
import socket
import ssl
import time

import pytest

from archlab import realtime

# --- EventFeed --------------------------------------------------------------------------------

def test_the_feed_is_the_same_stream_for_the_same_seed():
    a, b, c = realtime.EventFeed(30, 20, seed=7), realtime.EventFeed(30, 20, seed=7), realtime.EventFeed(30, 20, seed=8)
    assert a.bodies == b.bodies and a.gaps_s == b.gaps_s
    assert a.bodies != c.bodies
    assert [e["id"] for e in a.bodies] == list(range(1, 31))
    assert math.isclose(a.duration_s, sum(a.gaps_s))
    assert abs(statistics_mean(realtime.EventFeed(4000, 20, seed=1).gaps_s) - 0.020) < 0.002


def statistics_mean(xs):
    return sum(xs) / len(xs)


def test_the_feed_publishes_on_schedule_and_wakes_waiters():
    feed = realtime.EventFeed(10, 10, seed=3)
    assert feed.wait_after(0, timeout=0.05) == [] and not feed.finished
    t0 = time.perf_counter()
    feed.start()
    first = feed.wait_after(0, timeout=5)
    assert first and first[0]["id"] == 1
    feed.join(5)
    assert feed.finished and feed.events == feed.bodies and len(feed.sent_at) == 10
    assert feed.sent_at == sorted(feed.sent_at)
    assert feed.sent_at[-1] - t0 >= feed.duration_s * 0.9
    assert feed.wait_after(10, timeout=5) == []             # finished: returns at once, nothing new
    assert [e["id"] for e in feed.wait_after(7, timeout=0)] == [8, 9, 10]


@pytest.mark.parametrize("n, gap", [(0, 10), (5, 0), (5, -1)])
def test_a_feed_needs_events_and_a_positive_gap(n, gap):
    with pytest.raises(ValueError):
        realtime.EventFeed(n, gap)


# --- retry_model --------------------------------------------------------------------------------

def test_retry_model_matches_its_formulas():
    for e, t, n, r in itertools.product((0.0, 0.1, 0.5, 0.9, 1.0), (20, 100, 500), (1, 2, 3, 6), (0.0, 0.2, 1.0)):
        m = realtime.retry_model(e, t, n, r)
        q = 1 - (1 - e) * 0.5 * (1 + math.erf((math.log(t) - math.log(40)) / 0.6 / math.sqrt(2)))
        assert math.isclose(m["q"], q, abs_tol=1e-12)
        assert math.isclose(m["success_single"], 1 - q, abs_tol=1e-12)
        assert math.isclose(m["success_retry"], 1 - q ** n, abs_tol=1e-12)
        tries = n if q == 1 else sum(q ** k for k in range(n))          # 1 + q + ... + q^(n-1)
        assert math.isclose(m["tries_retry"], tries, abs_tol=1e-9)
        assert math.isclose(m["tries_budget"], min(tries, 1 + r), abs_tol=1e-9)
        assert math.isclose(m["success_budget"], (1 - q) * min(tries, 1 + r), abs_tol=1e-9)
        assert 0 <= m["success_budget"] <= m["success_retry"] + 1e-12 <= 1 + 1e-12


def test_retry_model_agrees_with_a_simulation():
    rng = random.Random(5)
    e, timeout, n = 0.3, 60.0, 3
    ok = tries = 0
    for _ in range(40_000):
        for k in range(1, n + 1):
            good = rng.lognormvariate(math.log(40), 0.6) <= timeout and rng.random() >= e
            if good or k == n:
                ok += good
                tries += k
                break
    m = realtime.retry_model(e, timeout, n, 10.0)
    assert abs(ok / 40_000 - m["success_retry"]) < 0.01
    assert abs(tries / 40_000 - m["tries_retry"]) < 0.02


def test_a_timeout_of_zero_fails_every_try():
    assert realtime.fast_enough(0) == 0.0 and realtime.retry_model(0.0, 0, 3, 0.5)["q"] == 1.0


# --- mesh_figure: the widget's figure ------------------------------------------------------------

def _control_grid():
    """Every edge and some inner values of the widget's sliders (archlab/widgets/realtime.py)."""
    return itertools.product((0.0, 0.01, 0.5, 0.99, 1.0), (10, 100, 1000), (1, 3, 6), (0.0, 0.05, 1.0))


def test_mesh_figure_is_valid_for_every_control_value():
    realtime.mesh_figure()                                     # the defaults draw too
    for e, t, n, r in _control_grid():
        fig = realtime.mesh_figure(e, t, n, r)
        assert len(fig.data) == 6
        for trace in fig.data:
            assert all(math.isfinite(y) for y in trace.y)
        assert fig.layout.xaxis.title.text and fig.layout.yaxis.title.text and fig.layout.yaxis2.title.text


def test_the_widget_builds_and_redraws_for_extreme_values():
    from archlab.widgets.realtime import mesh_widget

    box = mesh_widget(error_rate=1.0, per_try_timeout_ms=10, max_attempts=6, budget_ratio=0.0)
    sliders = box.children[0].children
    assert len(sliders) == 4
    for s in sliders:
        for v in (s.max, s.min):
            s.value = v
            assert box.message.value == "", box.message.value
            assert len(box.figure.data) == 6


# --- mTLS ----------------------------------------------------------------------------------------

def test_mesh_certificates_do_mutual_tls_with_spiffe_identities(tmp_path):
    certs = realtime.mesh_certificates(tmp_path, services=("checkout", "payments"))
    other = realtime.mesh_certificates(tmp_path / "other", services=("intruder",))
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=certs["ca"])
    server_ctx.load_cert_chain(*certs["payments"])
    server_ctx.verify_mode = ssl.CERT_REQUIRED
    echo = realtime.TlsEchoServer(server_ctx)

    def call(ctx):
        with socket.create_connection(("127.0.0.1", echo.port), timeout=5) as raw:
            with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
                tls.sendall(b"ping")
                got = tls.recv(16)
                return got, realtime.peer_identity(tls)

    try:
        good = ssl.create_default_context(cafile=certs["ca"])
        good.load_cert_chain(*certs["checkout"])
        assert call(good) == (b"ping", "spiffe://shop.local/ns/shop/sa/payments")
        time.sleep(0.05)
        assert echo.identities == ["spiffe://shop.local/ns/shop/sa/checkout"]
        no_cert = ssl.create_default_context(cafile=certs["ca"])
        untrusted = ssl.create_default_context(cafile=certs["ca"])
        untrusted.load_cert_chain(*other["intruder"])
        for ctx in (no_cert, untrusted):
            with pytest.raises((ssl.SSLError, ConnectionError)):
                call(ctx)
        deadline = time.monotonic() + 5
        while echo.rejected < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert echo.rejected == 2 and len(echo.identities) == 1
    finally:
        echo.stop()


def test_a_plain_echo_server_echoes_and_stop_frees_the_port():
    echo = realtime.TlsEchoServer(None)
    with socket.create_connection(("127.0.0.1", echo.port), timeout=5) as s:
        s.sendall(b"hello")
        assert s.recv(16) == b"hello"
    echo.stop()
    with socket.socket() as s:
        s.settimeout(0.5)
        assert s.connect_ex(("127.0.0.1", echo.port)) != 0


# --- the order log -------------------------------------------------------------------------------

def test_order_events_are_seeded_and_well_formed():
    prods = [("A", 100), ("B", 250)]
    log = realtime.order_events(30, seed=4, products=prods)
    assert log == realtime.order_events(30, seed=4, products=prods) != realtime.order_events(30, seed=5, products=prods)
    by_order = {}
    for e in log:
        by_order.setdefault(e["order_id"], []).append(e)
        assert set(e) >= {"type", "order_id", "ts"} and e["type"] in realtime.SERVICE_OF
    assert len(by_order) == 30
    for events in by_order.values():
        assert events[0]["type"] == "OrderPlaced"
        assert sum(e["type"] in ("OrderShipped", "OrderCancelled") for e in events) <= 1
    assert realtime.dumps({"b": 1, "a": 2}) == b'{"a":2,"b":1}'
