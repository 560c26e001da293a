"""autograder build/check: deterministic output and precise errors for broken sources."""

from __future__ import annotations

import json
import re
import textwrap

import pytest

from autograder.build import build
from autograder.check import check
from autograder.cli import main
from autograder.course import Course, CourseError

TOY = textwrap.dedent('''\
    # %% [markdown]
    # # Toy

    # %% nbgrader={"grade_id": "toy-ex01-add", "solution": true}
    def add(a, b):
        """Return a + b."""
        ### BEGIN SOLUTION
        return a + b
        ### END SOLUTION


    # %% nbgrader={"grade_id": "toy-ex01-add-tests", "grade": true, "points": 1}
    assert add(1, 2) == 3

    # %% nbgrader={"grade_id": "toy-ex01-add-hidden", "grade": true, "points": 2}
    assert add(0, 0) == 0
    ### BEGIN HIDDEN TESTS
    assert add(-1, 1) == 0
    ### END HIDDEN TESTS

    # %% [markdown] nbgrader={"grade_id": "toy-ex02-essay", "solution": true, "grade": true, "points": 2}
    # A model answer.
    ''')


def toy_course(tmp_path, text=TOY, aid="toy") -> Course:
    from .conftest import REPO

    (tmp_path / "course" / "source" / aid).mkdir(parents=True)
    (tmp_path / "course" / "nbgrader_config.py").write_text((REPO / "course" / "nbgrader_config.py").read_text())
    (tmp_path / "course" / "source" / aid / f"{aid}.py").write_text(text)
    (tmp_path / "notebooks").mkdir()
    return Course(tmp_path)


def test_build_writes_learner_edition_without_solutions_or_hidden_tests(tmp_path):
    c = toy_course(tmp_path)
    build(c)
    nb = json.loads((c.notebooks / "toy.ipynb").read_text())
    text = json.dumps(nb)
    assert "return a + b" not in text and "add(-1, 1)" not in text and "A model answer" not in text
    assert "raise NotImplementedError()" in text and "assert add(0, 0) == 0" in text
    assert [c["id"] for c in nb["cells"]] == ["cell-000", "toy-ex01-add", "toy-ex01-add-tests",
                                              "toy-ex01-add-hidden", "toy-ex02-essay"]
    assert all(not cell.get("outputs") for cell in nb["cells"])


def test_two_builds_are_byte_identical(tmp_path):
    c = toy_course(tmp_path)
    build(c)
    first = {p.name: p.read_bytes() for p in [*c.notebooks.glob("*.ipynb"), c.instructor_ipynb("toy")]}
    (c.root / "gradebook.db").unlink()
    build(c)
    second = {p.name: p.read_bytes() for p in [*c.notebooks.glob("*.ipynb"), c.instructor_ipynb("toy")]}
    assert first == second


BROKEN = {
    "duplicate grade id": (TOY.replace('"toy-ex01-add-tests"', '"toy-ex01-add"'), r"toy\.py:12: .*duplicate grade_id"),
    "missing hidden test": (TOY.split("# %% nbgrader={\"grade_id\": \"toy-ex01-add-hidden\"")[0],
                            r"toy\.py:4: cell 1 \(toy-ex01-add\): missing its hidden cell"),
    "broken metadata": (TOY.replace('"points": 1}', "'points': 1}"), r"toy\.py:12: cell 2: .*not valid JSON"),
    "no points": (TOY.replace(', "points": 2}', "}", 1), r"toy\.py:15: .*needs \"points\""),
    "hidden region only": (TOY.replace("assert add(0, 0) == 0\n", ""), r"toy\.py:15: .*visible statement"),
    "unknown key": (TOY.replace('"solution": true}', '"solution": true, "pts": 3}', 1), r"unknown nbgrader keys"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_sources_are_refused_naming_file_line_and_problem(tmp_path, case):
    text, pattern = BROKEN[case]
    c = toy_course(tmp_path, text)
    with pytest.raises(CourseError) as e:
        build(c)
    assert re.search(pattern, str(e.value)), str(e.value)
    assert not (c.notebooks / "toy.ipynb").exists(), "nothing is built from a broken source"


def test_cli_reports_broken_source_and_exits_nonzero(tmp_path, monkeypatch, capsys):
    toy_course(tmp_path, BROKEN["duplicate grade id"][0])
    monkeypatch.setenv("ARCHLAB_REPO", str(tmp_path))
    assert main(["build"]) == 1
    err = capsys.readouterr().err
    assert "duplicate grade_id" in err and "Traceback" not in err


def test_check_finds_drift_and_a_learner_edition_that_passes(tmp_path):
    c = toy_course(tmp_path)
    build(c)
    assert check(c, execute=True) == []                 # toy is not a week: no contract check
    (c.notebooks / "toy.ipynb").write_text((c.notebooks / "toy.ipynb").read_text().replace("Toy", "Edited"))
    assert any("differs from a fresh build" in p for p in check(c, execute=False))
    # a hidden cell whose visible line does not touch the answer passes on the stub:
    weak = TOY.replace("assert add(0, 0) == 0\n", "assert 1 + 1 == 2\n")
    c2 = toy_course(tmp_path / "weak", weak)
    build(c2)
    problems = check(c2)
    assert any("learner edition passes a test cell" in p for p in problems), problems


def test_contract_of_a_week_notebook_is_checked(tmp_path):
    from autograder.contract import contract_problems
    from autograder.source import read_source

    c = toy_course(tmp_path, TOY.replace("toy", "week01-core-database-concepts"), "week01-core-database-concepts")
    nb, problems = read_source(c.source_py("week01-core-database-concepts"))
    assert problems == []
    found = "\n".join(contract_problems("week01-core-database-concepts", nb))
    for expected in ("lacks **Guide:**", "course map", "'## Learning objectives'", "'## SQL vs NoSQL'",
                     "1 autograded exercises", "no interactive widget", "'### Self-assessment'"):
        assert expected in found, found
