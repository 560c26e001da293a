"""Rate limiting, seen over time: seeded bursty traffic and the figure of what a limiter let through.

    arrivals = ratelimit.bursty_arrivals(seed=21)                   # sorted request times (s)
    allowed = ratelimit.decide(lambda: MyBucket(5, 10), arrivals)    # [True, False, ...]
    ratelimit.limit_figure(arrivals, "token bucket", rate=5, burst=10, window=1.0, limiters=LIMITERS)
    src, t = ratelimit.source_population(seed=2017, n_sources=10_000)   # many clients, for error rates

archlab holds no limiter. `limiters` maps an algorithm's name to a factory
`make(rate, burst, window)` that the notebook builds from the learner's own classes, each with
`allow(now) -> bool`; `limit_figure` is a pure function of its arguments (a fresh limiter per
call, the same trace), so tests call it without a display.
"""

from __future__ import annotations

import math
import random

import numpy as np
import plotly.graph_objects as go

ALLOWED = "#2ca02c"
REJECTED = "#d62728"
PROMISE = "#555"


def bursty_arrivals(seed: int = 21, duration: float = 60.0, calm_rate: float = 2.0, burst_rate: float = 25.0,
                    mean_calm: float = 6.0, mean_burst: float = 2.0) -> list[float]:
    """Request times in [0, duration), sorted, rounded to the millisecond: a two-state (calm/burst)
    Markov-modulated Poisson process. Calm and burst periods last exponentially distributed times
    with means `mean_calm` and `mean_burst` seconds; requests arrive as a Poisson process at
    `calm_rate` or `burst_rate` per second. The same arguments always give the same list."""
    if duration <= 0 or calm_rate < 0 or burst_rate < 0 or mean_calm <= 0 or mean_burst <= 0:
        raise ValueError("duration and the mean period lengths must be positive, rates non-negative")
    rng = random.Random(seed)
    out, t, bursting = [], 0.0, False
    while t < duration:
        end = min(duration, t + rng.expovariate(1.0 / (mean_burst if bursting else mean_calm)))
        rate = burst_rate if bursting else calm_rate
        x = t
        while rate > 0:
            x += rng.expovariate(rate)
            if x >= end:
                break
            out.append(x)
        t, bursting = end, not bursting
    return sorted(min(round(x, 3), round(duration - 0.001, 3)) for x in out)


def decide(make_limiter, arrivals) -> list[bool]:
    """Run a fresh limiter `make_limiter()` over the request times in order: its allow(t) answers."""
    limiter = make_limiter()
    out = []
    for t in arrivals:
        ok = limiter.allow(t)
        if type(ok) is not bool:
            raise TypeError(f"allow() must return True or False, not {type(ok).__name__}")
        out.append(ok)
    return out


def trailing_counts(times, window: float) -> np.ndarray:
    """For each time t in the sorted `times`: how many of `times` lie in (t - window, t]."""
    ts = np.asarray(times, dtype=float)
    if len(ts) == 0:
        return np.zeros(0, dtype=int)
    hi = np.searchsorted(ts, ts, side="right")
    lo = np.searchsorted(ts, ts - window, side="right")
    return hi - lo


def source_population(seed: int = 2017, n_sources: int = 10_000, duration: float = 600.0,
                      median_per_min: float = 6.0, sigma: float = 1.4, bursty_share: float = 0.3):
    """Many clients' requests, for measuring a limiter's error rate over a population.

    Source s sends on average rate_s requests per minute, drawn log-normal (median
    `median_per_min`, log-sd `sigma`), over `duration` seconds. A share `bursty_share` of the
    sources is on/off: it sends only in the "on" part of a square wave (period 30-240 s, duty
    10-50 %, random phase), at rate_s / duty, so its mean rate is the same. Returns
    (src, t, rate_per_min, bursty): int and float arrays of every request sorted by source and
    then time, and each source's mean rate and kind. Same seed, same arrays."""
    rng = np.random.default_rng(seed)
    rate_pm = rng.lognormal(mean=math.log(median_per_min), sigma=sigma, size=n_sources)
    bursty = rng.random(n_sources) < bursty_share
    duty = np.where(bursty, rng.uniform(0.1, 0.5, n_sources), 1.0)
    period = rng.uniform(30.0, 240.0, n_sources)
    phase = rng.uniform(0.0, 1.0, n_sources) * period
    n = rng.poisson(rate_pm / 60.0 / duty * duration)
    src = np.repeat(np.arange(n_sources), n)
    t = rng.uniform(0.0, duration, int(n.sum()))
    on = ((t + phase[src]) % period[src]) < duty[src] * period[src]
    src, t = src[on], t[on]
    order = np.lexsort((t, src))
    return src[order], t[order], rate_pm, bursty


