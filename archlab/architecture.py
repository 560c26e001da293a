"""Call chains between services: end-to-end availability and latency percentiles, and the
figure the call-chain widget draws.

    architecture.chain_latency_samples(hops=4, fanout=10, median_ms=5, sigma=0.5)
    architecture.chain_figure(hops=4, fanout=10, availability=0.999, median_ms=5, sigma=0.5)

The model: a request passes through `hops` levels of services one after the other; at each
level the caller sends `fanout` calls in parallel and waits for all of them. Every call
succeeds independently with probability `availability` and takes a lognormal time with the
given median and log-space standard deviation `sigma` (sigma = 0: every call takes exactly the
median). A request succeeds only if all hops * fanout calls succeed. Latencies are sampled
with a fixed seed (the maximum of `fanout` calls is drawn directly by inverting its CDF, so
the cost does not grow with the fan-out): the same arguments always give the same figure.

Everything here is a pure function of its arguments; tests call them without a display.
"""

from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go

MAX_HOPS = 20

# The standard normal's upper tail S(z) = P(Z > z) on a fine grid, for inverting it by
# interpolation in log space (numpy has no inverse error function).
_Z = np.linspace(-9.0, 9.0, 7201)
_LOG_TAIL = np.log(np.array([0.5 * math.erfc(z / math.sqrt(2.0)) for z in _Z]))


def normal_upper_quantile(q) -> np.ndarray:
    """z with P(Z > z) = q for a standard normal Z, for q in (0, 1) (array or scalar)."""
    logq = np.log(np.clip(np.asarray(q, dtype=float), 1e-300, 1.0))
    return np.interp(logq, _LOG_TAIL[::-1], _Z[::-1])


def call_quantile_ms(p: float, median_ms: float, sigma: float) -> float:
    """The p-quantile (0 < p < 1) of one call's latency in milliseconds."""
    return float(median_ms * math.exp(sigma * float(normal_upper_quantile(1.0 - p))))


def chain_latency_samples(hops: int = MAX_HOPS, fanout: int = 1, median_ms: float = 5.0, sigma: float = 0.5,
                          samples: int = 10_000, seed: int = 17) -> np.ndarray:
    """End-to-end latencies (ms), shape (samples, hops): column h-1 is a chain of h levels."""
    hops, fanout = max(1, int(hops)), max(1, int(fanout))
    rng = np.random.default_rng(seed)
    u = rng.random((int(samples), hops))
    # max of `fanout` iid calls: P(max <= x) = F(x)^fanout, so max = F^-1(U^(1/fanout));
    # its upper-tail probability 1 - U^(1/fanout) is computed without cancellation.
    tail = -np.expm1(np.log(np.maximum(u, 1e-300)) / fanout)
    level = median_ms * np.exp(sigma * normal_upper_quantile(tail))
    return np.cumsum(level, axis=1)


def chain_availability(hops: int, fanout: int, availability: float) -> float:
    """Every one of hops * fanout independent calls must succeed."""
    return float(availability) ** (int(hops) * int(fanout))


def chain_figure(hops: int = 4, fanout: int = 1, availability: float = 0.999, median_ms: float = 5.0,
                 sigma: float = 0.5, percentile: float = 99.0, max_hops: int = MAX_HOPS) -> go.Figure:
    """Left: end-to-end availability against the number of hops (this fan-out, and no fan-out).
    Right: end-to-end latency percentiles against the number of hops, and one call's percentile."""
    from plotly.subplots import make_subplots

    hops, fanout = max(1, int(hops)), max(1, int(fanout))
    max_hops = max(int(max_hops), hops)
    xs = list(range(1, max_hops + 1))
    pct = float(percentile)
    lat = chain_latency_samples(max_hops, fanout, median_ms, sigma)
    p50 = np.percentile(lat, 50, axis=0)
    ptail = np.percentile(lat, pct, axis=0)
    one_call = call_quantile_ms(pct / 100.0, median_ms, sigma)
    avail = [100 * chain_availability(h, fanout, availability) for h in xs]
    avail1 = [100 * chain_availability(h, 1, availability) for h in xs]
    slow = 1 - (pct / 100.0) ** (hops * fanout)        # requests that wait on >= 1 call beyond its percentile

    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.14,
                        subplot_titles=(f"availability: {availability:.5g} per call",
                                        f"latency: median {median_ms:g} ms, sigma {sigma:g} per call"))
    fig.add_trace(go.Scatter(x=xs, y=avail, mode="lines", name=f"fan-out {fanout} per hop",
                             line={"color": "#d62728"}), row=1, col=1)
    if fanout > 1:
        fig.add_trace(go.Scatter(x=xs, y=avail1, mode="lines", name="no fan-out", line={"color": "#7f7f7f",
                                                                                            "dash": "dot"}),
                      row=1, col=1)
    fig.add_trace(go.Scatter(x=[hops], y=[avail[hops - 1]], mode="markers", marker={"size": 11, "color": "#d62728"},
                             name=f"{hops} hops: {avail[hops - 1]:.3f} %", showlegend=True), row=1, col=1)
    fig.add_trace(go.Scatter(x=xs, y=p50, mode="lines", name="end-to-end p50", line={"color": "#1f77b4"}),
                  row=1, col=2)
    fig.add_trace(go.Scatter(x=xs, y=ptail, mode="lines", name=f"end-to-end p{pct:g}", line={"color": "#ff7f0e"}),
                  row=1, col=2)
    fig.add_trace(go.Scatter(x=xs, y=[one_call] * len(xs), mode="lines", name=f"one call's p{pct:g}",
                             line={"color": "#ff7f0e", "dash": "dot"}), row=1, col=2)
    fig.add_trace(go.Scatter(x=[hops], y=[ptail[hops - 1]], mode="markers", marker={"size": 11, "color": "#ff7f0e"},
                             name=f"{hops} hops: p{pct:g} = {ptail[hops - 1]:.3g} ms"), row=1, col=2)
    fig.update_xaxes(title_text="services in the chain (hops)", row=1, col=1)
    fig.update_xaxes(title_text="services in the chain (hops)", row=1, col=2)
    fig.update_yaxes(title_text="end-to-end availability (%)", row=1, col=1)
    fig.update_yaxes(title_text="end-to-end latency (ms)", rangemode="tozero", row=1, col=2)
    fig.update_layout(height=430, margin={"l": 70, "r": 20, "t": 90, "b": 60}, plot_bgcolor="white",
                      legend={"orientation": "h", "y": -0.22},
                      title=(f"{hops} hops x fan-out {fanout} = {hops * fanout} calls: success "
                             f"{avail[hops - 1]:.3f} %, {100 * slow:.1f} % of requests wait on a call "
                             f"slower than its p{pct:g}"))
    return fig
