"""Running nbgrader's own commands inside the course directory, the way an instructor would."""

from __future__ import annotations

import os
import subprocess
import sys

from .course import Course, CourseError


def nbgrader(course: Course, *args: str, check: bool = True, timeout: float = 1800) -> subprocess.CompletedProcess:
    """`nbgrader <args>` with the course directory as working directory (its config uses
    relative paths). Raises CourseError with nbgrader's last error lines when check fails."""
    # nbgrader runs `alembic` by name: the environment's bin folder must be on PATH even when
    # the venv is not activated (make, CI and Jupyter often call .venv/bin/python directly).
    bindir = os.path.dirname(sys.executable)
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PATH": bindir + os.pathsep + os.environ.get("PATH", "")}
    proc = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course.root, env=env,
                          capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        lines = [ln for ln in (proc.stderr + proc.stdout).splitlines() if "ERROR" in ln or "Error" in ln]
        detail = "; ".join(lines[-3:]) or (proc.stderr or proc.stdout).strip()[-500:]
        raise CourseError(f"nbgrader {' '.join(args)} failed: {detail}")
    return proc
