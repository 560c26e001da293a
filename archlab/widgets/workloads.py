"""The OLTP/OLAP latency widget: a rows slider and a query picker over measured timings."""

from __future__ import annotations

from ..workloads import latency_figure
from .base import interactive_figure


def latency_widget(timings, log_scale: bool = True):
    """timings: one row per timed run (engine, query, rows, seconds), as measured in the notebook.
    The figure is `archlab.workloads.latency_figure`, a pure function of the table and the controls."""
    import ipywidgets as W

    sizes = sorted(int(s) for s in timings["rows"].unique())
    queries = list(dict.fromkeys(timings["query"]))
    controls = {
        "rows": W.SelectionSlider(options=[(f"{s:,}", s) for s in sizes], value=sizes[-1], description="rows",
                                  continuous_update=False),
        "query": W.ToggleButtons(options=queries, value=queries[0], description="query"),
        "log_scale": W.Checkbox(value=log_scale, description="log axes"),
    }
    return interactive_figure(latency_figure, controls, timings=timings)
