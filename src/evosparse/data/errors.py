"""The two ways a data file can fail us: it is not there, or it is not what it should be."""

from __future__ import annotations


class DatasetNotFoundError(FileNotFoundError):
    """A data file is in none of the searched folders and could not (or may not) be downloaded.

    The message is one line: which file, where it looked, and what to do about it.
    """


class CorruptFileError(ValueError):
    """A data file exists but is damaged: wrong checksum, truncated, or not in the expected format.

    The message names the file, so the user knows which one to delete or replace.
    """
