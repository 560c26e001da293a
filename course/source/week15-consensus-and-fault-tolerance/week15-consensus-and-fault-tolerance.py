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
# # Week 15-16: Consensus & Fault Tolerance
#
# **Guide:** Phase 2, 2.2 Week 15-16 (Leader Election, Fault Tolerance, Partitioning) and the
# practical exercises "implement Raft consensus algorithm (simplified version)" and "simulate
# network partitions and observe system behavior".
#
# **Time:** about 5 hours (2 h reading and running, 3 h exercises).
#
# **Points:** 26 (five autograded exercises, 22 points; one written answer, 4 points).
#
# **Prerequisites:** week 13-14 (CAP, consistency models, quorums); Python classes and
# inheritance, `random.Random`; the simulator `archlab.sim` as introduced in week 11-14.
#
# **Reading:** Ongaro and Ousterhout, "In Search of an Understandable Consensus Algorithm"
# (USENIX ATC 2014), sections 5.1-5.4 and Figure 2; MIT 6.5840 Lab 3 (Raft) handout; Castro and
# Liskov, "Practical Byzantine Fault Tolerance" (OSDI 1999), sections 3-4; Hayashibara et al.,
# "The φ Accrual Failure Detector" (SRDS 2004); Kleppmann, *Designing Data-Intensive
# Applications*, ch. 8 ("Process pauses", "Fencing tokens") and ch. 9 ("Fault-tolerant
# consensus"); *Site Reliability Engineering*, ch. 23 "Managing Critical State".
#
# **How to use this notebook:** run the cells from top to bottom (Run → Run All Cells works).
# Every cluster here runs on the seeded simulator `archlab.sim` inside this kernel: the same
# seed replays the same run, message for message, so a failing test can be replayed and drawn.
# Write your answers where a cell says `YOUR CODE HERE`, then run the test cell below it (more
# tests, over many seeds, run when your work is graded). Back to the
# [course map](00-start-here.ipynb).

# %% [markdown]
# ## Learning objectives
#
# By the end of this notebook you can:
#
# 1. build Raft's leader election (terms, randomized timeouts, RequestVote with the up-to-date
#    log check, heartbeats), its log replication (AppendEntries consistency check, conflict
#    truncation, commit by majority of the current term only) and its persistence, and test it
#    with a seeded suite in the style of MIT 6.5840 while the four safety invariants are checked
#    after every event;
# 2. explain why crash-tolerant consensus needs n = 2f + 1 nodes and Byzantine-tolerant
#    consensus n = 3f + 1, and show an equivocating PBFT primary failing against 2f + 1 quorums
#    but succeeding against too small a cluster;
# 3. implement the φ accrual failure detector and trade detection time against false
#    suspicions, compared with a fixed heartbeat timeout;
# 4. show split brain after a process pause and stop it with fencing tokens checked by the
#    storage.

# %% [markdown]
# ### Set-up
#
# No server is needed this week: consensus is about what happens when messages are late, lost,
# duplicated or cut off, and the simulator lets us stage exactly that, reproducibly. A run is a
# priority queue of events on a simulated clock in milliseconds; `sim.trace` records every
# message and every `note` a node makes, and `sim.invariant(check)` runs `check` after every
# single event.

# %%
import math
import random
import statistics
import time

import pandas as pd
import plotly.graph_objects as go

from archlab.exercises import needs
from archlab.sim import Node, Simulator
from archlab.widgets import timeline_widget

IDS5 = ["n1", "n2", "n3", "n4", "n5"]


def solved(attempt) -> bool:
    """True when attempt() runs without reaching an unsolved exercise (NotImplementedError)."""
    try:
        attempt()
        return True
    except NotImplementedError:
        return False


# %% [markdown]
# ## Leader Election: Raft
#
# A replicated state machine keeps several servers executing the same commands in the same
# order. Raft does it with a **leader**: clients send commands to the leader, it appends them to
# its log and replicates the log to the followers; an entry is **committed** once a majority
# stores it, and then every server applies it. Time is cut into **terms** numbered 1, 2, 3...;
# each term starts with an election and has at most one leader.
#
# * Every server starts as a **follower**. If it hears nothing from a leader for an **election
#   timeout**, it becomes a **candidate**: it increments its term, votes for itself and sends
#   `RequestVote` to everyone.
# * A server grants at most **one vote per term** (first come, first served), and only to a
#   candidate whose log is **at least as up to date** as its own: the last entry's term is
#   higher, or equal with an index at least as large (§5.4.1). This is what keeps committed
#   entries: a committed entry is on a majority, any winner needs a majority of votes, the two
#   majorities share a server, and that server refuses candidates that lack the entry.
# * A candidate with votes from a majority becomes **leader** and sends heartbeats
#   (`AppendEntries`, possibly empty) every 50 ms, well inside the timeout, so followers stay
#   quiet.
# * Any message with a higher term makes the receiver adopt that term and step down to
#   follower; a message with a lower term is refused.
# * Timeouts are **randomized** (150-300 ms here): if all servers timed out together they would
#   all vote for themselves, split the vote, and do it again forever.
#
# **The API (as in 6.5840).** Our servers are `archlab.sim.Node` subclasses. `start(command)`
# asks a server to append a command and returns `(index, term, is_leader)`; `state()` returns
# `(term, is_leader)`; a server reports each entry it applies with `self.note("apply",
# index=i, command=c)`, and each role change with a note named after the role. The class below
# is the bookkeeping (given); you write the algorithm in three steps: election (Exercise 1),
# log replication (Exercise 2), persistence (Exercise 3). The log is a list of
# `{"term": t, "command": c}` with a sentinel at index 0, so real entries start at index 1,
# as in the paper. Messages are dicts with a `"type"`; a message of type `x` is handled by
# the method `on_x(src, msg)`.

# %%
ELECTION_TIMEOUT = (150.0, 300.0)    # ms, drawn anew each time the timer is reset
HEARTBEAT = 50.0                     # ms between a leader's AppendEntries rounds


class RaftBase(Node):
    """Bookkeeping shared by every step; the algorithm is in the subclasses you write."""

    def __init__(self, *args):
        super().__init__(*args)
        self.current_term, self.voted_for, self.role = 0, None, "follower"   # until on_start runs
        self.log = [{"term": 0, "command": None}]

    def on_start(self):                               # at time 0 and after every restart
        self.current_term, self.voted_for = 0, None   # persistent state (Exercise 3 saves it)
        self.log = [{"term": 0, "command": None}]     # log[0] is a sentinel
        self.restore()
        self.role = "follower"
        self.commit_index = self.last_applied = 0     # volatile state
        self.votes = set()
        self.next_index, self.match_index = {}, {}    # leader only: per peer
        self.election_timer = None
        self.reset_election_timer()

    # Persistence (Exercise 3): save / load current_term, voted_for and log in self.stable.
    def persist(self):
        pass

    def restore(self):
        pass

    def last_log(self):
        """(index, term) of the last log entry; (0, 0) for an empty log."""
        return len(self.log) - 1, self.log[-1]["term"]

    def majority(self):
        return (len(self.peers) + 1) // 2 + 1

    def set_role(self, role):
        if role != self.role:
            self.role = role
            self.note(role, term=self.current_term)

    def step_down(self, term):
        """Saw a higher term: adopt it, forget this term's vote, become a follower."""
        self.current_term, self.voted_for = term, None
        self.persist()
        self.set_role("follower")

    def state(self):
        return self.current_term, self.role == "leader"

    def start(self, command):
        return -1, self.current_term, False           # Exercise 2 makes a leader accept commands

    def apply_committed(self):
        while self.last_applied < self.commit_index:
            self.last_applied += 1
            self.note("apply", index=self.last_applied, command=self.log[self.last_applied]["command"])

    def on_message(self, src, msg):
        if msg["term"] > self.current_term:           # the rule for all servers (Figure 2)
            self.step_down(msg["term"])
        getattr(self, "on_" + msg["type"])(src, msg)

    def on_timer(self, name, data):
        if name == "election":
            self.on_election_timeout()
        elif name == "heartbeat" and self.role == "leader" and data == self.current_term:
            self.send_heartbeats()

    def on_append_reply(self, src, msg):
        pass                                          # Exercise 2


# %% [markdown]
# **The test harness** (our version of 6.5840's `config.go`). `RaftWatch` reads the trace as it
# grows and checks Raft's safety properties (Figure 3 of the paper) after **every event**:
#
# * **election safety**: at most one leader per term;
# * **log matching**: if two logs hold an entry with the same index and term, the logs are
#   identical up to that index;
# * **leader completeness**: a new leader's log holds every entry already committed;
# * **state machine safety**: no two servers apply different commands at the same index.
#
# `one(sim, watch, command, expected)` is 6.5840's `one()`: it offers the command to the servers
# in turn until one says it leads, then waits until `expected` servers applied it at the same
# index (and retries if a stale leader took it).

