"""Benchmarks for the budgets in COURSE_DESIGN.md (figures for the notes, not asserted):
`import archlab`, engine start-up, each instructor notebook's run time, and each widget
figure function over a grid of its control values.

    make bench            (or: .venv/bin/python tests/bench.py)
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def bench_import():
    code = "import time; t = time.perf_counter(); import archlab; print(time.perf_counter() - t)"
    runs = [float(subprocess.check_output([sys.executable, "-c", code])) for _ in range(5)]
    print(f"import archlab: median {statistics.median(runs) * 1000:.1f} ms (5 fresh interpreters)")


def bench_engines():
    code = ("import time, archlab; out = []\n"
            "for start in (lambda: archlab.postgres(), lambda: archlab.redis().client().ping(),"
            " lambda: archlab.s3().client().list_buckets()):\n"
            "    t = time.perf_counter(); start(); out.append(time.perf_counter() - t)\n"
            "print(*out)")
    runs = [list(map(float, subprocess.check_output([sys.executable, "-c", code]).split())) for _ in range(3)]
    for name, times in zip(("PostgreSQL", "Redis", "S3 (moto)"), zip(*runs, strict=True), strict=True):
        print(f"{name} start: median {statistics.median(times):.2f} s (3 fresh interpreters)")


def bench_notebooks():
    import nbformat
    from nbclient import NotebookClient

    from autograder.build import build
    from autograder.course import find_course

    course = find_course(REPO)
    build(course, learner=False)
    total = 0.0
    for aid in course.assignment_ids():
        path = course.instructor_ipynb(aid)
        nb = nbformat.read(path, as_version=4)
        client = NotebookClient(nb, timeout=300, kernel_name="python3",
                                resources={"metadata": {"path": str(path.parent)}})
        t0 = time.perf_counter()
        client.execute()
        dt = time.perf_counter() - t0
        total += dt
        print(f"notebook {aid}: {dt:.1f} s (instructor edition, kernel start included)")
    print(f"all notebooks: {total:.1f} s")


def bench_simulator():
    """The Raft-sized scenario of tests/sim_election.py (5 nodes, 3000 simulated ms, a partition,
    a crash), with and without an invariant checked after every event, and the checker on a
    simulated register history."""
    import random

    from sim_election import one_leader_per_term, scenario

    from archlab.linearizability import UNKNOWN, Op, check

    times, events, sent = [], [], []
    for seed in range(20):
        t0 = time.perf_counter()
        sim = scenario(seed)
        times.append(time.perf_counter() - t0)
        events.append(len(sim.trace))
        sent.append(sim.stats["sent"])
    print(f"simulator, 5 nodes x 3000 ms: median {statistics.median(times) * 1000:.1f} ms, max {max(times) * 1000:.1f}"
          f" ms over 20 seeds ({statistics.median(sent):.0f} messages, {statistics.median(events):.0f} trace events)")
    from sim_election import Elector

    from archlab.sim import Simulator

    t0 = time.perf_counter()
    sim = Simulator([f"n{i}" for i in range(1, 6)], Elector, seed=0, latency=(2, 30), loss=0.05)
    sim.invariant(one_leader_per_term)
    sim.run(until=3000)
    print(f"  same with an invariant after every event: {(time.perf_counter() - t0) * 1000:.1f} ms")

    rng = random.Random(0)
    for n_ops in (50, 200, 1000):
        ops, state, t = [], None, 0.0
        for i in range(n_ops):              # a real register: each op takes effect inside its interval
            call = t + rng.uniform(0, 2)
            effect = call + rng.uniform(0, 3)
            ret = effect + rng.uniform(0, 3)
            t = call + rng.uniform(0, 1)
            if rng.random() < 0.5:
                state = i
                ops.append((effect, Op(f"p{i % 5}", "write", i, call, ret, None, "ok")))
            else:
                ops.append((effect, Op(f"p{i % 5}", "read", None, call, ret, UNKNOWN, "ok")))
        ops.sort(key=lambda x: x[0])
        state = None
        for _, op in ops:
            if op.f == "write":
                state = op.value
            else:
                op.output = state
        t0 = time.perf_counter()
        ok = check([op for _, op in ops], "register")
        print(f"linearizability check, {n_ops} overlapping register ops: {(time.perf_counter() - t0) * 1000:.1f} ms "
              f"({'linearizable' if ok else 'NOT linearizable'})")


def bench_widgets():
    """Every figure function over its control grid: the slowest call is what a learner waits for."""
    from bench_widgets import CASES  # one list of (name, callable, grid) kept next to this file

    from archlab.workloads import time_runs

    for name, fn, grid in CASES():
        fn(**grid[0])                  # warm-up (plotly's first figure builds its validators)
        times = [time_runs(lambda fn=fn, kw=kw: fn(**kw), repeat=1, warmup=0)[0] for kw in grid]
        print(f"figure {name}: {len(grid)} control values, median {statistics.median(times) * 1000:.1f} ms, "
              f"max {max(times) * 1000:.1f} ms")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    bench_import()
    bench_engines()
    bench_simulator()
    bench_widgets()
    bench_notebooks()
