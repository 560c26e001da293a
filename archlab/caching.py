"""Cache hit curves: Zipf request traces, reference simulators of cache replacement policies,
Che's approximation for LRU, and the figure the hit-curve widget draws.

    trace = caching.zipf_trace(n_objects=1000, n_requests=20_000, alpha=0.8, seed=1)
    caching.hit_ratio("ARC", trace, size=100)                    # one policy, one size
    caching.hits("FIFO", trace, size=100)                        # per-request 0/1 hits (a bytearray)
    caching.che_hit_ratio(caching.zipf_popularity(1000, 0.8), [10, 100])
    table = caching.hit_curve_table(alphas=(0.6, 0.8, 1.0), sizes=(10, 50, 100), n_objects=1000)
    caching.hit_curve_figure(alpha=0.8, cache_size=100, policies=("ARC", "FIFO"), table=table)

Policies simulated here: FIFO, random replacement (seeded), LFU (in-cache frequency counts,
least recently used among the least frequent), ARC (Megiddo and Modha, FAST 2003) and OPT
(Belady's MIN: evict the object whose next use is farthest in the future; the upper bound of
any policy that must admit every miss). **LRU is deliberately absent**: building it, and its
one-pass hit curve (Mattson's stack algorithm), are exercises of week 9, so the notebook adds
its own LRU rows to the table. `che_hit_ratio` is the analytic approximation of LRU under the
independent reference model (Che, Tung and Wang, 2002), which the notebook checks against the
exact curve.

Every function is a pure function of its arguments (seeded where random); the figure function
answers in well under 100 ms because it only draws a precomputed table.
"""

from __future__ import annotations

import heapq
import math
import random
from collections import OrderedDict, deque

import numpy as np
import plotly.graph_objects as go

POLICIES = ("FIFO", "random", "LFU", "ARC", "OPT")
CHE = "LRU (Che approx.)"
COLOURS = {"LRU": "#1f77b4", CHE: "#1f77b4", "FIFO": "#ff7f0e", "random": "#7f7f7f", "LFU": "#2ca02c",
           "ARC": "#9467bd", "OPT": "#d62728"}
_FALLBACK = ("#8c564b", "#e377c2", "#bcbd22", "#17becf")


# --------------------------------------------------------------------------------------------
# Workloads
# --------------------------------------------------------------------------------------------

def zipf_popularity(n_objects: int, alpha: float) -> np.ndarray:
    """Request probabilities of objects 0..n_objects-1 (object i has rank i + 1): p_i ∝ 1 / (i + 1)^alpha.
    alpha = 0 is uniform; web and CDN traces measure alpha between about 0.6 and 1.0."""
    if n_objects < 1:
        raise ValueError("need at least one object")
    if alpha < 0:
        raise ValueError("alpha must be >= 0")
    w = 1.0 / np.arange(1, n_objects + 1, dtype=float) ** float(alpha)
    return w / w.sum()


def zipf_trace(n_objects: int, n_requests: int, alpha: float, seed: int = 0) -> list[int]:
    """A list of `n_requests` object ids drawn independently from zipf_popularity(n_objects, alpha)
    (the independent reference model): object 0 is the most popular. Same seed, same trace."""
    rng = np.random.default_rng(seed)
    return rng.choice(n_objects, size=int(n_requests), p=zipf_popularity(n_objects, alpha)).tolist()


# --------------------------------------------------------------------------------------------
# Policy simulators: each returns a bytearray with 1 where the request hit
# --------------------------------------------------------------------------------------------

def _fifo(trace, size, seed):
    out, order, resident = bytearray(len(trace)), deque(), set()
    for t, x in enumerate(trace):
        if x in resident:
            out[t] = 1
            continue
        if len(resident) >= size:
            resident.discard(order.popleft())
        order.append(x)
        resident.add(x)
    return out


