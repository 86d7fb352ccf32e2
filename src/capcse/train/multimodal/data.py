"""The mixed data set of multimodal training: text rows and image–caption rows in one table, told apart by ``label``.

``label >= 0`` is a row of the text corpus (its row index), ``label = -(p + 1)`` image–caption pair ``p``
(:func:`pair_label`). :func:`load_multimodal_data` reads the pairs, computes (or reads from the cache) the frozen
image features and builds the table; :class:`TextLookup` gives a batch's sentences back from its labels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from capcse.errors import ConfigError
from capcse.train.batching import arrow_table
from capcse.train.multimodal.config import MultimodalConfig


def pair_label(p: int) -> int:
    """The ``label`` of image-caption pair ``p`` (text rows keep their row index >= 0)."""
    return -(int(p) + 1)


def build_mixed_dataset(text_dataset, captions: list[str]):
    """Text rows (``label`` = row index) followed by caption rows (``label = -(p + 1)``)."""
    from datasets import Dataset, concatenate_datasets

    if text_dataset is not None and len(text_dataset.column_names) != 1:
        raise ConfigError(f"multimodal recipes train unsupervised on one text column; data.train has "
                          f"{text_dataset.column_names} (choose one with data.columns)")
    parts = []
    if text_dataset is not None and len(text_dataset):
        col = text_dataset.column_names[0]
        t = text_dataset.rename_column(col, "text") if col != "text" else text_dataset
        parts.append(t.add_column("label", list(range(len(t)))))
    parts.append(Dataset.from_dict({"text": list(captions), "label": [pair_label(p) for p in range(len(captions))]}))
    return concatenate_datasets(parts) if len(parts) > 1 else parts[0]


def label_column(dataset) -> np.ndarray:
    return arrow_table(dataset).column("label").to_numpy().astype(np.int64)


class TextLookup:
    """Row label -> sentence (text rows from the Arrow dataset, captions from a list)."""

    def __init__(self, text_dataset, captions: list[str]):
        self.text_dataset = text_dataset
        self.col = text_dataset.column_names[0] if text_dataset is not None else None
        self.captions = list(captions)

    def __call__(self, labels: list[int]) -> list[str]:
        text_rows = [lab for lab in labels if lab >= 0]
        texts = iter(self.text_dataset.select(text_rows)[self.col]) if text_rows else iter(())
        return [self.captions[-lab - 1] if lab < 0 else next(texts) for lab in labels]

    def all_captions(self) -> list[str]:
        return list(self.captions)


@dataclass
class MultimodalData:
    dataset: Any
    captions: list[str]
    pair_image_rows: np.ndarray
    image_features: np.ndarray
    summary: dict[str, Any]


def load_multimodal_data(cfg: MultimodalConfig, text_dataset, *, seed: int = 0, data_dir=None, device=None,
                         image_encoder=None, log=print) -> MultimodalData:
    """Pairs + cached frozen image features + the mixed dataset. ``image_encoder`` overrides ``cfg.vision``."""
    from capcse.data.image_features import ImageFeatureCache
    from capcse.data.image_text import read_image_text_pairs

    pairs = read_image_text_pairs(cfg.pairs, image_root=cfg.image_root, split=cfg.split,
                                  captions_per_image=cfg.captions_per_image, seed=seed, data_dir=data_dir)
    if image_encoder is None:
        from capcse.models.image import load_image_encoder

        image_encoder = load_image_encoder(cfg.vision, trainable=False)
        if device is not None:
            image_encoder.to(device)
    cache = ImageFeatureCache(image_encoder, cfg.feature_cache, batch_size=cfg.vision_batch_size, device=device)
    table = cache.features(list(pairs.images.items()))
    kept = [p for p in pairs if p.image_id not in table.failed]
    if len(kept) < len(pairs):
        log(f"skipped {len(pairs) - len(kept)} caption(s) whose image could not be decoded")
    if not kept:
        raise ConfigError(f"{cfg.pairs}: no image could be encoded")
    captions = [p.caption for p in kept]
    rows = table.rows(p.image_id for p in kept)
    dataset = build_mixed_dataset(text_dataset, captions)
    summary = {**pairs.summary(), "pairs_used": len(kept), "images_used": len(set(rows.tolist())),
               "feature_cache": str(table.path), "vision": table.identity["name"],
               "text_rows": len(text_dataset) if text_dataset is not None else 0}
    return MultimodalData(dataset, captions, rows, table.array, summary)
