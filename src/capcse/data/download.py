"""Downloading data sets from their public origin into the user cache, verified before they are installed.

For one :class:`~capcse.data.registry.Source` every file is downloaded into a private staging folder inside the
cache (``<cache>/data/.staging-*``): streamed to a temporary file while its sha256 is computed, compared with
the known checksum (a mismatch is a :class:`~capcse.errors.ChecksumError`), unpacked when it is an archive
(zip, tar of any compression, or a single ``.gz``; only the data folder is extracted, found by the layout's
required files). The staged copy is then read with the real loaders and its item counts compared with the
expected ones — the only check for origins whose checksum is not published. Only then is it moved into
place (``os.replace``: atomic on one file system). Whatever fails, the staging folder is removed: a failed or
rejected download leaves nothing in the cache.

Verified archives are kept in ``<cache>/data/downloads/`` so that SimCSE's one ``senteval.tar`` serves every
SentEval task without being fetched again.

Every URL can be redirected to a mirror: with ``CAPCSE_DATA_MIRROR=http://host/base`` (or ``mirror=``),
``https://origin.org/a/b.txt`` is fetched from ``http://host/base/origin.org/a/b.txt`` — the tree
``wget --force-directories`` writes. Tests use it with a local HTTP server.
"""

from __future__ import annotations

import fnmatch
import gzip
import hashlib
import logging
import os
import shutil
import tarfile
import tempfile
import zipfile
from pathlib import Path, PurePosixPath
from urllib.error import HTTPError, URLError
from urllib.parse import urlsplit
from urllib.request import Request, urlopen

from capcse import __version__
from capcse.data.registry import DatasetSpec, Layout, RemoteFile, Source, data_cache_dir, get_spec
from capcse.data.verify import verify_copy
from capcse.errors import CapcseError, ChecksumError

log = logging.getLogger(__name__)

_CHUNK = 1 << 20
_PROGRESS_MIN_BYTES = 20 << 20


class DownloadError(CapcseError):
    """A URL could not be fetched (HTTP error, network failure, timeout)."""


class VerificationError(CapcseError):
    """Downloaded data do not have the expected files or item counts."""


