"""The simulator (archlab.sim), the linearizability checker (archlab.linearizability) and the
timeline (archlab.timeline): replay by seed, the network's faults, crash and restart with
stable storage, invariants, and the checker against known histories and a brute-force oracle."""

from __future__ import annotations

import itertools
import math
import random

import pytest

from archlab.linearizability import UNKNOWN, History, Op, check
from archlab.sim import InvariantViolation, Node, Simulator
from archlab.timeline import timeline_figure
from tests.sim_election import Elector, one_leader_per_term, scenario


def _signature(sim):
    return [(round(e.time, 9), e.kind, e.node, e.dst, repr(e.msg)) for e in sim.trace]


def test_the_same_seed_replays_the_same_run_exactly():
    a, b, c = scenario(7), scenario(7), scenario(8)
    assert _signature(a) == _signature(b) and a.stats == b.stats
    assert _signature(a) != _signature(c)
    assert a.stats["sent"] > 200, "a Raft-sized run: hundreds of messages"
    assert a.notes("leader"), "someone is elected"


@pytest.mark.parametrize("seed", range(20))
def test_election_keeps_one_leader_per_term_through_partitions_and_crashes(seed):
    sim = Simulator([f"n{i}" for i in range(1, 6)], Elector, seed=seed, latency=(2, 30), loss=0.05, duplicate=0.02)
    sim.invariant(one_leader_per_term)
    sim.at(800, sim.partition, ["n1", "n2"], ["n3", "n4", "n5"])
    sim.at(1500, sim.heal)
    sim.run(until=2500)
    assert sim.notes("leader")


def test_a_broken_invariant_stops_the_run_at_the_event_that_broke_it():
    sim = Simulator(["a", "b", "c"], Elector, seed=1, latency=(2, 30))
    sim.invariant(lambda s: not s.notes("leader") or "a leader appeared", name="no leader ever")
    with pytest.raises(InvariantViolation, match=r"'no leader ever' broken at t=\d+\.\d ms after a deliver event"):
        sim.run(until=2000)
    assert len(sim.notes("leader")) == 1


class Counter(Node):
    """Counts deliveries in volatile memory and in stable storage; pings its peers every 10 ms."""

    def on_start(self):
        self.seen = 0
        self.set_timer(10, "ping")

    def on_timer(self, name, data):
        self.broadcast(("ping", self.id, self.now))
        self.set_timer(10, "ping")

    def on_message(self, src, msg):
        self.seen += 1
        self.stable["seen"] = self.stable.get("seen", 0) + 1


def test_partition_drops_messages_across_the_cut_including_those_in_flight():
    sim = Simulator(["a", "b", "c"], Counter, seed=3, latency=(4, 6))
    sim.run(until=100)
    sim.partition(["a"], ["b", "c"])
    sim.run(until=300)
    crossing = [e for e in sim.trace if e.kind == "deliver" and 100 < e.time <= 300 and {e.node, e.dst} & {"a"}]
    assert not crossing
    # Sent before the cut (latency 4-6 ms), dropped on arrival after it:
    in_flight = [e for e in sim.trace if e.kind == "drop" and e.info["reason"] == "partition" and 100 < e.time <= 106
                 and e.time == e.info["at"]]
    assert in_flight, "messages sent before the cut and arriving after it are lost"
    assert any(e.kind == "deliver" and {e.node, e.dst} == {"b", "c"} and e.time > 100 for e in sim.trace)
    sim.heal()
    sim.run(until=400)
    assert any(e.kind == "deliver" and "a" in (e.node, e.dst) and e.time > 300 for e in sim.trace)
    with pytest.raises(ValueError, match="unknown nodes"):
        sim.partition(["a", "zz"])


