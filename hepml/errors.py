"""User-facing errors.

Every error a user can cause is a :class:`HepmlError` carrying *what* went wrong and *how to
fix it*; the CLI prints it as one line ``error: <what>; <fix>`` and exits non-zero, with no
traceback unless ``--debug`` is given.
"""

from __future__ import annotations


class HepmlError(Exception):
    """Base class: ``what`` is the problem (with the value received), ``fix`` the remedy."""

    exit_code = 2

    def __init__(self, what: str, fix: str = ""):
        self.what = what
        self.fix = fix
        super().__init__(self.one_line())

    def one_line(self) -> str:
        return f"{self.what}; {self.fix}" if self.fix else self.what


class ConfigError(HepmlError):
    """A task/model/run file is malformed (bad YAML, unknown key, wrong type, missing field)."""


class InputFileError(HepmlError):
    """A ROOT file is missing, unreadable, or not ROOT."""


class MissingKeyError(HepmlError, KeyError):
    """A tree or branch is not in the file; the message lists the closest names."""

    def __str__(self) -> str:  # KeyError would otherwise repr() the message
        return self.one_line()


class ExpressionError(HepmlError):
    """A selection or derived-feature expression cannot be parsed or evaluated safely."""


class OutputFileError(HepmlError):
    """An output cannot be written (folder not writable, path is a folder...)."""


class DataError(HepmlError):
    """The data themselves are unusable: empty selection, missing class, NaN/inf values."""


class FrameworkError(HepmlError):
    """Unknown framework or model, or a framework that is not installed."""


class DeviceError(HepmlError):
    """A device (GPU) was asked for that is not available."""


class DownloadError(HepmlError):
    """A download failed (HTTP error, timeout, checksum mismatch, unwritable destination)."""