def _random(trace, size, seed):
    rng = random.Random(seed)
    out, slots, where = bytearray(len(trace)), [], {}
    for t, x in enumerate(trace):
        if x in where:
            out[t] = 1
            continue
        if len(slots) >= size:                      # evict a uniformly random resident object
            i = rng.randrange(len(slots))
            victim = slots[i]
            slots[i] = slots[-1]
            where[slots[i]] = i
            slots.pop()
            del where[victim]
        where[x] = len(slots)
        slots.append(x)
    return out


def _lfu(trace, size, seed):
    out = bytearray(len(trace))
    freq: dict = {}
    buckets: dict[int, OrderedDict] = {}
    min_f = 0
    for t, x in enumerate(trace):
        f = freq.get(x)
        if f is not None:
            out[t] = 1
            del buckets[f][x]
            if not buckets[f]:
                del buckets[f]
                if min_f == f:
                    min_f = f + 1
            freq[x] = f + 1
            buckets.setdefault(f + 1, OrderedDict())[x] = None
            continue
        if len(freq) >= size:                        # least frequent; among them least recently used
            victim, _ = buckets[min_f].popitem(last=False)
            if not buckets[min_f]:
                del buckets[min_f]
            del freq[victim]
        freq[x] = 1
        buckets.setdefault(1, OrderedDict())[x] = None
        min_f = 1
    return out


def _arc(trace, size, seed):
    """Adaptive Replacement Cache, as in Fig. 4 of Megiddo and Modha (FAST 2003): T1 holds objects
    seen once recently, T2 objects seen at least twice; B1 and B2 remember the keys (not the data)
    recently evicted from each, and a hit in a ghost list moves the target size p of T1."""
    c = size
    out = bytearray(len(trace))
    t1, t2, b1, b2 = OrderedDict(), OrderedDict(), OrderedDict(), OrderedDict()
    p = 0.0

    def replace(in_b2):
        if t1 and (len(t1) > p or (in_b2 and len(t1) == p)) or not t2:
            k, _ = t1.popitem(last=False)
            b1[k] = None
        else:
            k, _ = t2.popitem(last=False)
            b2[k] = None

    for t, x in enumerate(trace):
        if x in t1:
            del t1[x]
            t2[x] = None
            out[t] = 1
        elif x in t2:
            t2.move_to_end(x)
            out[t] = 1
        elif x in b1:
            p = min(float(c), p + max(len(b2) / len(b1), 1.0))
            replace(False)
            del b1[x]
            t2[x] = None
        elif x in b2:
            p = max(0.0, p - max(len(b1) / len(b2), 1.0))
            replace(True)
            del b2[x]
            t2[x] = None
        else:
            l1 = len(t1) + len(b1)
            if l1 == c:
                if len(t1) < c:
                    b1.popitem(last=False)
                    replace(False)
                else:
                    t1.popitem(last=False)
            elif l1 < c:
                total = l1 + len(t2) + len(b2)
                if total >= c:
                    if total == 2 * c:
                        b2.popitem(last=False)
                    replace(False)
            t1[x] = None
    return out


def _opt(trace, size, seed):
    n = len(trace)
    never = n + 1
    next_use = [never] * n
    last: dict = {}
    for t in range(n - 1, -1, -1):
        next_use[t] = last.get(trace[t], never)
        last[trace[t]] = t
    out = bytearray(n)
    resident: dict = {}                 # object -> its next use
    heap: list = []                     # (-next use, time pushed, object); stale entries are skipped
    for t, x in enumerate(trace):
        if x in resident:
            out[t] = 1
        elif len(resident) >= size:
            while True:
                nu, _, victim = heapq.heappop(heap)
                if resident.get(victim) == -nu:
                    del resident[victim]
                    break
        resident[x] = next_use[t]
        heapq.heappush(heap, (-next_use[t], t, x))
    return out


_SIMULATORS = {"FIFO": _fifo, "random": _random, "LFU": _lfu, "ARC": _arc, "OPT": _opt}