def test_crash_loses_volatile_state_timers_and_messages_but_keeps_stable_storage():
    sim = Simulator(["a", "b"], Counter, seed=5, latency=(1, 2))
    sim.run(until=100)
    before = sim.nodes["b"].seen
    assert before == sim.stable_of("b")["seen"] > 0
    sim.crash("b")
    assert sim.nodes["b"] is None and sim.up() == ["a"]
    sim.run(until=200)
    assert not [e for e in sim.trace if e.kind == "deliver" and e.dst == "b" and 100 < e.time <= 200]
    assert not [e for e in sim.trace if e.kind == "send" and e.node == "b" and 100 < e.time <= 200], "timers died"
    sim.restart("b")
    assert sim.nodes["b"].seen == 0 and sim.stable_of("b")["seen"] == before
    sim.run(until=300)
    assert sim.nodes["b"].seen > 0 and sim.stable_of("b")["seen"] > before


def test_loss_and_duplication_rates_match_their_probabilities():
    sim = Simulator(["a", "b", "c", "d"], Counter, seed=11, latency=(1, 50), loss=0.2, duplicate=0.1)
    sim.run(until=5000)
    s = sim.stats
    copies = s["sent"] + s["duplicated"]
    assert s["sent"] > 5000
    assert abs(s["duplicated"] / s["sent"] - 0.1) < 0.015
    assert abs(s["dropped"] / copies - 0.2) < 0.015
    reordered = 0
    last = {}
    for e in sim.trace:
        if e.kind == "deliver" and e.msg[0] == "ping":
            key = (e.node, e.dst)
            reordered += e.msg[2] < last.get(key, -1)
            last[key] = max(last.get(key, -1), e.msg[2])
    assert reordered > 0, "latency jitter reorders messages"


@pytest.mark.parametrize("kwargs, message", [
    ({"latency": (5, 1)}, "latency must be"), ({"loss": 1.5}, "probability"), ({"duplicate": -0.1}, "probability"),
])
def test_bad_network_settings_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Simulator(["a"], Counter, **kwargs)


# -- linearizability ------------------------------------------------------------------
def H(*ops):
    return [Op(p, f, v, c, r, out, "ok" if out is not UNKNOWN else "pending") for p, f, v, c, r, out in ops]


GOOD = {
    "concurrent write and read may see the new value": H(("a", "write", 1, 0, 10, None), ("b", "read", None, 5, 12, 1)),
    "concurrent write and read may see the old value": H(("a", "write", 1, 0, 10, None),
                                                         ("b", "read", None, 5, 12, None)),
    "a timed-out write may have happened": H(("a", "write", 1, 0, math.inf, UNKNOWN), ("b", "read", None, 20, 30, 1)),
    "a timed-out write may not have happened": H(("a", "write", 1, 0, math.inf, UNKNOWN),
                                                  ("b", "read", None, 20, 30, None)),
    "cas succeeds once": H(("a", "write", 0, 0, 1, None), ("b", "cas", (0, 5), 2, 4, True),
                           ("c", "cas", (0, 6), 3, 5, False), ("d", "read", None, 6, 7, 5)),
}
BAD = {
    "stale read after the write returned": H(("a", "write", 1, 0, 10, None), ("b", "read", None, 11, 12, None)),
    "reads go back in time": H(("a", "write", 1, 0, 100, None), ("b", "read", None, 10, 20, 1),
                               ("c", "read", None, 30, 40, None)),
    "two successful cas from the same value": H(("a", "write", 0, 0, 1, None), ("b", "cas", (0, 5), 2, 4, True),
                                                ("c", "cas", (0, 6), 3, 5, True)),
    "a value nobody wrote": H(("a", "write", 1, 0, 1, None), ("b", "read", None, 2, 3, 2)),
}


@pytest.mark.parametrize("name", GOOD)
def test_known_linearizable_histories_pass_with_a_witness(name):
    result = check(GOOD[name], "register")
    assert result and result.order and "linearizable" in result.explain()


@pytest.mark.parametrize("name", BAD)
def test_known_non_linearizable_histories_fail_with_the_stuck_operations(name):
    result = check(BAD[name], "register")
    assert not result and result.stuck and "not linearizable" in result.explain()


