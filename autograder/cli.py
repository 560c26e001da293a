"""The `autograder` command: one CLI over nbgrader for authors and instructors.

    autograder build [ID ...]            sources → instructor editions → notebooks/
    autograder check [ID ...]            lint, contract, drift, nbgrader validate (+ --invert)
    autograder release ID                the learner edition, ready to hand out (+ zip for an LMS)
    autograder collect ID PATH           a folder or zip with one subfolder/entry per student
    autograder grade ID                  autograde every collected submission
    autograder feedback ID               HTML feedback per student, hidden tests removed
    autograder export [--to FILE]        all grades as CSV
    autograder try ID EXERCISE FILE      run an exercise's visible and hidden tests on FILE's code
"""

from __future__ import annotations

import argparse
import sys

from .course import CourseError, find_course


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="autograder", description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("build", help="build instructor and learner editions")
    p.add_argument("ids", nargs="*")
    p = sub.add_parser("check", help="check the course (contract, drift, validate)")
    p.add_argument("ids", nargs="*")
    p.add_argument("--no-execute", action="store_true", help="skip nbgrader validate")
    p = sub.add_parser("release", help="release an assignment")
    p.add_argument("id")
    p.add_argument("--exchange", help="also release to this nbgrader exchange folder")
    p = sub.add_parser("collect", help="collect submissions from a folder or zip")
    p.add_argument("id")
    p.add_argument("path")
    p = sub.add_parser("grade", help="autograde collected submissions")
    p.add_argument("id")
    p.add_argument("--student", action="append", help="only these students (repeatable)")
    p = sub.add_parser("feedback", help="generate feedback (hidden tests removed)")
    p.add_argument("id")
    p = sub.add_parser("export", help="export grades to CSV")
    p.add_argument("--to", default=None, help="CSV path (default: course/exports/grades.csv)")
    p = sub.add_parser("try", help="run an exercise's tests against your implementation")
    p.add_argument("id")
    p.add_argument("exercise", help="e.g. ex02-bplus-tree")
    p.add_argument("file", help="a .py file with the code of the answer cell")
    args = ap.parse_args(argv)

    try:
        course = find_course()
        return _run(course, args)
    except CourseError as e:
        print(f"autograder {args.cmd}: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _run(course, args) -> int:
    if args.cmd == "build":
        from .build import build

        for path in build(course, args.ids or None):
            print(f"wrote {path}")
        return 0
    if args.cmd == "check":
        from .check import check

        problems = check(course, args.ids or None, execute=not args.no_execute)
        for p in problems:
            print(p)
        print(f"autograder check: {len(problems)} problem(s)" if problems else "autograder check: all good")
        return 1 if problems else 0
    if args.cmd == "try":
        from pathlib import Path

        from .harness import run_variants

        gid = f"{args.id}-{args.exercise}"
        [res, control] = run_variants(course.source_py(args.id), [("yours", gid, Path(args.file).read_text())])
        for name, o in (("visible tests", res.tests), ("hidden tests", res.hidden)):
            print(f"{name}: {'pass' if o.passed else 'FAIL  ' + o.error}")
        if not (control.tests.passed and control.hidden.passed):
            print("warning: the instructor solution does not pass when rerun at the end of the notebook")
        return 0 if res.tests.passed and res.hidden.passed else 1
    from . import instructor

    return getattr(instructor, args.cmd)(course, args)


if __name__ == "__main__":
    raise SystemExit(main())
