"""archlab.hashing: the ring figure is a pure, fast function of measured rings (the notebook
builds them with the learner's own ring), and the widget redraws for every slider value."""

from __future__ import annotations

import bisect
import hashlib
import math
from collections import Counter

import pytest

from archlab import hashing
from archlab.widgets.hashing import ring_widget

NODES, VNODES = (1, 2, 5, 12), (1, 10, 100)


def _h(text: str) -> int:
    return int.from_bytes(hashlib.md5(text.encode()).digest()[:8], "big")


def make_rings(keys: int = 1000) -> dict:
    """A test-only ring (successor with wrap-around), measured the way the notebook measures."""
    rings = {}
    for n in NODES:
        for v in VNODES:
            pts = sorted((_h(f"node-{i}#{j}"), f"node-{i}") for i in range(n) for j in range(v))
            pos = [p for p, _ in pts]
            load = Counter(pts[bisect.bisect_left(pos, _h(f"k{k}")) % len(pts)][1] for k in range(keys))
            rings[(n, v)] = {"points": [(node, p / 2**64) for p, node in pts],
                             "load": {f"node-{i}": load.get(f"node-{i}", 0) for i in range(n)}}
    return rings


def test_load_spread():
    assert hashing.load_spread([10, 10, 10]) == 0.0
    assert hashing.load_spread([5]) == 0.0 and hashing.load_spread([0, 0]) == 0.0
    assert hashing.load_spread([0, 20]) == pytest.approx(math.sqrt(200) / 10)


@pytest.mark.parametrize("n", NODES)
@pytest.mark.parametrize("v", VNODES)
def test_figure_for_every_control_value(n, v):
    rings = make_rings()
    hashing.ring_figure(rings, 2, 1)                     # plotly's first figure loads its validators
    fig = hashing.ring_figure(rings, n, v)
    polar = [tr for tr in fig.data if tr.type == "scatterpolar"]
    assert sum(len(tr.theta) for tr in polar) == n * v and all(0 <= t < 360 for tr in polar for t in tr.theta)
    bars = [tr for tr in fig.data if tr.type == "bar"][0]
    assert list(bars.y) == list(rings[(n, v)]["load"].values()) and sum(bars.y) == 1000
    assert fig.layout.xaxis.title.text and "(" in fig.layout.yaxis.title.text     # titles, with units
    assert f"{v} virtual nodes" in fig.layout.title.text


def test_missing_combination_and_many_points():
    fig = hashing.ring_figure(make_rings(), 7, 3)
    assert not fig.data and "no measurement" in fig.layout.title.text
    big = {(2, 5000): {"points": [(f"n{i % 2}", i / 10000) for i in range(10000)], "load": {"n0": 1, "n1": 1}}}
    fig = hashing.ring_figure(big, 2, 5000)
    assert sum(len(tr.theta) for tr in fig.data if tr.type == "scatterpolar") <= 2000


def test_widget_redraws_for_every_control_value():
    box = ring_widget(make_rings(200), nodes=5, vnodes=10)
    nodes, vnodes = box.children[0].children
    for n in NODES:
        nodes.value = n
        for v in VNODES:
            vnodes.value = v
            assert box.message.value == ""
            assert f"{n} nodes x {v} virtual nodes" in box.figure.layout.title.text
