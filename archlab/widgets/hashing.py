"""The consistent-hashing widget: nodes and virtual-node sliders over rings measured in the notebook."""

from __future__ import annotations

from ..hashing import ring_figure
from .base import interactive_figure


def ring_widget(rings: dict, nodes: int | None = None, vnodes: int | None = None):
    """rings: {(nodes, vnodes): {"points": [...], "load": {...}}}, measured in the notebook with
    its own ring. The figure is `archlab.hashing.ring_figure`."""
    import ipywidgets as W

    ns = sorted({n for n, _ in rings})
    vs = sorted({v for _, v in rings})
    controls = {
        "nodes": W.SelectionSlider(options=ns, value=nodes if nodes in ns else ns[len(ns) // 2],
                                   description="nodes", continuous_update=False),
        "vnodes": W.SelectionSlider(options=vs, value=vnodes if vnodes in vs else vs[0],
                                    description="vnodes", continuous_update=False),
    }
    return interactive_figure(ring_figure, controls, rings=rings)
