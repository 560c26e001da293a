"""archlab.ratelimit: the seeded traffic, the helpers and the rate-limit figure (a pure function of
the trace, the control values and the limiter factories; called here without a display)."""

from __future__ import annotations

import math
from collections import deque

import numpy as np
import pytest

from archlab import ratelimit
from archlab.widgets.ratelimit import ratelimit_widget


class Bucket:
    """Test-only token bucket (the notebook's graded one is not importable)."""

    def __init__(self, rate, burst):
        self.rate, self.burst, self.tokens, self.last = rate, burst, float(burst), None

    def allow(self, now):
        if self.last is not None:
            self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


class Fixed:
    def __init__(self, limit, window):
        self.limit, self.window, self.k, self.n = limit, window, None, 0

    def allow(self, now):
        k = math.floor(now / self.window)
        if k != self.k:
            self.k, self.n = k, 0
        if self.n < self.limit:
            self.n += 1
            return True
        return False


class Log:
    def __init__(self, limit, window):
        self.limit, self.window, self.log = limit, window, deque()

    def allow(self, now):
        while self.log and self.log[0] <= now - self.window:
            self.log.popleft()
        if len(self.log) < self.limit:
            self.log.append(now)
            return True
        return False


LIMITERS = {"token bucket": lambda rate, burst, window: Bucket(rate, burst),
            "fixed window": lambda rate, burst, window: Fixed(burst, window),
            "sliding log": lambda rate, burst, window: Log(burst, window)}


def test_trace_is_seeded_sorted_and_bursty():
    a = ratelimit.bursty_arrivals(seed=21)
    assert a == ratelimit.bursty_arrivals(seed=21) and a != ratelimit.bursty_arrivals(seed=22)
    assert a == sorted(a) and 0 <= a[0] and a[-1] < 60.0
    assert all(round(x, 3) == x for x in a)
    per_second = np.histogram(a, bins=np.arange(61))[0]
    assert 5 < len(a) / 60 < 15                          # mean (2*6 + 25*2) / 8 = 7.75 per second
    assert per_second.max() >= 15 and per_second.min() <= 3    # bursts and calm periods both present
    assert ratelimit.bursty_arrivals(seed=1, duration=5, calm_rate=0, burst_rate=0) == []
    with pytest.raises(ValueError):
        ratelimit.bursty_arrivals(duration=0)


def test_helpers():
    assert ratelimit.decide(lambda: Bucket(1, 2), [0, 0, 0, 1, 1.5]) == [True, True, False, True, False]
    with pytest.raises(TypeError):
        ratelimit.decide(lambda: type("Bad", (), {"allow": lambda self, t: 1})(), [0.0])
    assert list(ratelimit.trailing_counts([0, 0.5, 1.0, 1.0, 2.5], 1.0)) == [1, 2, 3, 3, 1]
    assert len(ratelimit.trailing_counts([], 1.0)) == 0


def test_population_is_seeded_and_sorted():
    src, t, rate, bursty = ratelimit.source_population(seed=3, n_sources=500, duration=120)
    src2, t2, _, _ = ratelimit.source_population(seed=3, n_sources=500, duration=120)
    assert (src == src2).all() and (t == t2).all()
    assert len(rate) == 500 and bursty.dtype == bool and 0.15 < bursty.mean() < 0.45
    key = src * 1000.0 + t
    assert (np.diff(key) >= 0).all() and t.min() >= 0 and t.max() < 120
    # the mean rate survives the on/off thinning: total requests ~ sum of rate * minutes
    assert abs(len(t) / (rate.sum() * 2) - 1) < 0.1


@pytest.mark.parametrize("algorithm", list(LIMITERS))
@pytest.mark.parametrize("rate,burst,window", [(0.5, 1, 0.25), (5, 10, 1.0), (30, 50, 10.0), (2.5, 7, 3.75)])
def test_figure_for_control_values(algorithm, rate, burst, window):
    arrivals = ratelimit.bursty_arrivals()
    ratelimit.limit_figure(arrivals[:5], algorithm, rate, burst, window, LIMITERS)    # imports done before timing
    fig = ratelimit.limit_figure(arrivals, algorithm, rate, burst, window, LIMITERS)
    ok = ratelimit.decide(lambda: LIMITERS[algorithm](rate, burst, window), arrivals)
    allowed, rejected = fig.data[0], fig.data[1]
    assert (allowed.name, rejected.name) == ("allowed", "rejected")
    assert sum(allowed.y) == pytest.approx(sum(ok)) and sum(rejected.y) == pytest.approx(len(ok) - sum(ok))
    most = max(fig.data[2].y)
    promise = burst + rate * window if "bucket" in algorithm else burst
    assert list(fig.data[3].y) == [promise, promise]
    if algorithm != "fixed window":
        assert most <= promise                          # the bucket's bound and the log's limit hold
    for axis in (fig.layout.xaxis2, fig.layout.yaxis, fig.layout.yaxis2):
        assert axis.title.text and "(" in axis.title.text
    assert algorithm in fig.layout.title.text and f"most in any {window:g} s: {most}" in fig.layout.title.text


def test_fixed_window_breaks_its_promise_at_the_boundary():
    arrivals = [0.9] * 5 + [1.0] * 5
    fig = ratelimit.limit_figure(arrivals, "fixed window", 1, 5, 1.0, LIMITERS)
    assert max(fig.data[2].y) == 10


def test_figure_rejects_bad_values():
    with pytest.raises(ValueError):
        ratelimit.limit_figure([0.0], "nope", 1, 1, 1, LIMITERS)
    with pytest.raises(ValueError):
        ratelimit.limit_figure([0.0], "token bucket", 0, 1, 1, LIMITERS)
    fig = ratelimit.limit_figure([], "sliding log", 1, 1, 1, LIMITERS)      # no traffic: an empty plot, no error
    assert sum(fig.data[0].y) == 0


def test_widget_redraws_for_every_control_value():
    box = ratelimit_widget(ratelimit.bursty_arrivals(), LIMITERS, algorithm="sliding log")
    algorithm, rate, burst, window = box.children[0].children
    assert algorithm.value == "sliding log"
    for name in LIMITERS:
        algorithm.value = name
        for r in (rate.min, rate.max):
            rate.value = r
            for b in (burst.min, burst.max):
                burst.value = b
                for w in (window.min, window.max):
                    window.value = w
                    assert box.message.value == "", box.message.value
                    assert name in box.figure.layout.title.text
    with pytest.raises(ValueError):
        ratelimit_widget([0.0], {})
