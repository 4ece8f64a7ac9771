"""Errors a user can fix (bad input, bad configuration) versus bugs.

The command line (:mod:`soft_label_audit.cli`) prints a user error as its message and the fix in
a few lines and exits non-zero; any other exception keeps its full traceback, since it is a bug.
"""

from __future__ import annotations


class UserError(Exception):
    """A mistake in the user's input or configuration; the message says what and how to fix it."""

    def __init__(self, message: str, fix: str | None = None) -> None:
        super().__init__(message)
        self.fix = fix


class UnknownEnvironmentError(UserError):
    """``--env NAME`` (or ``KEDRO_ENV``) names no folder of ``conf/``."""


class UnknownConditionError(UserError, KeyError):
    """The study lists a label condition that no target builder knows."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])