# %%
class RaftWatch:
    """Registers the safety invariants on `sim` and keeps who applied what."""

    def __init__(self, sim):
        self.sim, self.cursor = sim, 0
        self.leader_of_term = {}                       # term -> node
        self.applied = {i: {} for i in sim.ids}        # node -> {index: command}
        self.committed = {}                            # index -> command applied somewhere
        sim.invariant(self.check, "raft safety")

    def check(self, sim):
        while self.cursor < len(sim.trace):
            e = sim.trace[self.cursor]
            self.cursor += 1
            if e.kind != "note":
                continue
            if e.msg == "leader":
                term = e.info["term"]
                if self.leader_of_term.setdefault(term, e.node) != e.node:
                    return f"election safety: {self.leader_of_term[term]} and {e.node} both lead term {term}"
                log = sim.nodes[e.node].log
                for i, c in self.committed.items():
                    if i >= len(log) or log[i]["command"] != c:
                        return f"leader completeness: {e.node} leads term {term} without committed entry {i}"
            elif e.msg == "apply":
                i, c = e.info["index"], e.info["command"]
                self.applied[e.node][i] = c
                if self.committed.setdefault(i, c) != c:
                    return f"state machine safety: index {i} applied as {self.committed[i]!r} and as {c!r}"
        logs = [(n.id, n.log) for n in sim.nodes.values() if n is not None and hasattr(n, "log")]
        for a in range(len(logs)):
            for b in range(a + 1, len(logs)):
                (ia, x), (ib, y) = logs[a], logs[b]
                k = min(len(x), len(y)) - 1
                while k > 0 and x[k]["term"] != y[k]["term"]:
                    k -= 1
                if x[: k + 1] != y[: k + 1]:
                    return f"log matching: {ia} and {ib} agree on entry {k}'s term but differ before it"
        return None


def cluster(node_class, seed, n=5, **network):
    """A simulated cluster of `n` servers with the invariants registered."""
    sim = Simulator([f"n{i}" for i in range(1, n + 1)], node_class, seed=seed, **network)
    return sim, RaftWatch(sim)


def leaders(sim):
    """The servers that are up and believe they lead, highest term first."""
    found = [(sim.nodes[i].state()[0], i) for i in sim.up() if sim.nodes[i].state()[1]]
    return [i for _t, i in sorted(found, reverse=True)]


def one_leader(sim):
    """The single leader of the highest term in which anyone leads, or None."""
    found = [(sim.nodes[i].state()[0], i) for i in sim.up() if sim.nodes[i].state()[1]]
    if not found:
        return None
    top = max(t for t, _ in found)
    winners = [i for t, i in found if t == top]
    return winners[0] if len(winners) == 1 else None


def one(sim, watch, command, expected, timeout=3000.0):
    """Submit `command` until `expected` servers applied it at one index; returns that index."""
    deadline, turn = sim.now + timeout, 0
    while sim.now < deadline:
        index = -1
        for k in range(len(sim.ids)):
            nid = sim.ids[(turn + k) % len(sim.ids)]
            if sim.nodes[nid] is not None:
                index, _term, ok = sim.nodes[nid].start(command)
                if ok:
                    turn += k + 1              # next time, start with the server after this one
                    break
        if index > 0:
            stop = min(deadline, sim.now + 600)
            while sim.now < stop:
                sim.run(until=sim.now + 10)
                if sum(1 for a in watch.applied.values() if a.get(index) == command) >= expected:
                    return index
        else:
            sim.run(until=sim.now + 20)
    raise AssertionError(f"{command!r} was not applied by {expected} servers within {timeout:g} ms")


# %% [markdown]
# ### Exercise 1: leader election (5 points)
#
# Complete `RaftElection`. Use `self.rng` for the timeout (a node's own seeded generator), call
# `self.persist()` whenever `current_term` or `voted_for` changes and before you send the reply
# that depends on it, and use the message formats in the docstring. In this step heartbeats are
# empty `AppendEntries`; Exercise 2 fills them.

# %% nbgrader={"grade_id": "week15-consensus-and-fault-tolerance-ex01-raft-election", "solution": true}
class RaftElection(RaftBase):
    """Raft's election. Messages:
    {"type": "request_vote", "term", "last_log_index", "last_log_term"}
    {"type": "vote", "term", "granted": bool}
    {"type": "append_entries", "term", "prev_index", "prev_term", "entries": [...], "commit"}
    {"type": "append_reply", "term", "success": bool, "match": int, "hint": int}
    """

    def reset_election_timer(self):
        """Cancel the pending election timer (if any) and set a new one ("election") after a
        duration drawn uniformly from ELECTION_TIMEOUT with self.rng; keep its id in
        self.election_timer."""
        ### BEGIN SOLUTION
        if self.election_timer is not None:
            self.cancel_timer(self.election_timer)
        self.election_timer = self.set_timer(self.rng.uniform(*ELECTION_TIMEOUT), "election")
        ### END SOLUTION

    def on_election_timeout(self):
        """Always re-arm the timer. A leader does nothing else; anyone else starts an election:
        next term, vote for itself (persisted), role "candidate", votes = {self.id}, and
        broadcast request_vote with its last log index and term."""
        ### BEGIN SOLUTION
        self.reset_election_timer()
        if self.role == "leader":
            return
        self.current_term += 1
        self.voted_for = self.id
        self.persist()
        self.set_role("candidate")
        self.votes = {self.id}
        last_index, last_term = self.last_log()
        self.broadcast({"type": "request_vote", "term": self.current_term, "last_log_index": last_index,
                        "last_log_term": last_term})
        ### END SOLUTION

    def on_request_vote(self, src, msg):
        """Grant when the request is for the current term, we have not voted for someone else in
        it, and the candidate's log is at least as up to date as ours; a granted vote is
        persisted and resets the election timer. Always reply with a vote message."""
        ### BEGIN SOLUTION
        last_index, last_term = self.last_log()
        up_to_date = (msg["last_log_term"], msg["last_log_index"]) >= (last_term, last_index)
        grant = msg["term"] == self.current_term and self.voted_for in (None, src) and up_to_date
        if grant:
            self.voted_for = src
            self.persist()
            self.reset_election_timer()
        self.send(src, {"type": "vote", "term": self.current_term, "granted": grant})
        ### END SOLUTION

    def on_vote(self, src, msg):
        """Count granted votes of the current term while a candidate; a majority makes it leader."""
        ### BEGIN SOLUTION
        if self.role == "candidate" and msg["term"] == self.current_term and msg["granted"]:
            self.votes.add(src)
            if len(self.votes) >= self.majority():
                self.become_leader()
        ### END SOLUTION

    def become_leader(self):
        """Role "leader"; next_index of every peer = last log index + 1, match_index = 0; send
        heartbeats now."""
        ### BEGIN SOLUTION
        self.set_role("leader")
        last_index, _ = self.last_log()
        self.next_index = {p: last_index + 1 for p in self.peers}
        self.match_index = {p: 0 for p in self.peers}
        self.send_heartbeats()
        ### END SOLUTION

    def send_heartbeats(self):
        """send_append to every peer, then set the "heartbeat" timer after HEARTBEAT ms with
        data=self.current_term (RaftBase ignores heartbeat timers of an older term)."""
        ### BEGIN SOLUTION
        for peer in self.peers:
            self.send_append(peer)
        self.set_timer(HEARTBEAT, "heartbeat", self.current_term)
        ### END SOLUTION

    def send_append(self, peer):
        """An empty append_entries: prev_index/prev_term = our last log entry, commit = commit_index."""
        ### BEGIN SOLUTION
        last_index, last_term = self.last_log()
        self.send(peer, {"type": "append_entries", "term": self.current_term, "prev_index": last_index,
                         "prev_term": last_term, "entries": [], "commit": self.commit_index})
        ### END SOLUTION

    def on_append_entries(self, src, msg):
        """From an older term: reply append_reply with success False (match 0, hint 0), so the
        stale leader learns the new term. Otherwise a leader of our term exists: become
        follower (a candidate gives up) and reset the election timer."""
        ### BEGIN SOLUTION
        if msg["term"] < self.current_term:
            self.send(src, {"type": "append_reply", "term": self.current_term, "success": False, "match": 0,
                            "hint": 0})
            return
        self.set_role("follower")
        self.reset_election_timer()
        ### END SOLUTION


# %% nbgrader={"grade_id": "week15-consensus-and-fault-tolerance-ex01-raft-election-tests", "grade": true, "points": 2}
_sim, _watch = cluster(RaftElection, seed=1)
assert _sim.run_until(lambda s: one_leader(s) is not None, timeout=1500), "no leader within 1.5 s"
_first = one_leader(_sim)
_term = _sim.nodes[_first].state()[0]
_sim.run(until=_sim.now + 2000)                   # a reliable network: the leader must stay
assert one_leader(_sim) == _first and _sim.nodes[_first].state()[0] == _term, "spurious re-election"
_sim.isolate(_first)
assert _sim.run_until(lambda s: (lambda L: L is not None and L != _first)(one_leader(s)), timeout=1500), \
    "no new leader after the leader was cut off"
# The up-to-date check: a candidate whose last entry has an older term gets no vote.
_v, _ = cluster(RaftElection, seed=2, n=3)
_v.run(until=0)
_n1 = _v.nodes["n1"]
_n1.log.append({"term": 2, "command": "x"})
_n1.on_message("n2", {"type": "request_vote", "term": 3, "last_log_index": 5, "last_log_term": 1})
_reply = [e.msg for e in _v.trace if e.kind in ("send", "drop") and e.node == "n1" and e.msg["type"] == "vote"][-1]
assert _reply["granted"] is False and _reply["term"] == 3, _reply
print(f"leader {_first} elected in term {_term}; re-election after isolation works; stale log refused")

