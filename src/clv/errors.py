"""The failures the CLI reports: one line for the user, and the exit code a scheduler acts on."""

from __future__ import annotations


class RunError(RuntimeError):
    """A failure already phrased for the user: one line, no traceback."""

    exit_code = 1  # the build failed


class InputRefused(RunError):
    """The input, a flag, a var or a path cannot be used: nothing was built or replaced."""

    exit_code = 2


class PublishFailed(RunError):
    """The output folder and the warehouse are complete; only publishing failed."""

    exit_code = 3
