# nbgrader configuration for the course. Paths are relative: `autograder` runs nbgrader with
# this folder as its working directory (instructors running nbgrader by hand: `cd course` first).
c = get_config()  # noqa: F821

c.CourseDirectory.course_id = "technical-architecture"
c.CourseDirectory.root = "."
c.CourseDirectory.db_url = "sqlite:///gradebook.db"
c.CourseDirectory.source_directory = "source"
c.CourseDirectory.release_directory = "release"
c.CourseDirectory.submitted_directory = "submitted"
c.CourseDirectory.autograded_directory = "autograded"
c.CourseDirectory.feedback_directory = "feedback"
# source/<id>/<id>.py holds solutions and hidden tests: it must never be copied into a release
# (nbgrader copies every other file of the folder). Assignment code lives in archlab instead.
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", "*.py"]

# The learner edition keeps signatures and docstrings; solution regions become this stub.
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"

# A cell that runs longer than this is stopped and its tests fail (notebooks run in under 30 s).
c.Execute.timeout = 120
c.Execute.interrupt_on_timeout = True

# Feedback never shows hidden tests: strip them (and the tracebacks that quote them) first.
from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor  # noqa: E402
from nbgrader.preprocessors import GetGrades  # noqa: E402

from autograder.feedback import HideHiddenTests  # noqa: E402

c.GenerateFeedback.preprocessors = [HideHiddenTests, GetGrades, CSSHTMLHeaderPreprocessor]
