"""Authored sources (jupytext py:percent with nbgrader metadata in the cell markers) → notebooks.

An answer cell's marker needs only its grade id and role; the rest of nbgrader's metadata
is filled in here, so every cell of the same role has the same metadata:

    # %% nbgrader={"grade_id": "week03-database-internals-ex02-bplus-tree", "solution": true}
    # %% nbgrader={"grade_id": "week03-database-internals-ex02-bplus-tree-tests", "grade": true, "points": 2}
    # %% nbgrader={"grade_id": "week03-database-internals-ex02-bplus-tree-hidden", "grade": true, "points": 4}
    # %% [markdown] nbgrader={"grade_id": "week03-database-internals-ex06-tradeoff", "solution": true,
    #                          "grade": true, "points": 3}      (one line in a real source)

Problems are reported as `file:line: cell N (grade id): what is wrong`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import jupytext
import nbformat

from .course import CourseError

KEYS = {"grade_id", "grade", "solution", "locked", "points", "task", "schema_version"}
GRADE_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
EXERCISE = re.compile(r"^(?P<aid>.+)-ex(?P<num>\d\d)-(?P<slug>[a-z0-9-]+?)(?P<kind>-tests|-hidden)?$")
BEGIN_SOLUTION, END_SOLUTION = "### BEGIN SOLUTION", "### END SOLUTION"
BEGIN_HIDDEN, END_HIDDEN = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}


@dataclass
class Problem:
    path: Path
    line: int
    cell: int
    grade_id: str
    message: str

    def __str__(self) -> str:
        where = f"cell {self.cell}" + (f" ({self.grade_id})" if self.grade_id else "")
        return f"{self.path}:{self.line}: {where}: {self.message}"


def _marker_lines(text: str) -> list[int]:
    return [i + 1 for i, line in enumerate(text.splitlines()) if line.startswith("# %%")]


def read_source(path: Path) -> tuple[nbformat.NotebookNode, list[Problem]]:
    """Read a py:percent source into a notebook with complete nbgrader metadata and
    deterministic cell ids. Returns the notebook and every problem found (empty if none)."""
    path = Path(path)
    text = path.read_text()
    try:
        nb = jupytext.reads(text, fmt="py:percent")
    except Exception as e:
        raise CourseError(f"{path}: jupytext cannot read it as py:percent: {e}") from e
    source_lines = text.splitlines()
    lines = _marker_lines(text)
    problems: list[Problem] = []
    offset = max(0, len(nb.cells) - len(lines))     # text before the first marker becomes a cell

    def line_of(i: int) -> int:
        return lines[i - offset] if 0 <= i - offset < len(lines) else 1

    seen: dict[str, int] = {}
    for i, cell in enumerate(nb.cells):
        line = line_of(i)
        marker = source_lines[line - 1] if i >= offset else ""
        meta = cell.metadata.get("nbgrader")
        if meta is None and "nbgrader" in marker:
            problems.append(Problem(path, line, i, "", "the nbgrader metadata in this cell marker is not valid "
                                    "JSON (write nbgrader={\"grade_id\": ..., ...} with double quotes)"))
            continue
        if meta is None:
            continue
        if not isinstance(meta, dict):
            problems.append(Problem(path, line, i, "", "nbgrader metadata must be a JSON object"))
            continue
        gid = meta.get("grade_id", "")
        bad = set(meta) - KEYS
        if bad:
            problems.append(Problem(path, line, i, gid, f"unknown nbgrader keys {sorted(bad)}"))
        if not isinstance(gid, str) or not GRADE_ID.match(gid):
            problems.append(Problem(path, line, i, str(gid), "grade_id must be lower-case letters, digits and "
                                    "dashes, at most 63 characters"))
            continue
        if gid in seen:
            problems.append(Problem(path, line, i, gid, f"duplicate grade_id (first used in cell {seen[gid]})"))
        seen[gid] = i
        full = {"grade": bool(meta.get("grade", False)), "grade_id": gid,
                "locked": bool(meta.get("locked", not meta.get("solution", False))),
                "schema_version": 3, "solution": bool(meta.get("solution", False)),
                "task": bool(meta.get("task", False))}
        if full["grade"] or full["task"]:
            points = meta.get("points")
            if not isinstance(points, (int, float)) or isinstance(points, bool) or points <= 0:
                problems.append(Problem(path, line, i, gid, "a graded cell needs \"points\": a positive number"))
            else:
                full["points"] = points
        cell.metadata["nbgrader"] = full
        if full["solution"] and cell.cell_type == "code" and BEGIN_SOLUTION not in cell.source:
            problems.append(Problem(path, line, i, gid, f"a code answer cell needs a {BEGIN_SOLUTION} / "
                                    f"{END_SOLUTION} region"))
        if gid.endswith("-hidden"):
            src = cell.source
            if BEGIN_HIDDEN not in src or END_HIDDEN not in src:
                problems.append(Problem(path, line, i, gid, f"a -hidden cell needs a {BEGIN_HIDDEN} / "
                                        f"{END_HIDDEN} region"))
            else:
                visible = src.split(BEGIN_HIDDEN)[0] + src.split(END_HIDDEN)[-1]
                if not [ln for ln in visible.splitlines() if ln.strip() and not ln.strip().startswith("#")]:
                    problems.append(Problem(path, line, i, gid, "a -hidden cell needs a visible statement outside "
                                            "the hidden region that fails on the unsolved stub (else nbgrader counts "
                                            "the emptied cell as passed)"))
    _check_exercises(path, nb, seen, line_of, problems)
    normalise(nb)
    return nb, problems


def _check_exercises(path, nb, seen, line_of, problems) -> None:
    """Every answer <aid>-exNN-<slug> has a -tests and a -hidden cell, both graded code cells."""
    aid = path.stem
    for gid, i in seen.items():
        m = EXERCISE.match(gid)
        if not m or m["kind"]:
            continue
        if m["aid"] != aid:
            problems.append(Problem(path, line_of(i), i, gid, f"grade ids must start with {aid}-exNN-"))
        cell = nb.cells[i]
        if cell.cell_type != "code":
            continue                      # a written answer: manually graded, no test cells
        for kind in ("-tests", "-hidden"):
            tid = gid + kind
            if tid not in seen:
                problems.append(Problem(path, line_of(i), i, gid, f"missing its {kind[1:]} cell {tid!r}"))
            elif not nb.cells[seen[tid]].metadata.get("nbgrader", {}).get("grade"):
                problems.append(Problem(path, line_of(seen[tid]), seen[tid], tid, "a test cell must be graded "
                                        "(\"grade\": true with points)"))


def normalise(nb) -> None:
    """Deterministic ids and metadata: the same source always gives the same bytes."""
    nb.metadata = {"kernelspec": KERNELSPEC, "language_info": {"name": "python"}}
    for i, cell in enumerate(nb.cells):
        meta = cell.metadata.get("nbgrader")
        cell.id = meta["grade_id"] if meta else f"cell-{i:03d}"
        cell.metadata = {"nbgrader": meta} if meta else {}
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None


def graded_cells(nb) -> list[dict]:
    return [c.metadata["nbgrader"] for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")]


def exercises(nb) -> dict[str, dict]:
    """Autograded exercises: answer grade id → {"tests": gid, "hidden": gid, "points": total}."""
    ids = {c.metadata["nbgrader"]["grade_id"]: c for c in nb.cells if "nbgrader" in c.metadata}
    out = {}
    for gid, cell in ids.items():
        m = EXERCISE.match(gid)
        if m and not m["kind"] and cell.cell_type == "code":
            pts = sum(ids[g].metadata["nbgrader"].get("points", 0) for g in (gid + "-tests", gid + "-hidden")
                      if g in ids)
            out[gid] = {"tests": gid + "-tests", "hidden": gid + "-hidden", "points": pts}
    return out


def write_notebook(nb, path: Path) -> None:
    """Write with fixed formatting (one JSON layout, trailing newline) so builds are byte-identical."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = nbformat.writes(nb, version=4)   # sorted keys, sources split into lines: readable diffs
    text = text if text.endswith("\n") else text + "\n"
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
