"""A small Raft-style leader election (terms, votes, heartbeats) used to exercise the simulator
in tests and in the benchmark. It is not week15's exercise (no log, no persistence of votes
beyond the term), just a protocol of the right size and message pattern."""

from __future__ import annotations

from archlab.sim import Node


class Elector(Node):
    def on_start(self):
        self.term = self.stable.get("term", 0)
        self.voted = self.stable.get("voted")
        self.role, self.votes = "follower", set()
        self._arm()

    def _arm(self):
        if getattr(self, "timer", None):
            self.cancel_timer(self.timer)
        self.timer = self.set_timer(self.rng.uniform(150, 300), "election")

    def _become(self, term, role):
        if term > self.term:
            self.term, self.voted = term, None
        self.stable.update(term=self.term, voted=self.voted)
        if role != self.role:
            self.role = role
            self.note(role, term=self.term)

    def on_timer(self, name, data):
        if name == "election" and self.role != "leader":
            self._become(self.term + 1, "candidate")
            self.voted, self.votes = self.id, {self.id}
            self.stable["voted"] = self.id
            self.broadcast({"type": "vote?", "term": self.term})
            self._arm()
        elif name == "beat" and self.role == "leader":
            self.broadcast({"type": "beat", "term": self.term})
            self.set_timer(50, "beat")

    def on_message(self, src, msg):
        if msg["term"] > self.term:
            self._become(msg["term"], "follower")
        if msg["type"] == "vote?":
            grant = msg["term"] == self.term and self.voted in (None, src)
            if grant:
                self.voted = src
                self.stable["voted"] = src
                self._arm()
            self.send(src, {"type": "vote", "term": self.term, "granted": grant})
        elif msg["type"] == "vote" and self.role == "candidate" and msg["term"] == self.term and msg["granted"]:
            self.votes.add(src)
            if len(self.votes) > (len(self.peers) + 1) // 2:
                self._become(self.term, "leader")
                self.on_timer("beat", None)
        elif msg["type"] == "beat" and msg["term"] == self.term:
            self._become(self.term, "follower")
            self._arm()


def one_leader_per_term(sim):
    leaders = {}
    for e in sim.notes("leader"):
        term = e.info["term"]
        if leaders.setdefault(term, e.node) != e.node:
            return f"two leaders in term {term}: {leaders[term]} and {e.node}"
    return None


def scenario(seed: int, until: float = 3000.0):
    """Five nodes on a lossy, jittery network with a partition, a heal, a crash and a restart."""
    from archlab.sim import Simulator

    sim = Simulator([f"n{i}" for i in range(1, 6)], Elector, seed=seed, latency=(2, 30), loss=0.05,
                    duplicate=0.02)
    sim.at(800, sim.partition, ["n1", "n2"], ["n3", "n4", "n5"])
    sim.at(1500, sim.heal)
    sim.at(1800, sim.crash, "n3")
    sim.at(2400, sim.restart, "n3")
    sim.run(until=until)
    return sim
