"""Machinery for week 25 (real-time transports, service mesh, log-based streaming): what the
notebook measures with, not what it teaches.

    feed = realtime.EventFeed(n=20, mean_gap_ms=50, seed=25).start()   # seeded events, published on schedule
    new = feed.wait_after(k, timeout=5)          # block until events after the k-th exist (a long-poll server)
    paths = realtime.mesh_certificates(tmpdir)   # a CA and SPIFFE-style certificates for mTLS
    echo = realtime.TlsEchoServer(ssl_context)   # a TLS (or plain) echo server on 127.0.0.1
    log = realtime.order_events(n_orders=40, seed=25)    # an interleaved event log of order lifecycles
    realtime.retry_model(error_rate=0.2, per_try_timeout_ms=100, max_attempts=3, budget_ratio=0.2)
    realtime.mesh_figure(...)                    # the retry widget's figure (pure, fast)

Bytes and connections on the wire are counted with `archlab.rpc.tap(port)`. Everything binds
127.0.0.1 only, and every thread is a daemon that cannot keep a kernel alive.
Nothing here implements an exercise: the notebook's learner writes the WebSocket handshake and
frames, the sidecar's retry loop, the offset checker and the order aggregate.
"""

from __future__ import annotations

import atexit
import datetime as _dt
import ipaddress
import json
import math
import random
import socket
import ssl
import threading
import time
from pathlib import Path

import plotly.graph_objects as go

LOOPBACK = "127.0.0.1"

# ---------------------------------------------------------------------------------------------
# A seeded event stream published on schedule (the source every transport delivers)
# ---------------------------------------------------------------------------------------------

_STATUSES = ("label created", "picked up", "in transit", "at the depot", "out for delivery", "delivered")


class EventFeed:
    """`n` events published by a background thread at seeded exponential gaps (mean `mean_gap_ms`),
    the same stream for the same seed. Event k (k = 1..n) is {"id": k, "parcel": ..., "status": ...};
    `sent_at[k - 1]` is the time.perf_counter() at which it was published. Servers block in
    `wait_after(k, timeout)` until events after the k-th exist, the feed has finished, or the
    timeout passes."""

    def __init__(self, n: int = 20, mean_gap_ms: float = 50.0, seed: int = 25):
        if n < 1 or mean_gap_ms <= 0:
            raise ValueError("an event feed needs n >= 1 events and a positive mean gap")
        rng = random.Random(seed)
        self.n = n
        self.gaps_s = [rng.expovariate(1000.0 / mean_gap_ms) for _ in range(n)]
        self.bodies = [{"id": k, "parcel": f"P-{rng.randrange(10_000, 99_999)}", "status": rng.choice(_STATUSES)}
                       for k in range(1, n + 1)]
        self.events: list[dict] = []
        self.sent_at: list[float] = []
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    @property
    def duration_s(self) -> float:
        """Time from start to the last event, by the schedule."""
        return sum(self.gaps_s)

    @property
    def finished(self) -> bool:
        return len(self.events) == self.n

    def start(self) -> EventFeed:
        if self._thread is None:
            self._thread = threading.Thread(target=self._publish, name="archlab-event-feed", daemon=True)
            self._thread.start()
        return self

    def _publish(self) -> None:
        due = time.perf_counter()
        for gap, body in zip(self.gaps_s, self.bodies, strict=True):
            due += gap
            while (left := due - time.perf_counter()) > 0:
                time.sleep(min(left, 0.01))
            with self._cond:
                self.sent_at.append(time.perf_counter())
                self.events.append(body)
                self._cond.notify_all()

    def wait_after(self, k: int, timeout: float) -> list[dict]:
        """The events after the k-th (possibly none, if the timeout passed or the feed is done)."""
        with self._cond:
            self._cond.wait_for(lambda: len(self.events) > k or self.finished, timeout=timeout)
            return list(self.events[k:])

    def join(self, timeout: float = 30.0) -> None:
        if self._thread is not None:
            self._thread.join(timeout)


# ---------------------------------------------------------------------------------------------
# mTLS: certificates for a small mesh, and a TLS echo server
# ---------------------------------------------------------------------------------------------

