"""archlab.messaging: the latency model agrees with its samples and with the tail-at-scale
formula, the fan-out figure is a pure, fast function of its controls, and the virtual clock
runs asyncio code in simulated time."""

from __future__ import annotations

import asyncio
import math
import random

import numpy as np
import pytest

from archlab import messaging
from archlab.widgets.messaging import fanout_widget

MODEL = messaging.DEAN_BARROSO


def test_dean_barroso_numbers():
    # a server that answers in ~10 ms with a 99th percentile of one second
    assert MODEL.quantile(0.99) == pytest.approx(1000, abs=1e-3)
    # the median solves 0.99 e^(-(x - 5) / 5) + 0.01 = 0.5
    assert MODEL.quantile(0.5) == pytest.approx(5 + 5 * math.log(0.99 / 0.49), rel=1e-6)
    # 100 such servers: 63 % of requests wait for a slow one (just above the slow threshold)
    assert float(messaging.fanout_sf(MODEL, 999.0, 100)) == pytest.approx(1 - 0.99 ** 100, rel=1e-6)
    assert round(1 - 0.99 ** 100, 2) == 0.63
    # one in 10,000 at 2,000 servers: almost one request in five
    rare = MODEL.with_p(1e-4)
    assert float(messaging.fanout_sf(rare, 999.0, 2000)) == pytest.approx(0.181, abs=1e-3)


def test_cdf_and_sf_agree_and_are_monotone():
    x = np.linspace(0, 3000, 601)
    assert np.allclose(MODEL.cdf(x) + MODEL.sf(x), 1.0)
    assert np.all(np.diff(MODEL.cdf(x)) >= -1e-15)
    assert MODEL.cdf(0.0) == 0.0 and MODEL.sf(MODEL.fast_ms) == pytest.approx(1.0)
    assert isinstance(MODEL.cdf(12.0), float)


def test_samples_follow_the_cdf():
    draws = np.array(MODEL.with_p(0.05).samples(40_000, seed=3))
    model = MODEL.with_p(0.05)
    for x in (6.0, 10.0, 20.0, 1000.0, 1100.0, 1300.0):
        assert (draws <= x).mean() == pytest.approx(model.cdf(x), abs=0.01), x
    assert MODEL.samples(5, seed=9) == MODEL.samples(5, seed=9)


def test_hedged_tail_matches_a_simulation():
    rng = random.Random(11)
    d = 20.0
    sims = []
    for _ in range(40_000):
        first = MODEL.sample(rng)
        second = MODEL.sample(rng)
        sims.append(first if first <= d else min(first, d + second))
    sims = np.array(sims)
    for x in (10.0, 25.0, 40.0, 1010.0):
        assert (sims > x).mean() == pytest.approx(float(messaging.hedged_sf(MODEL, x, d)), abs=0.004), x
    assert float(messaging.hedged_sf(MODEL, 5.0, d)) == pytest.approx(float(MODEL.sf(5.0)))


def test_fanout_quantiles_grow_with_n_and_fall_with_hedging():
    p99 = [messaging.fanout_quantile(MODEL, 0.99, n) for n in (1, 10, 100, 1000)]
    assert p99 == sorted(p99)
    hedged = messaging.fanout_quantile(MODEL, 0.99, 100, hedge_ms=MODEL.quantile(0.95))
    assert hedged * 10 < p99[2]
    assert MODEL.sf(MODEL.quantile(0.95)) == pytest.approx(0.05, rel=1e-6)
    with pytest.raises(ValueError):
        messaging.fanout_quantile(MODEL, 1.0, 10)


def test_model_validation():
    with pytest.raises(ValueError):
        messaging.LatencyModel(p_slow=1.5)
    with pytest.raises(ValueError):
        messaging.LatencyModel(fast_mean_ms=0)


@pytest.mark.parametrize("n", [1, 2, 100, 999, 1000])
@pytest.mark.parametrize("p", [0.0, 0.001, 0.01, 0.1, 1.0])
@pytest.mark.parametrize("hedge", [0.0, 21.0, 200.0])
def test_figure_for_control_values(n, p, hedge):
    fig = messaging.fanout_figure(n, p, hedge)
    curve, selected = fig.data[0], fig.data[1]
    assert list(curve.x)[0] == 1 and list(curve.x)[-1] == 1000
    assert curve.y[-1] == pytest.approx(1 - (1 - p) ** 1000)
    assert list(selected.x) == [n] and selected.y[0] == pytest.approx(1 - (1 - p) ** n)
    for axis in (fig.layout.xaxis, fig.layout.xaxis2, fig.layout.yaxis, fig.layout.yaxis2):
        assert axis.title.text and "(" in axis.title.text          # a title with its unit
    assert f"n = {n}" in fig.layout.title.text
    assert len([tr for tr in fig.data if tr.name and "fan-out" in tr.name]) == 2


def test_figure_rejects_impossible_values():
    for bad in ((0, 0.01, 10), (10, -0.1, 10), (10, 0.01, -1)):
        with pytest.raises(ValueError):
            messaging.fanout_figure(*bad)


def test_widget_redraws_for_every_corner():
    box = fanout_widget()
    n, p, hedge = box.children[0].children
    for nv in (n.min, 100, n.max):
        n.value = nv
        for pv in (p.min, 0.01, p.max):
            p.value = pv
            for hv in (hedge.min, hedge.max):
                hedge.value = hv
                assert box.message.value == ""
                assert f"n = {nv}" in box.figure.layout.title.text


def test_virtual_clock_jumps_to_the_next_timer():
    async def main():
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        await asyncio.sleep(3600)
        results = await asyncio.gather(*(asyncio.sleep(s, result=s) for s in (2.0, 1.0, 3.0)))
        return loop.time() - t0, results

    elapsed, results = messaging.run_virtual(main)                 # an hour of simulated sleeping, at once
    assert elapsed == 3603.0 and results == [2.0, 1.0, 3.0]


def test_virtual_clock_timeouts_and_cancellation():
    async def main():
        loop = asyncio.get_running_loop()
        slow = asyncio.ensure_future(asyncio.sleep(10))
        done, pending = await asyncio.wait({slow}, timeout=0.25)
        at = loop.time()
        slow.cancel()
        try:
            await asyncio.wait_for(asyncio.sleep(5), 1.5)
        except TimeoutError:
            return at, loop.time(), not done, slow.cancelled()

    assert messaging.run_virtual(main) == (0.25, 1.75, True, True)


def test_virtual_clock_raises_errors_and_detects_a_stuck_simulation():
    async def fails():
        await asyncio.sleep(1)
        raise KeyError("boom")

    with pytest.raises(KeyError):
        messaging.run_virtual(fails)

    async def stuck():
        await asyncio.get_running_loop().create_future()     # nobody ever completes it

    with pytest.raises(RuntimeError, match="stuck"):
        messaging.run_virtual(stuck)


def test_virtual_clock_from_inside_a_running_loop():
    async def inner(x):
        await asyncio.sleep(100)
        return x * 2

    async def outer():                       # as in a notebook cell: a loop is already running here
        return messaging.run_virtual(inner, 21)

    assert asyncio.run(outer()) == 42


def test_leftover_tasks_are_cancelled_at_the_end():
    seen = []

    async def main():
        async def forever():
            try:
                await asyncio.sleep(1e9)
            except asyncio.CancelledError:
                seen.append("cancelled")
                raise
        asyncio.ensure_future(forever())
        await asyncio.sleep(1)
        return "done"

    assert messaging.run_virtual(main) == "done" and seen == ["cancelled"]
