"""Messaging patterns: the latency model behind tail at scale, the fan-out figure, and a
virtual clock that runs asyncio code in simulated time.

    model = messaging.LatencyModel(p_slow=0.01)     # typically ~10 ms, the slow 1 % take ~1 s
    model.sample(random.Random(7))                  # one seeded draw, in ms
    messaging.fanout_figure(n=100, p_slow=0.01, hedge_ms=20)     # pure; the widget binds sliders to it
    messaging.run_virtual(main)                     # `await main()` on a loop whose clock is simulated

The latency model is the one Dean and Barroso use in "The Tail at Scale" (CACM 2013): a
server answers in about 10 ms, but one request in a hundred takes about a second. Its CDF has
a closed form, so the figure is exact (no sampling) and fast for any control value.

`run_virtual` exists for the graded hedging exercise: asyncio code (tasks, `asyncio.sleep`,
`asyncio.wait` with timeouts) runs unchanged, but time only advances when every task is
waiting, straight to the next timer. Thousands of requests with one-second tails then take a
fraction of a second of CPU and give the same latencies on every run and every machine.
"""

from __future__ import annotations

import asyncio
import math
import random
import threading
from dataclasses import dataclass, replace

import numpy as np
import plotly.graph_objects as go

FORMULA = "#6a3d9a"
SINGLE = "#7f7f7f"
PLAIN = "#d62728"
HEDGED = "#1f77b4"


@dataclass(frozen=True)
class LatencyModel:
    """One backend's response time in milliseconds: with probability 1 - p_slow a fast answer,
    fast_ms + Exp(mean fast_mean_ms); with probability p_slow a slow one (a GC pause, a queue
    behind a compaction, a retransmit), slow_ms + Exp(mean slow_mean_ms)."""

    p_slow: float = 0.01
    fast_ms: float = 5.0
    fast_mean_ms: float = 5.0
    slow_ms: float = 1000.0
    slow_mean_ms: float = 100.0

    def __post_init__(self):
        if not 0.0 <= self.p_slow <= 1.0:
            raise ValueError(f"p_slow must be a probability, not {self.p_slow}")
        if min(self.fast_ms, self.slow_ms) < 0 or min(self.fast_mean_ms, self.slow_mean_ms) <= 0:
            raise ValueError("latencies must be non-negative and the means positive")

    def with_p(self, p_slow: float) -> LatencyModel:
        return replace(self, p_slow=float(p_slow))

    def sf(self, x_ms):
        """P(latency > x) for a number or a numpy array of x (ms): the tail, computed directly so
        that small tail probabilities keep their precision."""
        x = np.asarray(x_ms, dtype=float)
        fast = np.exp(-np.maximum(x - self.fast_ms, 0) / self.fast_mean_ms)
        slow = np.exp(-np.maximum(x - self.slow_ms, 0) / self.slow_mean_ms)
        out = (1 - self.p_slow) * fast + self.p_slow * slow
        return float(out) if out.ndim == 0 else out

    def cdf(self, x_ms):
        """P(latency <= x) for a number or a numpy array of x (ms)."""
        out = 1 - np.asarray(self.sf(x_ms))
        return float(out) if out.ndim == 0 else out

    def sample(self, rng: random.Random) -> float:
        """One seeded draw in ms (always two calls to rng, so streams stay aligned across p_slow)."""
        slow = rng.random() < self.p_slow
        extra = rng.expovariate(1.0)
        return self.slow_ms + self.slow_mean_ms * extra if slow else self.fast_ms + self.fast_mean_ms * extra

    def samples(self, n: int, seed: int) -> list[float]:
        rng = random.Random(seed)
        return [self.sample(rng) for _ in range(n)]

    def quantile(self, q: float) -> float:
        """The latency (ms) below which a fraction q of responses fall."""
        return fanout_quantile(self, q, 1)


DEAN_BARROSO = LatencyModel()


