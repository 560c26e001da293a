"""`autograder build`: source .py → instructor .ipynb → nbgrader release → notebooks/<id>.ipynb."""

from __future__ import annotations

from pathlib import Path

import jupytext
import nbformat

from .course import Course, CourseError
from .nbgrader_run import nbgrader
from .source import normalise, read_source, write_notebook


def lint(course: Course, ids: list[str]) -> dict:
    """Read every source; raise one CourseError listing every problem in every file."""
    notebooks, problems = {}, []
    for aid in ids:
        nb, found = read_source(course.source_py(aid))
        notebooks[aid] = nb
        problems += found
    if problems:
        raise CourseError("the course sources have problems:\n" + "\n".join(f"  {p}" for p in problems))
    return notebooks


def build(course: Course, ids: list[str] | None = None, learner: bool = True, out=None) -> list[str]:
    """Build the given assignments (default: all) and the pages; return the files written.

    learner=False stops after the instructor editions (course/source/<id>/<id>.ipynb);
    `out` writes the learner editions somewhere other than notebooks/ (check uses this)."""
    ids = ids or course.assignment_ids()
    out = Path(out) if out else course.notebooks
    written = []
    for aid, nb in lint(course, ids).items():
        write_notebook(nb, course.instructor_ipynb(aid))
        written.append(str(course.instructor_ipynb(aid)))
    if not learner:
        return written
    for aid in ids:
        nbgrader(course, "generate_assignment", aid, "--force")
        release = course.dir("release") / aid / f"{aid}.ipynb"
        nb = nbformat.read(release, as_version=4)
        normalise(nb)              # nbgrader's writer is not ours: fix ids, metadata and layout
        target = out / f"{aid}.ipynb"
        write_notebook(nb, target)
        written.append(str(target))
    for page in sorted(course.pages.glob("*.py")):
        nb = jupytext.read(page, fmt="py:percent")
        normalise(nb)
        target = out / f"{page.stem}.ipynb"
        write_notebook(nb, target)
        written.append(str(target))
    return written


