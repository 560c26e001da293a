"""`autograder check`: the course is consistent and every notebook meets its contract.

Fails unless: the sources lint clean; each week notebook meets the machine-checkable contract;
notebooks/ equals a fresh build; every instructor edition passes `nbgrader validate`; every
learner edition fails it with --invert (no test passes on the unsolved stubs).
"""

from __future__ import annotations

import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from .build import build, lint
from .contract import contract_problems
from .course import Course


def validate(path: str, invert: bool) -> list[str]:
    """nbgrader's Validator on one notebook; returns what went wrong ([] when it is as expected)."""
    from nbgrader.validator import Validator
    from traitlets.config import Config

    cfg = Config()
    cfg.Execute.timeout = 120
    results = Validator(config=cfg, invert=invert).validate(path)
    name = Path(path).name
    out = []
    for cell in results.get("failed", []):
        out.append(f"{name}: instructor edition fails a test cell:\n{_indent(cell['source'])}\n"
                   f"{_indent(cell.get('raw_error', ''))}")
    for cell in results.get("passed", []):
        out.append(f"{name}: learner edition passes a test cell on the unsolved stub (validate --invert):\n"
                   f"{_indent(cell['source'])}")
    for cell in results.get("changed", []) + results.get("type_changed", []):
        out.append(f"{name}: a read-only cell changed:\n{_indent(cell['source'])}")
    return out


def _indent(text: str) -> str:
    lines = text.strip().splitlines()
    return "\n".join("    " + ln for ln in lines[-12:])


def check(course: Course, ids: list[str] | None = None, execute: bool = True, workers: int = 2) -> list[str]:
    """All problems found (empty list: the course passes)."""
    ids = ids or course.assignment_ids()
    problems: list[str] = []
    notebooks = lint(course, ids)            # raises CourseError listing every source problem
    for aid, nb in notebooks.items():
        if aid.startswith("week"):
            problems += contract_problems(aid, nb)

    with tempfile.TemporaryDirectory(prefix="autograder-check-") as tmp:
        build(course, ids, out=tmp)
        for fresh in sorted(Path(tmp).glob("*.ipynb")):
            committed = course.notebooks / fresh.name
            if not committed.exists():
                problems.append(f"notebooks/{fresh.name} is missing: run `autograder build` and commit it")
            elif committed.read_bytes() != fresh.read_bytes():
                problems.append(f"notebooks/{fresh.name} differs from a fresh build of its source: "
                                "run `autograder build` (never edit notebooks/ by hand)")
        if len(ids) == len(course.assignment_ids()):
            built = {p.name for p in Path(tmp).glob("*.ipynb")}
            for extra in sorted(p.name for p in course.notebooks.glob("*.ipynb")):
                if extra not in built:
                    problems.append(f"notebooks/{extra} has no source in course/: delete it or add its source")

    if execute:
        jobs = [(str(course.instructor_ipynb(aid)), False) for aid in ids]
        jobs += [(str(course.dir("release") / aid / f"{aid}.ipynb"), True) for aid in ids]
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for found in pool.map(validate, *zip(*jobs, strict=True)):
                problems += found
    return problems
