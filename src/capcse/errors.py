"""Exceptions that the CLI shows as one clear message (no traceback)."""


class CapcseError(Exception):
    """Base class of user-facing errors."""


class DataNotFoundError(CapcseError, FileNotFoundError):
    """A named data set could not be found locally nor downloaded."""


class DataFormatError(CapcseError, ValueError):
    """A malformed input file; the message names the file and the line."""

    def __init__(self, path, line: int | None, message: str):
        where = f"{path}:{line}" if line is not None else f"{path}"
        super().__init__(f"{where}: {message}")
        self.path = str(path)
        self.line = line


class ChecksumError(CapcseError):
    """A downloaded file does not match its expected checksum."""


class ConfigError(CapcseError, ValueError):
    """A bad recipe / configuration value."""
