"""Frozen-encoder features computed once and cached on disk as memory-mapped numpy arrays.

MCSE/DALR train with a *frozen* vision encoder, so its output for an image never changes: capcse
computes it once per (image, encoder) and training reads rows of a memory-mapped ``.npy`` file — the
vision model is never run inside the training loop.

A :class:`FeatureStore` is one folder::

    <cache_dir>/<label>-<identity hash>/
        features.npy   float32 [N, D], opened with numpy memory mapping
        keys.json      the N keys (image ids / sentence ids) in row order
        meta.json      the encoder identity (name, weights hash, preprocessing), dim, count

The folder name contains a hash of the encoder identity, so features of a changed encoder (other
weights, other preprocessing, another model) are never served from an old store: a store whose
identity differs is *invalidated* — deleted and recomputed — when the same ``label`` is asked for
with a new identity (``prune=True``, the default). New keys are computed and appended (the folder is
rewritten atomically: a crash leaves the old store intact).

:class:`ImageFeatureCache` fills a store with an :class:`capcse.models.image.ImageEncoder`'s features
for ``(image_id, path)`` pairs. Images that cannot be read or decoded are skipped and reported (never
silently lost): :attr:`FeatureTable.failed` maps their ids to the reason.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from capcse.errors import CapcseError
from capcse.io import atomic_write_json

logger = logging.getLogger(__name__)

FEATURES, KEYS, META = "features.npy", "keys.json", "meta.json"


def default_cache_dir() -> Path:
    """``$CAPCSE_CACHE/features``, else ``~/.cache/capcse/features``."""
    root = os.environ.get("CAPCSE_CACHE") or Path.home() / ".cache" / "capcse"
    return Path(root) / "features"


def identity_hash(identity: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:16]


def state_dict_sha256(module) -> str:
    """SHA-256 over a module's parameters and buffers (names, shapes, dtypes and bytes), in name order."""
    import torch

    h = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        h.update(f"{name}:{tuple(t.shape)}:{t.dtype}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def preprocessing_identity(preprocess) -> dict[str, Any]:
    """What an image encoder does to pixels before the model: attribute values of capcse's Pillow
    preprocessor, or the Hugging Face image processor's configuration."""
    processor = getattr(preprocess, "processor", None)
    if processor is not None and hasattr(processor, "to_dict"):
        cfg = processor.to_dict()
        return {"class": type(processor).__name__, **{k: v for k, v in cfg.items() if not k.startswith("_")}}
    attrs = {}
    for key, value in sorted(vars(preprocess).items()):
        if isinstance(value, np.ndarray):
            value = value.tolist()
        if isinstance(value, (int, float, str, bool, list, tuple, type(None))):
            attrs[key] = value
    return {"class": type(preprocess).__name__, **attrs}


def encoder_identity(encoder) -> dict[str, Any]:
    """Identity of an image encoder: name, weights hash and preprocessing."""
    return {"name": getattr(encoder, "name", type(encoder).__name__),
            "weights_sha256": state_dict_sha256(encoder),
            "preprocessing": preprocessing_identity(encoder.preprocess)}


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_")[-60:] or "features"


@dataclass
class FeatureTable:
    """Cached features: ``array`` [N, D] (memory-mapped), ``keys`` in row order, ``index`` key -> row,
    ``failed`` key -> reason for inputs that could not be encoded."""

    array: np.ndarray
    keys: list[str]
    identity: dict[str, Any]
    path: Path
    failed: dict[str, str] = field(default_factory=dict)

    def __post_init__(self):
        self.index = {k: i for i, k in enumerate(self.keys)}

    def rows(self, keys: Iterable[str]) -> np.ndarray:
        try:
            return np.fromiter((self.index[k] for k in keys), dtype=np.int64)
        except KeyError as exc:
            raise KeyError(f"no cached feature for {exc.args[0]!r} in {self.path}") from None

    def __len__(self) -> int:
        return len(self.keys)

    @property
    def dim(self) -> int:
        return int(self.array.shape[1])


class FeatureStore:
    """One cache folder for one encoder identity (see the module docstring)."""

    def __init__(self, cache_dir: str | os.PathLike, label: str, identity: dict[str, Any], prune: bool = True):
        self.cache_dir = Path(cache_dir)
        self.label = _slug(label)
        self.identity = identity
        self.path = self.cache_dir / f"{self.label}-{identity_hash(identity)}"
        if prune:
            self._invalidate_stale()

    def _invalidate_stale(self) -> None:
        if not self.cache_dir.is_dir():
            return
        for other in self.cache_dir.glob(f"{self.label}-*"):
            if other != self.path and other.is_dir() and re.fullmatch(rf"{re.escape(self.label)}-[0-9a-f]{{16}}", other.name):
                logger.info("invalidating feature cache %s (encoder identity changed)", other)
                shutil.rmtree(other, ignore_errors=True)

    def load(self) -> FeatureTable | None:
        """The stored table, or ``None`` when absent or written for another identity."""
        try:
            meta = json.loads((self.path / META).read_text(encoding="utf-8"))
            keys = json.loads((self.path / KEYS).read_text(encoding="utf-8"))
        except (FileNotFoundError, json.JSONDecodeError):
            return None
        if meta.get("identity") != json.loads(json.dumps(self.identity, default=str)):
            return None
        array = np.load(self.path / FEATURES, mmap_mode="r")
        if array.shape[0] != len(keys):
            logger.warning("feature cache %s is inconsistent (%d rows, %d keys); recomputing", self.path,
                           array.shape[0], len(keys))
            return None
        return FeatureTable(array, keys, self.identity, self.path, dict(meta.get("failed", {})))

    def save(self, array: np.ndarray, keys: list[str], failed: dict[str, str]) -> FeatureTable:
        """Write the whole store atomically (a new folder renamed over the old one)."""
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{self.path.name}.", dir=self.cache_dir))
        try:
            np.save(tmp / FEATURES, np.ascontiguousarray(array, dtype=np.float32))
            atomic_write_json(tmp / KEYS, keys, indent=0)
            atomic_write_json(tmp / META, {"identity": self.identity, "count": len(keys),
                                           "dim": int(array.shape[1]) if array.ndim == 2 else 0, "failed": failed})
            old = None
            if self.path.exists():
                old = self.path.with_name(self.path.name + ".old")
                shutil.rmtree(old, ignore_errors=True)
                os.replace(self.path, old)
            os.replace(tmp, self.path)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        table = self.load()
        assert table is not None
        return table

    def get_or_compute(self, keys: Sequence[str],
                       compute: Callable[[list[str]], tuple[np.ndarray, list[str], dict[str, str]]]) -> FeatureTable:
        """Features for ``keys``: cached rows are reused; ``compute(missing_keys)`` returns
        ``(array [K', D], computed_keys, failed {key: reason})`` for the rest, which are appended.
        Keys that failed before are not retried (delete the folder to retry them)."""
        table = self.load()
        have = set(table.keys) if table is not None else set()
        known_failed = dict(table.failed) if table is not None else {}
        wanted = list(dict.fromkeys(keys))
        missing = [k for k in wanted if k not in have and k not in known_failed]
        if not missing:
            return table if table is not None else self.save(np.zeros((0, 0), np.float32), [], known_failed)
        array, done, failed = compute(missing)
        if len(done) != len(array):
            raise CapcseError(f"feature computation returned {len(array)} rows for {len(done)} keys")
        known_failed.update(failed)
        if table is not None and len(table):
            if table.dim != array.shape[1] and len(array):
                raise CapcseError(f"{self.path}: cached dim {table.dim} != new dim {array.shape[1]}")
            array = np.concatenate([np.asarray(table.array), array]) if len(array) else np.asarray(table.array)
            done = table.keys + done
        return self.save(array, done, known_failed)


class _Pixels:
    """Picklable ``PIL image -> [3, H, W] tensor`` with an image encoder's own preprocessing."""

    def __init__(self, preprocess):
        self.preprocess = preprocess

    def __call__(self, image):
        return self.preprocess([image])[0]


class ImageFeatureCache:
    """Frozen image-encoder features for ``(image_id, path)`` pairs, cached in a :class:`FeatureStore`.

    ``encoder``: an :class:`capcse.models.image.ImageEncoder` (anything with ``name``, ``preprocess``
    and ``forward(pixel_values) -> [B, D]``). Decoding and preprocessing run in ``num_workers``
    background processes (:func:`capcse.data.images.make_loader`).
    """

    def __init__(self, encoder, cache_dir: str | os.PathLike | None = None, *, batch_size: int = 32,
                 num_workers: int = 0, device=None, prune: bool = True):
        self.encoder = encoder
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self.batch_size = int(batch_size)
        self.num_workers = int(num_workers)
        self.device = device
        self.identity = encoder_identity(encoder)
        self.store = FeatureStore(self.cache_dir, f"image-{self.identity['name']}", self.identity, prune=prune)

    def features(self, images: Sequence[tuple[str, str | os.PathLike]]) -> FeatureTable:
        """The features of every ``(image_id, path)``; computed only for ids not cached yet."""
        paths: dict[str, str] = {}
        for image_id, path in images:
            if paths.setdefault(str(image_id), str(path)) != str(path):
                raise CapcseError(f"image id {image_id!r} names two files: {paths[str(image_id)]} and {path}")
        table = self.store.get_or_compute(list(paths), lambda missing: self._compute([(k, paths[k]) for k in missing]))
        if table.failed:
            bad = [k for k in paths if k in table.failed]
            if bad:
                logger.warning("%d image(s) could not be encoded and are skipped, e.g. %s: %s", len(bad), bad[0],
                               table.failed[bad[0]])
        return table

    def _compute(self, images: list[tuple[str, str]]) -> tuple[np.ndarray, list[str], dict[str, str]]:
        import torch

        from capcse.data.images import ImageItem, make_loader

        items = [ImageItem(key=k, path=p, file=p) for k, p in images]
        batches = [list(range(s, min(s + self.batch_size, len(items)))) for s in range(0, len(items), self.batch_size)]
        device = torch.device(self.device) if self.device is not None else next(self.encoder.parameters()).device
        out: list[np.ndarray] = []
        done: list[str] = []
        failed: dict[str, str] = {}
        was_training = self.encoder.training
        self.encoder.eval()
        from capcse.models.encoder import progress_bar

        bar = progress_bar(len(items), f"image features ({self.identity['name']})", "img")
        try:
            with torch.inference_mode():
                for batch in make_loader(items, batches, _Pixels(self.encoder.preprocess), num_workers=self.num_workers):
                    bar.update(len(batch["indices"]))
                    for i, reason in batch["errors"].items():
                        failed[items[i].key] = reason
                    if batch["pixel_values"] is None:
                        continue
                    feats = self.encoder(batch["pixel_values"].to(device)).float().cpu().numpy()
                    out.append(feats)
                    done.extend(items[i].key for i in batch["good"])
        finally:
            bar.close()
            self.encoder.train(was_training)
        logger.info("encoded %d image(s) with %s (%d failed)", len(done), self.identity["name"], len(failed))
        dim = int(getattr(self.encoder, "dim", 0) or (out[0].shape[1] if out else 0))
        return (np.concatenate(out) if out else np.zeros((0, dim), np.float32)), done, failed
