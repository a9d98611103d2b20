"""Errors of the encoders and vector store, the lowest layer: ``qa.errors`` builds on them.

Each carries a one-line message for the user and the process exit code.
"""


class UserFacingError(Exception):
    """Base class of every error a user can cause or fix: ``str(err)`` is the message shown."""

    exit_code = 1


class ModelError(UserFacingError):
    """An encoder or reader model that cannot be loaded (exit 5)."""

    exit_code = 5
