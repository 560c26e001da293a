"""A seeded discrete-event simulator for distributed-systems lessons.

Real clusters cannot be replayed: the same test passes or fails depending on scheduling, and
partitions are hard to stage. Here the whole world is one priority queue of events on a
simulated clock (milliseconds), and every random choice (latency, loss, duplication, a node's
election timeout) is drawn from generators derived from one seed, so the same seed replays the
same run exactly, event for event.

Nodes are plain Python classes:

    class Echo(archlab.sim.Node):
        def on_start(self):                     # at time 0 and after every restart
            self.set_timer(100, "tick")
        def on_timer(self, name, data):
            self.broadcast({"type": "ping", "from": self.id})
            self.set_timer(100, "tick")
        def on_message(self, src, msg):
            self.note("got ping", src=src)      # a state change, drawn on the timeline

    sim = archlab.sim.Simulator(["a", "b", "c"], Echo, seed=1, latency=(5, 20), loss=0.1)
    sim.at(250, sim.partition, ["a"], ["b", "c"])
    sim.at(600, sim.heal)
    sim.run(until=1000)

A node's `stable` dict is its disk: it survives `crash` and `restart`; everything else on the
object is lost (a restart builds a new instance). Messages are any Python values; they are
deep-copied on send so that nodes never share state by accident.
"""

from __future__ import annotations

import copy
import heapq
import itertools
import random
from dataclasses import dataclass, field
from typing import Any

from .linearizability import History


class InvariantViolation(AssertionError):
    """An invariant registered with `Simulator.invariant` failed; the message names it, the
    simulated time and the event that broke it."""


@dataclass(frozen=True)
class Event:
    """One entry of the trace the timeline draws and tests inspect."""

    time: float
    kind: str          # send, deliver, drop, timer, crash, restart, partition, heal, note
    node: str | None = None     # the acting node (sender for messages)
    dst: str | None = None
    msg: Any = None
    info: dict = field(default_factory=dict)


class Node:
    """Base class for simulated nodes: override on_start, on_message and on_timer.

    Use `self.send`, `self.broadcast`, `self.set_timer`, `self.cancel_timer`, `self.now`,
    `self.rng` (this node's own seeded random.Random), `self.stable` (survives crashes) and
    `self.note` (record a state change for the timeline and for tests).
    """

    def __init__(self, node_id: str, peers: list[str], sim: Simulator, stable: dict):
        self.id = node_id
        self.peers = [p for p in peers if p != node_id]
        self.sim = sim
        self.stable = stable
        self.rng = sim._node_rng(node_id)

    # -- to override ------------------------------------------------------------
    def on_start(self) -> None:
        """Called at time 0 and after every restart (read self.stable to recover)."""

    def on_message(self, src: str, msg) -> None:
        """Called when a message from `src` is delivered."""

    def on_timer(self, name: str, data) -> None:
        """Called when a timer set with set_timer fires (unless cancelled or the node crashed)."""

    # -- the API -----------------------------------------------------------------
    @property
    def now(self) -> float:
        return self.sim.now

    def send(self, dst: str, msg) -> None:
        self.sim._send(self.id, dst, msg)

    def broadcast(self, msg) -> None:
        for peer in self.peers:
            self.sim._send(self.id, peer, msg)

    def set_timer(self, delay: float, name: str, data=None) -> int:
        """Fire on_timer(name, data) after `delay` simulated ms; returns an id for cancel_timer."""
        return self.sim._set_timer(self.id, delay, name, data)

    def cancel_timer(self, timer_id: int) -> None:
        self.sim._cancelled.add(timer_id)

    def note(self, what: str, **info) -> None:
        self.sim._record("note", self.id, msg=what, info=info)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.id}>"