def mirror_url(url: str, mirror: str | None = None) -> str:
    """``url`` redirected to ``mirror`` (default: env ``CAPCSE_DATA_MIRROR``) as ``<mirror>/<host><path>``."""
    mirror = mirror if mirror is not None else os.environ.get("CAPCSE_DATA_MIRROR", "")
    if not mirror:
        return url
    parts = urlsplit(url)
    return f"{mirror.rstrip('/')}/{parts.netloc}{parts.path}"


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def fetch(url: str, dest: str | os.PathLike, *, sha256: str | None = None, timeout: float = 60.0) -> str:
    """Download ``url`` to ``dest`` through a temporary ``.part`` file; returns the sha256 of the bytes.

    With ``sha256`` the digest must match, else a ChecksumError and nothing is written. HTTP and network
    failures are a DownloadError naming the URL.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".part")
    h = hashlib.sha256()
    ok = False
    try:
        req = Request(url, headers={"User-Agent": f"capcse/{__version__}"})
        with urlopen(req, timeout=timeout) as resp, open(tmp, "wb") as out:
            total = int(resp.headers.get("Content-Length") or 0)
            bar = _progress(total, url)
            while chunk := resp.read(_CHUNK):
                out.write(chunk)
                h.update(chunk)
                if bar is not None:
                    bar.update(len(chunk))
            if bar is not None:
                bar.close()
        digest = h.hexdigest()
        if sha256 and digest != sha256.lower():
            raise ChecksumError(f"{url}: sha256 {digest} does not match the expected {sha256}; file rejected")
        os.replace(tmp, dest)
        ok = True
        return digest
    except HTTPError as exc:
        raise DownloadError(f"{url}: HTTP {exc.code} {exc.reason}") from None
    except (URLError, TimeoutError, ConnectionError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DownloadError(f"{url}: {reason}") from None
    finally:
        if not ok:
            tmp.unlink(missing_ok=True)


def _progress(total: int, url: str):
    from capcse.io import on_terminal

    if total < _PROGRESS_MIN_BYTES or not on_terminal():
        log.info("downloading %s", url)
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="B", unit_scale=True, desc=PurePosixPath(urlsplit(url).path).name)


# --------------------------------------------------------------------------------------------- archives
def _archive_names(archive: Path, kind: str) -> list[str]:
    if kind == "zip":
        with zipfile.ZipFile(archive) as zf:
            return [i.filename for i in zf.infolist() if not i.is_dir()]
    with tarfile.open(archive, "r:*") as tf:
        return [m.name for m in tf.getmembers() if m.isfile()]


def _data_prefix(names: list[str], required: tuple[str, ...], archive: Path, hints: tuple[str, ...] = ()) -> str:
    """The archive folder ("" or "a/b/") holding every required file.

    When several folders do (SentEval's ``SST/binary`` and ``SST/fine`` hold the same file names), the one whose
    trailing path components match one of ``hints`` (the layout's relative paths) best wins, then the shallowest.
    """
    if not required:
        return ""
    nameset = set(names)
    first = required[0]
    candidates = {n[: -len(first)] for n in names if n == first or n.endswith("/" + first)}
    complete = [c for c in candidates if all(c + r in nameset for r in required)]
    if not complete:
        raise VerificationError(f"{archive.name} has no folder holding {', '.join(required[:4])}"
                                f"{', ...' if len(required) > 4 else ''}")

    def tail_match(prefix: str) -> int:
        parts = PurePosixPath(prefix).parts if prefix else ()
        best = 0
        for hint in hints:
            hparts = PurePosixPath(hint).parts
            k = 0
            while k < min(len(parts), len(hparts)) and parts[-1 - k] == hparts[-1 - k]:
                k += 1
            best = max(best, k)
        return best

    return min(complete, key=lambda c: (-tail_match(c), len(c), c))


def _safe_relative(name: str, archive: Path) -> PurePosixPath:
    rel = PurePosixPath(name)
    if rel.is_absolute() or ".." in rel.parts:
        raise VerificationError(f"{archive.name}: unsafe member path {name!r}")
    return rel


def extract(archive: str | os.PathLike, kind: str, out_dir: str | os.PathLike, *, required: tuple[str, ...] = (),
            keep: tuple[str, ...] = (), hints: tuple[str, ...] = ()) -> Path:
    """Extract the data folder of ``archive`` (zip or tar) into ``out_dir``; returns ``out_dir``.

    The data folder is the archive folder holding every ``required`` file (the archive root when none are
    given; see :func:`_data_prefix` for ties); only members below it are written, and with ``keep`` only those
    matching a pattern.
    """
    archive, out_dir = Path(archive), Path(out_dir)
    names = _archive_names(archive, kind)
    prefix = _data_prefix(names, required, archive, hints)
    wanted = {}
    for name in names:
        if not name.startswith(prefix):
            continue
        rel = _safe_relative(name[len(prefix):], archive)
        if keep and not any(fnmatch.fnmatch(str(rel), p) or fnmatch.fnmatch(rel.name, p) for p in keep):
            continue
        wanted[name] = out_dir.joinpath(*rel.parts)
    if not wanted:
        raise VerificationError(f"{archive.name}: nothing to extract")
    if kind == "zip":
        with zipfile.ZipFile(archive) as zf:
            for name, dest in wanted.items():
                dest.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(name) as src, open(dest, "wb") as dst:
                    shutil.copyfileobj(src, dst, _CHUNK)
    else:
        with tarfile.open(archive, "r:*") as tf:
            for member in tf.getmembers():
                if member.isfile() and member.name in wanted:
                    dest = wanted[member.name]
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    with tf.extractfile(member) as src, open(dest, "wb") as dst:
                        shutil.copyfileobj(src, dst, _CHUNK)
    return out_dir


def _gunzip(src: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        with gzip.open(src, "rb") as fin, open(dest, "wb") as fout:
            shutil.copyfileobj(fin, fout, _CHUNK)
    except (OSError, EOFError) as exc:
        raise VerificationError(f"{src.name}: not a valid gzip file ({exc})") from None


# --------------------------------------------------------------------------------------------- install
def _archive_cache_path(cache_root: Path, rf: RemoteFile) -> Path:
    key = hashlib.sha1(rf.url.encode()).hexdigest()[:12]
    return cache_root / "downloads" / f"{key}-{PurePosixPath(urlsplit(rf.url).path).name}"


def _cached_archive(cache_root: Path, rf: RemoteFile) -> Path | None:
    path = _archive_cache_path(cache_root, rf)
    if not path.is_file():
        return None
    if rf.sha256 and sha256_file(path) != rf.sha256:
        log.warning("cached archive %s does not match its sha256; fetching it again", path)
        path.unlink()
        return None
    return path


def _move_into_place(content: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    if content.is_file() or not target.exists():
        os.replace(content, target)
        return
    for f in sorted(p for p in content.rglob("*") if p.is_file()):  # an incomplete folder: add what it lacks
        dst = target / f.relative_to(content)
        dst.parent.mkdir(parents=True, exist_ok=True)
        os.replace(f, dst)


def install_source(spec: DatasetSpec, layout: Layout, source: Source, *, cache_root: str | os.PathLike | None = None,
                   mirror: str | None = None, timeout: float = 60.0) -> Path:
    """Download ``source`` for ``layout`` of ``spec``, verify it, and install it in the cache; returns its path.

    The installed path is ``<cache_root>/<layout.paths[0]>`` (``cache_root`` defaults to the data cache).
    """
    cache_root = Path(cache_root) if cache_root is not None else data_cache_dir()
    cache_root.mkdir(parents=True, exist_ok=True)
    target = cache_root / layout.paths[0]
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=cache_root))
    archives: list[tuple[RemoteFile, Path]] = []
    try:
        content = staging / "content"
        for i, rf in enumerate(source.files):
            url = mirror_url(rf.url, mirror)
            dest = content if rf.dest == "." else content / rf.dest
            if rf.unpack in ("zip", "tar"):
                archive = _cached_archive(cache_root, rf)
                if archive is None:
                    archive = staging / f"download-{i}-{PurePosixPath(urlsplit(rf.url).path).name}"
                    fetch(url, archive, sha256=rf.sha256, timeout=timeout)
                    archives.append((rf, archive))
                extract(archive, rf.unpack, dest, required=layout.required if rf.dest == "." else (), keep=rf.keep,
                        hints=layout.paths)
            elif rf.unpack == "gz":
                packed = staging / f"download-{i}.gz"
                fetch(url, packed, sha256=rf.sha256, timeout=timeout)
                _gunzip(packed, dest)
            elif rf.unpack is None:
                fetch(url, dest, sha256=rf.sha256, timeout=timeout)
            else:  # pragma: no cover - registry entries are fixed
                raise VerificationError(f"unknown unpack kind {rf.unpack!r}")
        missing = layout.missing(content)
        if missing:
            raise VerificationError(f"{spec.name}: the download lacks {', '.join(missing[:4])}")
        check = verify_copy(spec, layout, content)
        if not check["ok"]:
            raise VerificationError(
                f"{spec.name}: downloaded copy has counts {check['counts']}, expected {check['expected']}"
                + (f" ({check['note']})" if check["note"] else "")
            )
        _move_into_place(content, target)
        for rf, archive in archives:  # keep verified archives for the other data sets they hold
            kept = _archive_cache_path(cache_root, rf)
            kept.parent.mkdir(parents=True, exist_ok=True)
            os.replace(archive, kept)
        log.info("installed %s (%s) from %s into %s", spec.name, layout.variant, source.label, target)
        return target
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def download_dataset(name: str, *, variant: str | None = None, cache_root: str | os.PathLike | None = None,
                     mirror: str | None = None, timeout: float = 60.0) -> Path:
    """Download data set ``name`` into the cache, trying its sources in order (no local search, ignores the
    offline switches: an explicit request). Raises the error of the last source when every one fails."""
    spec = get_spec(name)
    errors: list[str] = []
    last: Exception | None = None
    for layout in spec.layouts_for(variant):
        for source in layout.sources:
            try:
                return install_source(spec, layout, source, cache_root=cache_root, mirror=mirror, timeout=timeout)
            except (CapcseError, OSError) as exc:
                errors.append(f"{source.label}: {exc}")
                last = exc
    if last is None:
        raise VerificationError(f"{spec.name}: no download source for variant {variant or 'default'}")
    if len(errors) > 1:
        log.warning("every source of %s failed:\n  %s", spec.name, "\n  ".join(errors))
    raise last
