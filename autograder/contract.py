"""The part of the notebook contract (COURSE_DESIGN.md) that a machine can check."""

from __future__ import annotations

import re

from .source import exercises, graded_cells
from .syllabus import BY_ID

HEADER_FIELDS = ("**Guide:**", "**Time:**", "**Points:**", "**Prerequisites:**", "**Reading:**")
WIDGET = re.compile(r"\bwidgets\.\w+\(|\b\w+_widget\(")


def contract_problems(aid: str, nb) -> list[str]:
    """Problems with `nb` (an instructor edition) as a week notebook; [] when it meets the contract."""
    where = f"course/source/{aid}/{aid}.py"
    md = [c.source for c in nb.cells if c.cell_type == "markdown"]
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    headings = [ln.strip() for s in md for ln in s.splitlines() if ln.startswith("#")]
    problems = []

    header = md[0] if md else ""
    if not header.startswith("# "):
        problems.append("the first cell must be a markdown header starting with '# <title>'")
    for f in HEADER_FIELDS:
        if f not in header:
            problems.append(f"the header cell lacks {f}")
    if "00-start-here.ipynb" not in header:
        problems.append("the header cell must link back to the course map (00-start-here.ipynb)")
    for h in ("## Learning objectives", "## Wrap-up", "### You can now", "### Self-assessment"):
        if not any(x.lower().startswith(h.lower()) for x in headings):
            problems.append(f"no '{h}' heading")

    week = BY_ID.get(aid)
    for topic in week.topics if week else ():
        if not any(x.startswith("## ") and topic.lower() in x.lower() for x in headings):
            problems.append(f"guide bullet {topic!r} has no '## {topic}' section")

    ex = exercises(nb)
    if len(ex) < 4:
        problems.append(f"{len(ex)} autograded exercises; the contract asks for at least 4")
    manual = [c for c in nb.cells if c.cell_type == "markdown" and c.metadata.get("nbgrader", {}).get("grade")]
    if not manual:
        problems.append("no manually graded written answer (a markdown cell with solution and grade)")
    if not WIDGET.search(code):
        problems.append("no interactive widget (call one from archlab.widgets)")

    total = sum(m.get("points", 0) for m in graded_cells(nb))
    m = re.search(r"\*\*Points:\*\*\s*(\d+)", header)
    if m and int(m.group(1)) != total:
        problems.append(f"the header states {m.group(1)} points but the graded cells add up to {total}")
    return [f"{where}: {p}" for p in problems]
