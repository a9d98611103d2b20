"""Errors a user can cause. Each carries a one-line message and an exit code.

The base class and :class:`ModelError` come from ``embeddings`` (the layer below), so one
``except QAError`` catches the encoders' errors too.
"""
from embeddings.errors import ModelError, UserFacingError as QAError

__all__ = ["QAError", "UsageError", "InputError", "IndexError_", "ModelError", "StorageError", "StoreUnavailableError"]


class UsageError(QAError):
    """Bad arguments or bad question (exit 2)."""

    exit_code = 2


class InputError(QAError):
    """A file that cannot be read or holds no text (exit 3)."""

    exit_code = 3


class IndexError_(QAError):
    """A missing, stale or damaged index (exit 4). Message names the fixing command."""

    exit_code = 4


class StorageError(QAError):
    """The index cannot be written: disk full, quota, read-only or permission denied (exit 6).
    The index already there is left as it was."""

    exit_code = 6


class StoreUnavailableError(QAError):
    """A document store server (Milvus), or the Ray cluster of ``qa index --ray``, that is down,
    unreachable or stopped answering (exit 7).
    Nothing is half-written that the next run would not repair (see ``qa.index.stores``)."""

    exit_code = 7