# %% nbgrader={"grade_id": "week15-consensus-and-fault-tolerance-ex01-raft-election-hidden", "grade": true, "points": 3}
assert cluster(RaftElection, seed=3)[0].run_until(lambda s: one_leader(s) is not None, timeout=1500)
### BEGIN HIDDEN TESTS
def _ex1_suite():
    def _watch(sim):
        seen = {"cursor": 0, "leaders": {}}

        def _check(s):
            while seen["cursor"] < len(s.trace):
                e = s.trace[seen["cursor"]]
                seen["cursor"] += 1
                if e.kind == "note" and e.msg == "leader":
                    if seen["leaders"].setdefault(e.info["term"], e.node) != e.node:
                        return f"two leaders in term {e.info['term']}"
            return None
        sim.invariant(_check, "election safety")
        return seen

    def _leader(sim, among=None):
        found = [(sim.nodes[i].state()[0], i) for i in (among or sim.up())
                 if sim.nodes[i] is not None and sim.nodes[i].state()[1]]
        if not found:
            return None
        top = max(t for t, _ in found)
        w = [i for t, i in found if t == top]
        return w[0] if len(w) == 1 else None

    ids = ["n1", "n2", "n3", "n4", "n5"]
    for seed in range(100, 125):
        sim = Simulator(ids, RaftElection, seed=seed, latency=(1, 10))
        _watch(sim)
        assert sim.run_until(lambda s: _leader(s) is not None, timeout=1500), f"seed {seed}: no initial leader"
        first = _leader(sim)
        t0 = sim.nodes[first].state()[0]
        sim.run(until=sim.now + 1500)
        assert _leader(sim) == first and sim.nodes[first].state()[0] == t0, f"seed {seed}: leader changed"
        assert type(t0) is int and all(type(sim.nodes[i].state()[0]) is int for i in ids)
        assert len({sim.nodes[i].state()[0] for i in ids}) == 1, f"seed {seed}: terms disagree"
        # the leader is cut off: the other four elect a new one; on heal the old one steps down
        sim.isolate(first)
        rest = [i for i in ids if i != first]
        assert sim.run_until(lambda s, rest=rest: _leader(s, rest) is not None, timeout=1500), \
            f"seed {seed}: no re-election"
        second = _leader(sim, rest)
        assert sim.nodes[second].state()[0] > t0
        sim.heal()
        assert sim.run_until(lambda s, old=first: not s.nodes[old].state()[1] and _leader(s) is not None,
                             timeout=500), f"seed {seed}: old leader did not step down"
        # only two of five connected: no leader may be elected there
        lead = _leader(sim)
        cut = [lead, next(i for i in ids if i != lead)]
        sim.partition(cut, [i for i in ids if i not in cut])
        n_leader_notes = len([e for e in sim.trace if e.kind == "note" and e.msg == "leader"])
        sim.run(until=sim.now + 1500)
        assert _leader(sim, [i for i in ids if i not in cut]) is not None, f"seed {seed}: majority has no leader"
        late = [e for e in sim.trace if e.kind == "note" and e.msg == "leader"][n_leader_notes:]
        assert all(e.node not in cut for e in late), f"seed {seed}: a minority of 2 elected a leader"
    # lossy network: still exactly one leader per term, and some leader within the bound
    for seed in range(200, 210):
        sim = Simulator(ids, RaftElection, seed=seed, latency=(1, 30), loss=0.1, duplicate=0.05)
        _watch(sim)
        assert sim.run_until(lambda s: _leader(s) is not None, timeout=2500), f"seed {seed}: no leader, lossy"
        sim.run(until=3000)

    # exact vectors on one voter
    def _vote(setup, request):
        sim = Simulator(["n1", "n2", "n3"], RaftElection, seed=7)
        sim.run(until=0)
        node = sim.nodes["n1"]
        setup(node)
        node.on_message(request.pop("src"), {"type": "request_vote", **request})
        votes = [e.msg for e in sim.trace if e.kind in ("send", "drop") and e.node == "n1" and e.msg["type"] == "vote"]
        assert len(votes) >= 1
        return votes[-1], node

    def _log(*terms):
        return lambda n: n.log.extend({"term": t, "command": f"c{k}"} for k, t in enumerate(terms))

    for terms, req, want in [
        ((1, 1, 2), {"src": "n2", "term": 3, "last_log_index": 9, "last_log_term": 1}, False),
        ((1, 1, 2), {"src": "n2", "term": 3, "last_log_index": 2, "last_log_term": 2}, False),
        ((1, 1, 2), {"src": "n2", "term": 3, "last_log_index": 3, "last_log_term": 2}, True),
        ((1, 1, 2), {"src": "n3", "term": 4, "last_log_index": 1, "last_log_term": 3}, True),
        ((), {"src": "n2", "term": 1, "last_log_index": 0, "last_log_term": 0}, True),
        ((4,), {"src": "n3", "term": 5, "last_log_index": 0, "last_log_term": 0}, False),
    ]:
        reply, node = _vote(_log(*terms), dict(req))
        assert reply["granted"] is want, (terms, req, reply)
        assert reply["term"] == req["term"] and node.current_term == req["term"]
        assert (node.voted_for == req["src"]) is want

    def _voted(node):
        node.current_term, node.voted_for = 3, "n2"

    reply, node = _vote(_voted, {"src": "n3", "term": 3, "last_log_index": 0, "last_log_term": 0})
    assert reply["granted"] is False and node.voted_for == "n2", "two votes in one term"
    reply, node = _vote(_voted, {"src": "n2", "term": 3, "last_log_index": 0, "last_log_term": 0})
    assert reply["granted"] is True, "a repeated request from the same candidate is granted again"
    reply, node = _vote(_voted, {"src": "n3", "term": 2, "last_log_index": 0, "last_log_term": 0})
    assert reply["granted"] is False and reply["term"] == 3, "a vote for an old term"
    # randomized timeouts: different nodes draw different durations
    sim = Simulator(ids, RaftElection, seed=11)
    sim.run(until=0)
    timers = sorted(e[0] for e in sim._queue if e[2] == "timer" and e[3][3] == "election")
    assert len(timers) == 5 and len(set(timers)) == 5 and 150 <= timers[0] and timers[-1] <= 300, timers


_ex1_suite()
### END HIDDEN TESTS

# %% [markdown]
# **Watching an election.** Five servers on a network with 1-10 ms latency: the first to time
# out asks for votes and wins. At 1000 ms we cut the leader off with one follower; the other
# three elect a new leader in a higher term, while the old leader, on the minority side, still
# believes it leads: it cannot know it was replaced. At 1800 ms the network heals, the old
# leader hears the higher term and steps down. Drag the window through the run; diamonds are
# role changes (hover for the term), red dotted lines are messages lost to the partition.

# %%
needs(solved(lambda: Simulator(IDS5, RaftElection, seed=0).run(until=300)), "Exercise 1")
demo, demo_watch = cluster(RaftElection, seed=4)
demo.run(until=1000)
old = one_leader(demo)
demo.partition([old, next(i for i in IDS5 if i != old)], [i for i in IDS5 if i != old][1:])
demo.run(until=1800)
print("at 1800 ms, servers that believe they lead (term):", {i: demo.nodes[i].state()[0] for i in leaders(demo)})
demo.heal()
demo.run(until=2200)
print("after the heal:", {i: demo.nodes[i].state()[0] for i in leaders(demo)})
roles = pd.DataFrame([{"time (ms)": round(e.time, 1), "node": e.node, "became": e.msg, "term": e.info["term"]}
                      for e in demo.notes() if e.msg in ("follower", "candidate", "leader")])
roles

# %%
needs(solved(lambda: Simulator(IDS5, RaftElection, seed=0).run(until=300)), "Exercise 1")
timeline_widget(demo, width=400)

# %% [markdown]
# Two leaders existed at once (in different terms): that is not a violation of election safety,
# which is per term, and it is harmless as long as the stale leader cannot *commit* anything:
# it reaches only 2 of 5 servers. Exercise 2 makes that concrete.

# %% [markdown]
# ### Log replication and the commit rule
#
# The leader sends each follower the entries from `next_index[peer]` on, together with
# `prev_index = next_index - 1` and the term of that entry. The follower accepts only if its
# own log has an entry at `prev_index` with that term (the **consistency check**); by induction
# this gives log matching. If the check fails, the follower says so (with a `hint`: the index
# to retry from) and the leader backs `next_index` up and resends. An accepted entry that
# conflicts with an existing one (same index, different term) **deletes that entry and all
# that follow**: those were never committed. Entries that agree are kept; a delayed, shorter
# `AppendEntries` must not cut the log.
#
# The leader commits index N when a majority stores it **and log[N] has the current term**.
# Counting replicas of an entry from an *older* term is unsafe (the paper's Figure 8): such an
# entry can be on a majority and still be overwritten by a later leader that never had it.
# Once a current-term entry is committed, everything before it is committed too.

# %% [markdown]
# ### Exercise 2: log replication (6 points)
#
# Complete `RaftLog`. Follow the paper's Figure 2; the docstrings give our message fields.