def hedged_sf(model: LatencyModel, x_ms, hedge_ms: float):
    """P(latency > x) when a second, independent request is sent if the first has not answered
    after hedge_ms and the first answer wins: min(L1, hedge_ms + L2) when L1 > hedge_ms."""
    x = np.asarray(x_ms, dtype=float)
    s = np.asarray(model.sf(x))
    return np.where(x >= hedge_ms, s * np.asarray(model.sf(x - hedge_ms)), s)


def fanout_sf(model: LatencyModel, x_ms, n: int, hedge_ms: float | None = None):
    """P(a request that waits for all n backends is still waiting at x) = 1 - (1 - S(x))^n."""
    one = np.asarray(model.sf(x_ms) if hedge_ms is None else hedged_sf(model, x_ms, hedge_ms), dtype=float)
    with np.errstate(divide="ignore"):
        return -np.expm1(int(n) * np.log1p(-np.minimum(one, 1.0)))


def fanout_quantile(model: LatencyModel, q: float, n: int, hedge_ms: float | None = None) -> float:
    """The q-quantile (ms) of a fan-out request's latency (the slowest of its n backends): the
    smallest x with P(latency > x) <= 1 - q. Where the distribution has a gap (no latencies
    between the fast and the slow mode) and exactly 1 - q of the mass is slow, that is the
    start of the slow mode, as in "the 99th percentile is one second"."""
    if not 0 < q < 1:
        raise ValueError("q must be between 0 and 1")
    target = (1 - q) * (1 - 1e-9)
    lo, hi = 0.0, model.slow_ms + 80 * max(model.slow_mean_ms, model.fast_mean_ms) + (hedge_ms or 0) + model.fast_ms
    if float(fanout_sf(model, hi, n, hedge_ms)) > target:
        return hi
    for _ in range(80):
        mid = (lo + hi) / 2
        if float(fanout_sf(model, mid, n, hedge_ms)) <= target:
            hi = mid
        else:
            lo = mid
    return hi


