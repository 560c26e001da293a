"""Graders are tested like code: for every week, each realistic wrong implementation in
tests/mutants/<id>/ must fail that exercise's hidden tests, while the instructor solution,
rerun at the end of the notebook, passes both its visible and hidden tests."""

from __future__ import annotations

import pytest

from autograder.course import find_course
from autograder.harness import apply_mutant, mutants, run_variants
from autograder.source import exercises, read_source

COURSE = find_course()
IDS = [aid for aid in COURSE.assignment_ids() if aid.startswith("week")]


@pytest.mark.parametrize("aid", IDS)
def test_every_exercise_has_a_realistic_wrong_implementation(aid):
    nb, _ = read_source(COURSE.source_py(aid))
    covered = {gid for _label, gid, _src in mutants(COURSE.repo, aid)}
    missing = sorted(set(exercises(nb)) - covered)
    assert not missing, f"no mutant under tests/mutants/{aid}/ for {missing}"


@pytest.mark.slow
@pytest.mark.parametrize("aid", IDS)
def test_hidden_tests_reject_every_mutant_and_pass_the_solution(aid):
    results = run_variants(COURSE.source_py(aid), mutants(COURSE.repo, aid))
    failures = []
    for r in results:
        if r.label.startswith("solution:"):
            if not (r.tests.passed and r.hidden.passed):
                failures.append(f"{r.label}: the solution fails when its tests are rerun at the end of the "
                                f"notebook: {r.tests.error or r.hidden.error}")
        elif r.hidden.passed:
            failures.append(f"{r.label}: a wrong implementation passes the hidden tests of {r.grade_id}")
    assert not failures, "\n".join(failures)


SOLUTION = "def f(x):\n    return x + 1\n"


def test_a_mutant_is_the_solution_with_its_blocks_replaced():
    text = "# adds 2\n<<<<<<< solution\n    return x + 1\n=======\n    return x + 2\n>>>>>>> mutant\n"
    assert apply_mutant(SOLUTION, text) == "def f(x):\n    return x + 2\n"


@pytest.mark.parametrize("text, message", [
    ("<<<<<<< solution\n    return x + 1\n=======\n    return 0\n>>>>>>> mutant\n", "first line must be a comment"),
    ("# stale\n<<<<<<< solution\n    return x - 1\n=======\n    return 0\n>>>>>>> mutant\n", "occurs 0 times"),
    ("# no end\n<<<<<<< solution\n    return x + 1\n=======\n    return 0\n", "needs ======= and >>>>>>> mutant"),
    ("# nothing\n", "no <<<<<<< solution"),
])
def test_a_mutant_that_does_not_apply_fails_loudly(text, message):
    with pytest.raises(ValueError, match=message):
        apply_mutant(SOLUTION, text, "m.mutant")
