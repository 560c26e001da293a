"""The sidecar retry widget: upstream error rate, per-try timeout, attempts and retry budget →
success rate and load amplification."""

from __future__ import annotations

from ..realtime import mesh_figure
from .base import interactive_figure


def mesh_widget(error_rate: float = 0.2, per_try_timeout_ms: float = 100.0, max_attempts: int = 3,
                budget_ratio: float = 0.2, median_ms: float = 40.0, sigma: float = 0.6):
    """Sliders for `archlab.realtime.retry_model`; the figure is `archlab.realtime.mesh_figure`
    (upstream latency: lognormal with this median and sigma)."""
    import ipywidgets as W

    style = {"description_width": "initial"}
    controls = {
        "error_rate": W.FloatSlider(value=error_rate, min=0.0, max=1.0, step=0.01, description="upstream error rate",
                                    continuous_update=False, style=style),
        "per_try_timeout_ms": W.IntSlider(value=int(per_try_timeout_ms), min=10, max=1000, step=10,
                                          description="per-try timeout (ms)", continuous_update=False, style=style),
        "max_attempts": W.IntSlider(value=max_attempts, min=1, max=6, description="max attempts",
                                    continuous_update=False, style=style),
        "budget_ratio": W.FloatSlider(value=budget_ratio, min=0.0, max=1.0, step=0.05,
                                      description="retry budget (retries per request)", continuous_update=False,
                                      style=style),
    }
    return interactive_figure(mesh_figure, controls, median_ms=median_ms, sigma=sigma)
