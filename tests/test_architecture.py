"""archlab.architecture: the call-chain model against closed forms (availability a^(n*k), one
call's lognormal quantiles, the maximum of k calls, sums along a chain), and the figure for every
control value the widget allows (pure, deterministic, < 100 ms)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from archlab import architecture as ar
from archlab.widgets.architecture import AVAILABILITIES, FANOUTS, PERCENTILES, call_chain_widget


def test_normal_quantiles_match_known_values():
    z = ar.normal_upper_quantile([0.5, 0.025, 0.01, 0.001, 1e-9])
    assert z == pytest.approx([0.0, 1.959964, 2.326348, 3.090232, 5.997807], abs=2e-4)
    assert ar.call_quantile_ms(0.99, 10.0, 0.5) == pytest.approx(10 * math.exp(0.5 * 2.326348), rel=1e-4)
    assert ar.call_quantile_ms(0.5, 7.0, 1.3) == pytest.approx(7.0, rel=1e-6)
    assert ar.call_quantile_ms(0.999, 3.0, 0.0) == 3.0              # sigma 0: constant latency


def test_availability_is_the_product_of_every_call():
    assert ar.chain_availability(5, 1, 0.99) == pytest.approx(0.99 ** 5)
    assert ar.chain_availability(4, 10, 0.999) == pytest.approx(0.999 ** 40)
    assert ar.chain_availability(20, 100, 1.0) == 1.0


def test_samples_follow_the_closed_forms():
    one = ar.chain_latency_samples(hops=1, fanout=1, median_ms=10, sigma=0.5, samples=200_000)[:, 0]
    assert np.percentile(one, 50) == pytest.approx(10, rel=0.02)
    assert np.percentile(one, 99) == pytest.approx(ar.call_quantile_ms(0.99, 10, 0.5), rel=0.03)
    # the maximum of k calls: P(max <= x) = F(x)^k, so its median is F^-1(0.5^(1/k))
    mx = ar.chain_latency_samples(hops=1, fanout=10, median_ms=10, sigma=0.5, samples=200_000)[:, 0]
    assert np.percentile(mx, 50) == pytest.approx(ar.call_quantile_ms(0.5 ** 0.1, 10, 0.5), rel=0.02)
    # a chain sums independent levels: mean of a lognormal is median * exp(sigma^2 / 2)
    chain = ar.chain_latency_samples(hops=6, fanout=1, median_ms=2, sigma=0.5, samples=200_000)
    assert chain.shape == (200_000, 6)
    assert chain[:, 5].mean() == pytest.approx(6 * 2 * math.exp(0.125), rel=0.01)
    assert np.all(np.diff(chain, axis=1) > 0)                       # cumulative along the chain


def test_samples_are_seeded():
    a = ar.chain_latency_samples(hops=3, fanout=5, median_ms=4, sigma=1.0)
    b = ar.chain_latency_samples(hops=3, fanout=5, median_ms=4, sigma=1.0)
    assert np.array_equal(a, b)


def _controls():
    """The corners of every control's range, and the widget's defaults."""
    yield 4, 1, 0.999, 5.0, 0.5, 99.0
    for hops in (1, ar.MAX_HOPS):
        for fanout in (FANOUTS[0], FANOUTS[-1]):
            for availability in (AVAILABILITIES[0], AVAILABILITIES[-1]):
                for median in (0.1, 100.0):
                    for sigma in (0.0, 2.0):
                        for p in (PERCENTILES[0], PERCENTILES[-1]):
                            yield hops, fanout, availability, median, sigma, p


def test_figure_for_every_kind_of_control_value():
    ar.chain_figure()                                               # warm up plotly
    for hops, fanout, availability, median, sigma, p in _controls():
        fig = ar.chain_figure(hops, fanout, availability, median, sigma, p)
        assert fig.layout.xaxis.title.text and fig.layout.yaxis.title.text
        assert fig.layout.xaxis2.title.text and fig.layout.yaxis2.title.text
        left = fig.data[0].y
        assert left[hops - 1] == pytest.approx(100 * availability ** (hops * fanout))
        assert all(np.isfinite(t.y).all() for t in fig.data)


def test_tail_at_scale_in_the_title():
    fig = ar.chain_figure(hops=1, fanout=100, availability=0.999, median_ms=5, sigma=0.5, percentile=99.0)
    assert "63.4 % of requests" in fig.layout.title.text


def test_widget_redraws_without_errors():
    box = call_chain_widget()
    controls = box.children[0].children
    for c in controls:
        options = getattr(c, "options", None)
        if options:
            for opt in (options[0], options[-1]):
                c.value = opt[1] if isinstance(opt, tuple) else opt
                assert box.message.value == ""
        elif hasattr(c, "max"):
            for v in (c.min, c.max):
                c.value = v
                assert box.message.value == ""
    assert len(box.figure.data) > 0
