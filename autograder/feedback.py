"""Feedback never shows hidden tests (nbgrader shows them: its issue #917).

HideHiddenTests runs first in nbgrader's feedback pipeline (see course/nbgrader_config.py):
it deletes each hidden-test region from the cell source and replaces the cell's outputs,
whose tracebacks would quote the hidden assertions, by one line saying whether it passed.
"""

from __future__ import annotations

import nbformat
from nbconvert.preprocessors import Preprocessor
from traitlets import Bool

from .source import BEGIN_HIDDEN, END_HIDDEN

NOTICE = "# Hidden tests ran here when your work was graded; they are not shown."


def strip_hidden(source: str) -> str:
    out, hidden = [], False
    for line in source.splitlines():
        if BEGIN_HIDDEN in line:
            hidden = True
            out.append(NOTICE)
        elif END_HIDDEN in line:
            hidden = False
        elif not hidden:
            out.append(line)
    return "\n".join(out)


class HideHiddenTests(Preprocessor):
    enabled = Bool(True)    # nbconvert skips preprocessors that are not enabled

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type == "code" and BEGIN_HIDDEN in cell.source:
            cell.source = strip_hidden(cell.source)
            failed = any(o.get("output_type") == "error" for o in cell.get("outputs", []))
            text = ("A hidden test failed: check your solution against the cases in the task description.\n"
                    if failed else "Hidden tests passed.\n")
            cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=text)]
        return cell, resources
