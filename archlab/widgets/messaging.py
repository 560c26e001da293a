"""The tail-at-scale widget: fan-out n, per-backend slow probability p and the hedging delay."""

from __future__ import annotations

from ..messaging import DEAN_BARROSO, LatencyModel, fanout_figure
from .base import interactive_figure


def fanout_widget(n: int = 100, p_slow: float = 0.01, hedge_ms: float = 20.0, model: LatencyModel = DEAN_BARROSO):
    """Sliders over `archlab.messaging.fanout_figure`, a pure function of the three values."""
    import ipywidgets as W

    controls = {
        "n": W.IntSlider(value=n, min=1, max=1000, description="fan-out n", continuous_update=False),
        "p_slow": W.FloatSlider(value=p_slow, min=0.0, max=0.1, step=0.001, readout_format=".1%",
                                description="P(slow)", continuous_update=False),
        "hedge_ms": W.FloatSlider(value=hedge_ms, min=0.0, max=200.0, step=1.0, description="hedge after (ms)",
                                  continuous_update=False, style={"description_width": "initial"}),
    }
    return interactive_figure(fanout_figure, controls, model=model)