def fanout_figure(n: int, p_slow: float, hedge_ms: float, model: LatencyModel = DEAN_BARROSO) -> go.Figure:
    """Left: P(a fan-out request waits for at least one slow backend) = 1 - (1 - p)^n against n,
    the chosen n marked. Right: P(latency > x) for one backend, for the fan-out of n, and for the
    fan-out when each backend call is hedged after hedge_ms (log axes, p99 line)."""
    from plotly.subplots import make_subplots

    n, p, d = int(n), float(p_slow), float(hedge_ms)
    if n < 1 or not 0 <= p <= 1 or d < 0:
        raise ValueError("need n >= 1, 0 <= p_slow <= 1 and hedge_ms >= 0")
    m = model.with_p(p)
    p_any = 1 - (1 - p) ** n
    p99 = fanout_quantile(m, 0.99, n)
    p99_h = fanout_quantile(m, 0.99, n, d)
    extra = m.sf(d)
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.14,
                        subplot_titles=(f"P(at least one of n backends is slow), p = {p:.1%}",
                                        f"fan-out n = {n}: P(latency > x)"))
    ns = np.unique(np.round(np.logspace(0, 3, 200)).astype(int))
    fig.add_trace(go.Scatter(x=ns, y=1 - (1 - p) ** ns, mode="lines", name="1 - (1 - p)^n", showlegend=False,
                             line={"color": FORMULA}, hovertemplate="n=%{x}: %{y:.1%}<extra>1 - (1 - p)^n</extra>"),
                  row=1, col=1)
    fig.add_trace(go.Scatter(x=[n], y=[p_any], mode="markers", showlegend=False,
                             marker={"color": FORMULA, "size": 12, "symbol": "diamond-open", "line": {"width": 2}},
                             hovertemplate=f"n={n}: {p_any:.1%}<extra>selected</extra>"), row=1, col=1)
    x = np.unique(np.concatenate([np.logspace(0, math.log10(m.slow_ms + 40 * m.slow_mean_ms + d + 1), 700),
                                  [d, m.fast_ms, m.slow_ms]]))
    floor = 1e-6
    for name, y, color, dash in (("one backend", m.sf(x), SINGLE, "dot"),
                                 (f"fan-out of {n}", fanout_sf(m, x, n), PLAIN, "solid"),
                                 (f"fan-out of {n}, hedged at {d:g} ms", fanout_sf(m, x, n, d), HEDGED, "solid")):
        fig.add_trace(go.Scatter(x=x, y=np.maximum(y, floor), mode="lines", name=name,
                                 line={"color": color, "dash": dash},
                                 hovertemplate="x=%{x:.0f} ms: %{y:.3g}<extra>" + name + "</extra>"), row=1, col=2)
    fig.add_hline(y=0.01, line_dash="dot", line_color="#888", row=1, col=2)
    fig.add_annotation(x=0.02, xref="x2 domain", y=math.log10(0.01), yref="y2", text="p99", showarrow=False,
                       yshift=8)
    fig.update_xaxes(title_text="fan-out n (backends per request)", type="log", row=1, col=1)
    fig.update_yaxes(title_text="requests slowed (fraction)", range=[0, 1.02], tickformat=".0%", row=1, col=1)
    fig.update_xaxes(title_text="latency x (ms)", type="log", row=1, col=2)
    fig.update_yaxes(title_text="P(latency > x) (fraction)", type="log", range=[math.log10(floor), 0.05],
                     row=1, col=2)
    fig.update_layout(height=430, margin={"l": 70, "r": 20, "t": 90, "b": 60}, plot_bgcolor="white",
                      legend={"orientation": "h", "y": -0.22},
                      title=(f"n = {n}, p = {p:.1%}: {p_any:.1%} of requests wait for a slow backend; "
                             f"p99 {p99:,.0f} ms, hedged {p99_h:,.0f} ms (+{extra:.1%} requests)"))
    return fig


class _VirtualSelector:
    """Wraps the loop's selector: instead of sleeping until the next timer, jump the clock to it."""

    def __init__(self, real, loop: VirtualClockLoop):
        self._real, self._loop = real, loop

    def select(self, timeout=None):
        ready = self._real.select(0)          # only the loop's own wake-up pipe is registered
        if ready or timeout == 0:
            return ready
        if timeout is None:
            raise RuntimeError("the simulation is stuck: every task is waiting and no timer is set "
                               "(a future nobody completes, or a queue nobody fills)")
        self._loop._now += timeout
        return []

    def __getattr__(self, name):
        return getattr(self._real, name)


class VirtualClockLoop(asyncio.SelectorEventLoop):
    """An asyncio loop whose time() is simulated: it starts at 0 and jumps to the next timer
    whenever nothing is ready to run. Real sockets do not belong on it."""

    def __init__(self):
        super().__init__()
        self._now = 0.0
        self._selector = _VirtualSelector(self._selector, self)

    def time(self) -> float:
        return self._now


def run_virtual(main, *args):
    """Run `await main(*args)` on a fresh VirtualClockLoop (in a helper thread, so it also works
    inside a notebook whose own loop is running) and return its result or raise its exception."""
    out: dict = {}

    def target():
        loop = VirtualClockLoop()
        asyncio.set_event_loop(loop)
        try:
            out["value"] = loop.run_until_complete(main(*args))
        except BaseException as e:  # handed to the caller's thread below
            out["error"] = e
        finally:
            try:
                pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
                for t in pending:
                    t.cancel()
                if pending:
                    loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            finally:
                asyncio.set_event_loop(None)
                loop.close()

    worker = threading.Thread(target=target, name="archlab-virtual-clock")
    worker.start()
    worker.join()
    if "error" in out:
        raise out["error"]
    return out["value"]