def limit_figure(arrivals, algorithm: str, rate: float, burst: int, window: float, limiters: dict,
                 bin_s: float = 1.0) -> go.Figure:
    """What `limiters[algorithm](rate, burst, window)` does to the request times `arrivals`.

    Top: requests per `bin_s`-second bin, allowed and rejected stacked. Bottom: the requests
    allowed in the trailing `window` seconds, at every request, against what the algorithm
    promises for such a window: `burst` (the limit per window) for the window algorithms, and
    burst + rate x window for the token bucket (algorithm name containing "bucket")."""
    from plotly.subplots import make_subplots

    if algorithm not in limiters:
        raise ValueError(f"unknown algorithm {algorithm!r}; known: {sorted(limiters)}")
    rate, burst, window = float(rate), int(burst), float(window)
    if rate <= 0 or burst < 1 or window <= 0 or bin_s <= 0:
        raise ValueError("rate and window must be positive and burst at least 1")
    ts = np.asarray(arrivals, dtype=float)
    ok = np.asarray(decide(lambda: limiters[algorithm](rate, burst, window), ts), dtype=bool)
    duration = float(ts.max()) + 1e-9 if len(ts) else bin_s
    edges = np.arange(0.0, math.ceil(duration / bin_s) * bin_s + bin_s / 2, bin_s)
    centres = (edges[:-1] + edges[1:]) / 2
    allowed_per_bin = np.histogram(ts[ok], bins=edges)[0] / bin_s
    rejected_per_bin = np.histogram(ts[~ok], bins=edges)[0] / bin_s
    admitted = ts[ok]
    trailing = trailing_counts(admitted, window)
    bucket = "bucket" in algorithm.lower()
    promise = burst + rate * window if bucket else float(burst)
    promise_text = (f"burst + rate × window = {promise:g}" if bucket else f"limit = {burst}")
    most = int(trailing.max()) if len(trailing) else 0

    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.1, row_heights=[0.55, 0.45],
                        subplot_titles=("requests per second", f"allowed in the last {window:g} s"))
    fig.add_trace(go.Bar(x=centres, y=allowed_per_bin, name="allowed", marker_color=ALLOWED, width=bin_s * 0.95,
                         hovertemplate="t=%{x:.1f} s: %{y:g}/s allowed<extra></extra>"), row=1, col=1)
    fig.add_trace(go.Bar(x=centres, y=rejected_per_bin, name="rejected", marker_color=REJECTED, width=bin_s * 0.95,
                         hovertemplate="t=%{x:.1f} s: %{y:g}/s rejected<extra></extra>"), row=1, col=1)
    fig.add_trace(go.Scatter(x=admitted, y=trailing, mode="lines", line={"shape": "hv", "color": ALLOWED},
                             name=f"allowed in (t - {window:g} s, t]", showlegend=False,
                             hovertemplate="t=%{x:.3f} s: %{y} allowed<extra></extra>"), row=2, col=1)
    fig.add_trace(go.Scatter(x=[0, duration], y=[promise, promise], mode="lines", name=promise_text,
                             line={"color": PROMISE, "dash": "dash"}, hoverinfo="skip"), row=2, col=1)
    fig.update_xaxes(title_text="time (s)", row=2, col=1)
    fig.update_xaxes(range=[0, duration])
    fig.update_yaxes(title_text="requests per second (req/s)", rangemode="tozero", row=1, col=1)
    fig.update_yaxes(title_text=f"allowed in {window:g} s (requests)", rangemode="tozero",
                     range=[0, max(most, promise) * 1.15 + 1], row=2, col=1)
    params = f"rate {rate:g}/s, burst {burst}" if bucket else f"limit {burst} per {window:g} s"
    fig.update_layout(barmode="stack", height=520, margin={"l": 70, "r": 20, "t": 80, "b": 50},
                      plot_bgcolor="white", bargap=0, legend={"orientation": "h", "y": -0.15},
                      title=(f"{algorithm} ({params}): {int(ok.sum())} of {len(ts)} allowed; most in any "
                             f"{window:g} s: {most} (promise {promise:g})"))
    return fig
