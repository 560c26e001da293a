"""archlab.storage_costs: the cost model against hand-computed bills, the lifecycle optimiser
against brute force, and the tiering figure for many control values (pure; `make bench` measures its speed)."""

from __future__ import annotations

import itertools
import math

import pytest

from archlab import storage_costs as sc

HOT, WARM, COLD, ARCHIVE = sc.TIERS


def test_single_tier_bills_match_hand_computation():
    # 100 GB in hot for a year, never read: 100 × 0.023 × 12
    assert sc.single_tier_cost(HOT, 100, 12, reads0=0) == pytest.approx(27.6)
    # 10 GB in cold for a year, half of it read every month: storage 10 × 0.004 × 12 = 0.48,
    # retrieval 10 × 0.5 × 12 × 0.03 = 1.8
    assert sc.single_tier_cost(COLD, 10, 12, reads0=0.5) == pytest.approx(2.28)
    # archive kept 2 months is billed its 6-month minimum: 100 × 0.001 × 6
    assert sc.single_tier_cost(ARCHIVE, 100, 2, reads0=0) == pytest.approx(0.6)
    assert sc.single_tier_cost(ARCHIVE, 100, 2, reads0=0, min_duration=False) == pytest.approx(0.2)
    # retrieval fees off: warm is storage only
    assert sc.single_tier_cost(WARM, 1, 10, reads0=3, retrieval_fees=False) == pytest.approx(0.125)
    # decaying reads: months 0,1,2 read 4, 2, 1 times (half-life 1 month), warm retrieval 0.01/GB
    assert sc.single_tier_cost(WARM, 1, 3, reads0=4, half_life=1) == pytest.approx(3 * 0.0125 + 7 * 0.01)


def test_lifecycle_charges_early_moves():
    # cold for 1 month (min 3: 2 months charged on leaving), then archive for 6 months
    life = sc.lifecycle_cost([2] + [3] * 6, size_gb=1, reads0=0)
    assert life.monthly[1] == pytest.approx(2 * 0.004 + 0.001)
    assert life.total == pytest.approx(3 * 0.004 + 6 * 0.001)
    assert life.describe() == "cold for month 0 → archive for months 1-6"
    with pytest.raises(ValueError):
        sc.lifecycle_cost([3, 0])


def _brute_force(months, **kw):
    best = None
    for combo in itertools.combinations_with_replacement(range(len(sc.TIERS)), months):
        life = sc.lifecycle_cost(list(combo), **kw)
        if best is None or life.total < best.total - 1e-12:
            best = life
    return best


@pytest.mark.parametrize("months", [1, 2, 4, 7])
@pytest.mark.parametrize("reads0,half_life", [(0.0, math.inf), (0.3, math.inf), (5.0, 1.0), (2.0, 0.5), (50, 2)])
@pytest.mark.parametrize("min_duration", [True, False])
def test_dynamic_programme_equals_brute_force(months, reads0, half_life, min_duration):
    kw = {"size_gb": 3.0, "reads0": reads0, "half_life": half_life, "min_duration": min_duration}
    got = sc.cheapest_lifecycle(sc.TIERS, months=months, **kw)
    assert got.total == pytest.approx(_brute_force(months, **kw).total, rel=1e-12, abs=1e-12)
    assert got.total == pytest.approx(sum(got.monthly))


def test_extremes():
    assert sc.cheapest_lifecycle(months=36, reads0=0).schedule == [3] * 36          # never read: archive
    assert sc.cheapest_lifecycle(months=36, reads0=100).schedule == [0] * 36        # read constantly: hot
    life = sc.cheapest_lifecycle(months=36, reads0=2, half_life=3)                   # the widget's default
    assert life.describe() == ("hot for months 0-2 → warm for months 3-6 → cold for months 7-11 → "
                               "archive for months 12-35")



def _figures():
    for size in (1, 1000, 1e6):
        for months in (1, 2, 6, 37, 120):
            for reads0 in (1e-4, 0.3, 5, 100):
                for half_life in (0.5, 3, 60):
                    for flags in ((True, True), (False, True), (True, False)):
                        yield size, months, reads0, half_life, *flags


def test_figure_for_many_control_values():
    for size, months, reads0, half_life, min_duration, fees in _figures():
        fig = sc.tiering_figure(size, months, reads0, half_life, min_duration, fees)
        best = sc.cheapest_lifecycle(sc.TIERS, size, months, reads0, half_life, min_duration, fees)
        monthly = [sum(tr.y[m] for tr in fig.data[:-1]) for m in range(months)]
        assert monthly == pytest.approx(best.monthly)
        totals = fig.data[-1].y
        assert totals[-1] == pytest.approx(best.total)
        assert best.total <= min(totals[:-1]) + 1e-9                  # never worse than one tier
        assert fig.layout.xaxis.title.text and fig.layout.yaxis.title.text
        assert fig.layout.xaxis2.title.text and fig.layout.yaxis2.title.text



def test_widget_redraws():
    from archlab.widgets import tiering_widget

    w = tiering_widget()
    w.children[0].children[1].value = 3                  # months slider
    assert w.message.value == ""
    assert len(w.figure.data[0].x) == 3
