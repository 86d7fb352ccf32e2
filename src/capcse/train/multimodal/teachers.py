"""DALR's / RankCSE's frozen teachers: :class:`TeacherBank`, their mixed caption–caption similarities."""

from __future__ import annotations

import hashlib
from typing import Any, Iterable

import numpy as np
import torch

from capcse.errors import ConfigError
from capcse.losses.dalr import cosine_matrix
from capcse.losses.ranking import mix_teacher_similarities


def text_key(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


class TeacherBank:
    """Frozen teachers' cosine similarities among a batch's sentences, mixed with ``alpha``.

    ``mode='precompute'``: :meth:`prepare` embeds the given sentences once per teacher and caches the
    embeddings in a :class:`capcse.data.image_features.FeatureStore` (keyed by sentence text and the
    teacher's identity: name, weights hash, pooling); batches then read rows. ``mode='batch'``: the
    frozen teachers encode each batch (no gradient). ``pooler`` (one of
    :data:`capcse.models.poolers.POOLERS`) sets the teachers' pooling; ``None`` keeps a
    sentence-transformers model's own and gives a plain transformers id ``avg``. DALR pools its SimCSE
    and DiffCSE teachers with ``cls_before_pooler`` (``train_mix.py``, ``teachers.py``). ``max_length``
    truncates the teachers' input: DALR and RankCSE feed the teachers the student's tokenisation
    (``max_seq_length`` 32), so :func:`prepare_multimodal` passes the student's ``model.max_length``."""

    def __init__(self, names: list[str], *, alpha: float = 0.33, mode: str = "precompute", cache_dir=None,
                 batch_size: int = 128, device=None, encoders: list | None = None, pooler: str | None = None,
                 max_length: int | None = None):
        from capcse.models.encoder import load_encoder

        self.names = list(names)
        self.alpha = float(alpha)
        self.mode = mode
        self.cache_dir = cache_dir
        self.pooler = pooler
        self.encoders = encoders if encoders is not None else [
            load_encoder(n, pooler=pooler, device=device or "cpu", batch_size=batch_size, max_length=max_length)
            for n in self.names]
        for enc in self.encoders:
            enc.model.eval()
            for p in enc.model.parameters():
                p.requires_grad_(False)
        self.tables: list | None = None

    def identity(self, i: int) -> dict[str, Any]:
        from capcse.data.image_features import state_dict_sha256

        enc = self.encoders[i]
        return {"name": self.names[i] if i < len(self.names) else enc.name, "kind": "sentence-teacher",
                "weights_sha256": state_dict_sha256(enc.model), "max_seq_length": enc.max_seq_length,
                "modules": [type(m).__name__ for m in enc.model], "pooler": getattr(enc, "pooler", None)}

    def prepare(self, texts: Iterable[str]) -> None:
        """Embed ``texts`` with every teacher (precompute mode), reusing the on-disk cache."""
        if self.mode != "precompute":
            return
        from capcse.data.image_features import FeatureStore, default_cache_dir
        from capcse.io import on_terminal

        texts = list(dict.fromkeys(texts))
        by_key = {text_key(t): t for t in texts}
        self.tables = []
        for i, enc in enumerate(self.encoders):
            store = FeatureStore(self.cache_dir or default_cache_dir(), f"teacher-{self.names[i]}", self.identity(i),
                                 prune=False)

            def compute(keys, enc=enc):
                emb = enc.encode([by_key[k] for k in keys], show_progress_bar=on_terminal())
                return np.asarray(emb, dtype=np.float32), list(keys), {}

            self.tables.append(store.get_or_compute(list(by_key), compute))

    def embeddings(self, texts: list[str]) -> list[torch.Tensor]:
        if self.mode == "precompute":
            if self.tables is None:
                raise RuntimeError("TeacherBank.prepare() was not called")
            keys = [text_key(t) for t in texts]
            return [torch.from_numpy(np.asarray(tab.array[tab.rows(keys)])) for tab in self.tables]
        return [enc.encode(texts, convert_to_tensor=True) for enc in self.encoders]

    @torch.no_grad()
    def similarities(self, texts: list[str], device=None, mix: str = "similarities") -> torch.Tensor:
        """Mixed teacher cosine matrix [n, n] for ``texts`` (``alpha`` weights the first teacher).

        ``mix='similarities'``: ``alpha cos(T1) + (1 - alpha) cos(T2)`` (RankCSE, DALR's ranking target);
        ``'features'``: ``cos`` of the mixed embeddings ``alpha z_T1 + (1 - alpha) z_T2`` (DALR's
        soft-label and global-alignment target; the two teachers must have one width)."""
        embs = [e.float() for e in self.embeddings(texts)]
        if mix == "features" and len(embs) > 1:
            if embs[0].shape != embs[1].shape:
                raise ConfigError(f"multimodal.teacher_similarity: features mixes the teachers' embeddings, which "
                                  f"needs one width ({embs[0].shape[1]} vs {embs[1].shape[1]}); use similarities")
            mixed_emb = mix_teacher_similarities(embs[0], embs[1], self.alpha)
            mixed = cosine_matrix(mixed_emb, mixed_emb)
        else:
            sims = [cosine_matrix(e, e) for e in embs]
            mixed = mix_teacher_similarities(sims[0], sims[1] if len(sims) > 1 else None, self.alpha)
        return mixed.to(device) if device is not None else mixed
