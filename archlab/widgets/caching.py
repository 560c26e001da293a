"""The cache hit-curve widget: Zipf skew, cache size and policies over a table of hit ratios."""

from __future__ import annotations

from ..caching import hit_curve_figure
from .base import interactive_figure


def hit_curve_widget(table, alpha: float | None = None, cache_size: int | None = None, policies=None,
                     n_objects: int | None = None):
    """table: one row per (alpha, policy, size) with a hit_ratio, as made by
    `archlab.caching.hit_curve_table` (the notebook may add rows for its own policies).
    The figure is `archlab.caching.hit_curve_figure`."""
    import ipywidgets as W

    if table is None or not len(table):
        raise ValueError("hit_curve_widget needs a non-empty table of hit ratios (see caching.hit_curve_table)")
    alphas = sorted(float(a) for a in table["alpha"].unique())
    sizes = sorted(int(s) for s in table["size"].unique())
    names = list(dict.fromkeys(table["policy"]))
    alpha = min(alphas, key=lambda a: abs(a - alpha)) if alpha is not None else alphas[len(alphas) // 2]
    cache_size = min(sizes, key=lambda s: abs(s - cache_size)) if cache_size is not None else sizes[len(sizes) // 2]
    chosen = tuple(p for p in (policies or names) if p in names) or tuple(names)
    controls = {
        "alpha": W.SelectionSlider(options=[(f"{a:g}", a) for a in alphas], value=alpha,
                                   description="Zipf alpha", continuous_update=False),
        "cache_size": W.SelectionSlider(options=[(f"{s:,}", s) for s in sizes], value=cache_size,
                                        description="cache size", continuous_update=False),
        "policies": W.SelectMultiple(options=names, value=chosen, description="policies",
                                     rows=min(len(names), 7)),
    }
    return interactive_figure(hit_curve_figure, controls, table=table, n_objects=n_objects)