# %% nbgrader={"grade_id": "week15-consensus-and-fault-tolerance-ex02-raft-log", "solution": true}
class RaftLog(RaftElection):
    """Raft with log replication (on top of your election)."""

    def start(self, command):
        """A leader appends {"term": current_term, "command": command}, persists, sends
        send_append to every peer and returns (index, term, True); others return
        (-1, current_term, False)."""
        ### BEGIN SOLUTION
        if self.role != "leader":
            return -1, self.current_term, False
        self.log.append({"term": self.current_term, "command": command})
        self.persist()
        for peer in self.peers:
            self.send_append(peer)
        return len(self.log) - 1, self.current_term, True
        ### END SOLUTION

    def send_append(self, peer):
        """append_entries with prev_index = next_index[peer] - 1, its term, the entries after it,
        and commit = commit_index."""
        ### BEGIN SOLUTION
        prev = self.next_index[peer] - 1
        self.send(peer, {"type": "append_entries", "term": self.current_term, "prev_index": prev,
                         "prev_term": self.log[prev]["term"], "entries": self.log[prev + 1:],
                         "commit": self.commit_index})
        ### END SOLUTION

    def on_append_entries(self, src, msg):
        """Refuse an older term (success False, match 0, hint 0). Otherwise follower + reset the
        timer; if log has no entry at prev_index with prev_term, reply success False with
        hint = min(prev_index, last log index). Else merge the entries (truncate at the first
        conflict, append what is missing, keep what agrees), persist, advance commit_index to
        min(commit, prev_index + len(entries)) if that is larger, apply, and reply success True
        with match = prev_index + len(entries)."""
        ### BEGIN SOLUTION
        if msg["term"] < self.current_term:
            self.send(src, {"type": "append_reply", "term": self.current_term, "success": False, "match": 0,
                            "hint": 0})
            return
        self.set_role("follower")
        self.reset_election_timer()
        prev = msg["prev_index"]
        if prev >= len(self.log) or self.log[prev]["term"] != msg["prev_term"]:
            self.send(src, {"type": "append_reply", "term": self.current_term, "success": False, "match": 0,
                            "hint": min(prev, len(self.log) - 1)})
            return
        for k, entry in enumerate(msg["entries"]):
            index = prev + 1 + k
            if index < len(self.log) and self.log[index]["term"] != entry["term"]:
                del self.log[index:]
            if index >= len(self.log):
                self.log.append(entry)
        self.persist()
        match = prev + len(msg["entries"])
        if min(msg["commit"], match) > self.commit_index:
            self.commit_index = min(msg["commit"], match)
            self.apply_committed()
        self.send(src, {"type": "append_reply", "term": self.current_term, "success": True, "match": match,
                        "hint": match + 1})
        ### END SOLUTION

    def on_append_reply(self, src, msg):
        """Leader of msg's term only. Success: match_index[src] = max(old, match), next_index =
        match_index + 1, advance_commit(). Failure: next_index[src] = max(1, min(next_index - 1,
        hint)) and send_append(src) again."""
        ### BEGIN SOLUTION
        if self.role != "leader" or msg["term"] != self.current_term:
            return
        if msg["success"]:
            self.match_index[src] = max(self.match_index[src], msg["match"])
            self.next_index[src] = self.match_index[src] + 1
            self.advance_commit()
        else:
            self.next_index[src] = max(1, min(self.next_index[src] - 1, msg["hint"]))
            self.send_append(src)
        ### END SOLUTION

    def advance_commit(self):
        """The largest N > commit_index with log[N] of the current term stored by a majority
        (the leader counts itself) becomes commit_index; then apply_committed()."""
        ### BEGIN SOLUTION
        for n in range(len(self.log) - 1, self.commit_index, -1):
            if self.log[n]["term"] != self.current_term:
                break
            if 1 + sum(1 for p in self.peers if self.match_index[p] >= n) >= self.majority():
                self.commit_index = n
                self.apply_committed()
                break
        ### END SOLUTION


# %% nbgrader={"grade_id": "week15-consensus-and-fault-tolerance-ex02-raft-log-tests", "grade": true, "points": 2}
_sim, _watch = cluster(RaftLog, seed=5)
_sim.run_until(lambda s: one_leader(s) is not None, timeout=1500)
for _c in (101, 102, 103):
    _i = one(_sim, _watch, _c, expected=5)
    assert _watch.applied["n1"][_i] == _c
assert [len(_sim.nodes[i].log) for i in IDS5] == [4] * 5
# one follower cut off: the other four still agree; after the heal it catches up
_lead = one_leader(_sim)
_off = next(i for i in IDS5 if i != _lead)
_sim.isolate(_off)
one(_sim, _watch, 104, expected=4)
_sim.heal()
one(_sim, _watch, 105, expected=5)
assert _watch.applied[_off].get(4) == 104
print("agreement, failure of a follower and catch-up: ok")

# %% nbgrader={"grade_id": "week15-consensus-and-fault-tolerance-ex02-raft-log-hidden", "grade": true, "points": 4}
assert type(Simulator(IDS5, RaftLog, seed=3).run(until=400)) is int
### BEGIN HIDDEN TESTS
def _ex2_suite():
    class _W:
        def __init__(self, sim):
            self.cursor, self.lead, self.applied, self.committed = 0, {}, {i: {} for i in sim.ids}, {}
            sim.invariant(self.check, "raft safety")

        def check(self, sim):
            while self.cursor < len(sim.trace):
                e = sim.trace[self.cursor]
                self.cursor += 1
                if e.kind != "note":
                    continue
                if e.msg == "leader":
                    if self.lead.setdefault(e.info["term"], e.node) != e.node:
                        return "election safety"
                    log = sim.nodes[e.node].log
                    if any(i >= len(log) or log[i]["command"] != c for i, c in self.committed.items()):
                        return "leader completeness"
                elif e.msg == "apply":
                    i, c = e.info["index"], e.info["command"]
                    self.applied[e.node][i] = c
                    if self.committed.setdefault(i, c) != c:
                        return f"state machine safety at index {i}"
            logs = [n.log for n in sim.nodes.values() if n is not None]
            for a in range(len(logs)):
                for b in range(a + 1, len(logs)):
                    x, y = logs[a], logs[b]
                    k = min(len(x), len(y)) - 1
                    while k > 0 and x[k]["term"] != y[k]["term"]:
                        k -= 1
                    if x[: k + 1] != y[: k + 1]:
                        return "log matching"
            return None

        def count(self, index, command):
            return sum(1 for a in self.applied.values() if a.get(index) == command)

    def _one(sim, w, cmd, expected, timeout=4000.0):
        deadline, turn = sim.now + timeout, 0
        while sim.now < deadline:
            index = -1
            for k in range(len(sim.ids)):
                node = sim.nodes[sim.ids[(turn + k) % len(sim.ids)]]
                if node is not None:
                    index, term, ok = node.start(cmd)
                    assert type(ok) is bool and type(index) is int and type(term) is int
                    if ok:
                        turn += k + 1
                        break
            if index > 0:
                stop = min(deadline, sim.now + 600)
                while sim.now < stop:
                    sim.run(until=sim.now + 10)
                    if w.count(index, cmd) >= expected:
                        return index
            else:
                sim.run(until=sim.now + 20)
        raise AssertionError(f"seed {sim.seed}: {cmd!r} not applied by {expected}")

    def _leader(sim):
        found = [(sim.nodes[i].state()[0], i) for i in sim.up() if sim.nodes[i].state()[1]]
        if not found:
            return None
        top = max(t for t, _ in found)
        w = [i for t, i in found if t == top]
        return w[0] if len(w) == 1 else None

    ids = ["n1", "n2", "n3", "n4", "n5"]
    for seed in range(300, 312):
        # basic agreement, then no agreement without a majority, then agreement after reconnect
        sim = Simulator(ids, RaftLog, seed=seed, latency=(1, 10))
        w = _W(sim)
        for c in range(1, 4):
            assert _one(sim, w, 1000 * seed + c, 5) == c
        lead = _leader(sim)
        cut = [i for i in ids if i != lead][:3]
        sim.partition(cut)
        index, term, ok = sim.nodes[lead].start(("lost", seed))
        assert ok is True and index == 4
        sim.run(until=sim.now + 1000)
        assert w.count(4, ("lost", seed)) == 0, f"seed {seed}: committed without a majority"
        assert all(len(a) <= 3 or a.get(4) != ("lost", seed) for a in w.applied.values())
        sim.heal()
        i = _one(sim, w, ("after", seed), 5)
        assert i >= 4 and all(a.get(i) == ("after", seed) for a in w.applied.values())
    for seed in range(320, 326):
        # rejoin: a partitioned leader takes entries it cannot commit; they must be discarded
        sim = Simulator(ids, RaftLog, seed=seed, latency=(1, 10))
        w = _W(sim)
        _one(sim, w, "a", 5)
        old = _leader(sim)
        sim.isolate(old)
        for k in range(3):
            sim.nodes[old].start(f"stale-{k}")
        _one(sim, w, "b", 4)
        new = _leader(sim)
        sim.isolate(new)
        sim.partition([new], [i for i in ids if i != new])
        sim.heal()
        sim.partition([new])
        _one(sim, w, "c", 4)
        sim.heal()
        _one(sim, w, "d", 5)
        assert not any(str(c).startswith("stale") for a in w.applied.values() for c in a.values())
        logs = [[e["command"] for e in sim.nodes[i].log] for i in ids]
        assert all(x == logs[0] for x in logs), f"seed {seed}: logs differ after rejoin"
    for seed in range(340, 346):
        # unreliable network: loss, duplication, reordering
        sim = Simulator(ids, RaftLog, seed=seed, latency=(1, 40), loss=0.1, duplicate=0.1)
        w = _W(sim)
        for c in range(8):
            _one(sim, w, f"u{seed}-{c}", 5, timeout=6000)
        sim.run(until=sim.now + 500)

    # exact vectors. Figure 8: an older-term entry on a majority is not committed by counting.
    sim = Simulator(["n1", "n2", "n3", "n4", "n5"], RaftLog, seed=9)
    sim.run(until=0)
    lead = sim.nodes["n1"]
    lead.current_term, lead.role = 4, "leader"
    lead.log += [{"term": 2, "command": "x"}]
    lead.next_index = {p: 2 for p in lead.peers}
    lead.match_index = {p: 0 for p in lead.peers}
    for p in ("n2", "n3"):
        lead.on_message(p, {"type": "append_reply", "term": 4, "success": True, "match": 1, "hint": 2})
    assert lead.commit_index == 0, "an entry of term 2 committed by counting replicas in term 4 (Figure 8)"
    assert lead.match_index["n2"] == 1 and lead.next_index["n2"] == 2
    lead.log += [{"term": 4, "command": "y"}]
    for p in ("n2", "n4"):
        lead.on_message(p, {"type": "append_reply", "term": 4, "success": True, "match": 2, "hint": 3})
    assert lead.commit_index == 2 and lead.last_applied == 2, "a current-term entry on a majority commits all before"
    lead.on_message("n5", {"type": "append_reply", "term": 4, "success": False, "match": 0, "hint": 1})
    assert lead.next_index["n5"] == 1
    # follower merging: truncate at a conflict, keep what agrees, ignore a stale shorter message
    sim = Simulator(["n1", "n2", "n3"], RaftLog, seed=10)
    sim.run(until=0)
    f = sim.nodes["n2"]
    f.log += [{"term": 1, "command": "a"}, {"term": 1, "command": "b"}, {"term": 2, "command": "c"}]
    f.on_message("n1", {"type": "append_entries", "term": 3, "prev_index": 1, "prev_term": 1,
                        "entries": [{"term": 3, "command": "x"}], "commit": 0})
    assert [e["command"] for e in f.log] == [None, "a", "x"], f.log
    f.on_message("n1", {"type": "append_entries", "term": 3, "prev_index": 2, "prev_term": 3,
                        "entries": [{"term": 3, "command": "y"}, {"term": 3, "command": "z"}], "commit": 2})
    f.on_message("n1", {"type": "append_entries", "term": 3, "prev_index": 1, "prev_term": 1,
                        "entries": [{"term": 3, "command": "x"}], "commit": 2})
    assert [e["command"] for e in f.log] == [None, "a", "x", "y", "z"], "a delayed message cut the log"
    assert f.commit_index == 2 and f.last_applied == 2
    f.on_message("n1", {"type": "append_entries", "term": 3, "prev_index": 7, "prev_term": 3, "entries": [],
                        "commit": 2})
    replies = [e.msg for e in sim.trace if e.kind in ("send", "drop") and e.node == "n2"
               and e.msg["type"] == "append_reply"]
    assert [r["success"] for r in replies] == [True, True, True, False] and replies[-1]["hint"] == 4
    assert [r["match"] for r in replies[:3]] == [2, 4, 2]


