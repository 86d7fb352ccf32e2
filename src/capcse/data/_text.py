"""Line readers shared by the data loaders: exact line splitting, decoding errors that name file and line."""

from __future__ import annotations

import gzip
import math
from pathlib import Path

from capcse.errors import DataFormatError


def read_bytes(path: str | Path) -> bytes:
    path = Path(path)
    data = path.read_bytes()
    if path.suffix == ".gz":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise DataFormatError(path, None, f"not a valid gzip file ({exc})") from None
    return data


def decode(data: bytes, path: str | Path, encoding: str = "utf-8") -> str:
    """Decode ``data``; a decoding error names the file and the line holding the bad byte."""
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise DataFormatError(path, line, f"not valid {encoding} ({exc.reason} at byte {exc.start})") from None


def read_lines(path: str | Path, encoding: str = "utf-8") -> list[str]:
    """The lines of a text file without their line ends (``\\n`` or ``\\r\\n``).

    Lines are split on ``\\n`` only (a final newline does not start an extra line), which for these files
    equals Python's ``str.splitlines()`` used by SentEval; unlike ``splitlines`` a stray ``\\x85`` or
    ``\\u2028`` inside a sentence does not break the line. A lone ``\\r`` inside a line is kept.
    """
    text = decode(read_bytes(path), path, encoding)
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def normalize_whitespace(text: str) -> str:
    """SentEval's view of a sentence: split on any whitespace, re-joined with single spaces.

    SentEval's loaders call ``sentence.split()`` and the batchers of SimCSE and SentEval's examples re-join the
    tokens with ``' '.join``; this function is that round trip.
    """
    return " ".join(text.split())


def parse_score(text: str, path: str | Path, line: int, what: str = "score") -> float:
    """A finite float, else a DataFormatError naming file and line."""
    try:
        value = float(text)
    except ValueError:
        raise DataFormatError(path, line, f"{what} {text!r} is not a number") from None
    if not math.isfinite(value):
        raise DataFormatError(path, line, f"{what} {text!r} is not finite")
    return value


def split_columns(line: str, path: str | Path, lineno: int, n: int, *, at_least: bool = False,
                  sep: str = "\t") -> list[str]:
    """Split a row into ``n`` columns (or at least ``n``); a wrong count is a DataFormatError."""
    cols = line.split(sep)
    if len(cols) < n or (not at_least and len(cols) != n):
        want = f"at least {n}" if at_least else str(n)
        raise DataFormatError(path, lineno, f"expected {want} tab-separated columns, found {len(cols)}")
    return cols


def strip_trailing_blank(lines: list[str]) -> list[str]:
    """Drop blank lines at the very end of a file (harmless editor artefacts); blank lines inside stay."""
    end = len(lines)
    while end and not lines[end - 1].strip():
        end -= 1
    return lines[:end]
