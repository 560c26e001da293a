"""What a demonstration cell says when it builds on an exercise the learner has not solved yet.

    needs(table_exists, "Exercise 1")   # raises ExerciseNotDone with one plain sentence

ExerciseNotDone is a NotImplementedError, like the unsolved stub itself, so a learner sees the
same kind of error in both places, and the checks that expect unsolved stubs accept it.
"""

from __future__ import annotations


class ExerciseNotDone(NotImplementedError):
    """A cell needs the result of an exercise that is not solved (or not run) yet."""


def needs(done: bool, exercise: str) -> None:
    if not done:
        raise ExerciseNotDone(f"This cell builds on your answer to {exercise}: solve it and run its cell first.")
