"""The timeline of a simulated run: one row per node, time across, messages as arrows between
rows, lost messages in red, partitions shaded, crashed spans grey and state changes (notes)
as labelled markers. Pure: it reads a trace and returns a figure."""

from __future__ import annotations

import plotly.graph_objects as go

_COLORS = {"deliver": "#4c78a8", "drop": "#e45756", "note": "#54a24b", "crash": "#9d9d9d"}


def timeline_figure(trace, ids, start: float = 0.0, width: float | None = None, messages: bool = True,
                    max_messages: int = 600, title: str | None = None) -> go.Figure:
    """trace: `Simulator.trace`; ids: the node ids in row order. Shows [start, start + width]
    (the whole run when width is None) and at most `max_messages` message arrows."""
    ids = [str(i) for i in ids]
    row = {n: k for k, n in enumerate(ids)}
    end_of_run = max((e.time for e in trace), default=0.0)
    lo = float(start)
    hi = end_of_run if width is None else lo + float(width)
    if hi <= lo:
        hi = lo + 1.0
    fig = go.Figure()

    # Message arrows: one trace per colour, segments separated by None (fast to draw).
    xs = {"deliver": [], "drop": []}
    ys = {"deliver": [], "drop": []}
    hover = {"deliver": [], "drop": []}
    shown = 0
    for e in trace:
        if not messages or e.kind not in ("send", "drop") or e.node not in row or e.dst not in row:
            continue
        t1 = e.info.get("arrives", e.info.get("at", e.time))
        if t1 < lo or e.time > hi:
            continue
        if shown >= max_messages:
            break
        shown += 1
        kind = "deliver" if e.kind == "send" else "drop"
        y1 = row[e.dst] if kind == "deliver" else (row[e.node] + row[e.dst]) / 2   # a lost message stops midway
        x1 = t1 if kind == "deliver" else (e.time + t1) / 2
        label = _short(e.msg)
        xs[kind] += [e.time, x1, None]
        ys[kind] += [row[e.node], y1, None]
        why = "" if kind == "deliver" else f" lost ({e.info.get('reason', '')})"
        hover[kind] += [f"{e.node}→{e.dst}{why}<br>{label}"] * 2 + [None]
    for kind, name in (("deliver", "message"), ("drop", "lost message")):
        if xs[kind]:
            fig.add_trace(go.Scatter(x=xs[kind], y=ys[kind], mode="lines+markers", name=name,
                                     line={"color": _COLORS[kind], "width": 1, "dash": "solid" if kind == "deliver"
                                           else "dot"},
                                     marker={"size": 4, "symbol": "circle" if kind == "deliver" else "x"},
                                     text=hover[kind], hoverinfo="text", opacity=0.7))

    # Crashed spans and partitions.
    down: dict[str, float] = {}
    spans = []
    cut_start, cut_groups, cuts = None, None, []
    for e in trace:
        if e.kind == "crash":
            down[e.node] = e.time
        elif e.kind == "restart" and e.node in down:
            spans.append((e.node, down.pop(e.node), e.time))
        elif e.kind in ("partition", "heal"):
            if cut_start is not None:
                cuts.append((cut_start, e.time, cut_groups))
            cut_start, cut_groups = (e.time, e.info["groups"]) if e.kind == "partition" else (None, None)
    spans += [(n, t, end_of_run) for n, t in down.items()]
    if cut_start is not None:
        cuts.append((cut_start, end_of_run, cut_groups))
    for node, t0, t1 in spans:
        if node in row and t1 >= lo and t0 <= hi:
            fig.add_shape(type="rect", x0=max(t0, lo), x1=min(t1, hi), y0=row[node] - 0.3, y1=row[node] + 0.3,
                          fillcolor=_COLORS["crash"], opacity=0.5, line_width=0, layer="below")
    for t0, t1, groups in cuts:
        if t1 >= lo and t0 <= hi:
            fig.add_vrect(x0=max(t0, lo), x1=min(t1, hi), fillcolor="#f58518", opacity=0.12, line_width=0,
                          layer="below", annotation_text=" | ".join(",".join(g) for g in groups),
                          annotation_position="top left", annotation_font_size=10)
    if spans:
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name="crashed",
                                 marker={"color": _COLORS["crash"], "symbol": "square", "size": 10}))

    # State changes.
    nx, ny, nt = [], [], []
    for e in trace:
        if e.kind == "note" and e.node in row and lo <= e.time <= hi:
            nx.append(e.time)
            ny.append(row[e.node])
            extra = ", ".join(f"{k}={v}" for k, v in e.info.items())
            nt.append(f"{e.node} @ {e.time:.1f} ms: {e.msg}" + (f" ({extra})" if extra else ""))
    if nx:
        fig.add_trace(go.Scatter(x=nx, y=ny, mode="markers", name="state change", text=nt, hoverinfo="text",
                                 marker={"color": _COLORS["note"], "size": 9, "symbol": "diamond"}))

    fig.update_layout(title=title or "Timeline of the simulated run", height=120 + 45 * len(ids),
                      margin={"l": 60, "r": 20, "t": 50, "b": 50}, legend={"orientation": "h", "y": -0.25},
                      hovermode="closest")
    fig.update_xaxes(title="simulated time (ms)", range=[lo, hi])
    fig.update_yaxes(title="node", tickvals=list(range(len(ids))), ticktext=ids, range=[-0.6, len(ids) - 0.4],
                     autorange="reversed")
    return fig


def _short(msg, limit: int = 80) -> str:
    text = repr(msg)
    return text if len(text) <= limit else text[: limit - 1] + "…"
