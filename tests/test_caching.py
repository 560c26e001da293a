"""archlab.caching: the policy simulators against textbook reference strings and against the
optimum, Che's approximation against its closed forms and an exact LRU, and the hit-curve
figure and widget for every control value (pure; its speed is measured by `make bench`)."""

from __future__ import annotations

import itertools
import math
import random
from collections import OrderedDict

import numpy as np
import pytest

from archlab import caching
from archlab.widgets.caching import hit_curve_widget

# Silberschatz et al., Operating System Concepts, the page-replacement reference string:
# with 3 frames FIFO has 15 page faults and OPT 9 (of 20 references).
REFERENCE = [7, 0, 1, 2, 0, 3, 0, 4, 2, 3, 0, 3, 2, 1, 2, 0, 1, 7, 0, 1]
BELADY = [1, 2, 3, 4, 1, 2, 5, 1, 2, 3, 4, 5]


def _lru_hits(trace, size):
    """A test-only exact LRU (archlab holds none: it is an exercise)."""
    d, hits = OrderedDict(), 0
    for x in trace:
        if x in d:
            d.move_to_end(x)
            hits += 1
        elif size:
            if len(d) >= size:
                d.popitem(last=False)
            d[x] = None
    return hits


def test_zipf_popularity_and_trace():
    p = caching.zipf_popularity(100, 0.8)
    assert p.sum() == pytest.approx(1.0) and (np.diff(p) < 0).all()
    assert p[0] / p[9] == pytest.approx(10 ** 0.8)
    assert caching.zipf_popularity(5, 0) == pytest.approx([0.2] * 5)
    with pytest.raises(ValueError):
        caching.zipf_popularity(0, 1.0)
    with pytest.raises(ValueError):
        caching.zipf_popularity(10, -0.5)
    trace = caching.zipf_trace(50, 40_000, 1.0, seed=3)
    assert trace == caching.zipf_trace(50, 40_000, 1.0, seed=3) and trace != caching.zipf_trace(50, 40_000, 1.0, seed=4)
    assert all(type(x) is int and 0 <= x < 50 for x in trace)
    freq = np.bincount(trace, minlength=50) / len(trace)
    assert np.abs(freq - caching.zipf_popularity(50, 1.0)).max() < 0.01


def test_textbook_reference_strings():
    assert len(REFERENCE) - sum(caching.hits("FIFO", REFERENCE, 3)) == 15
    assert len(REFERENCE) - sum(caching.hits("OPT", REFERENCE, 3)) == 9
    assert len(REFERENCE) - _lru_hits(REFERENCE, 3) == 12          # the book's LRU count, for reference
    # Belady's anomaly: FIFO with 4 frames faults more (10) than with 3 (9)
    assert [len(BELADY) - sum(caching.hits("FIFO", BELADY, c)) for c in (3, 4)] == [9, 10]


def test_lfu_evicts_least_frequent_then_least_recent():
    assert list(caching.hits("LFU", list("aabcba"), 2)) == [0, 1, 0, 0, 0, 1]
    # a and b both seen once: c evicts a (least recently used among the least frequent)
    assert list(caching.hits("LFU", list("abcab"), 2)) == [0, 0, 0, 0, 0]
    assert list(caching.hits("LFU", list("abcb"), 2)) == [0, 0, 0, 1]


@pytest.mark.parametrize("policy", caching.POLICIES)
def test_every_policy_is_sane(policy):
    for size in (0, 1, 3):
        h = caching.hits(policy, [], size)
        assert isinstance(h, bytearray) and len(h) == 0
    assert sum(caching.hits(policy, [1, 1, 1], 0)) == 0
    assert list(caching.hits(policy, [1, 1, 2, 2, 1], 1)) == [0, 1, 0, 1, 0]
    # a working set that fits: only the first request of each object misses
    loop = list(range(10)) * 20
    assert sum(caching.hits(policy, loop, 10)) == len(loop) - 10
    assert caching.hits(policy, loop, 10, seed=1) == caching.hits(policy, loop, 10, seed=1)
    assert caching.hit_ratio(policy, [], 5) == 0.0


def test_no_policy_beats_the_optimum():
    rng = random.Random(11)
    for trial in range(40):
        n = rng.choice([3, 8, 30])
        trace = rng.choices(range(n), weights=[1 / (i + 1) for i in range(n)], k=300)
        if trial % 3 == 0:
            trace = [f"k{x}" if x % 2 else x for x in trace]          # mixed key types must work
        for size in (1, 2, 5, 12):
            best = sum(caching.hits("OPT", trace, size))
            assert _lru_hits(trace, size) <= best
            for policy in ("FIFO", "random", "LFU", "ARC"):
                assert sum(caching.hits(policy, trace, size, seed=trial)) <= best, (policy, trial, size)


