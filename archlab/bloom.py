"""Bloom filters, measured against their formula: the measuring loop and the figure.

    table = bloom.measure(lambda m, k: MyFilter(m, k), [(m, n, k), ...], queries=2000)
    bloom.fp_figure(m=8192, n=800, k=7, measured=table)

`measure` works with any filter class that has `add(item)` and `item in filter`; the notebook
passes the learner's own filter, so archlab holds no Bloom filter implementation at all.
`fp_figure` is a pure function of the control values and the measured table (tests call it
without a display): the theory curve p = (1 - e^(-kn/m))^k against the measured points.
"""

from __future__ import annotations

import math

import plotly.graph_objects as go

THEORY = "#1f77b4"
MEASURED = "#d62728"


def theory_fp(m: int, n: int, k: int) -> float:
    """The standard approximation of the false-positive rate after n inserts into m bits with k hashes."""
    if n <= 0:
        return 0.0
    return (1.0 - math.exp(-k * n / m)) ** k


def measure(make_filter, grid, queries: int = 2000):
    """One row per (m, n, k) in `grid`: insert keys "key-0".."key-(n-1)" into make_filter(m, k),
    query `queries` keys that were never inserted, and report the measured false-positive rate
    next to the formula. Also counts false negatives (must be 0 for a correct filter)."""
    import pandas as pd

    rows = []
    for m, n, k in grid:
        f = make_filter(m, k)
        for i in range(n):
            f.add(f"key-{i}")
        false_neg = sum(1 for i in range(n) if f"key-{i}" not in f)
        hits = sum(1 for j in range(queries) if f"absent-{j}" in f)
        rows.append({"m": m, "n": n, "k": k, "bits per key": m / n, "measured fp": hits / queries,
                     "theory fp": theory_fp(m, n, k), "false negatives": false_neg, "queries": queries})
    return pd.DataFrame(rows)


def fp_figure(m: int, n: int, k: int, measured=None, k_max: int = 16) -> go.Figure:
    """Left: false-positive rate against k for the chosen m and n (optimum k = (m/n) ln 2 marked).
    Right: false-positive rate against n for the chosen m and k. Lines are the formula; dots are
    rows of `measured` (columns m, n, k, "measured fp") with the same m and n (left) or m and k
    (right). A measured rate of 0 is drawn at the bottom of the log axis."""
    from plotly.subplots import make_subplots

    m, n, k = int(m), int(n), int(k)
    if m <= 0 or n <= 0 or k <= 0:
        raise ValueError("m, n and k must be positive")
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.16,   # room for the right panel's axis title
                        subplot_titles=(f"m = {m:,} bits, n = {n:,} keys: vary k",
                                        f"m = {m:,} bits, k = {k}: vary n"))
    ks = list(range(1, max(k_max, k) + 1))
    floor = 1e-6
    fig.add_trace(go.Scatter(x=ks, y=[max(theory_fp(m, n, j), floor) for j in ks], mode="lines", name="formula",
                             line={"color": THEORY}, hovertemplate="k=%{x}: p=%{y:.4g}<extra>formula</extra>"),
                  row=1, col=1)
    n_top = max(2 * n, *(measured["n"] if measured is not None and len(measured) else [n]))
    ns = sorted({max(1, round(n_top * i / 120)) for i in range(1, 121)} | {n})
    fig.add_trace(go.Scatter(x=ns, y=[max(theory_fp(m, x, k), floor) for x in ns], mode="lines", showlegend=False,
                             line={"color": THEORY}, hovertemplate="n=%{x}: p=%{y:.4g}<extra>formula</extra>"),
                  row=1, col=2)
    if measured is not None and len(measured):
        for col, same, x in ((1, ("n", n), "k"), (2, ("k", k), "n")):
            pts = measured[(measured["m"] == m) & (measured[same[0]] == same[1])].sort_values(x)
            if len(pts):
                fig.add_trace(go.Scatter(
                    x=pts[x], y=[max(v, floor) for v in pts["measured fp"]], mode="markers", name="measured",
                    showlegend=col == 1, marker={"color": MEASURED, "size": 8},
                    hovertemplate=f"{x}=%{{x}}: measured %{{y:.4g}}<extra></extra>"), row=1, col=col)
    k_opt = m / n * math.log(2)
    fig.add_vline(x=k_opt, line_dash="dot", line_color="#888", row=1, col=1)
    fig.add_annotation(x=k_opt, y=1, yref="y domain", text=f"k* = {k_opt:.1f}", showarrow=False, yshift=8,
                       row=1, col=1)
    p = theory_fp(m, n, k)
    for col, x in ((1, k), (2, n)):
        fig.add_trace(go.Scatter(x=[x], y=[max(p, floor)], mode="markers", showlegend=False,
                                 marker={"color": THEORY, "size": 12, "symbol": "diamond-open", "line": {"width": 2}},
                                 hovertemplate=f"selected: p={p:.4g}<extra></extra>"), row=1, col=col)
    fig.update_xaxes(title_text="hash functions k (count)", row=1, col=1)
    fig.update_xaxes(title_text="keys inserted n (count)", row=1, col=2)
    for col in (1, 2):
        fig.update_yaxes(title_text="false-positive rate (fraction)", type="log",
                         range=[math.log10(floor), 0.05], row=1, col=col)
    fig.update_layout(height=420, margin={"l": 70, "r": 20, "t": 80, "b": 60}, plot_bgcolor="white",
                      legend={"orientation": "h", "y": -0.2},
                      title=f"{m / n:.1f} bits per key, k = {k}: formula p = {p:.3g}")
    return fig
