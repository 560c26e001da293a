"""The instructor's round trip in a temporary course directory: release → collect → grade →
feedback → export, with honest, partial, empty and broken submissions."""

from __future__ import annotations

import csv
import html
import json
import re
import zipfile

import pytest
from nbformat import read as _read

from autograder.build import build
from autograder.cli import main
from autograder.instructor import collect_folder, grade_submissions, gradebook_scores, submitted_students
from autograder.source import BEGIN_HIDDEN, END_HIDDEN, exercises, read_source

from .test_build import toy_course


def autograded_points(nb) -> float:
    return sum(c.metadata["nbgrader"].get("points", 0) for c in nb.cells
               if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("grade"))


def write_submissions(c, aid, folder):
    """alice: instructor edition; bob: learner edition untouched; carol: learner edition with
    the first exercise solved; gina: instructor edition under another file name; and broken ones."""
    instructor = json.loads(c.instructor_ipynb(aid).read_text())
    learner = json.loads((c.notebooks / f"{aid}.ipynb").read_text())
    first = sorted(exercises(read_source(c.source_py(aid))[0]))[0]
    solution = next(cell["source"] for cell in instructor["cells"] if cell.get("id") == first)
    partial = json.loads(json.dumps(learner))
    for cell in partial["cells"]:
        if cell.get("id") == first:
            cell["source"] = solution
    files = {f"alice/{aid}.ipynb": json.dumps(instructor), f"bob/{aid}.ipynb": json.dumps(learner),
             f"carol/{aid}.ipynb": json.dumps(partial), "gina/my work (1).ipynb": json.dumps(instructor),
             "dave/notes.txt": "I did not finish", "erin/" + f"{aid}.ipynb": "",
             "frank/" + f"{aid}.ipynb": '{"cells": [', "frank/readme.md": "hi"}
    for rel, text in files.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_text(text)
    return first


def read_notebook(path):
    return _read(path, as_version=4)


def visible_text(path) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", path.read_text()))


