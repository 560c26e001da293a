"""Graders are tested like code: run an exercise's visible and hidden tests against any
implementation of its answer cell.

The instructor notebook runs top to bottom once in a real kernel; then, for each variant,
the variant's source replaces the answer cell, the exercise's test cells (hidden part
included) run again, and the instructor's answer is restored. Every exercise also gets a
"solution" control run at the end, so a test that only passes in its original position
(because it depends on later-changing state) shows up as a harness failure.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from .kernel import KERNEL_ARGUMENTS
from .source import exercises, read_source

_MARK = "archlab-harness"


@dataclass
class Outcome:
    passed: bool
    error: str = ""


@dataclass
class VariantResult:
    label: str
    grade_id: str
    tests: Outcome
    hidden: Outcome


def _error_of(cell) -> str:
    for out in cell.get("outputs", []):
        if out.get("output_type") == "error":
            return f"{out.get('ename')}: {out.get('evalue')}"[:500]
    return ""


def run_variants(source_py: Path, variants: list[tuple[str, str, str]], timeout: int = 120) -> list[VariantResult]:
    """variants: (label, answer grade id, replacement source). Returns one result per variant,
    followed by one "solution" control result per exercise that any variant touched."""
    source_py = Path(source_py)
    nb, problems = read_source(source_py)
    if problems:
        raise ValueError("\n".join(map(str, problems)))
    cells = {c.metadata["nbgrader"]["grade_id"]: c for c in nb.cells if "nbgrader" in c.metadata}
    known = exercises(nb)
    touched = []
    plan = []
    for label, gid, src in variants:
        if gid not in known:
            raise KeyError(f"{gid!r} is not an autograded exercise of {source_py.name} (known: {sorted(known)})")
        plan.append((label, gid, src))
        if gid not in touched:
            touched.append(gid)
    plan += [(f"solution:{gid}", gid, cells[gid].source) for gid in touched]

    n0 = len(nb.cells)
    for k, (_label, gid, src) in enumerate(plan):
        ex = known[gid]
        for role, text in (("answer", src), ("tests", cells[ex["tests"]].source),
                           ("hidden", cells[ex["hidden"]].source), ("restore", cells[gid].source)):
            cell = nbformat.v4.new_code_cell(text)
            cell.metadata[_MARK] = {"k": k, "role": role}
            nb.cells.append(cell)
    client = NotebookClient(nb, timeout=timeout, allow_errors=True, kernel_name="python3",
                            extra_arguments=KERNEL_ARGUMENTS, resources={"metadata": {"path": str(source_py.parent)}})
    client.execute()
    by_role = {}
    for cell in nb.cells[n0:]:
        m = cell.metadata[_MARK]
        by_role[(m["k"], m["role"])] = cell
    results = []
    for k, (label, gid, _src) in enumerate(plan):
        answer_err = _error_of(by_role[(k, "answer")])
        outcome = {}
        for role in ("tests", "hidden"):
            err = _error_of(by_role[(k, role)])
            if answer_err and not err:
                err = f"(answer cell raised {answer_err})"
            outcome[role] = Outcome(passed=not err, error=err)
        results.append(VariantResult(label, gid, outcome["tests"], outcome["hidden"]))
    return results


SOLUTION, SEPARATOR, MUTANT = "<<<<<<< solution", "=======", ">>>>>>> mutant"


def apply_mutant(solution: str, text: str, name: str = "mutant") -> str:
    """The answer cell's source with a mutant's changes applied.

    A mutant file starts with comment lines saying what mistake it makes, then one or more blocks

        <<<<<<< solution
        lines exactly as they stand in the instructor's answer cell
        =======
        the same lines with the mistake
        >>>>>>> mutant

    Each solution block must occur exactly once in the answer: when the solution changes, a
    mutant that no longer applies fails loudly instead of testing a stale copy."""
    lines = text.splitlines()
    if not lines or not lines[0].startswith("#"):
        raise ValueError(f"{name}: the first line must be a comment saying what mistake the mutant makes")
    blocks, i = [], 0
    while i < len(lines):
        if lines[i] != SOLUTION:
            if blocks and lines[i].strip() and not lines[i].startswith("#"):
                raise ValueError(f"{name}, line {i + 1}: text outside a {SOLUTION} ... {MUTANT} block")
            i += 1
            continue
        try:
            mid = lines.index(SEPARATOR, i + 1)
            end = lines.index(MUTANT, mid + 1)
        except ValueError:
            raise ValueError(f"{name}, line {i + 1}: a block needs {SEPARATOR} and {MUTANT}") from None
        blocks.append(("\n".join(lines[i + 1:mid]), "\n".join(lines[mid + 1:end])))
        i = end + 1
    if not blocks:
        raise ValueError(f"{name}: no {SOLUTION} ... {MUTANT} block")
    source = solution
    for old, new in blocks:
        found = source.count(old)
        if found != 1:
            first = old.splitlines()[0] if old else ""
            raise ValueError(f"{name}: its solution block starting {first.strip()!r} occurs {found} times in the "
                             "answer cell (it must occur once: update the mutant to the current solution)")
        source = source.replace(old, new)
    return source


def mutants(repo: Path, aid: str) -> list[tuple[str, str, str]]:
    """Realistic wrong implementations: tests/mutants/<aid>/<exNN-slug>/<name>.mutant, each
    applied to the instructor's answer cell of that exercise (see apply_mutant)."""
    nb, _ = read_source(repo / "course" / "source" / aid / f"{aid}.py")
    answers = {c.metadata["nbgrader"]["grade_id"]: c.source for c in nb.cells if "nbgrader" in c.metadata}
    out = []
    for path in sorted((repo / "tests" / "mutants" / aid).glob("ex*/*.mutant")):
        gid = f"{aid}-{path.parent.name}"
        if gid not in answers:
            raise ValueError(f"{path}: {aid} has no answer cell {gid!r}")
        name = f"{path.parent.name}/{path.stem}"
        out.append((name, gid, apply_mutant(answers[gid], path.read_text(), str(path))))
    return out
