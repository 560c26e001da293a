"""The Bloom filter widget: m, n and k sliders over a table of measured false-positive rates."""

from __future__ import annotations

from ..bloom import fp_figure
from .base import interactive_figure


def bloom_widget(measured, m: int | None = None, n: int | None = None, k: int = 7):
    """measured: one row per (m, n, k) measurement (columns m, n, k, "measured fp"), as made by
    `archlab.bloom.measure` in the notebook. The figure is `archlab.bloom.fp_figure`."""
    import ipywidgets as W

    ms = sorted(int(v) for v in measured["m"].unique())
    ns = sorted(int(v) for v in measured["n"].unique())
    k_max = max(16, int(measured["k"].max()))
    controls = {
        "m": W.SelectionSlider(options=[(f"{v:,}", v) for v in ms], value=m if m in ms else ms[-1],
                               description="m (bits)", continuous_update=False),
        "n": W.SelectionSlider(options=[(f"{v:,}", v) for v in ns], value=n if n in ns else ns[len(ns) // 2],
                               description="n (keys)", continuous_update=False),
        "k": W.IntSlider(value=k, min=1, max=k_max, description="k (hashes)", continuous_update=False),
    }
    return interactive_figure(fp_figure, controls, measured=measured, k_max=k_max)
