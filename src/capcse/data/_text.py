"""Line readers shared by the data loaders: exact line splitting, decoding errors that name file and line."""

from __future__ import annotations

import codecs
import gzip
import math
import zlib
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


def open_binary(path: str | Path):
    """A binary file object, decompressing ``.gz`` on the fly."""
    path = Path(path)
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


def check_text_file(path: str | Path, encoding: str = "utf-8", *, what: str = "text") -> int:
    """Stream ``path`` (plain or ``.gz``) once and return its size in bytes; a DataFormatError if it is
    empty, not valid gzip, or holds a byte sequence that is not valid ``encoding`` (named by line).

    For loaders that hand the file to a reader which would fail with a traceback naming neither file nor
    line (``datasets``' text/csv/json builders), or would pass the bad bytes on (pyarrow's JSON reader).
    Memory stays flat: 1 MiB chunks through an incremental decoder; only on an error is the file read
    again line by line to name the line (a multi-byte character never contains a newline byte).
    """
    path = Path(path)
    decoder = codecs.getincrementaldecoder(encoding)()
    size = 0
    try:
        with open_binary(path) as fh:
            try:
                while chunk := fh.read(1 << 20):
                    size += len(chunk)
                    decoder.decode(chunk)
                decoder.decode(b"", final=True)
            except UnicodeDecodeError:
                _locate_bad_bytes(path, encoding)
                raise  # not reached: the line pass raises first
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise DataFormatError(path, None, f"not a valid gzip file ({exc})") from None
    if size == 0:
        raise DataFormatError(path, None, f"empty file (0 bytes): no {what}")
    return size


def _locate_bad_bytes(path: Path, encoding: str) -> None:
    with open_binary(path) as fh:
        for lineno, raw in enumerate(fh, start=1):
            try:
                raw.decode(encoding)
            except UnicodeDecodeError as exc:
                raise DataFormatError(path, lineno, f"not valid {encoding} ({exc.reason} at byte {exc.start} "
                                                    f"of the line)") from None


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


def require_rows(rows: list, path: str | Path, what: str) -> list:
    """``rows`` unchanged, or a DataFormatError saying the file holds no ``what`` (an empty corpus is an
    error, never an empty result that a later step averages over)."""
    if not rows:
        raise DataFormatError(path, None, f"empty file: no {what}")
    return rows


def strip_trailing_blank(lines: list[str]) -> list[str]:
    """Drop blank lines at the very end of a file (harmless editor artefacts); blank lines inside stay."""
    end = len(lines)
    while end and not lines[end - 1].strip():
        end -= 1
    return lines[:end]
