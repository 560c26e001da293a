"""Set-up for kernels that autograder runs itself with nbclient (the harness, the grader).

IPython 9 prints an exception group (hypothesis reporting several failures, asyncio.TaskGroup,
or a learner's function raising one on purpose) to stderr with the standard library and sends
no error output (ipython/ipython#13753). Whoever decides pass or fail by looking for an error
output would score such a failing test cell as passed. (nbgrader's own validate and autograde
are not fooled: they replace showtraceback in the kernel.) Here every exception whose chain
holds a group is shown as an ordinary error output instead.
"""

from __future__ import annotations

import traceback

# Extra kernel arguments for nbclient.NotebookClient.
KERNEL_ARGUMENTS = ["--IPKernelApp.exec_lines=['__import__(\"autograder.kernel\").kernel.install()']"]


def _holds_group(value) -> bool:
    seen = set()
    while value is not None and id(value) not in seen:
        if isinstance(value, BaseExceptionGroup):
            return True
        seen.add(id(value))
        value = value.__cause__ or value.__context__
    return False


def _show(shell, etype, value, tb, tb_offset=None):
    if _holds_group(value):
        stb = traceback.format_exception(etype, value, tb)
        shell._showtraceback(etype, value, stb)      # ipykernel: an error output, like any other exception
        return stb
    shell.showtraceback((etype, value, tb), tb_offset=tb_offset, running_compiled_code=True)
    return []


def install(shell=None) -> None:
    shell = shell or get_ipython()  # noqa: F821 - run inside IPython
    shell.set_custom_exc((BaseException,), _show)
