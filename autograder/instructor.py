"""The instructor's round trip: release → collect → grade → feedback → export.

Grading goes through `grade_submissions`, one function a parallel, sandboxed grader can
replace. No command here deletes or overwrites a student's submitted file.
"""

from __future__ import annotations

import json
import re
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import nbformat

from .build import build
from .course import Course, CourseError
from .nbgrader_run import nbgrader

# -- release -------------------------------------------------------------------------------

def release(course: Course, args) -> int:
    aid = args.id
    build(course, [aid])
    folder = course.dir("release") / aid
    exports = course.root / "exports"
    exports.mkdir(exist_ok=True)
    zip_path = exports / f"{aid}-release.zip"
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as z:
        for f in sorted(folder.rglob("*")):
            if f.is_file():
                z.write(f, f"{aid}/{f.relative_to(folder)}")
    print(f"released {aid}: {folder} (for an LMS upload: {zip_path})")
    if args.exchange:
        nbgrader(course, "release_assignment", aid, "--force", f"--Exchange.root={args.exchange}")
        print(f"also released to the nbgrader exchange at {args.exchange}")
    return 0


# -- collect -------------------------------------------------------------------------------

STUDENT_ID = re.compile(r"[^A-Za-z0-9_.@-]+")


@dataclass
class Collected:
    student: str
    status: str       # collected | unchanged | skipped
    message: str = ""


def _student_id(raw: str) -> str:
    return STUDENT_ID.sub("_", raw).strip("._")


def _entries(src: Path, aid: str) -> dict[str, list[tuple[str, bytes]]]:
    """student → [(file name, bytes)] from a folder or a zip: one subfolder / top-level entry
    per student, or one `<student>.ipynb` file per student."""
    files: list[tuple[str, bytes]] = []
    if src.is_dir():
        files = [(str(p.relative_to(src)), p.read_bytes()) for p in sorted(src.rglob("*")) if p.is_file()]
    elif zipfile.is_zipfile(src):
        with zipfile.ZipFile(src) as z:
            files = [(i.filename, z.read(i)) for i in z.infolist() if not i.is_dir()]
    else:
        raise CourseError(f"{src} is neither a folder nor a zip file.")
    files = [(n, b) for n, b in files
             if not any(part.startswith((".", "__MACOSX")) for part in Path(n).parts)]
    parts = [Path(n).parts for n, _ in files]
    # A zip made of one wrapper folder ("submissions/alice/x.ipynb"): drop the wrapper.
    if parts and all(len(p) >= 3 for p in parts) and len({p[0] for p in parts}) == 1:
        files = [(str(Path(*Path(n).parts[1:])), b) for n, b in files]
    by_student: dict[str, list[tuple[str, bytes]]] = {}
    for name, data in files:
        p = Path(name)
        student = p.parts[0] if len(p.parts) > 1 else p.stem
        by_student.setdefault(student, []).append((p.name, data))
    return by_student


