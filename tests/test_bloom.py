"""archlab.bloom: the measuring loop works with any filter class, and the figure is a pure,
fast function of m, n, k and the measured table (the widget only binds sliders to it)."""

from __future__ import annotations

import hashlib
import math

import pytest

from archlab import bloom
from archlab.widgets import bloom_widget


class ExactSet:
    """Not a Bloom filter: a set (no false positives). Enough to test the measuring loop."""

    def __init__(self, m, k):
        self.items = set()

    def add(self, item):
        self.items.add(item)

    def __contains__(self, item):
        return item in self.items


class TinyBloom:
    """A test-only Bloom filter with k independent salted hashes (not double hashing)."""

    def __init__(self, m, k):
        self.m, self.k, self.bits = m, k, bytearray(m)

    def _pos(self, item):
        return [int.from_bytes(hashlib.blake2b(f"{i}:{item}".encode(), digest_size=8).digest(), "big") % self.m
                for i in range(self.k)]

    def add(self, item):
        for p in self._pos(item):
            self.bits[p] = 1

    def __contains__(self, item):
        return all(self.bits[p] for p in self._pos(item))


def test_theory_matches_the_textbook_numbers():
    # 1 % at the optimum: m/n = -ln(0.01) / ln(2)^2 = 9.585 bits per key, k = 6.64 -> 7
    bits = -math.log(0.01) / math.log(2) ** 2
    assert bits == pytest.approx(9.585, abs=1e-3)
    assert bloom.theory_fp(round(bits * 1000), 1000, 7) == pytest.approx(0.01, rel=0.03)
    assert bloom.theory_fp(100, 0, 3) == 0.0
    assert bloom.theory_fp(1000, 100, 1) == pytest.approx(1 - math.exp(-0.1))


def test_measure_with_any_filter_class():
    exact = bloom.measure(ExactSet, [(1024, 100, 3)], queries=500)
    assert exact.loc[0, "measured fp"] == 0 and exact.loc[0, "false negatives"] == 0
    table = bloom.measure(TinyBloom, [(4096, 400, 3), (4096, 400, 7)], queries=4000)
    assert list(table.columns[:3]) == ["m", "n", "k"] and (table["false negatives"] == 0).all()
    for _, row in table.iterrows():
        assert abs(row["measured fp"] - row["theory fp"]) <= 0.25 * row["theory fp"] + 0.003, row


def _table():
    return bloom.measure(TinyBloom, [(m, n, k) for m in (1024, 4096) for n in (100, 400) for k in (1, 4, 8)],
                         queries=200)


@pytest.mark.parametrize("k", [1, 2, 7, 16, 20])
@pytest.mark.parametrize("m,n", [(1024, 100), (4096, 400), (4096, 100), (64, 5000)])
def test_figure_for_control_values(m, n, k):
    table = _table()
    fig = bloom.fp_figure(m, n, k, measured=table)
    formula = [tr for tr in fig.data if tr.name == "formula"][0]
    assert list(formula.x) == list(range(1, max(16, k) + 1))
    assert formula.y[k - 1] == pytest.approx(max(bloom.theory_fp(m, n, k), 1e-6))
    measured = [tr for tr in fig.data if tr.name == "measured"]
    sub = table[(table["m"] == m) & (table["n"] == n)]
    if len(sub):
        assert sorted(measured[0].x) == sorted(sub["k"])
    for axis in (fig.layout.xaxis, fig.layout.xaxis2, fig.layout.yaxis, fig.layout.yaxis2):
        assert axis.title.text and "(" in axis.title.text          # a title with its unit
    assert f"k = {k}" in fig.layout.title.text


def test_figure_without_measurements_and_bad_values():
    fig = bloom.fp_figure(8192, 800, 7)
    assert not [tr for tr in fig.data if tr.name == "measured"]
    with pytest.raises(ValueError):
        bloom.fp_figure(0, 10, 1)


def test_widget_redraws_for_every_control_value():
    box = bloom_widget(_table())
    m, n, k = box.children[0].children
    for mv in (1024, 4096):
        m.value = mv
        for nv in (100, 400):
            n.value = nv
            for kv in (1, 7, 16):
                k.value = kv
                assert box.message.value == ""
                assert f"k = {kv}" in box.figure.layout.title.text