def test_arc_adapts_and_resists_scans():
    rng = random.Random(2)
    hot = list(range(40))
    mixed = []
    for i in range(6000):
        mixed.append(rng.choice(hot))
        if i % 2:
            mixed.append(f"scan-{i}")                  # every other request: a key never reused
    for size in (20, 50):
        arc, lru = sum(caching.hits("ARC", mixed, size)), _lru_hits(mixed, size)
        fifo = sum(caching.hits("FIFO", mixed, size))
        assert arc > lru and arc > fifo, (size, arc, lru, fifo)
    # on a recency-friendly trace (a sliding working set) ARC is close to LRU
    sliding = [i // 50 + rng.randrange(20) for i in range(5000)]
    assert sum(caching.hits("ARC", sliding, 25)) >= 0.95 * _lru_hits(sliding, 25)


def test_bad_arguments():
    with pytest.raises(ValueError, match="LRU is yours"):
        caching.hits("LRU", [1], 1)
    with pytest.raises(ValueError):
        caching.hits("FIFO", [1], -1)


def test_che_closed_forms_and_exact_lru():
    # uniform popularity: T solves n (1 - e^(-T/n)) = C and the hit ratio is exactly C / n
    assert caching.che_hit_ratio([0.01] * 100, [10, 50, 90]) == pytest.approx([0.1, 0.5, 0.9], abs=1e-9)
    p = caching.zipf_popularity(500, 0.9)
    curve = caching.che_hit_ratio(p, [0, 1, 10, 100, 499, 500, 800])
    assert curve[0] == 0.0 and curve[-2:] == [1.0, 1.0]
    assert all(a < b for a, b in zip(curve[:4], curve[1:5], strict=True))
    trace = caching.zipf_trace(500, 60_000, 0.9, seed=5)
    for size, h in zip((10, 50, 150), caching.che_hit_ratio(p, (10, 50, 150)), strict=True):
        assert _lru_hits(trace, size) / len(trace) == pytest.approx(h, abs=0.006)


@pytest.fixture(scope="module")
def table():
    t = caching.hit_curve_table(alphas=(0.6, 1.0), sizes=(5, 20, 80), n_objects=200, n_requests=3000, seed=2)
    for policies in ((), tuple(set(t["policy"]))):             # the first figures of a process load plotly's validators
        caching.hit_curve_figure(0.6, 5, policies, t, n_objects=200)
    return t


def test_hit_curve_table(table):
    assert list(table.columns) == ["alpha", "policy", "size", "hit_ratio"]
    assert len(table) == 2 * (len(caching.POLICIES) + 1) * 3
    assert set(table["policy"]) == set(caching.POLICIES) | {caching.CHE}
    assert table["hit_ratio"].between(0, 1).all()
    for (alpha, policy), part in table.groupby(["alpha", "policy"]):
        if policy in ("LFU", "OPT", caching.CHE):           # stack algorithms: more room never hurts
            assert part.sort_values("size")["hit_ratio"].is_monotonic_increasing, (alpha, policy)


SELECTIONS = [(), ("OPT",), ("FIFO", "LRU (Che approx.)"), tuple(caching.POLICIES) + (caching.CHE,), ("nope",)]


@pytest.mark.parametrize("alpha, cache_size", list(itertools.product((0.6, 1.0, 0.0, 3.0), (5, 20, 80, 1, 10_000))))
def test_figure_for_control_values(table, alpha, cache_size):
    for policies in SELECTIONS:
        fig = caching.hit_curve_figure(alpha, cache_size, policies, table, n_objects=200)
        shown = [p for p in policies if p in set(table["policy"])]
        lines = [tr for tr in fig.data if tr.type == "scatter"]
        bars = [tr for tr in fig.data if tr.type == "bar"]
        assert [tr.name for tr in lines] == shown and len(bars) == (1 if shown else 0)
        nearest_size = min((5, 20, 80), key=lambda s: (abs(s - cache_size), s))
        nearest_alpha = min((0.6, 1.0), key=lambda a: (abs(a - alpha), a))
        if shown:
            assert list(bars[0].x) == shown
            for policy, y in zip(bars[0].x, bars[0].y, strict=True):
                want = table[(table["alpha"] == nearest_alpha) & (table["policy"] == policy)
                             & (table["size"] == nearest_size)]["hit_ratio"].iloc[0]
                assert y == pytest.approx(want)
        for axis in (fig.layout.xaxis, fig.layout.yaxis, fig.layout.yaxis2):
            assert axis.title.text and "(" in axis.title.text    # a title with its unit
        assert fig.layout.xaxis2.title.text == "policy"           # categorical: no unit
        assert f"cache of {nearest_size:,}" in fig.layout.title.text


def test_figure_with_an_empty_table(table):
    fig = caching.hit_curve_figure(0.8, 10, ("FIFO",), table.iloc[0:0])
    assert fig.layout.title.text == "no data"


def test_widget_redraws_for_every_control_value(table):
    box = hit_curve_widget(table, alpha=0.7, cache_size=30, n_objects=200)
    alpha, size, policies = box.children[0].children
    assert alpha.value == 0.6 and size.value == 20 and set(policies.value) == set(table["policy"])
    for a, s in itertools.product((0.6, 1.0), (5, 20, 80)):
        alpha.value, size.value = a, s
        for chosen in ((), ("ARC",), tuple(policies.options)):
            policies.value = chosen
            assert box.message.value == ""
            assert f"alpha = {a:g}" in box.figure.layout.title.text
    with pytest.raises(ValueError):
        hit_curve_widget(table.iloc[0:0])
    assert math.isfinite(table["hit_ratio"].sum())
