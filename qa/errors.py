"""Errors a user can cause. Each carries a one-line message and an exit code."""


class QAError(Exception):
    """Base class: ``str(err)`` is the message shown to the user."""

    exit_code = 1


class UsageError(QAError):
    """Bad arguments or bad question (exit 2)."""

    exit_code = 2


class InputError(QAError):
    """A file that cannot be read or holds no text (exit 3)."""

    exit_code = 3


class IndexError_(QAError):
    """A missing, stale or damaged index (exit 4). Message names the fixing command."""

    exit_code = 4


class ModelError(QAError):
    """An encoder or reader model that cannot be loaded (exit 5)."""

    exit_code = 5