class Simulator:
    """The world: nodes, a network, a clock, a trace, a client history and invariants.

    latency: (low, high) uniform ms, a number, or a function rng -> ms. loss and duplicate are
    probabilities per message. Latency jitter reorders messages; `partition`, `heal`, `crash`,
    `restart` and `set_network` change the world, directly or scheduled with `at`.
    """

    def __init__(self, node_ids, node_class=None, *, seed: int = 0, latency=(1.0, 10.0), loss: float = 0.0,
                 duplicate: float = 0.0, factory=None, max_trace: int = 200_000):
        if factory is None and node_class is None:
            raise ValueError("Simulator needs a node class (or a factory(node_id, peers, sim, stable)).")
        self.ids = [str(i) for i in node_ids]
        if len(set(self.ids)) != len(self.ids):
            raise ValueError(f"node ids must be unique, got {self.ids}.")
        self.seed = seed
        self._factory = factory or node_class
        self._net_rng = random.Random(f"net:{seed}")
        self.now = 0.0
        self._queue: list = []
        self._seq = itertools.count()
        self._timer_ids = itertools.count(1)
        self._cancelled: set[int] = set()
        self.trace: list[Event] = []
        self.max_trace = max_trace
        self.history = History(clock=lambda: self.now)
        self._invariants: list = []
        self.stats = {"sent": 0, "delivered": 0, "dropped": 0, "duplicated": 0}
        self.set_network(latency=latency, loss=loss, duplicate=duplicate)
        self._groups: list[set[str]] | None = None
        self._stable = {i: {} for i in self.ids}
        self._epoch = dict.fromkeys(self.ids, 0)       # bumps on crash: stale timers and deliveries are dropped
        self.nodes: dict[str, Node | None] = {}
        for i in self.ids:
            self.nodes[i] = self._factory(i, list(self.ids), self, self._stable[i])
        for i in self.ids:
            self._push(0.0, "start", (i, 0))

    # -- configuration -------------------------------------------------------------
    def set_network(self, *, latency=None, loss: float | None = None, duplicate: float | None = None) -> None:
        if latency is not None:
            if callable(latency):
                self._latency = latency
            elif isinstance(latency, (int, float)):
                self._latency = lambda rng, v=float(latency): v
            else:
                lo, hi = (float(v) for v in latency)
                if not 0 <= lo <= hi:
                    raise ValueError(f"latency must be (low, high) with 0 <= low <= high, got {latency}.")
                self._latency = lambda rng, lo=lo, hi=hi: rng.uniform(lo, hi)
        for name, value in (("loss", loss), ("duplicate", duplicate)):
            if value is not None:
                if not 0 <= value <= 1:
                    raise ValueError(f"{name} is a probability between 0 and 1, got {value}.")
                setattr(self, name, float(value))

    def _node_rng(self, node_id: str) -> random.Random:
        # Seeded from a string: stable across processes and PYTHONHASHSEED; a restart gets a new stream.
        return random.Random(f"node:{self.seed}:{node_id}:{self._epoch[node_id]}")

    # -- changing the world --------------------------------------------------------
    def at(self, time: float, action, *args) -> None:
        """Run action(*args) at simulated time `time` (e.g. sim.at(300, sim.crash, "n1"))."""
        self._push(float(time), "action", (action, args))

    def partition(self, *groups) -> None:
        """Split the network: nodes in different groups cannot reach each other; nodes not
        named form one more group. Messages already in flight across the cut are lost."""
        named = [set(map(str, g)) for g in groups]
        unknown = set().union(*named) - set(self.ids) if named else set()
        if unknown:
            raise ValueError(f"partition names unknown nodes {sorted(unknown)}.")
        rest = set(self.ids) - set().union(*named)
        self._groups = named + ([rest] if rest else [])
        self._record("partition", info={"groups": [sorted(g) for g in self._groups]})

    def heal(self) -> None:
        self._groups = None
        self._record("heal")

    def isolate(self, node_id: str) -> None:
        self.partition([node_id])

    def connected(self, a: str, b: str) -> bool:
        return self._groups is None or any(a in g and b in g for g in self._groups)

    def crash(self, node_id: str) -> None:
        """Stop the node: its volatile state, pending timers and incoming messages are lost;
        its `stable` dict is kept for restart."""
        if self.nodes.get(node_id) is None:
            return
        self.nodes[node_id] = None
        self._epoch[node_id] += 1
        self._record("crash", node_id)

    def restart(self, node_id: str) -> None:
        """A new instance of the node with the same stable storage; on_start runs now."""
        if self.nodes.get(node_id) is not None:
            return
        node = self._factory(node_id, list(self.ids), self, self._stable[node_id])
        self.nodes[node_id] = node
        self._record("restart", node_id)
        node.on_start()

    def stable_of(self, node_id: str) -> dict:
        """A node's stable storage (its disk), readable whether the node is up or crashed."""
        return self._stable[node_id]

    def up(self) -> list[str]:
        return [i for i in self.ids if self.nodes[i] is not None]

    # -- invariants ----------------------------------------------------------------
    def invariant(self, check, name: str | None = None) -> None:
        """check(sim) runs after every event; returning a string or False (or raising
        AssertionError) stops the run with InvariantViolation."""
        self._invariants.append((name or getattr(check, "__name__", "invariant"), check))

    def _check_invariants(self, event_kind) -> None:
        for name, check in self._invariants:
            try:
                result = check(self)
            except AssertionError as e:
                result = str(e) or False
            if result is False or isinstance(result, str):
                detail = f": {result}" if isinstance(result, str) and result else ""
                raise InvariantViolation(f"invariant {name!r} broken at t={self.now:.1f} ms after a "
                                         f"{event_kind} event{detail}")

    # -- running -------------------------------------------------------------------
    def run(self, until: float | None = None, max_events: int = 1_000_000) -> int:
        """Process events in time order up to simulated time `until` (all of them if None);
        returns how many were processed."""
        n = 0
        while self._queue and n < max_events:
            time, _seq, kind, payload = self._queue[0]
            if until is not None and time > until:
                break
            heapq.heappop(self._queue)
            self.now = time
            if self._dispatch(kind, payload):
                n += 1
                if self._invariants:
                    self._check_invariants(kind)
        if until is not None:
            self.now = max(self.now, float(until))
        return n

    def run_until(self, predicate, timeout: float, step: float = 1.0) -> bool:
        """Run until predicate(sim) is true or `timeout` more simulated ms pass; True if it held."""
        deadline = self.now + timeout
        while self.now < deadline:
            if predicate(self):
                return True
            self.run(until=min(deadline, self.now + step))
        return bool(predicate(self))

    # -- internals -----------------------------------------------------------------
    def _push(self, time: float, kind: str, payload) -> None:
        heapq.heappush(self._queue, (time, next(self._seq), kind, payload))

    def _record(self, kind, node=None, dst=None, msg=None, info=None) -> None:
        if len(self.trace) < self.max_trace:
            self.trace.append(Event(self.now, kind, node, dst, msg, info or {}))

    def _send(self, src: str, dst: str, msg) -> None:
        if dst not in self._stable:
            raise ValueError(f"{src} sent to unknown node {dst!r}.")
        self.stats["sent"] += 1
        msg = copy.deepcopy(msg)
        rng = self._net_rng
        copies = 2 if rng.random() < self.duplicate else 1
        self.stats["duplicated"] += copies - 1
        for _ in range(copies):
            lost = rng.random() < self.loss
            delay = float(self._latency(rng))
            if lost or not self.connected(src, dst):
                self.stats["dropped"] += 1
                self._record("drop", src, dst, msg, {"reason": "loss" if lost else "partition",
                                                     "at": self.now + delay})
                continue
            mid = len(self.trace)
            self._record("send", src, dst, msg, {"arrives": self.now + delay})
            self._push(self.now + delay, "deliver", (src, dst, msg, self._epoch[dst], mid))

    def _set_timer(self, node_id: str, delay: float, name: str, data) -> int:
        if delay < 0:
            raise ValueError(f"timer delay must be >= 0, got {delay}.")
        tid = next(self._timer_ids)
        self._push(self.now + delay, "timer", (node_id, self._epoch[node_id], tid, name, data))
        return tid

    def _dispatch(self, kind: str, payload) -> bool:
        if kind == "deliver":
            src, dst, msg, epoch, _mid = payload
            node = self.nodes.get(dst)
            if node is None or epoch != self._epoch[dst] or not self.connected(src, dst):
                self.stats["dropped"] += 1
                reason = "crashed" if node is None or epoch != self._epoch[dst] else "partition"
                self._record("drop", src, dst, msg, {"reason": reason, "at": self.now})
                return True
            self.stats["delivered"] += 1
            self._record("deliver", src, dst, msg)
            node.on_message(src, msg)
        elif kind == "timer":
            node_id, epoch, tid, name, data = payload
            node = self.nodes.get(node_id)
            if tid in self._cancelled:
                self._cancelled.discard(tid)
                return False
            if node is None or epoch != self._epoch[node_id]:
                return False
            node.on_timer(name, data)
        elif kind == "start":
            node_id, epoch = payload
            node = self.nodes.get(node_id)
            if node is not None and epoch == self._epoch[node_id]:
                node.on_start()
        elif kind == "action":
            action, args = payload
            action(*args)
        return True

    # -- reading the trace ---------------------------------------------------------
    def notes(self, what: str | None = None, node: str | None = None) -> list[Event]:
        """The `note` events, optionally only those saying `what` or from `node`."""
        return [e for e in self.trace if e.kind == "note" and (what is None or e.msg == what)
                and (node is None or e.node == node)]

    def __repr__(self) -> str:
        return (f"<Simulator seed={self.seed} t={self.now:.1f} ms nodes={len(self.ids)} up={len(self.up())} "
                f"sent={self.stats['sent']} delivered={self.stats['delivered']}>")
