"""The rate-limit graphs widget: an algorithm picker and rate, burst/limit and window sliders over
one seeded bursty trace. The limiters come from the notebook (the learner's classes)."""

from __future__ import annotations

from ..ratelimit import limit_figure
from .base import interactive_figure


def ratelimit_widget(arrivals, limiters: dict, algorithm: str | None = None, rate: float = 5.0, burst: int = 10,
                     window: float = 1.0):
    """arrivals: sorted request times (s), e.g. `archlab.ratelimit.bursty_arrivals()`; limiters:
    {name: make(rate, burst, window)} returning objects with allow(now) -> bool. The figure is
    `archlab.ratelimit.limit_figure`. Token buckets use rate and burst; window algorithms use
    burst as their limit per window; every algorithm's bottom panel measures over `window`."""
    import ipywidgets as W

    if not limiters:
        raise ValueError("ratelimit_widget needs at least one limiter")
    names = list(limiters)
    controls = {
        "algorithm": W.Dropdown(options=names, value=algorithm if algorithm in names else names[0],
                                description="algorithm"),
        "rate": W.FloatSlider(value=rate, min=0.5, max=30.0, step=0.5, description="rate (req/s)",
                              continuous_update=False, style={"description_width": "initial"}),
        "burst": W.IntSlider(value=burst, min=1, max=50, description="burst / limit", continuous_update=False,
                             style={"description_width": "initial"}),
        "window": W.FloatSlider(value=window, min=0.25, max=10.0, step=0.25, description="window (s)",
                                continuous_update=False, style={"description_width": "initial"}),
    }
    return interactive_figure(limit_figure, controls, arrivals=list(arrivals), limiters=dict(limiters))