def collect_folder(course: Course, aid: str, src: Path) -> list[Collected]:
    course.source_py(aid)                       # a clear error for an unknown assignment
    if not src.exists():
        raise CourseError(f"{src} does not exist.")
    results = []
    for raw, files in sorted(_entries(src, aid).items()):
        student = _student_id(raw)
        if not student:
            results.append(Collected(raw, "skipped", "cannot make a student id from this name"))
            continue
        notes = [f"ignored {n} (not a notebook)" for n, _ in files if not n.endswith(".ipynb")]
        books = [(n, b) for n, b in files if n.endswith(".ipynb")]
        if len(books) > 1:
            exact = [(n, b) for n, b in books if n == f"{aid}.ipynb"]
            if len(exact) != 1:
                results.append(Collected(student, "skipped", f"{len(books)} notebooks and none is {aid}.ipynb: "
                                         f"{', '.join(n for n, _ in books)}"))
                continue
            notes += [f"ignored extra notebook {n}" for n, _ in books if n != f"{aid}.ipynb"]
            books = exact
        if not books:
            extra = f" ({'; '.join(notes)})" if notes else ""
            results.append(Collected(student, "skipped", "no .ipynb file" + extra))
            continue
        name, data = books[0]
        problem = _notebook_problem(data)
        if problem:
            results.append(Collected(student, "skipped", f"{name}: {problem}"))
            continue
        if name != f"{aid}.ipynb":
            notes.append(f"renamed {name} to {aid}.ipynb")
        dest = course.dir("submitted") / student / aid
        target = dest / f"{aid}.ipynb"
        if target.exists():
            if target.read_bytes() == data:
                results.append(Collected(student, "unchanged", "already collected"))
            else:
                results.append(Collected(student, "skipped", f"a different submission is already at {target}; "
                                         "not overwritten (move it away to collect this one)"))
            continue
        dest.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        (dest / "timestamp.txt").write_text(datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f UTC"))
        results.append(Collected(student, "collected", "; ".join(notes)))
    return results


def _notebook_problem(data: bytes) -> str:
    if not data.strip():
        return "the file is empty"
    try:
        nb = nbformat.reads(data.decode("utf-8"), as_version=4)
    except UnicodeDecodeError:
        return "not a text file (corrupt notebook)"
    except (json.JSONDecodeError, nbformat.reader.NotJSONError):
        return "not valid JSON (corrupt notebook)"
    except Exception as e:
        return f"not a readable notebook ({type(e).__name__}: {str(e)[:100]})"
    if not isinstance(nb.get("cells"), list):
        return "has no cells (corrupt notebook)"
    return ""


def collect(course: Course, args) -> int:
    results = collect_folder(course, args.id, Path(args.path))
    for r in results:
        print(f"{r.status:9}  {r.student}" + (f"  ({r.message})" if r.message else ""))
    n = sum(r.status == "collected" for r in results)
    print(f"collected {n} new submission(s) of {args.id}; {sum(r.status == 'skipped' for r in results)} skipped")
    return 0


# -- grade ---------------------------------------------------------------------------------

@dataclass
class GradeResult:
    student: str
    ok: bool
    score: float | None = None
    max_score: float | None = None
    message: str = ""


def submitted_students(course: Course, aid: str) -> list[str]:
    return sorted(p.parent.name for p in course.dir("submitted").glob(f"*/{aid}") if p.is_dir())


def grade_submissions(course: Course, aid: str, students: list[str]) -> list[GradeResult]:
    """Autograde each student's submission with nbgrader, one at a time; a failure is reported
    for that student and the others are still graded. (The parallel grader replaces this.)"""
    results = []
    for s in students:
        proc = nbgrader(course, "autograde", aid, f"--student={s}", "--force", check=False)
        if proc.returncode != 0:
            lines = [ln for ln in (proc.stderr + proc.stdout).splitlines() if "ERROR" in ln]
            results.append(GradeResult(s, False, message=(lines[-1] if lines else "nbgrader autograde failed")[-300:]))
        else:
            results.append(GradeResult(s, True))
    scores = gradebook_scores(course, aid)
    for r in results:
        if r.ok:
            r.score, r.max_score = scores.get(r.student, (None, None))
    return results


def gradebook_scores(course: Course, aid: str) -> dict[str, tuple[float, float]]:
    from nbgrader.api import Gradebook, MissingEntry

    out = {}
    db = f"sqlite:///{course.root / 'gradebook.db'}"
    with Gradebook(db) as gb:
        for student in gb.students:
            try:
                sub = gb.find_submission(aid, student.id)
            except MissingEntry:
                continue
            out[student.id] = (sub.score, sub.max_score)
    return out


def grade(course: Course, args) -> int:
    aid = args.id
    students = args.student or submitted_students(course, aid)
    if not students:
        raise CourseError(f"nothing to grade: no submissions under {course.dir('submitted')}/*/{aid} "
                          f"(run `autograder collect {aid} <folder-or-zip>` first).")
    build(course, [aid])        # the gradebook must know the assignment's cells and hidden tests
    results = grade_submissions(course, aid, students)
    for r in results:
        if r.ok:
            print(f"graded   {r.student}: {r.score:g} / {r.max_score:g}")
        else:
            print(f"FAILED   {r.student}: {r.message}")
    print(f"graded {sum(r.ok for r in results)} of {len(results)} submission(s) of {aid}")
    return 0 if all(r.ok for r in results) else 1


# -- feedback and export -------------------------------------------------------------------

def feedback(course: Course, args) -> int:
    # nbgrader_config.py puts autograder.feedback.HideHiddenTests first in the feedback
    # pipeline, so hidden tests are removed however feedback is generated.
    nbgrader(course, "generate_feedback", args.id, "--force")
    out = sorted(course.dir("feedback").glob(f"*/{args.id}/*.html"))
    for f in out:
        print(f"wrote {f}")
    return 0


def export(course: Course, args) -> int:
    to = Path(args.to) if args.to else course.root / "exports" / "grades.csv"
    to.parent.mkdir(parents=True, exist_ok=True)
    nbgrader(course, "export", f"--CsvExportPlugin.to={to.resolve()}")
    print(f"wrote {to}")
    return 0


