"""The timeline widget: scroll and zoom through a simulated run (archlab.timeline.timeline_figure)."""

from __future__ import annotations

from ..timeline import timeline_figure
from .base import interactive_figure


def timeline_widget(sim, width: float | None = None):
    """sim: a finished archlab.sim.Simulator (its trace and node ids are read, never changed)."""
    import ipywidgets as W

    end = max(1.0, max((e.time for e in sim.trace), default=0.0))
    widths = sorted({round(end / k, 1) for k in (1, 2, 4, 10, 25)} | ({float(width)} if width else set()))
    controls = {
        "start": W.FloatSlider(value=0.0, min=0.0, max=end, step=max(end / 200, 0.1), description="from (ms)",
                               continuous_update=False),
        "width": W.SelectionSlider(options=[(f"{w:g} ms", w) for w in widths],
                                   value=float(width) if width else widths[-1], description="window",
                                   continuous_update=False),
        "messages": W.Checkbox(value=True, description="messages"),
    }
    return interactive_figure(timeline_figure, controls, trace=sim.trace, ids=sim.ids)