_ex2_suite()
### END HIDDEN TESTS

# %% [markdown]
# ### Exercise 3: persistence (4 points)
#
# A server that crashes loses its memory; `self.stable` is its disk. Raft must keep three
# things on disk: `current_term` (or a restarted server could go back to an old term and vote
# in it again), `voted_for` (or it could vote twice in one term and let two leaders win it) and
# the `log` (or a committed entry could lose its majority). They must be written **before**
# the reply that depends on them leaves: a vote reply after `voted_for` is saved, a success
# reply after the entries are saved. Your code already calls `persist()` at those points.
# Complete `Raft`: `persist` saves the three, `restore` loads them when present (it is called
# by `on_start`, also after a restart). Store a copy of the log, not the list itself.

# %% nbgrader={"grade_id": "week15-consensus-and-fault-tolerance-ex03-raft-persist", "solution": true}
class Raft(RaftLog):
    """Raft with persistent state: survives crashes of any number of servers."""

    def persist(self):
        """Save current_term, voted_for and a copy of log in self.stable."""
        ### BEGIN SOLUTION
        self.stable["current_term"] = self.current_term
        self.stable["voted_for"] = self.voted_for
        self.stable["log"] = list(self.log)
        ### END SOLUTION

    def restore(self):
        """Load them back when the stable storage holds them (a fresh server keeps the defaults)."""
        ### BEGIN SOLUTION
        if "current_term" in self.stable:
            self.current_term = self.stable["current_term"]
            self.voted_for = self.stable["voted_for"]
            self.log = list(self.stable["log"])
        ### END SOLUTION


# %% nbgrader={"grade_id": "week15-consensus-and-fault-tolerance-ex03-raft-persist-tests", "grade": true, "points": 2}
_sim, _watch = cluster(Raft, seed=6)
for _c in ("p1", "p2"):
    one(_sim, _watch, _c, expected=5)
for _i in IDS5:
    _sim.crash(_i)
for _i in IDS5:
    _sim.restart(_i)
assert all([e["command"] for e in _sim.nodes[i].log] == [None, "p1", "p2"] for i in IDS5)
one(_sim, _watch, "p3", expected=5)
assert _sim.stable_of("n1")["log"] is not _sim.nodes["n1"].log
print("the cluster survives a crash of every server:", [e["command"] for e in _sim.nodes["n3"].log])

# %% nbgrader={"grade_id": "week15-consensus-and-fault-tolerance-ex03-raft-persist-hidden", "grade": true, "points": 2}
assert type(Simulator(IDS5, Raft, seed=3).run(until=400)) is int
### BEGIN HIDDEN TESTS
def _ex3_suite():
    # a vote survives a restart: no second vote in the same term
    sim = Simulator(["n1", "n2", "n3"], Raft, seed=12)
    sim.run(until=0)
    sim.nodes["n1"].on_message("n2", {"type": "request_vote", "term": 5, "last_log_index": 0, "last_log_term": 0})
    st = sim.stable_of("n1")
    assert st["current_term"] == 5 and st["voted_for"] == "n2", "the vote was not on disk when the reply left"
    sim.crash("n1")
    sim.restart("n1")
    node = sim.nodes["n1"]
    assert node.current_term == 5 and node.voted_for == "n2"
    node.on_message("n3", {"type": "request_vote", "term": 5, "last_log_index": 0, "last_log_term": 0})
    votes = [e.msg for e in sim.trace if e.kind in ("send", "drop") and e.node == "n1" and e.msg["type"] == "vote"]
    assert [v["granted"] for v in votes] == [True, False], "voted twice in term 5 across a restart"
    # the log is saved as a copy and restored
    sim.nodes["n1"].on_message("n2", {"type": "append_entries", "term": 5, "prev_index": 0, "prev_term": 0,
                                      "entries": [{"term": 5, "command": "k"}], "commit": 0})
    assert [e["command"] for e in sim.stable_of("n1")["log"]] == [None, "k"]
    assert sim.stable_of("n1")["log"] is not sim.nodes["n1"].log
    sim.crash("n1")
    sim.restart("n1")
    assert [e["command"] for e in sim.nodes["n1"].log] == [None, "k"] and sim.nodes["n1"].commit_index == 0

    # seeded crash/restart storms on a lossy network, invariants after every event
    class _W:
        def __init__(self, sim):
            self.cursor, self.lead, self.applied, self.committed = 0, {}, {i: {} for i in sim.ids}, {}
            sim.invariant(self.check, "raft safety")

        def check(self, sim):
            while self.cursor < len(sim.trace):
                e = sim.trace[self.cursor]
                self.cursor += 1
                if e.kind == "note" and e.msg == "leader":
                    if self.lead.setdefault(e.info["term"], e.node) != e.node:
                        return "election safety"
                    log = sim.nodes[e.node].log
                    if any(i >= len(log) or log[i]["command"] != c for i, c in self.committed.items()):
                        return "leader completeness"
                elif e.kind == "note" and e.msg == "apply":
                    i, c = e.info["index"], e.info["command"]
                    self.applied[e.node][i] = c
                    if self.committed.setdefault(i, c) != c:
                        return "state machine safety"
            return None

    ids = ["n1", "n2", "n3", "n4", "n5"]
    for seed in range(400, 412):
        sim = Simulator(ids, Raft, seed=seed, latency=(1, 20), loss=0.05)
        w = _W(sim)
        rng = random.Random(seed)
        for k in range(12):
            for nid in sim.up():
                if sim.nodes[nid].state()[1]:
                    sim.nodes[nid].start(f"s{seed}-{k}")
            sim.run(until=sim.now + rng.uniform(50, 400))
            if rng.random() < 0.5:
                lead = [i for i in sim.up() if sim.nodes[i].state()[1]]
                if lead:
                    sim.crash(lead[0])
            if len(sim.up()) < 3:
                for nid in ids:
                    if rng.random() < 0.7:
                        sim.restart(nid)
        for nid in ids:
            sim.crash(nid)
        for nid in ids:
            sim.restart(nid)
        committed = dict(w.committed)
        for nid in ids:
            log = sim.nodes[nid].log
            held = sum(1 for i, c in committed.items() if i < len(log) and log[i]["command"] == c)
            assert held <= len(committed)
        on_majority = [i for i, c in committed.items()
                       if sum(1 for n in ids if i < len(sim.nodes[n].log) and sim.nodes[n].log[i]["command"] == c) >= 3]
        assert len(on_majority) == len(committed), f"seed {seed}: a committed entry lost its majority on disk"
        deadline = sim.now + 5000
        done = False
        while sim.now < deadline and not done:
            for nid in sim.up():
                index, _t, ok = sim.nodes[nid].start(f"final-{seed}")
                if ok:
                    stop = sim.now + 800
                    while sim.now < stop and not done:
                        sim.run(until=sim.now + 10)
                        done = sum(1 for a in w.applied.values() if a.get(index) == f"final-{seed}") == 5
                    break
            else:
                sim.run(until=sim.now + 20)
        assert done, f"seed {seed}: no agreement after restarting everyone"


_ex3_suite()
### END HIDDEN TESTS

# %% [markdown]
# ### The suite, run like 6.5840's
#
# The grading runs the tests above over many seeds. Here is the same idea in the open: 20 seeds
# of a five-server cluster with 5% loss, 5% duplication and 1-30 ms jitter (so messages
# overtake each other), a partition that isolates the leader and one follower, a crash, a full
# restart, and a client submitting commands all along; the four invariants are checked after
# every event. The table counts what happened and the simulated and real time it took.

# %%
needs(solved(lambda: Simulator(IDS5, Raft, seed=0).run(until=300)), "Exercises 1-3")


