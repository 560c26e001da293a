"""Course tooling over nbgrader: build, check, release, collect, grade, feedback, export."""