def test_kv_is_checked_key_by_key():
    h = History()
    w = h.invoke("a", "put", ("x", 1), at=0)
    h.ok(w, None, at=5)
    r = h.invoke("b", "get", ("y",), at=6)
    h.ok(r, None, at=7)
    r2 = h.invoke("b", "get", ("x",), at=8)
    h.ok(r2, 1, at=9)
    assert check(h, "kv")
    r3 = h.invoke("c", "get", ("x",), at=10)
    h.ok(r3, None, at=11)
    result = check(h, "kv")
    assert not result and result.key == "x"
    failed = h.invoke("d", "put", ("x", 7), at=12)
    h.fail(failed, at=13)                      # a refused put had no effect: still not 7
    r4 = h.invoke("d", "get", ("x",), at=14)
    h.ok(r4, 1, at=15)
    assert not check(h, "kv")


def _brute_force(ops):
    """Every permutation that respects real-time order and includes every ok operation."""
    done = [o for o in ops if o.status == "ok"]
    pending = [o for o in ops if o.status == "pending"]
    for k in range(len(pending) + 1):
        for chosen in itertools.combinations(pending, k):
            for perm in itertools.permutations(done + list(chosen)):
                if any(perm[j].ret < perm[i].call for i in range(len(perm)) for j in range(i + 1, len(perm))):
                    continue
                state, fine = None, True
                for o in perm:
                    if o.f == "write":
                        state = o.value
                    elif o.output is not UNKNOWN and o.output != state:
                        fine = False
                        break
                if fine:
                    return True
    return False


@pytest.mark.parametrize("seed", range(150))
def test_checker_agrees_with_brute_force_on_random_small_histories(seed):
    rng = random.Random(seed)
    ops = []
    for p in range(rng.randint(2, 5)):
        t = rng.uniform(0, 5)
        for _ in range(rng.randint(1, 2)):
            call = t + rng.uniform(0, 3)
            ret = call + rng.uniform(0.1, 6)
            t = ret
            if rng.random() < 0.5:
                pending = rng.random() < 0.15
                ops.append(Op(f"p{p}", "write", rng.randint(1, 3), call, math.inf if pending else ret,
                              UNKNOWN if pending else None, "pending" if pending else "ok"))
            else:
                ops.append(Op(f"p{p}", "read", None, call, ret, rng.choice([None, 1, 2, 3]), "ok"))
    assert bool(check(ops, "register")) == _brute_force(ops), ops


def test_simulated_clients_record_a_history_on_the_simulated_clock():
    sim = Simulator(["a"], Counter, seed=0)
    sim.run(until=5)
    i = sim.history.invoke("c1", "write", 3)
    sim.run(until=9)
    sim.history.ok(i)
    assert (sim.history.ops[0].call, sim.history.ops[0].ret) == (5.0, 9.0)


# -- timeline -------------------------------------------------------------------------
def test_timeline_draws_messages_losses_partitions_crashes_and_notes():
    sim = scenario(3)
    fig = timeline_figure(sim.trace, sim.ids)
    names = {t.name for t in fig.data}
    assert {"message", "lost message", "state change", "crashed"} <= names
    assert any(s.type == "rect" for s in fig.layout.shapes)
    assert fig.layout.xaxis.title.text and fig.layout.yaxis.title.text
    window = timeline_figure(sim.trace, sim.ids, start=1000, width=100, messages=False)
    assert "message" not in {t.name for t in window.data}
    assert timeline_figure([], ["a"]).layout.xaxis.range == (0.0, 1.0)


def test_timeline_widget_redraws_for_every_control_value():
    from archlab.widgets import timeline_widget

    sim = scenario(2, until=1000)
    box = timeline_widget(sim)
    start, width, messages = box.children[0].children
    for value in (start.min, start.max, (start.min + start.max) / 2):
        start.value = value
        for w in width.options:
            width.value = w[1]
            messages.value = not messages.value
            assert box.message.value == ""
