from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from autograder.course import Course, find_course

from . import offline

REPO = Path(__file__).resolve().parents[1]

# Offline guard: every kernel the tests start (nbclient, nbgrader, JupyterLab) inherits this
# environment, so a connection beyond loopback fails the cell that made it (tests/offline.py).
_OFFLINE_DIR = Path(tempfile.mkdtemp(prefix="archlab-offline-"))
atexit.register(shutil.rmtree, _OFFLINE_DIR, True)
os.environ.update(offline.kernel_env(_OFFLINE_DIR))
offline.patch_nbclient()


@pytest.fixture(autouse=True)
def offline_guard():
    """Fails the test if any kernel it started tried to leave loopback, even where the
    notebook caught the error or the tool running it (nbgrader autograde) swallowed it."""
    log = os.environ[offline.LOG_ENV]
    start = offline.log_size(log)
    yield
    found = offline.problems(start, log)
    if found:
        pytest.fail("a notebook tried to connect beyond loopback:\n" + "\n".join(found), pytrace=False)


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