def hits(policy: str, trace, size: int, seed: int = 0) -> bytearray:
    """Per-request hits (1) and misses (0) of `policy` (one of POLICIES) with room for `size`
    objects, starting empty. Every miss admits the object (demand caching)."""
    if policy not in _SIMULATORS:
        raise ValueError(f"unknown policy {policy!r}: choose one of {', '.join(POLICIES)} (LRU is yours to build)")
    size = int(size)
    if size < 0:
        raise ValueError("size must be >= 0")
    trace = list(trace)
    if size == 0:
        return bytearray(len(trace))
    return _SIMULATORS[policy](trace, size, seed)


def hit_ratio(policy: str, trace, size: int, seed: int = 0) -> float:
    """The fraction of requests in `trace` that hit (0.0 for an empty trace)."""
    h = hits(policy, trace, size, seed)
    return sum(h) / len(h) if len(h) else 0.0


# --------------------------------------------------------------------------------------------
# Che's approximation of LRU under the independent reference model
# --------------------------------------------------------------------------------------------

def che_hit_ratio(popularity, sizes) -> list[float]:
    """Che's approximation of LRU's hit ratio for each cache size in `sizes`, when requests are
    drawn independently with probabilities `popularity`. The characteristic time T_C solves
    sum_i (1 - exp(-p_i T_C)) = C; object i is then in the cache with probability
    1 - exp(-p_i T_C), and the hit ratio is sum_i p_i (1 - exp(-p_i T_C))."""
    p = np.asarray(popularity, dtype=float)
    p = p[p > 0] / p.sum()
    out = []
    for c in sizes:
        c = float(c)
        if c <= 0:
            out.append(0.0)
            continue
        if c >= len(p):
            out.append(1.0)
            continue
        lo, hi = 0.0, 1.0
        while np.sum(-np.expm1(-p * hi)) < c:
            hi *= 2.0
        for _ in range(100):
            mid = (lo + hi) / 2
            if np.sum(-np.expm1(-p * mid)) < c:
                lo = mid
            else:
                hi = mid
        out.append(float(np.sum(p * -np.expm1(-p * (lo + hi) / 2))))
    return out


# --------------------------------------------------------------------------------------------
# The table the widget draws, and the figure
# --------------------------------------------------------------------------------------------

def hit_curve_table(alphas, sizes, n_objects: int = 1000, n_requests: int = 20_000, seed: int = 0,
                    policies=POLICIES, che: bool = True):
    """One row per (alpha, policy, size): columns alpha, policy, size, hit_ratio. Each alpha gets
    its own trace zipf_trace(n_objects, n_requests, alpha, seed); `che` adds Che's LRU curve."""
    import pandas as pd

    rows = []
    for alpha in alphas:
        trace = zipf_trace(n_objects, n_requests, alpha, seed)
        for policy in policies:
            for size in sizes:
                rows.append({"alpha": float(alpha), "policy": policy, "size": int(size),
                             "hit_ratio": hit_ratio(policy, trace, size, seed)})
        if che:
            for size, h in zip(sizes, che_hit_ratio(zipf_popularity(n_objects, alpha), sizes), strict=True):
                rows.append({"alpha": float(alpha), "policy": CHE, "size": int(size), "hit_ratio": h})
    return pd.DataFrame(rows, columns=["alpha", "policy", "size", "hit_ratio"])