def run_round_trip(c, aid, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("ARCHLAB_REPO", str(c.repo))
    assert main(["release", aid]) == 0
    assert (c.dir("release") / aid / f"{aid}.ipynb").exists()
    assert zipfile.ZipFile(c.root / "exports" / f"{aid}-release.zip").namelist() == [f"{aid}/{aid}.ipynb"]

    inbox = tmp_path / "inbox"
    first = write_submissions(c, aid, inbox)
    results = {r.student: r for r in collect_folder(c, aid, inbox)}
    assert {s for s, r in results.items() if r.status == "collected"} == {"alice", "bob", "carol", "gina"}
    assert "renamed my work (1).ipynb" in results["gina"].message
    assert results["dave"].status == "skipped" and "no .ipynb" in results["dave"].message
    assert results["erin"].status == "skipped" and "empty" in results["erin"].message
    assert results["frank"].status == "skipped" and "not valid JSON" in results["frank"].message

    # collecting again never overwrites a submitted file
    alice_file = c.dir("submitted") / "alice" / aid / f"{aid}.ipynb"
    before = alice_file.read_bytes()
    (inbox / "alice" / f"{aid}.ipynb").write_text(json.dumps({"cells": [], "metadata": {}, "nbformat": 4,
                                                               "nbformat_minor": 5}))
    again = {r.student: r for r in collect_folder(c, aid, inbox)}
    assert again["alice"].status == "skipped" and "not overwritten" in again["alice"].message
    assert again["bob"].status == "unchanged"
    assert alice_file.read_bytes() == before

    assert main(["grade", aid]) == 0
    out = capsys.readouterr().out
    nb, _ = read_source(c.source_py(aid))
    full = autograded_points(nb)
    ex = exercises(nb)[first]
    scores = {s: score for s, (score, _max) in gradebook_scores(c, aid).items()}
    assert scores["alice"] == full and scores["gina"] == full, out
    assert scores["bob"] == 0, out
    assert scores["carol"] == ex["points"], out
    if len(exercises(nb)) > 1:
        assert 0 < scores["carol"] < full, out

    assert main(["feedback", aid]) == 0
    hidden_lines = []
    for cell in nb.cells:
        if BEGIN_HIDDEN in cell.source:
            region = cell.source.split(BEGIN_HIDDEN)[1].split(END_HIDDEN)[0]
            hidden_lines += [ln.strip() for ln in region.splitlines() if len(ln.strip()) > 12
                             and not ln.strip().startswith("#")]
    # a line counts as hidden only if the learner edition does not show it anyway
    learner = "\n".join(cell.source for cell in read_notebook(c.notebooks / f"{aid}.ipynb").cells)
    hidden_lines = [ln for ln in hidden_lines if ln not in learner]
    assert hidden_lines
    pages = sorted(c.dir("feedback").glob(f"*/{aid}/*.html"))
    assert {p.parts[-3] for p in pages} == {"alice", "bob", "carol", "gina"}
    for page in pages:
        text = visible_text(page)
        submitted = read_notebook(c.dir("submitted") / page.parts[-3] / aid / f"{aid}.ipynb")
        own = "\n".join(cell.source for cell in submitted.cells              # the student's own answers
                        if cell.get("metadata", {}).get("nbgrader", {}).get("solution"))
        leaked = [ln for ln in hidden_lines if ln in text and ln not in own]
        assert not leaked, f"{page}: hidden test lines in feedback: {leaked[:3]}"
    assert "A hidden test failed" in visible_text(c.dir("feedback") / "bob" / aid / f"{aid}.html")

    assert main(["export"]) == 0
    rows = list(csv.DictReader(open(c.root / "exports" / "grades.csv")))
    got = {r["student_id"]: float(r["raw_score"]) for r in rows if r["assignment"] == aid}
    assert got["alice"] == full and got["bob"] == 0


def test_round_trip_on_a_toy_assignment(tmp_path, capsys, monkeypatch):
    c = toy_course(tmp_path / "repo")
    build(c)
    run_round_trip(c, "toy", tmp_path, capsys, monkeypatch)


@pytest.mark.slow
def test_round_trip_on_a_real_week(tmp_course, tmp_path, capsys, monkeypatch, course):
    weeks = [a for a in course.assignment_ids() if a.startswith("week")]
    if not weeks:
        pytest.skip("no week notebooks yet")
    c = tmp_course([weeks[0]])
    build(c)
    run_round_trip(c, weeks[0], tmp_path, capsys, monkeypatch)


def test_collect_from_a_zip_with_a_wrapper_folder(tmp_path):
    c = toy_course(tmp_path / "repo")
    build(c)
    inbox = tmp_path / "inbox"
    write_submissions(c, "toy", inbox)
    zpath = tmp_path / "lms.zip"
    with zipfile.ZipFile(zpath, "w") as z:
        for f in inbox.rglob("*"):
            if f.is_file():
                z.write(f, "export/" + str(f.relative_to(inbox)))
    results = {r.student: r.status for r in collect_folder(c, "toy", zpath)}
    assert results == {"alice": "collected", "bob": "collected", "carol": "collected", "gina": "collected",
                       "dave": "skipped", "erin": "skipped", "frank": "skipped"}


def test_grading_continues_past_a_submission_nbgrader_cannot_grade(tmp_path):
    c = toy_course(tmp_path / "repo")
    build(c)
    inbox = tmp_path / "inbox"
    write_submissions(c, "toy", inbox)
    collect_folder(c, "toy", inbox)
    broken = c.dir("submitted") / "bob" / "toy" / "toy.ipynb"
    nb = json.loads(broken.read_text())
    nb["metadata"]["kernelspec"]["name"] = "no-such-kernel"     # a wrong kernel
    broken.write_text(json.dumps(nb))
    results = {r.student: r for r in grade_submissions(c, "toy", submitted_students(c, "toy"))}
    assert results["alice"].ok and results["alice"].score == 3
    assert results["carol"].ok
