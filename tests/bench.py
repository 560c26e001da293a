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
    bench_widgets()
    bench_notebooks()