def mesh_certificates(directory, services=("checkout", "payments"), trust_domain: str = "shop.local",
                      namespace: str = "shop") -> dict:
    """A mesh's certificate authority and one certificate per service, written as PEM files into
    `directory`: {"ca": ca.pem, "<service>": (cert.pem, key.pem), ...}. Each service certificate
    carries its workload identity as a SPIFFE ID in the URI SAN
    (spiffe://<trust_domain>/ns/<namespace>/sa/<service>, as Istio issues them) plus the names
    localhost and 127.0.0.1. EC P-256 keys, valid for one day. A second call makes an unrelated
    CA whose certificates the first one's services do not trust."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    now = _dt.datetime.now(_dt.UTC) - _dt.timedelta(minutes=5)
    later = now + _dt.timedelta(days=1)

    def write(name, cert, key):
        (directory / f"{name}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        if key is not None:
            (directory / f"{name}-key.pem").write_bytes(key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        return str(directory / f"{name}.pem"), str(directory / f"{name}-key.pem")

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, trust_domain),
                         x509.NameAttribute(NameOID.COMMON_NAME, f"{trust_domain} mesh CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now).not_valid_after(later)
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    out = {"ca": write("ca", ca, None)[0]}
    for svc in services:
        key = ec.generate_private_key(ec.SECP256R1())
        spiffe = f"spiffe://{trust_domain}/ns/{namespace}/sa/{svc}"
        cert = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, svc)]))
                .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now).not_valid_after(later)
                .add_extension(x509.SubjectAlternativeName([
                    x509.UniformResourceIdentifier(spiffe), x509.DNSName("localhost"),
                    x509.IPAddress(ipaddress.ip_address(LOOPBACK))]), critical=False)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH,
                                                      x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
                .sign(ca_key, hashes.SHA256()))
        out[svc] = write(svc, cert, key)
    return out


def peer_identity(tls_socket) -> str | None:
    """The SPIFFE ID (URI SAN) of the certificate the other side of `tls_socket` presented, if any."""
    cert = tls_socket.getpeercert()
    for kind, value in (cert or {}).get("subjectAltName", ()):
        if kind == "URI":
            return value
    return None


_echoes: list[TlsEchoServer] = []


class TlsEchoServer:
    """An echo server on 127.0.0.1 (a stand-in for the application behind a sidecar). With an
    ssl.SSLContext it speaks TLS, handshaking in each connection's own thread; `identities` lists
    the peer identity (SPIFFE ID) of every accepted connection and `rejected` counts the
    handshakes that failed (e.g. a client without a trusted certificate). With context=None it
    is a plain TCP echo server."""

    def __init__(self, context: ssl.SSLContext | None = None):
        self.context = context
        self._listener = socket.create_server((LOOPBACK, 0))
        self.port = self._listener.getsockname()[1]
        self.identities: list[str | None] = []
        self.rejected = 0
        self._lock = threading.Lock()
        self._stopped = False
        threading.Thread(target=self._accept, name="archlab-tls-echo", daemon=True).start()
        _echoes.append(self)

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            if self.context is not None:
                try:
                    conn = self.context.wrap_socket(conn, server_side=True)
                except (ssl.SSLError, OSError):
                    with self._lock:
                        self.rejected += 1
                    return
                with self._lock:
                    self.identities.append(peer_identity(conn))
            while data := conn.recv(65536):
                conn.sendall(data)
        except (ssl.SSLError, OSError):
            pass
        finally:
            conn.close()

    def stop(self) -> None:
        if not self._stopped:
            self._stopped = True
            try:
                self._listener.shutdown(socket.SHUT_RDWR)   # wakes the accept() blocked in its thread
            except OSError:
                pass
            self._listener.close()

    def __repr__(self) -> str:
        return f"<{'TLS' if self.context else 'TCP'} echo server on 127.0.0.1:{self.port}>"


@atexit.register
def _stop_all() -> None:
    for echo in list(_echoes):
        echo.stop()


# ---------------------------------------------------------------------------------------------
# An event log of orders (the event-sourcing data)
# ---------------------------------------------------------------------------------------------

# Each kind of event comes from one service, and each service's clock is off by its own skew
# (milliseconds): the events' "ts" fields are not in log order, as in any real system.
SERVICE_OF = {"OrderPlaced": "cart", "ItemAdded": "cart", "ItemRemoved": "cart", "OrderPaid": "payments",
              "OrderShipped": "warehouse", "OrderCancelled": "support"}
CLOCK_SKEW_MS = {"cart": 0, "payments": -1500, "warehouse": 800, "support": -2500}


def order_events(n_orders: int = 40, seed: int = 25, products=None, first_id: int = 1001) -> list[dict]:
    """A seeded log of `n_orders` order lifecycles, interleaved in the order they happened.

    Every event is a dict with "type", "order_id" ("o-1001", ...) and "ts" (milliseconds on the
    emitting service's clock, see CLOCK_SKEW_MS) plus its own fields:
    OrderPlaced {customer_id}; ItemAdded {sku, qty, price_cents} (a later ItemAdded of the same
    sku may carry a new price); ItemRemoved {sku, qty}; OrderPaid {amount_cents};
    OrderShipped {}; OrderCancelled {reason}. `products`: (sku, price_cents) pairs, by default
    the course's product table."""
    if products is None:
        from . import datasets

        table = datasets.load("products")
        products = list(zip(table["sku"], table["price_cents"], strict=True))
    products = [(str(s), int(p)) for s, p in products]
    rng = random.Random(seed)
    timed = []
    for i in range(n_orders):
        oid = f"o-{first_id + i}"
        t = rng.uniform(0, 60_000)
        events = [{"type": "OrderPlaced", "order_id": oid, "customer_id": rng.randrange(1, 1001)}]
        cart: dict[str, list[int]] = {}
        for _ in range(rng.randint(1, 4)):
            if cart and rng.random() < 0.25:              # the same product again, at today's price
                sku = rng.choice(sorted(cart))
                price = max(1, int(cart[sku][1] * rng.choice((0.9, 1.1))))
            else:
                sku, price = rng.choice(products)
            qty = rng.randint(1, 3)
            cart.setdefault(sku, [0, price])
            cart[sku] = [cart[sku][0] + qty, price]
            events.append({"type": "ItemAdded", "order_id": oid, "sku": sku, "qty": qty, "price_cents": price})
        if rng.random() < 0.3:
            sku = rng.choice(sorted(cart))
            qty = rng.randint(1, cart[sku][0])
            cart[sku][0] -= qty
            events.append({"type": "ItemRemoved", "order_id": oid, "sku": sku, "qty": qty})
        fate = rng.random()
        total = sum(q * p for q, p in cart.values())
        if fate < 0.7:
            events.append({"type": "OrderPaid", "order_id": oid, "amount_cents": total})
            if rng.random() < 0.8:
                events.append({"type": "OrderShipped", "order_id": oid})
            elif rng.random() < 0.5:
                events.append({"type": "OrderCancelled", "order_id": oid, "reason": "customer changed mind"})
        elif fate < 0.85:
            events.append({"type": "OrderCancelled", "order_id": oid, "reason": "payment declined"})
        for e in events:
            t += rng.uniform(200, 4000)
            e["ts"] = int(t + CLOCK_SKEW_MS[SERVICE_OF[e["type"]]])
            timed.append((t, e))
    timed.sort(key=lambda te: te[0])
    return [e for _, e in timed]


def dumps(event: dict) -> bytes:
    """The wire form of an event (compact, sorted JSON)."""
    return json.dumps(event, sort_keys=True, separators=(",", ":")).encode()


# ---------------------------------------------------------------------------------------------
# Sidecar retries: the model and the widget's figure
# ---------------------------------------------------------------------------------------------

def fast_enough(per_try_timeout_ms: float, median_ms: float = 40.0, sigma: float = 0.6) -> float:
    """P(a try answers within the per-try timeout) for lognormal latency with this median and sigma."""
    if per_try_timeout_ms <= 0:
        return 0.0
    z = (math.log(per_try_timeout_ms) - math.log(median_ms)) / sigma
    return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))