def scenario(seed):
    sim, watch = cluster(Raft, seed=seed, latency=(1, 30), loss=0.05, duplicate=0.05)
    rng = random.Random(seed)
    first = one(sim, watch, f"{seed}-0", expected=5)
    lead = one_leader(sim)
    cut = [lead, rng.choice([i for i in IDS5 if i != lead])]
    sim.partition(cut)
    one(sim, watch, f"{seed}-1", expected=3)
    sim.heal()
    sim.crash(rng.choice(IDS5))
    one(sim, watch, f"{seed}-2", expected=4)
    for i in IDS5:
        sim.crash(i)
    for i in IDS5:
        sim.restart(i)
    last = one(sim, watch, f"{seed}-3", expected=5)
    return {"seed": seed, "first index": first, "last index": last, "terms": max(watch.leader_of_term),
            "messages": sim.stats["sent"], "lost": sim.stats["dropped"], "simulated ms": round(sim.now),
            "events checked": len(sim.trace)}


t0 = time.perf_counter()
suite = pd.DataFrame([scenario(s) for s in range(20)])
wall = time.perf_counter() - t0
print(f"20 seeds, every invariant held after every event; {suite['simulated ms'].sum() / 1000:.0f} simulated "
      f"seconds in {wall:.1f} s of real time ({suite['simulated ms'].sum() / 1000 / wall:.0f}x faster than real time)")
suite.describe().loc[["mean", "min", "max"]].round(1)

# %% [markdown]
# The speed-up is what makes this kind of testing practical: a real cluster would need that
# many seconds per scenario and could not replay a failure; here any failing seed replays
# exactly and can be drawn with `timeline_widget`.
#
# **What the simplifications leave out.** No log compaction or snapshots, no membership
# changes, no client sessions (a retried command may be applied twice; real systems
# deduplicate with client ids and sequence numbers), and reads go through the log (a leader
# may not answer reads from its own state without a lease or a round of heartbeats, since it
# may already be deposed, as the demo showed).

# %% [markdown]
# ## Fault Tolerance: Byzantine faults and failure detection
#
# ### How many nodes: 2f + 1 and 3f + 1
#
# **Crash faults** (a node stops, or its messages are lost): Raft needs a majority, `f + 1` of
# `n = 2f + 1`. Two majorities always share a node, and that node, being correct, carries the
# information (a vote, a committed entry) from one quorum to the other.
#
# **Byzantine faults** (a node lies: sends different values to different peers, forges
# votes): the shared node may be the liar. PBFT (Castro and Liskov) uses `n = 3f + 1` and
# quorums of `2f + 1`. Two quorums then share at least `2(2f + 1) - (3f + 1) = f + 1` nodes, so
# at least one **honest** node is in both, and an honest node never prepares two values for
# one slot. A quorum must also be reachable while f nodes are silent: `n - f >= 2f + 1`. Both
# conditions together need `n >= 3f + 1`.

# %%
sizes = pd.DataFrame([{"f": f, "crash: n = 2f+1": 2 * f + 1, "majority": f + 1,
                       "BFT: n = 3f+1": 3 * f + 1, "quorum 2f+1": 2 * f + 1,
                       "quorum overlap 2q-n": 2 * (2 * f + 1) - (3 * f + 1),
                       "overlap if n = 3f, q = 2f": 2 * (2 * f) - 3 * f} for f in range(1, 5)])
assert (sizes["quorum overlap 2q-n"] == sizes["f"] + 1).all() and (sizes["overlap if n = 3f, q = 2f"] == sizes["f"]).all()
sizes

# %% [markdown]
# With `n = 3f` the best quorum that stays live is `n - f = 2f`, and two such quorums overlap in
# only `f` nodes, which may all be Byzantine.
#
# ### An equivocating primary
#
# In PBFT's normal case the primary sends `PRE-PREPARE(v)` for a sequence number; each replica
# broadcasts `PREPARE(v)`; a replica that has the pre-prepare and `2f + 1` matching prepares
# (its own included) is *prepared* and broadcasts `COMMIT(v)`; with `2f + 1` matching commits
# it executes v. Below the primary is Byzantine and **equivocates**: it sends value A to a random
# part of the replicas and B to the rest, and its f - 1 Byzantine accomplices (for f > 1) back
# each receiver with prepares and commits for whatever that receiver was told. Over 200 seeds
# per size we count runs in which two honest replicas execute different values.

# %%
class PbftReplica(Node):
    """One PBFT slot. Byzantine replicas (the first f, the primary among them) equivocate."""

    def on_start(self):
        self.f = self.sim.f
        self.q = self.sim.quorum
        self.byzantine = self.id in self.sim.ids[: self.f]
        self.value, self.prepares, self.commits, self.prepared, self.done = None, {}, {}, False, False
        if self.id == self.sim.ids[0]:                          # the primary equivocates
            told = {p: self.rng.choice("AB") for p in self.peers}
            self.sim.told = told
            for p, v in told.items():
                self.send(p, {"type": "pre-prepare", "v": v})

    def on_message(self, src, msg):
        if self.byzantine:
            return                                              # the liars act in accomplice()
        v = msg["v"]
        if msg["type"] == "pre-prepare" and self.value is None:
            self.value = v
            self.prepares.setdefault(v, set()).add(self.id)
            self.broadcast({"type": "prepare", "v": v})
            self.accomplices(v)
        elif msg["type"] == "prepare":
            self.prepares.setdefault(v, set()).add(src)
        elif msg["type"] == "commit":
            self.commits.setdefault(v, set()).add(src)
        self.progress()

    def accomplices(self, v):
        for liar in self.sim.ids[: self.f]:                     # each liar confirms what this replica was told
            self.sim.nodes[liar].send(self.id, {"type": "prepare", "v": v})
            self.sim.nodes[liar].send(self.id, {"type": "commit", "v": v})

    def progress(self):
        v = self.value
        if v is None:
            return
        if not self.prepared and len(self.prepares.get(v, ())) >= self.q:
            self.prepared = True
            self.commits.setdefault(v, set()).add(self.id)
            self.broadcast({"type": "commit", "v": v})
        if self.prepared and not self.done and len(self.commits.get(v, ())) >= self.q:
            self.done = True
            self.note("execute", v=v)


def pbft_slot(seed, n, f, quorum):
    sim = Simulator([f"r{i}" for i in range(n)], PbftReplica, seed=seed, latency=(1, 20))
    sim.f, sim.quorum = f, quorum
    sim.run(until=500)
    return {e.node: e.info["v"] for e in sim.notes("execute")}


rows = []
for f in (1, 2):
    for n, q, label in ((3 * f + 1, 2 * f + 1, "n = 3f+1, q = 2f+1"), (3 * f, 2 * f, "n = 3f, q = 2f")):
        runs = [pbft_slot(seed, n, f, q) for seed in range(200)]
        rows.append({"f": f, "cluster": label, "n": n, "quorum": q,
                     "runs with conflicting executions": sum(len(set(r.values())) > 1 for r in runs),
                     "runs where some value executed": sum(bool(r) for r in runs)})
pbft = pd.DataFrame(rows)
assert (pbft[pbft["cluster"].str.startswith("n = 3f+1")]["runs with conflicting executions"] == 0).all()
pbft

# %% [markdown]
# With `3f + 1` replicas no seed produced a conflict: to prepare a value, a replica needs
# `2f + 1` prepares, at least `f + 1` of them from honest replicas that were told that value,
# and the honest replicas split between A and B cannot give both values that many. With `3f`
# replicas and quorums of `2f` the equivocation succeeds in most runs (the table's count):
# `f` liars plus `f` honest replicas told A form a quorum for A while the others form one for B.
# Safety is not liveness: had the liars stayed silent instead, or the split left no value with
# a quorum, the honest replicas would execute *nothing* for the slot; PBFT then changes view
# (replaces the primary) after a timeout, which we do not model.
#
# Raft and Paxos assume non-Byzantine nodes: inside one operator's data centre, with
# checksums against corruption, that is the usual trade (3f + 1 nodes and O(n²) messages per
# slot are expensive). BFT protocols are for mutually distrusting parties: blockchains,
# multi-organisation ledgers, some avionics.

# %% [markdown]
# ### Failure detection: fixed timeouts and φ accrual
#
# In an asynchronous network a slow node and a dead one look the same: a failure detector can
# only *suspect*. The classic detector suspects a node when no heartbeat arrived for a fixed
# timeout T. Too small a T suspects healthy nodes whenever the network or a garbage collector
# hiccups (false positives: needless failovers); too large a T leaves a dead node unnoticed
# (slow detection). The best T depends on the jitter, and the jitter changes.
#
# **φ accrual** (Hayashibara et al. 2004, used by Cassandra and Akka) outputs a suspicion level
# instead of a yes/no. It keeps a window of recent inter-arrival times, models them as a normal
# distribution with their mean μ and standard deviation σ, and for the time t since the last
# heartbeat computes
#
# φ(t) = -log10(P_later(t)), with P_later(t) = 1 - Φ((t - μ) / σ),
#
# the probability that a heartbeat would still arrive later than t. φ = 1 means about a 10%
# chance of a mistake if we suspect now, φ = 3 a 0.1% chance. The application chooses the
# threshold; the detector adapts the timeout to the jitter it observes.

# %% [markdown]
# ### Exercise 4: φ (4 points)

# %% nbgrader={"grade_id": "week15-consensus-and-fault-tolerance-ex04-phi-accrual", "solution": true}
def phi(intervals, elapsed, min_std=1.0):
    """The suspicion level φ for a heartbeat `elapsed` ms after the last one.

    intervals: the window of recent inter-arrival times (ms, at least one). μ = their mean,
    σ = max(population standard deviation, min_std). P_later = 1 - Φ((elapsed - μ) / σ), which
    equals math.erfc((elapsed - μ) / (σ * math.sqrt(2))) / 2. Returns -log10(P_later) as a
    float, or math.inf when P_later is 0.0."""
    ### BEGIN SOLUTION
    mu = sum(intervals) / len(intervals)
    sigma = max(math.sqrt(sum((x - mu) ** 2 for x in intervals) / len(intervals)), min_std)
    p_later = math.erfc((elapsed - mu) / (sigma * math.sqrt(2))) / 2
    return math.inf if p_later == 0.0 else -math.log10(p_later)
    ### END SOLUTION


