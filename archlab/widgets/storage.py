"""The hot/cold tiering widget: data size, life, access rate and its decay → the cheapest lifecycle."""

from __future__ import annotations

from ..storage_costs import TIERS, tiering_figure
from .base import interactive_figure


def tiering_widget(tiers=TIERS, size_gb: float = 1000.0, months: int = 36, reads0: float = 2.0,
                   half_life: float = 3.0):
    """Sliders for the cost model of `archlab.storage_costs`; the figure is `tiering_figure`."""
    import ipywidgets as W

    style = {"description_width": "initial"}
    controls = {
        "size_gb": W.FloatLogSlider(value=size_gb, base=10, min=0, max=6, step=0.25, description="data (GB)",
                                    continuous_update=False, style=style),
        "months": W.IntSlider(value=months, min=1, max=120, description="kept for (months)",
                              continuous_update=False, style=style),
        "reads0": W.FloatLogSlider(value=reads0, base=10, min=-4, max=2, step=0.25,
                                   description="reads per month when new (× data)", continuous_update=False,
                                   style=style),
        "half_life": W.FloatSlider(value=half_life, min=0.5, max=60, step=0.5,
                                   description="access half-life (months)", continuous_update=False, style=style),
        "min_duration": W.Checkbox(value=True, description="bill minimum storage duration"),
        "retrieval_fees": W.Checkbox(value=True, description="charge retrieval fees"),
    }
    return interactive_figure(tiering_figure, controls, tiers=tiers)