def retry_model(error_rate: float, per_try_timeout_ms: float, max_attempts: int, budget_ratio: float,
                median_ms: float = 40.0, sigma: float = 0.6) -> dict:
    """Success rate and tries per request (load amplification) of a sidecar's retries, when each try
    independently fails with probability q = 1 - (1 - error_rate) * P(latency <= per-try timeout)
    and the overall deadline leaves room for every attempt.

    no retries:        success 1 - q, tries 1
    up to n attempts:  success 1 - q^n, tries (1 - q^n) / (1 - q)   (n when q = 1)
    with a budget r:   tries min((1 - q^n) / (1 - q), 1 + r), success (1 - q) * tries

    The last line holds because every try succeeds with probability 1 - q whatever came before,
    so expected successes = (1 - q) x expected tries; a budget caps retries at r per request (its
    small fixed allowance of retries is left out)."""
    e = min(max(float(error_rate), 0.0), 1.0)
    n = max(int(max_attempts), 1)
    r = max(float(budget_ratio), 0.0)
    q = 1.0 - (1.0 - e) * fast_enough(per_try_timeout_ms, median_ms, sigma)
    tries = float(n) if q >= 1.0 else (1.0 - q ** n) / (1.0 - q)
    budget_tries = min(tries, 1.0 + r)
    return {"q": q, "success_single": 1.0 - q, "success_retry": 1.0 - q ** n, "tries_retry": tries,
            "success_budget": (1.0 - q) * budget_tries, "tries_budget": budget_tries}


