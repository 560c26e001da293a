"""A test cell that raises an exception group must fail in the kernels autograder runs with
nbclient. IPython prints such groups to stderr without an error output, so without
autograder/kernel.py the cell would count as passed: hypothesis raises one when it finds two
distinct failures, and a learner's function could raise one on purpose."""

from __future__ import annotations

import nbformat
import pytest
from nbclient import NotebookClient

from autograder.kernel import KERNEL_ARGUMENTS

CELLS = {
    "group": 'raise ExceptionGroup("two bugs", [AssertionError("a"), AssertionError("b")])',
    "raised while handling a group": ('try:\n    raise ExceptionGroup("g", [ValueError(1)])\n'
                                      'except ExceptionGroup:\n    raise AssertionError("during")'),
    "plain": "assert 1 == 2",
}


def test_without_the_set_up_an_exception_group_leaves_no_error_output():
    """The hole itself, so that this file notices when IPython fixes it."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(CELLS["group"])]
    NotebookClient(nb, kernel_name="python3", allow_errors=True).execute()
    assert [o.output_type for o in nb.cells[0].outputs] == ["stream"]


@pytest.mark.parametrize("name", CELLS)
def test_the_harness_kernel_turns_every_failure_into_an_error_output(name):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(CELLS[name]), nbformat.v4.new_code_cell("print('next')")]
    NotebookClient(nb, kernel_name="python3", allow_errors=True, extra_arguments=KERNEL_ARGUMENTS).execute()
    assert [o.output_type for o in nb.cells[0].outputs] == ["error"]
    assert nb.cells[1].outputs[0].text == "next\n", "the kernel keeps working after it"
