"""The errors of :mod:`evosparse.io`: every one is a single line that names the file and what to do.

They subclass ``ValueError`` / ``OSError`` so the command line prints them as ``error: ...`` (exit 2)
without a traceback.
"""

from __future__ import annotations


class FileFormatError(ValueError):
    """A file is missing, truncated, corrupt, of another format, or fails its checksum."""


class MissingFileError(FileFormatError, FileNotFoundError):
    """The file a loader was asked to read does not exist."""


class RunFolderError(ValueError):
    """A run cannot start, resume or overwrite in a folder (it holds another run, is locked, ...)."""


class WriteError(OSError):
    """Writing a file failed (disk full, no permission, ...); the previous version of the file is intact.

    ``errno`` is the operating system's; the message is the one line to show (without "[Errno 28]").
    """

    def __str__(self) -> str:
        return str(self.strerror)
