from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from autograder.course import Course, find_course

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def course() -> Course:
    return find_course(REPO)


def copy_course(dst: Path, ids: list[str]) -> Course:
    """A private course directory holding only the given assignments' sources (what an
    instructor's private copy looks like). Datasets resolve through ARCHLAB_DATASETS."""
    src = find_course(REPO)
    (dst / "course" / "source").mkdir(parents=True)
    shutil.copy(src.root / "nbgrader_config.py", dst / "course" / "nbgrader_config.py")
    for aid in ids:
        shutil.copytree(src.source / aid, dst / "course" / "source" / aid,
                        ignore=shutil.ignore_patterns("*.ipynb", "__pycache__"))
    (dst / "notebooks").mkdir()
    return Course(dst)


@pytest.fixture
def tmp_course(tmp_path, monkeypatch):
    monkeypatch.setenv("ARCHLAB_DATASETS", str(REPO / "datasets"))
    return lambda ids: copy_course(tmp_path, ids)
