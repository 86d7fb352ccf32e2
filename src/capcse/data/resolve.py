"""Finding a data set: the data roots first, then a verified download into the user cache.

:func:`locate` / :func:`resolve_dataset` search, in order, the explicit ``data_dir``, the folders in
``CAPCSE_DATA`` and the user cache (``CAPCSE_CACHE``, else ``$XDG_CACHE_HOME/capcse``, else
``~/.cache/capcse``; data sets live in its ``data/`` sub-folder) for one of the data set's layouts
(:mod:`capcse.data.registry` says which folders and files), then download from its sources into the cache
(:mod:`capcse.data.download`) unless offline (``CAPCSE_OFFLINE=1`` or ``HF_HUB_OFFLINE=1``). When nothing
works it raises one :class:`~capcse.errors.DataNotFoundError` naming the data set, every path tried, why the
download did not happen and how to provide the data. :func:`list_datasets` surveys every local copy.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from capcse.data.download import install_source
from capcse.data.registry import REGISTRY, DatasetSpec, Layout, data_cache_dir, data_roots, get_spec
from capcse.data.verify import verify_copy
from capcse.errors import CapcseError, DataNotFoundError


log = logging.getLogger(__name__)

_TRUE = {"1", "true", "yes", "on"}


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in _TRUE


def is_offline() -> bool:
    """True when downloads are disabled: ``CAPCSE_OFFLINE`` or ``HF_HUB_OFFLINE`` set to 1/true/yes/on."""
    return _env_flag("CAPCSE_OFFLINE") or _env_flag("HF_HUB_OFFLINE")


@dataclass(frozen=True)
class Located:
    """Where a data set was found: its spec, the layout (variant) and the path of the folder or file."""

    spec: DatasetSpec
    layout: Layout
    path: Path
    downloaded: bool = False

    @property
    def variant(self) -> str:
        return self.layout.variant


@dataclass
class _Search:
    tried: list[str] = field(default_factory=list)

    def find(self, layouts: tuple[Layout, ...], roots: list[Path]) -> tuple[Layout, Path] | None:
        for root in roots:
            for layout in layouts:
                for rel in layout.paths:
                    path = root / rel
                    missing = layout.missing(path)
                    if not missing:
                        return layout, path
                    if missing == [str(path)]:
                        self.tried.append(f"{path} (not there)")
                    else:
                        shown = ", ".join(missing[:3]) + (", ..." if len(missing) > 3 else "")
                        self.tried.append(f"{path} (incomplete: missing {shown})")
        return None


def find_local(name: str, *, data_dir=None, variant: str | None = None) -> Located | None:
    """The data set in a data root, without downloading; ``None`` when absent."""
    spec = get_spec(name)
    hit = _Search().find(spec.layouts_for(variant), data_roots(data_dir))
    return Located(spec, *hit) if hit else None


def locate(name: str, *, data_dir=None, download: bool = True, variant: str | None = None) -> Located:
    """Find a data set (see the module docstring for the order), downloading it when allowed."""
    spec = get_spec(name)
    layouts = spec.layouts_for(variant)
    roots = data_roots(data_dir)
    search = _Search()
    hit = search.find(layouts, roots)
    if hit:
        return Located(spec, *hit)

    download_notes: list[str] = []
    sources = [(lay, src) for lay in layouts for src in lay.sources]
    if not sources:
        download_notes.append("no public download exists for this layout")
    elif not download:
        download_notes.append("download not requested (download=False / --no-download)")
    elif is_offline():
        flag = "CAPCSE_OFFLINE" if _env_flag("CAPCSE_OFFLINE") else "HF_HUB_OFFLINE"
        download_notes.append(f"offline ({flag}={os.environ.get(flag)}): no download attempted")
    else:
        for layout, source in sources:
            try:
                path = install_source(spec, layout, source)
                return Located(spec, layout, path, downloaded=True)
            except (CapcseError, OSError) as exc:
                log.warning("download of %s from %s failed: %s", spec.name, source.label, exc)
                download_notes.append(f"{source.label}: {exc}")

    if variant is None:  # a known subset (wiki1m prefix) as the last resort, said loudly
        partial = tuple(lay for lay in spec.layouts if lay.partial)
        hit = search.find(partial, roots) if partial else None
        if hit:
            log.warning("%s: using %s (%s); the full data set is at %s", spec.name, hit[1], hit[0].note,
                        ", ".join(spec.origin))
            return Located(spec, *hit)
    raise DataNotFoundError(_not_found_message(spec, layouts, search.tried, download_notes))


def resolve_dataset(name: str, *, data_dir=None, download: bool = True, variant: str | None = None) -> Path:
    """The folder (or file) holding data set ``name``; see :func:`locate`."""
    return locate(name, data_dir=data_dir, download=download, variant=variant).path


def _not_found_message(spec: DatasetSpec, layouts, tried: list[str], notes: list[str]) -> str:
    what = spec.name + (f" (variant {layouts[0].variant!r})" if len(spec.layouts) > 1 and len(layouts) == 1 else "")
    lines = [f"data set {what} not found."]
    lines.append("Paths tried:")
    lines += [f"  {t}" for t in tried]
    lines.append("Download:")
    lines += [f"  {n}" for n in notes]
    rel = layouts[0].paths[0]
    lines.append(
        f"Provide it with --data-dir DIR or CAPCSE_DATA=DIR, where DIR/{rel} holds "
        + (f"{', '.join(layouts[0].required[:4])}{', ...' if len(layouts[0].required) > 4 else ''}"
           if layouts[0].required else "the file")
        + f"; or run online (unset CAPCSE_OFFLINE/HF_HUB_OFFLINE) to download it into {data_cache_dir()}; "
        + f"public origin: {', '.join(spec.origin)}"
    )
    return "\n".join(lines)


def list_datasets(data_dir=None) -> list[dict]:
    """One row per data set and variant: whether it is found locally, where, and its verified counts.

    Keys: name, variant, kind, unit, found, path, counts, expected, ok, status (``ok`` / ``mismatch`` /
    ``prefix`` / ``error`` / ``missing``), note. Nothing is downloaded.
    """
    roots = data_roots(data_dir)
    rows = []
    for spec in REGISTRY.values():
        for layout in spec.layouts:
            hit = _Search().find((layout,), roots)
            row = {"name": spec.name, "variant": layout.variant, "kind": spec.kind, "unit": spec.unit,
                   "found": hit is not None, "path": str(hit[1]) if hit else None}
            if hit:
                row.update(verify_copy(spec, layout, hit[1]))
            else:
                row.update({"counts": {}, "expected": dict(spec.expected_for(layout)), "ok": False,
                            "status": "missing", "note": layout.note})
            rows.append(row)
    return rows
