"""The call-chain widget: hops, fan-out, per-call availability and latency → end-to-end
availability and latency percentiles."""

from __future__ import annotations

from ..architecture import MAX_HOPS, chain_figure
from .base import interactive_figure

AVAILABILITIES = (0.9, 0.95, 0.99, 0.995, 0.999, 0.9995, 0.9999, 0.99999, 1.0)
FANOUTS = (1, 2, 3, 5, 10, 20, 50, 100)
PERCENTILES = (50.0, 90.0, 99.0, 99.9)


def call_chain_widget(hops: int = 4, fanout: int = 1, availability: float = 0.999, median_ms: float = 5.0,
                      sigma: float = 0.5, percentile: float = 99.0):
    """Sliders for `archlab.architecture.chain_figure` (a pure function of these values)."""
    import ipywidgets as W

    style = {"description_width": "initial"}
    controls = {
        "hops": W.IntSlider(value=hops, min=1, max=MAX_HOPS, description="hops", continuous_update=False,
                            style=style),
        "fanout": W.SelectionSlider(options=FANOUTS, value=fanout if fanout in FANOUTS else 1,
                                    description="fan-out per hop", continuous_update=False, style=style),
        "availability": W.SelectionSlider(options=[(f"{a:.5g}", a) for a in AVAILABILITIES],
                                          value=availability if availability in AVAILABILITIES else 0.999,
                                          description="availability per call", continuous_update=False,
                                          style=style),
        "median_ms": W.FloatLogSlider(value=median_ms, base=10, min=-1, max=2, step=0.1,
                                      description="median per call (ms)", continuous_update=False, style=style),
        "sigma": W.FloatSlider(value=sigma, min=0.0, max=2.0, step=0.1, description="spread sigma",
                               continuous_update=False, style=style),
        "percentile": W.ToggleButtons(options=[(f"p{p:g}", p) for p in PERCENTILES],
                                      value=percentile if percentile in PERCENTILES else 99.0,
                                      description="percentile", style=style),
    }
    return interactive_figure(chain_figure, controls)
