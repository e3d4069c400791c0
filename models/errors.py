"""The errors a user causes or must act on, and how each becomes one line for the CLI and the window.

Each message names the thing (a key, a file, a directory) and what was expected; a traceback is for
our own bugs, not for a missing file or a full disk.
"""
from __future__ import annotations

import errno


class WorkbenchError(Exception):
    """A failure with a message a user can act on (shown without a traceback)."""


class RunDirError(WorkbenchError, ValueError):
    """A run directory cannot be used as asked (it holds another run, cannot be created, ...)."""


class ResourceError(WorkbenchError, ValueError):
    """A setting asks for more memory than the machine has; the message names the key and both sizes."""


class DivergenceError(WorkbenchError, RuntimeError):
    """Training produced a non-finite loss, gradient or Q-value and `run.on_nonfinite` is "stop"."""


class CheckpointWriteError(WorkbenchError, OSError):
    """A checkpoint could not be written; nothing partial is left and the previous one is intact."""


NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


class FileWriteError(WorkbenchError, OSError):
    """A file could not be written (`models.files.atomic`); what was under its name before is intact."""

    def __init__(self, path, cause: OSError):
        super().__init__(cause.errno, cause.strerror or str(cause))
        self.filename = str(path)
        head = (f"no space left on device while writing {path}" if cause.errno in NO_SPACE
                else f"cannot write {path}: {cause.strerror or cause}")
        self.message = f"{head}; the file there before (if any) is as it was"

    def __str__(self) -> str:
        return self.message


def user_message(exc: BaseException) -> str | None:
    """The one-line message for a failure the user caused (bad input, files, disk); None for a bug."""
    if isinstance(exc, WorkbenchError):
        return str(exc)
    if isinstance(exc, OSError):  # a path we were given, or the disk
        what = exc.filename if exc.filename is not None else ""
        reason = exc.strerror or str(exc)
        return f"{what}: {reason}" if what else reason
    if isinstance(exc, ValueError):  # config, checkpoint and input errors name what is wrong
        return str(exc)
    return None