def mesh_figure(error_rate: float = 0.2, per_try_timeout_ms: float = 100.0, max_attempts: int = 3,
                budget_ratio: float = 0.2, median_ms: float = 40.0, sigma: float = 0.6) -> go.Figure:
    """Left: success rate against the upstream's error rate, without retries, with up to
    `max_attempts` attempts, and with the same retries under a retry budget. Right: tries the
    upstream receives per request (load amplification) for the same three. The dotted line marks
    `error_rate`. Pure function of its arguments (see retry_model)."""
    xs = [i / 100 for i in range(101)]
    rows = [retry_model(x, per_try_timeout_ms, max_attempts, budget_ratio, median_ms, sigma) for x in xs]
    here = retry_model(error_rate, per_try_timeout_ms, max_attempts, budget_ratio, median_ms, sigma)
    lines = (("no retries", "success_single", None, "#7f7f7f"),
             (f"up to {int(max_attempts)} attempts", "success_retry", "tries_retry", "#d62728"),
             (f"... with a {budget_ratio:.0%} retry budget", "success_budget", "tries_budget", "#1f77b4"))
    traces = []
    for name, ok_key, tries_key, colour in lines:   # two panels side by side: axes x/y and x2/y2
        traces.append({"type": "scatter", "x": xs, "y": [100 * r[ok_key] for r in rows], "name": name,
                       "legendgroup": name, "line": {"color": colour}})
        traces.append({"type": "scatter", "x": xs, "y": [r[tries_key] if tries_key else 1.0 for r in rows],
                       "name": name, "legendgroup": name, "showlegend": False, "line": {"color": colour},
                       "xaxis": "x2", "yaxis": "y2"})
    x_title = {"text": "upstream error rate (fraction of tries)"}
    marker = {"type": "line", "x0": error_rate, "x1": error_rate, "y0": 0, "y1": 1, "yref": "paper",
              "line": {"dash": "dot", "color": "#444"}}
    layout = {
        "height": 400, "margin": {"t": 90}, "legend": {"orientation": "h", "y": -0.22},
        "xaxis": {"domain": [0, 0.43], "range": [0, 1], "title": x_title},
        "xaxis2": {"domain": [0.57, 1], "range": [0, 1], "title": x_title, "anchor": "y2"},
        "yaxis": {"range": [0, 101], "title": {"text": "success (% of requests)"}},
        "yaxis2": {"rangemode": "tozero", "title": {"text": "tries per request (×)"}, "anchor": "x2"},
        "shapes": [{**marker, "xref": "x"}, {**marker, "xref": "x2"}],
        "annotations": [{"text": text, "x": x, "y": 1.0, "xref": "paper", "yref": "paper", "showarrow": False,
                         "xanchor": "center", "yanchor": "bottom"}
                        for text, x in (("requests that succeed", 0.215),
                                        ("tries the upstream receives per request", 0.785))],
        "title": {"text": (f"error rate {error_rate:.0%}, per-try timeout {per_try_timeout_ms:g} ms "
                           f"(a try fails with q = {here['q']:.2f}): success {100 * here['success_single']:.1f}% → "
                           f"{100 * here['success_retry']:.1f}% with retries ({here['tries_retry']:.2f}× load), "
                           f"{100 * here['success_budget']:.1f}% with the budget ({here['tries_budget']:.2f}×)"),
                  "font": {"size": 13}},
    }
    fig = go.Figure(data=traces, layout=layout)
    return fig