# %% nbgrader={"grade_id": "week15-consensus-and-fault-tolerance-ex04-phi-accrual-tests", "grade": true, "points": 2}
assert type(phi([100.0, 100.0], 100.0)) is float
assert abs(phi([90.0, 110.0], 100.0) - math.log10(2)) < 1e-12          # at the mean, P_later = 1/2
assert abs(phi([90.0, 110.0], 110.0) - -math.log10(1 - statistics.NormalDist(100, 10).cdf(110))) < 1e-9
assert phi([90.0, 110.0], 50.0) < 0.01 and phi([90.0, 110.0], 200.0) > 6
print("φ at μ + σ:", round(phi([90.0, 110.0], 110.0), 4))

# %% nbgrader={"grade_id": "week15-consensus-and-fault-tolerance-ex04-phi-accrual-hidden", "grade": true, "points": 2}
assert type(phi([10.0, 30.0, 20.0], 25.0)) is float
### BEGIN HIDDEN TESTS
def _phi_oracle(xs, t, floor=1.0):
    from statistics import NormalDist, fmean, pstdev
    d = NormalDist(fmean(xs), max(pstdev(xs), floor))
    p = 1 - d.cdf(t)
    return -math.log10(p) if p > 1e-9 else None       # 1 - cdf is accurate to ~1e-16 absolute only


_rng = random.Random(15)
for _ in range(300):
    _xs = [_rng.gauss(100, _rng.uniform(2, 40)) for _ in range(_rng.randint(2, 60))]
    _t = _rng.uniform(0, 200)
    _got = phi(_xs, _t)
    assert type(_got) is float
    _want = _phi_oracle(_xs, _t)
    if _want is None:
        assert _got > 8.99, (_t, _got)
    else:
        assert abs(_got - _want) < 1e-6 * max(1.0, _want), (_t, _got, _want)
for _floor in (1.0, 5.0, 20.0):
    _got = phi([100.0] * 20, 104.0, min_std=_floor)
    assert abs(_got - _phi_oracle([100.0] * 20, 104.0, _floor)) < 1e-9
assert phi([100.0, 100.0, 100.0], 200.0) == math.inf
_vals = [phi([80.0, 100.0, 120.0], _t) for _t in range(0, 300, 5)]
assert all(b >= a for a, b in zip(_vals, _vals[1:], strict=False)), "φ grows with the time since the last heartbeat"
### END HIDDEN TESTS

# %% [markdown]
# **Detection time against false suspicions.** A seeded heartbeat trace: one heartbeat every
# 100 ms, jitter that alternates between calm stretches (σ = 5 ms) and noisy ones (σ = 40 ms),
# and rare long pauses (a garbage collection, a retransmission). After the last heartbeat the
# node crashes. For each setting we count false suspicions (gaps in which the detector would
# have suspected the live node) and the detection time (from the last heartbeat to the first
# suspicion). φ uses a sliding window of the last 100 intervals.

# %%
needs(solved(lambda: phi([1.0, 2.0], 1.0)), "Exercise 4")


