"""Drawing a consistent-hash ring: where each node's virtual nodes sit and how many keys each
node ends up with. Pure: the notebook builds the rings (with the learner's own ring) and
measures the loads; this module only draws them."""

from __future__ import annotations

import math
import statistics

import numpy as np
import plotly.graph_objects as go

_PALETTE = ["#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2", "#eeca3b", "#b279a2", "#ff9da6",
            "#9d755d", "#bab0ac", "#1b9e77", "#7570b3", "#d95f02", "#66a61e", "#e7298a", "#a6761d"]


def load_spread(loads) -> float:
    """std/mean of the keys per node (sample standard deviation); 0 for fewer than two nodes."""
    values = [float(v) for v in loads]
    if len(values) < 2 or statistics.mean(values) == 0:
        return 0.0
    return statistics.stdev(values) / statistics.mean(values)


def ring_figure(rings: dict, nodes: int, vnodes: int, max_points: int = 2000) -> go.Figure:
    """rings: {(nodes, vnodes): {"points": [(node, position in [0, 1)), ...], "load": {node: keys}}},
    as measured in the notebook. Draws the ring of the chosen (nodes, vnodes) on the left and the
    keys per node on the right; a missing combination gives an empty figure that says so."""
    fig = go.Figure()
    layout = {"height": 420, "margin": {"t": 80},
              "polar": {"domain": {"x": [0.0, 0.4], "y": [0.08, 1.0]},
                        "radialaxis": {"visible": False, "range": [0, 1.15]},
                        "angularaxis": {"direction": "clockwise", "rotation": 90, "ticksuffix": "°"}},
              "xaxis": {"domain": [0.52, 1.0], "title": {"text": "node"}},
              "yaxis": {"title": {"text": "keys (count)"}, "rangemode": "tozero"},
              "annotations": [{"text": "ring position (degrees, clockwise from the top), one dot per virtual node",
                               "x": 0.2, "y": 0.0, "xref": "paper", "yref": "paper", "showarrow": False,
                               "font": {"size": 11}}]}
    ring = rings.get((int(nodes), int(vnodes)))
    if not ring or not ring.get("load"):
        layout["title"] = f"no measurement for {nodes} nodes x {vnodes} virtual nodes"
        fig.update_layout(**layout)
        return fig
    load = ring["load"]
    names = list(load)
    color = {n: _PALETTE[i % len(_PALETTE)] for i, n in enumerate(names)}
    points = ring["points"]
    step = max(1, math.ceil(len(points) / max_points))
    shown = points[::step]
    theta: dict = {n: [] for n in names}
    for node, pos in shown:
        theta.setdefault(node, []).append(360.0 * float(pos))
    size = 7 if vnodes <= 20 else 4
    for node, angles in theta.items():                # one trace per node: plotly validates a scalar colour fast
        fig.add_trace(go.Scatterpolar(r=np.ones(len(angles)), theta=np.array(angles), mode="markers", name=str(node),
                                      showlegend=False, marker={"size": size, "color": color.get(node, "#999")},
                                      hovertemplate=f"{node}<br>%{{theta:.1f}}°<extra></extra>"))
    counts = [load[n] for n in names]
    fig.add_trace(go.Bar(x=[str(n) for n in names], y=counts, marker_color=[color[n] for n in names],
                         showlegend=False, hovertemplate="%{x}: %{y} keys<extra></extra>"))
    mean = sum(counts) / len(counts)
    layout["shapes"] = [{"type": "line", "xref": "x domain", "yref": "y", "x0": 0, "x1": 1, "y0": mean, "y1": mean,
                         "line": {"dash": "dot", "color": "black"}}]
    spread = load_spread(counts)
    layout["title"] = (f"{len(names)} nodes x {vnodes} virtual nodes: keys per node std/mean = {spread:.2f} "
                       f"(1/sqrt(v) = {1 / math.sqrt(max(1, vnodes)):.2f}), max/mean = "
                       f"{max(counts) / mean if mean else 0:.2f}")
    fig.update_layout(**layout)
    return fig