def hit_curve_figure(alpha: float, cache_size: int, policies, table, n_objects: int | None = None) -> go.Figure:
    """Left: hit ratio against cache size for each selected policy at Zipf skew `alpha` (the
    nearest alpha in `table`), the chosen size marked. Right: each policy's hit ratio at the
    chosen size (the nearest size in the table). `table` has columns alpha, policy, size,
    hit_ratio (see hit_curve_table). An empty selection draws empty axes with a note."""
    policies = list(dict.fromkeys(policies or ()))
    notes, traces, bars = [], [], []
    alphas = sorted(set(table["alpha"])) if len(table) else []
    a = at = None
    if alphas:
        a = min(alphas, key=lambda v: (abs(v - float(alpha)), v))
        data = table[table["alpha"] == a]
        sizes = sorted(int(s) for s in set(data["size"]))
        at = min(sizes, key=lambda s: (abs(s - int(cache_size)), s))
        by_policy = {p: d.sort_values("size") for p, d in data.groupby("policy", sort=False)}
        shown = [p for p in policies if p in by_policy]
        for k, policy in enumerate(shown):
            colour = COLOURS.get(policy, _FALLBACK[k % len(_FALLBACK)])
            d = by_policy[policy]
            traces.append(go.Scatter(
                x=d["size"].tolist(), y=d["hit_ratio"].tolist(), mode="lines" if policy == CHE else "lines+markers",
                name=policy, line={"color": colour, "dash": "dot" if policy == CHE else None}, xaxis="x", yaxis="y",
                hovertemplate=f"{policy}<br>%{{x}} objects: %{{y:.3f}}<extra></extra>"))
            here = d["hit_ratio"][d["size"] == at]
            bars.append((policy, float(here.iloc[0]) if len(here) else float("nan"), colour))
        if bars:
            traces.append(go.Bar(x=[b[0] for b in bars], y=[b[1] for b in bars], marker_color=[b[2] for b in bars],
                                 showlegend=False, text=[f"{b[1]:.3f}" for b in bars], textposition="outside",
                                 xaxis="x2", yaxis="y2", hovertemplate="%{x}: %{y:.3f}<extra></extra>"))
        if not shown:
            notes.append("select at least one policy")
    else:
        notes.append("no measurements in the table")
    if a is None:
        title = "no data"
    else:
        of = f" of {n_objects:,}" if n_objects else ""
        title = f"Zipf alpha = {a:g}, cache of {at:,}{of} objects"
        best = max(bars, key=lambda b: (b[1] if not math.isnan(b[1]) else -1)) if bars else None
        if best:
            title += f": best {best[0]} {best[1]:.3f}"
    annotations = [{"text": "hit ratio as the cache grows", "x": 0.31, "y": 1.0, "xref": "paper", "yref": "paper",
                    "xanchor": "center", "yanchor": "bottom", "showarrow": False},
                   {"text": "at the chosen size", "x": 0.84, "y": 1.0, "xref": "paper", "yref": "paper",
                    "xanchor": "center", "yanchor": "bottom", "showarrow": False}]
    annotations += [{"text": n, "x": 0.5, "y": 0.5, "xref": "paper", "yref": "paper", "showarrow": False}
                    for n in notes]
    shapes = [] if at is None else [{"type": "line", "x0": at, "x1": at, "y0": 0, "y1": 1, "xref": "x",
                                     "yref": "y domain", "line": {"dash": "dot", "color": "#888"}}]
    layout = {
        "height": 420, "margin": {"l": 70, "r": 20, "t": 80, "b": 60}, "plot_bgcolor": "white",
        "legend": {"orientation": "h", "y": -0.2}, "title": {"text": title},
        "xaxis": {"domain": [0.0, 0.62], "type": "log", "title": {"text": "cache size (objects)"}, "anchor": "y"},
        "yaxis": {"domain": [0.0, 1.0], "range": [0, 1.05], "title": {"text": "hit ratio (fraction of requests)"},
                  "anchor": "x"},
        "xaxis2": {"domain": [0.72, 1.0], "title": {"text": "policy"}, "anchor": "y2"},
        "yaxis2": {"domain": [0.0, 1.0], "range": [0, 1.1], "title": {"text": "hit ratio (fraction of requests)"},
                   "anchor": "x2"},
        "annotations": annotations, "shapes": shapes,
    }
    return go.Figure(data=traces, layout=layout)