def heartbeat_gaps(seed, beats=2500, period=100.0):
    rng = random.Random(seed)
    gaps = []
    for k in range(beats):
        sigma = 40.0 if (k // 500) % 2 else 5.0        # 500 calm beats, 500 noisy, ...; it ends calm
        gap = max(1.0, rng.gauss(period, sigma))
        if rng.random() < 0.002:
            gap += rng.uniform(200, 600)
        gaps.append(gap)
    return gaps


gaps = heartbeat_gaps(15)
WINDOW = 100
phi_at_gap = [phi(gaps[k - WINDOW:k], gaps[k]) for k in range(WINDOW, len(gaps))]   # φ just before each beat
final_window = gaps[-WINDOW:]


def phi_detection(threshold):
    lo, hi = 0.0, 10_000.0                              # bisection: φ grows with elapsed time
    for _ in range(50):
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if phi(final_window, mid) > threshold else (mid, hi)
    return hi


hours = sum(gaps) / 3.6e6
rows = [{"detector": "fixed timeout", "setting": f"T = {T} ms", "false suspicions per hour":
         sum(g > T for g in gaps[WINDOW:]) / hours, "detection time (ms)": float(T)}
        for T in (120, 150, 200, 250, 300, 400, 500, 700)]
rows += [{"detector": "phi accrual", "setting": f"φ > {th}", "false suspicions per hour":
          sum(p > th for p in phi_at_gap) / hours, "detection time (ms)": phi_detection(th)}
         for th in (1, 2, 3, 4, 6, 8, 12, 16)]
detectors = pd.DataFrame(rows).round(1)
fig = go.Figure()
for name, part in detectors.groupby("detector"):
    fig.add_trace(go.Scatter(x=part["detection time (ms)"], y=part["false suspicions per hour"], mode="lines+markers",
                             name=name, text=part["setting"], hovertemplate="%{text}: %{x:.0f} ms, %{y:.1f}/h"))
fig.update_layout(title="Failure detectors on one heartbeat trace (lower left is better)", height=380)
fig.update_xaxes(title="detection time after the last heartbeat (ms)")
fig.update_yaxes(title="false suspicions per hour (count/h)")
fig.show()
detectors

# %%
calm_mu, calm_sd = statistics.fmean(final_window), statistics.pstdev(final_window)
fixed_fp = detectors[detectors["detector"] == "fixed timeout"].set_index("setting")
phi_rows = detectors[detectors["detector"] == "phi accrual"].set_index("setting")
print(f"window at the crash: mean {calm_mu:.1f} ms, std {calm_sd:.1f} ms (a calm stretch)")
print(f"φ > 8 detects in {phi_rows.loc['φ > 8', 'detection time (ms)']:.0f} ms with "
      f"{phi_rows.loc['φ > 8', 'false suspicions per hour']:.1f} false suspicions/h; a fixed timeout with no more "
      f"false suspicions needs T = {fixed_fp[fixed_fp['false suspicions per hour'] <= phi_rows.loc['φ > 8', 'false suspicions per hour']]['detection time (ms)'].min():.0f} ms")

# %% [markdown]
# The fixed timeout has to be set for the noisy stretches, so in calm weather it waits far
# longer than the evidence requires; φ's effective timeout (μ plus a number of σ set by the
# threshold) follows the recent jitter, so at the same rate of false suspicions it detects the
# crash faster on this trace (the two lines above). Neither can avoid false suspicions
# caused by pauses longer than any sensible timeout (the rare 200-600 ms gaps): that is why a
# suspected leader must be *fenced*, not just replaced, which is the next section.

# %% [markdown]
# ## Partitioning: network partitions, split brain and fencing
#
# A network partition splits the cluster into groups that cannot talk. A protocol that lets
# each side carry on (each side elects a leader, each accepts writes) gets **split brain**:
# two leaders, two divergent histories, lost updates when they meet. Raft avoids it by
# requiring a majority, so at most one side makes progress and the minority side is
# unavailable (the CAP trade of week 13, chosen for consistency).
#
# A majority is not enough when the old leader acts on its own belief. A lock or lease service
# grants client 1 a lease; client 1 checks the lease, then pauses (a 500 ms garbage collection,
# a VM migration, a page fault storm); the lease expires; client 2 gets the lease and writes;
# client 1 wakes up and writes too, still believing it holds the lease. Its check happened
# before the pause, so no check inside the client can close the gap. The fix (Kleppmann, DDIA
# ch. 8) is a **fencing token**: the lock service hands out a number that grows with every
# grant (Raft's term, ZooKeeper's zxid, etcd's revision), the client sends it with every write,
# and **the storage** refuses a write whose token is lower than one it has already accepted.

# %% [markdown]
# ### Exercise 5: the storage checks fencing tokens (3 points)

# %% nbgrader={"grade_id": "week15-consensus-and-fault-tolerance-ex05-fencing", "solution": true}
class FencedStore:
    """Key-value storage that checks fencing tokens per key."""

    def __init__(self):
        self.data = {}
        self.highest = {}          # key -> highest token that wrote it

    def write(self, key, value, token) -> bool:
        """Store value under key and return True, unless a write with a higher token was already
        accepted for this key: then change nothing and return False. A write with the same
        token as the highest is accepted (the lease holder writes many times). Raise TypeError
        when token is not an int."""
        ### BEGIN SOLUTION
        if type(token) is not int:
            raise TypeError(f"a fencing token is an int, got {type(token).__name__}")
        if token < self.highest.get(key, token):
            return False
        self.highest[key] = token
        self.data[key] = value
        return True
        ### END SOLUTION

    def read(self, key):
        return self.data.get(key)


# %% nbgrader={"grade_id": "week15-consensus-and-fault-tolerance-ex05-fencing-tests", "grade": true, "points": 1}
_s = FencedStore()
assert _s.write("file", "from 33", 33) is True
assert _s.write("file", "from 34", 34) is True
assert _s.write("file", "late from 33", 33) is False and _s.read("file") == "from 34"
print("stale write refused")

# %% nbgrader={"grade_id": "week15-consensus-and-fault-tolerance-ex05-fencing-hidden", "grade": true, "points": 2}
assert FencedStore().write("k", "v", 1) is True
### BEGIN HIDDEN TESTS
_rng = random.Random(55)
for _trial in range(200):
    _s, _data, _high = FencedStore(), {}, {}
    for _ in range(40):
        _k, _v, _t = _rng.choice("abc"), _rng.random(), _rng.randint(1, 12)
        _want = _t >= _high.get(_k, _t)
        if _want:
            _data[_k], _high[_k] = _v, _t
        _got = _s.write(_k, _v, _t)
        assert type(_got) is bool and _got is _want, (_k, _t, _high)
        assert all(_s.read(k) == _data.get(k) for k in "abc")
_s = FencedStore()
assert _s.write("x", 1, 7) and _s.write("x", 2, 7) and _s.read("x") == 2, "the holder's second write"
assert _s.write("y", 3, 2) is True, "tokens are per key"
for _bad in ("8", 8.0, None):
    try:
        _s.write("x", 0, _bad)
    except TypeError:
        pass
    else:
        raise AssertionError(f"token {_bad!r} accepted")
assert _s.read("x") == 2
### END HIDDEN TESTS

# %% [markdown]
# ### Split brain on the simulator
#
# A lock service grants 200 ms leases with a token that grows by one per grant; two clients
# want the lease and, while they hold it, write their name to the storage every 40 ms. Each
# client checks its lease just before writing, then the write leaves a moment later. At
# 150 ms client c1 checks its lease (valid), and then pauses for 500 ms before its write
# leaves; during the pause it is also cut off from the others, so it cannot renew. We run the same seed twice: storage without token checks, and your `FencedStore`.

# %%
needs(solved(lambda: FencedStore().write("k", 1, 1)), "Exercise 5")
LEASE = 200.0


class LockService(Node):
    def on_start(self):
        self.holder, self.expires, self.token = None, -1.0, 0

    def on_message(self, src, msg):
        if msg["type"] == "acquire" and (self.holder in (None, src) or self.now >= self.expires):
            if self.holder != src or self.now >= self.expires:
                self.token += 1
            self.holder, self.expires = src, self.now + LEASE
            self.send(src, {"type": "granted", "token": self.token, "until": self.expires})


class Client(Node):
    def on_start(self):
        self.token, self.until = None, -1.0
        self.set_timer(0 if self.id == "c1" else 60, "try")

    def on_timer(self, name, data):
        if name == "try":                       # renew or acquire, then write while the lease is valid
            self.send("lock", {"type": "acquire"})
            self.set_timer(40, "try")
            if self.token is not None and self.now < self.until:      # the lease check
                pause = 500 if self.id == "c1" and 150 <= self.now < 190 else 1
                self.set_timer(pause, "write", (self.token, self.now))
        elif name == "write":
            token, checked = data
            self.send("storage", {"type": "write", "value": f"{self.id}@{checked:.0f}", "token": token})

    def on_message(self, src, msg):
        self.token, self.until = msg["token"], msg["until"]


class Storage(Node):
    def on_start(self):
        self.store = FencedStore() if self.sim.fenced else None
        self.plain = {}

    def on_message(self, src, msg):
        if self.store is None:
            self.plain["file"] = msg["value"]
            ok = True
        else:
            ok = self.store.write("file", msg["value"], msg["token"])
        self.note("write" if ok else "refused", by=src, token=msg["token"], value=msg["value"])


def split_brain(fenced, seed=15):
    def make(node_id, peers, sim, stable):
        return {"lock": LockService, "storage": Storage}.get(node_id, Client)(node_id, peers, sim, stable)

    sim = Simulator(["lock", "c1", "c2", "storage"], factory=make, seed=seed, latency=(1, 5))
    sim.fenced = fenced
    sim.at(150, sim.partition, ["c1"], ["lock", "c2", "storage"])    # c1 is also cut off from the lock service
    sim.at(640, sim.heal)
    sim.run(until=900)
    return sim


for fenced in (False, True):
    run = split_brain(fenced)
    events = [(round(e.time), e.msg, e.info["by"], e.info["token"]) for e in run.notes() if e.node == "storage"]
    late = [ev for ev in events if ev[2] == "c1" and ev[0] > 600]
    print(("fenced  " if fenced else "unfenced"), "c1's writes after its pause:", late,
          "| tokens seen:", sorted({ev[3] for ev in events}))
unfenced, fenced_run = split_brain(False), split_brain(True)
assert any(e.info["by"] == "c1" and e.time > 600 for e in unfenced.notes("write"))
assert not any(e.info["by"] == "c1" and e.time > 600 for e in fenced_run.notes("write"))

# %% [markdown]
# Without tokens, c1's write lands after c2 has been writing under a newer lease: the file now
# holds c1's stale view, and if c1 read-modify-wrote, c2's updates are lost. With tokens the
# storage has already seen c2's higher token and refuses c1. The timeline shows the pause (the
# gap in c1's row) and the refused write.

# %%
needs(solved(lambda: FencedStore().write("k", 1, 1)), "Exercise 5")
timeline_widget(fenced_run, width=900)

# %% [markdown]
# **Leases** bound how long a partitioned leader can believe in itself: a leader that has not
# heard from a majority for a lease period stops serving (Raft's leader lease for local reads;
# Chubby's and etcd's leases). They rely on clocks running at roughly the same rate, and, as
# c1 showed, a process can pause between checking its lease and using it. So leases keep a
# deposed leader quiet *most of the time*, and fencing at the resource makes the rare stale
# write harmless. Raft's term is exactly such a token: a follower refuses an `AppendEntries`
# with an old term, which is why the stale leader of the election demo could never corrupt
# anything.

# %% [markdown]
# ### Exercise 6 (written): how many nodes, and what a partition costs (4 points)
#
# Your team runs a Raft-based configuration store (like etcd) in one region with three
# availability zones (AZs). A colleague proposes 4 nodes "for one more replica than 3", another
# proposes 5. In 6-10 sentences: how many failures does each of 3, 4 and 5 nodes tolerate, and
# why is 4 worse than it looks? How would you place the nodes over three AZs, and what happens
# to reads and writes on each side when one AZ is cut off from the other two? Could the store
# ever accept writes on both sides of a partition? Use numbers from this notebook.

# %% [markdown] nbgrader={"grade_id": "week15-consensus-and-fault-tolerance-ex06-quorum-sizes", "solution": true, "grade": true, "points": 4}
# **Model answer.** A Raft cluster of n commits with a majority of floor(n/2) + 1, so it
# tolerates floor((n - 1)/2) failures: 1 for 3 nodes, still 1 for 4 (a majority is 3), 2 for 5.
# Four nodes add a machine, more replication traffic and a larger quorum (commit waits for the
# third-fastest of four) without tolerating one more failure, and an even split 2-2 leaves no
# side with a majority, so the cluster stops entirely. Five nodes placed 2-2-1 over the three
# AZs survive the loss of any one AZ (at most 2 of 5 are gone, 3 remain). When one AZ is cut
# off, the side with 3 or more nodes elects a leader within about one election timeout
# (150-300 ms in our simulation, seconds in etcd's defaults) and keeps accepting writes; the
# cut-off side cannot commit anything: as the suite's "no agreement without a majority" test
# showed, a stale leader there accepts `start()` but the entry is never applied, and it is
# discarded when the partition heals. Linearizable reads must go through the leader (or a
# read index/lease), so the minority side is unavailable for reads too, unless clients accept
# stale reads from a follower. Two sides can never both accept writes: any two majorities of
# the same cluster intersect, each term has one leader (election safety, checked after every
# event in our suite), and a stale leader's old term is refused, exactly as a fencing token is.
#
# **Rubric (4 points).** 1 point: tolerated failures 1, 1, 2 with the majority formula. 1 point:
# why 4 is worse (same tolerance, larger quorum and more cost, 2-2 split has no majority).
# 1 point: placement over three AZs (2-2-1 or equivalent) and what happens on each side of an
# AZ partition: the majority side elects and continues, the minority side cannot commit writes
# or serve linearizable reads (stale reads only if allowed). 1 point: why no split brain
# (quorum intersection, one leader per term, terms as fencing), with at least one number or
# observation from the notebook (timeout range, the minority test, the table of quorum sizes).

# %% [markdown]
# ## Wrap-up
#
# ### You can now
#
# - [ ] implement Raft's election with randomized timeouts, one vote per term and the
#       up-to-date log check, and say what each rule prevents
# - [ ] implement log replication: the consistency check, truncation at a conflict, commit of
#       current-term entries by majority (and why not older ones: Figure 8)
# - [ ] say which state Raft must persist, and why before replying
# - [ ] test a consensus protocol with seeded scenarios and invariants checked after every event
# - [ ] derive n = 2f + 1 for crash faults and n = 3f + 1 with 2f + 1 quorums for Byzantine
#       faults, and show an equivocating primary succeed only against too small a cluster
# - [ ] compute φ accrual suspicion and choose a threshold from detection time versus false
#       suspicions
# - [ ] explain split brain after a partition or a process pause, and prevent its damage with
#       fencing tokens checked by the storage and leases
#
# ### Self-assessment
#
# From the guide's monthly questions, this week answers part of:
#
# 1. *Can I explain the trade-offs between consistency and availability?* A majority-based
#    system keeps one side of a partition consistent and available and the other side
#    unavailable; which side depends only on node counts.
# 2. *How do I ensure data consistency across distributed services?* Agree on one order of
#    operations (a replicated log), and make every resource refuse commands from deposed
#    leaders (terms and fencing tokens).
#
# Check yourself: why does a Raft candidate need the up-to-date check if it already has a
# majority of votes? What breaks if a server forgets `voted_for` on restart? Why can a 4-node
# PBFT cluster tolerate one liar but a 3-node cluster none? Why would a φ threshold of 8 that
# works in one data centre give false suspicions across a WAN with the same heartbeat period,
# or would it?
