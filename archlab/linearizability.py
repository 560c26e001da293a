"""Client histories and a linearizability checker (Wing & Gong's search with Lowe's memo).

A history is what clients saw: each operation was invoked at some time and either returned
(with an output), definitely failed (it had no effect), or is still unknown (a timeout: it may
or may not have taken effect). The history is linearizable when every operation can be given
one instant between its invocation and its return such that the operations, run one after
another in that order on a single copy of the object, give exactly the outputs the clients saw.

    h = History()
    w = h.invoke("c1", "write", 1, at=0);  h.ok(w, None, at=10)
    r = h.invoke("c2", "read", None, at=5); h.ok(r, 1, at=12)
    check(h, "register").ok        # True: the write may take effect before the read

Models: "register" (write v, read, cas (old, new) → True/False) and "kv" (the same per key,
values (key, ...)). A key-value history is checked key by key: linearizability is local
(Herlihy & Wing), which turns one exponential search into many small ones.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

UNKNOWN = object()     # the output of an operation whose return the client never saw


@dataclass
class Op:
    process: str
    f: str               # read, write, cas (register); get, put, cas (kv)
    value: object
    call: float
    ret: float = math.inf
    output: object = UNKNOWN
    status: str = "pending"      # ok, fail (no effect), pending (unknown: a timeout or a crash)

    def __repr__(self) -> str:
        out = "?" if self.output is UNKNOWN else repr(self.output)
        end = "∞" if self.ret == math.inf else f"{self.ret:g}"
        return f"{self.process}:{self.f}({self.value!r})→{out} [{self.call:g}, {end}]"


class History:
    """Operations as clients saw them. `clock` gives the time when `at` is not passed (the
    simulator passes its simulated clock)."""

    def __init__(self, ops=None, clock=None):
        self.ops: list[Op] = list(ops or [])
        self._clock = clock

    def _time(self, at):
        if at is not None:
            return float(at)
        if self._clock is None:
            raise ValueError("History without a clock needs at= for every event.")
        return float(self._clock())

    def invoke(self, process, f: str, value=None, at: float | None = None) -> int:
        self.ops.append(Op(str(process), f, value, self._time(at)))
        return len(self.ops) - 1

    def ok(self, index: int, output=None, at: float | None = None) -> None:
        op = self.ops[index]
        op.ret, op.output, op.status = self._time(at), output, "ok"

    def fail(self, index: int, at: float | None = None) -> None:
        """The operation certainly did not take effect (e.g. the server refused it)."""
        op = self.ops[index]
        op.ret, op.status = self._time(at), "fail"

    def __len__(self) -> int:
        return len(self.ops)

    def __iter__(self):
        return iter(self.ops)

    def __repr__(self) -> str:
        return f"<History of {len(self.ops)} operations>"


# -- models: step(state, op) -> (legal, new state) --------------------------------------
def _register_step(state, f, value, output):
    if f in ("read", "get"):
        return (output is UNKNOWN or output == state), state
    if f in ("write", "put"):
        return True, value
    if f == "cas":
        old, new = value
        if output is UNKNOWN:
            return True, (new if state == old else state)
        if output is True:
            return state == old, new
        return state != old, state
    raise ValueError(f"unknown register operation {f!r} (read, write, cas).")


@dataclass
class Result:
    ok: bool
    order: list[Op] | None = None          # a witness: the operations in a legal order
    stuck: list[Op] = field(default_factory=list)   # where the deepest search found no legal next step
    key: object = None

    def __bool__(self) -> bool:
        return self.ok

    def explain(self) -> str:
        if self.ok:
            return f"linearizable ({len(self.order or [])} operations ordered)"
        where = f" for key {self.key!r}" if self.key is not None else ""
        return (f"not linearizable{where}: after the longest legal order found, none of "
                f"{self.stuck} can take effect next")


def check(history, model: str = "register", initial=None, max_states: int = 2_000_000) -> Result:
    """Is `history` (a History or a list of Op) linearizable for `model`? Returns a Result
    that is truthy when it is, with a witness order, or with the operations it got stuck on."""
    ops = [op for op in (history.ops if isinstance(history, History) else history) if op.status != "fail"]
    if model == "register":
        return _search(ops, initial, max_states)
    if model == "kv":
        keys: dict = {}
        for op in ops:
            keys.setdefault(op.value[0], []).append(op)
        order = []
        for key in sorted(keys, key=repr):
            # Per key the kv operation is a register operation on the rest of the value.
            reg = [Op(o.process, o.f, _kv_arg(o), o.call, o.ret, o.output, o.status) for o in keys[key]]
            res = _search(reg, initial, max_states)
            if not res:
                res.key = key
                return res
            order += res.order
        return Result(True, order)
    raise ValueError(f"unknown model {model!r}: use 'register' or 'kv'.")


def _kv_arg(op: Op):
    rest = op.value[1:]
    if op.f in ("get", "read"):
        return None
    return rest[0] if len(rest) == 1 else tuple(rest)


def _search(ops: list[Op], initial, max_states: int) -> Result:
    """Depth-first search over linearization orders. An operation may go next when no other
    remaining operation returned before it was invoked; (set placed, state) pairs already
    explored are remembered, which is what keeps the search practical."""
    ops = sorted(ops, key=lambda o: (o.call, o.ret))
    n = len(ops)
    must = 0                    # bitmask of the operations that returned ok: all must be placed
    for i, op in enumerate(ops):
        if op.status == "ok":
            must |= 1 << i
    seen: set = set()
    deepest, stuck = -1, []
    stack = [(0, initial, [])]
    while stack:
        placed, state, order = stack.pop()
        if placed & must == must:
            return Result(True, [ops[i] for i in order])
        if (placed, state) in seen:
            continue
        if len(seen) >= max_states:
            raise RuntimeError(f"linearizability search gave up after {max_states:,} states "
                               f"({n} operations): check a shorter history.")
        seen.add((placed, state))
        earliest_ret = min(ops[i].ret for i in range(n) if not placed >> i & 1)
        candidates = []
        for i in range(n):
            if placed >> i & 1:
                continue
            op = ops[i]
            if op.call > earliest_ret:
                break                      # sorted by call: nothing later can go next either
            legal, nxt = _register_step(state, op.f, op.value, op.output)
            if legal:
                candidates.append((placed | 1 << i, nxt, order + [i]))
        if len(order) > deepest:
            deepest = len(order)
            stuck = [ops[i] for i in range(n) if not placed >> i & 1 and ops[i].call <= earliest_ret]
        stack.extend(reversed(candidates))
    return Result(False, None, stuck)
