"""Where things are: the repository, the nbgrader course directory and its assignments."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


class CourseError(Exception):
    """A problem the user must fix; the message names the file and what is wrong."""


@dataclass(frozen=True)
class Course:
    repo: Path

    @property
    def root(self) -> Path:            # nbgrader's course directory
        return self.repo / "course"

    @property
    def source(self) -> Path:
        return self.root / "source"

    @property
    def pages(self) -> Path:           # non-assignment notebooks (the start page)
        return self.root / "pages"

    @property
    def notebooks(self) -> Path:       # learner editions
        return self.repo / "notebooks"

    def dir(self, name: str) -> Path:  # release, submitted, autograded, feedback
        return self.root / name

    def assignment_ids(self) -> list[str]:
        return sorted(p.parent.name for p in self.source.glob("*/*.py") if p.stem == p.parent.name)

    def source_py(self, aid: str) -> Path:
        path = self.source / aid / f"{aid}.py"
        if not path.exists():
            known = ", ".join(self.assignment_ids()) or "none"
            raise CourseError(f"No assignment {aid!r}: {path} does not exist (known: {known}).")
        return path

    def instructor_ipynb(self, aid: str) -> Path:
        return self.source / aid / f"{aid}.ipynb"


def find_course(start: Path | None = None) -> Course:
    """The course of $ARCHLAB_REPO, or of the first folder above `start` (default: cwd) with course/source."""
    env = os.environ.get("ARCHLAB_REPO")
    if env:
        return Course(Path(env).resolve())
    start = (start or Path.cwd()).resolve()
    for d in (start, *start.parents):
        if (d / "course" / "nbgrader_config.py").exists():
            return Course(d)
    raise CourseError(f"No course found above {start}: run autograder inside the repository "
                      "(the folder with course/nbgrader_config.py) or set ARCHLAB_REPO.")
