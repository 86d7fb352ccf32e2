"""Text encoders: load any Hugging Face / sentence-transformers model, pool it by name, encode fast.

``load_encoder`` returns a :class:`SentenceEncoder`, a thin handle around a real
``sentence_transformers.SentenceTransformer`` (``.model``), so training, saving and loading use the
library's own machinery, while :meth:`SentenceEncoder.encode` is a faster inference path:

* duplicates are encoded once (STS files repeat many sentences);
* sentences are tokenised once, sorted by token length and cut into batches, so each batch is padded
  only to its own longest sentence (dynamic padding, ~no padding waste);
* no autograd (``torch.inference_mode``), optional bf16/fp16 autocast, device chosen automatically;
* a progress bar (total and ETA) on a terminal once encoding has run ~5 s (:func:`progress`); none
  in logs or CI.
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np
import torch

from capcse.errors import CapcseError
from capcse.io import on_terminal
from capcse.models.poolers import LAYER_POOLERS, POOLERS, layer_average_modules
from capcse.models.registry import resolve_model

logger = logging.getLogger(__name__)

DTYPES = {"fp32": torch.float32, "float32": torch.float32, "bf16": torch.bfloat16,
          "bfloat16": torch.bfloat16, "fp16": torch.float16, "float16": torch.float16}


def pick_device(device: str | torch.device | None = None) -> torch.device:
    """``device`` as given, else CUDA, else Apple MPS, else CPU."""
    if device not in (None, "", "auto"):
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def parse_dtype(dtype: str | torch.dtype | None) -> torch.dtype:
    if dtype is None:
        return torch.float32
    if isinstance(dtype, torch.dtype):
        return dtype
    try:
        return DTYPES[str(dtype).lower()]
    except KeyError:
        raise CapcseError(f"unknown dtype {dtype!r}; choose fp32, bf16 or fp16") from None


def autocast_context(device: torch.device, dtype: torch.dtype):
    """Autocast to ``dtype`` on ``device``; a no-op for fp32."""
    if dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


#: seconds a loop runs before its automatic progress bar appears (issue 16: "every step over ~5 s")
PROGRESS_DELAY = 5.0


def progress(iterable, *, show: bool | None = None, desc: str | None = None, total: int | None = None,
             unit: str = "it"):
    """``iterable`` wrapped in a tqdm bar with total and ETA. ``show``: True draws it at once, False never;
    None (automatic) draws it only on a terminal and only once the loop has run :data:`PROGRESS_DELAY`
    seconds, so short steps stay silent and logs / CI (no TTY) get no bar at all."""
    if show is False or (show is None and not on_terminal()):
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, total=total, unit=unit, delay=0 if show else PROGRESS_DELAY)


def progress_bar(total: int, desc: str, unit: str = "it", *, show: bool = True):
    """A tqdm bar (count, rate, ETA) updated by hand (``bar.update(n)``, ``bar.close()``) for loops that are not
    one iterable: drawn when ``show`` and stderr is a terminal (:func:`on_terminal`), silent in logs and CI."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit, disable=not (show and on_terminal()), dynamic_ncols=True)


def set_pooler(model, pooler: str) -> None:
    """Rebuild the modules after the first (Transformer) module of a SentenceTransformer so that its
    sentence embedding is ``pooler`` (see :mod:`capcse.models.poolers`). Modules after the pooling
    (Dense, Normalize) are dropped: the embedding is exactly the named pooler's output."""
    from sentence_transformers.sentence_transformer.modules import Pooling

    if pooler not in POOLERS:
        raise CapcseError(f"unknown pooler {pooler!r}; choose one of {', '.join(POOLERS)}")
    transformer = model[0]
    if not hasattr(transformer, "auto_model"):
        raise CapcseError(f"pooler {pooler!r} needs a transformers model as first module, "
                          f"got {type(transformer).__name__}")
    hf_model = transformer.auto_model
    dim = hf_model.config.hidden_size
    if pooler == "cls":
        if getattr(hf_model, "pooler", None) is None:
            raise CapcseError("pooler 'cls' uses the model's MLP pooler (dense + tanh over [CLS]), "
                              f"but {type(hf_model).__name__} has none; use 'cls_before_pooler' or 'avg'")
        transformer.modality_config = {"text": {"method": "forward", "method_output_name": "pooler_output"}}
        transformer.module_output_name = "sentence_embedding"
        new_tail = []
    else:
        transformer.modality_config = {"text": {"method": "forward", "method_output_name": "last_hidden_state"}}
        transformer.module_output_name = "token_embeddings"
        if pooler in LAYER_POOLERS:
            hf_model.config.output_hidden_states = True
            new_tail = layer_average_modules(pooler, dim, hf_model.config.num_hidden_layers)
        else:
            hf_model.config.output_hidden_states = False
            new_tail = [Pooling(dim, "cls" if pooler == "cls_before_pooler" else "mean")]
    # SentenceTransformer is an nn.Sequential keyed "0", "1", ...: drop everything after the first.
    for key in list(model._modules.keys())[1:]:
        del model._modules[key]
    for i, module in enumerate(new_tail, start=1):
        model._modules[str(i)] = module


def load_sentence_transformer(name_or_path: str | os.PathLike, *, pooler: str | None = None,
                              device: str | torch.device | None = None, max_length: int | None = None,
                              trust_remote_code: bool = False):
    """A ``SentenceTransformer`` for any model: a sentence-transformers folder/repo keeps its own
    pooling unless ``pooler`` is given; a plain transformers model gets ``pooler`` (default ``avg``,
    sentence-transformers' convention)."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.base.modules.transformer import Transformer

    path = resolve_model(name_or_path)
    dev = pick_device(device)
    local = Path(path)
    plain_local = local.is_dir() and not (local / "modules.json").is_file()
    try:
        if plain_local:
            if not (local / "config.json").is_file():
                raise CapcseError(f"{local} is neither a transformers model folder (no config.json) nor a "
                                  "sentence-transformers folder (no modules.json)")
            transformer = Transformer(str(local), max_seq_length=max_length,
                                      model_kwargs={"trust_remote_code": trust_remote_code},
                                      config_kwargs={"trust_remote_code": trust_remote_code})
            model = SentenceTransformer(modules=[transformer], device=str(dev))
            pooler = pooler or "avg"
        else:
            model = SentenceTransformer(str(path), device=str(dev), trust_remote_code=trust_remote_code)
            if max_length is not None:
                model.max_seq_length = max_length
    except OSError as exc:
        raise CapcseError(f"cannot load model {name_or_path!r} (resolved to {path!r}): {exc}") from exc
    if pooler is not None:
        set_pooler(model, pooler)
    model.to(dev)
    return model


class SentenceEncoder:
    """A sentence encoder: ``encode(list[str]) -> np.ndarray [N, D] float32``.

    Attributes: ``model`` (the SentenceTransformer), ``name``, ``pooler``, ``device``, ``dtype``.
    """

    def __init__(self, model, name: str, pooler: str | None = None, device: str | torch.device | None = None,
                 dtype: str | torch.dtype | None = None, batch_size: int = 128):
        self.model = model
        self.name = name
        self.pooler = pooler
        self.device = pick_device(device) if device is not None else model.device
        self.dtype = parse_dtype(dtype)
        self.batch_size = batch_size
        self.model.to(self.device)

    @property
    def tokenizer(self):
        return self.model[0].tokenizer

    @property
    def max_seq_length(self) -> int | None:
        return self.model.max_seq_length

    @property
    def dimension(self) -> int:
        getter = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        return int(getter())

    def _tokenize(self, texts: Sequence[str]) -> tuple[list[list[int]], list[list[int]] | None]:
        tok = self.tokenizer
        max_len = self.max_seq_length or tok.model_max_length
        enc = tok(list(texts), truncation=True, max_length=max_len, padding=False,
                  return_attention_mask=False)
        return enc["input_ids"], enc.get("token_type_ids")

    def _pad(self, ids: list[list[int]], types: list[list[int]] | None) -> dict[str, torch.Tensor]:
        longest = max(len(x) for x in ids)
        pad_id = self.tokenizer.pad_token_id or 0
        input_ids = np.full((len(ids), longest), pad_id, dtype=np.int64)
        mask = np.zeros((len(ids), longest), dtype=np.int64)
        token_types = np.zeros((len(ids), longest), dtype=np.int64) if types is not None else None
        for row, seq in enumerate(ids):
            input_ids[row, : len(seq)] = seq
            mask[row, : len(seq)] = 1
            if token_types is not None:
                token_types[row, : len(seq)] = types[row]
        feats = {"input_ids": torch.from_numpy(input_ids), "attention_mask": torch.from_numpy(mask)}
        if token_types is not None:
            feats["token_type_ids"] = torch.from_numpy(token_types)
        return {k: v.to(self.device) for k, v in feats.items()}

    def encode(self, sentences: Iterable[str], batch_size: int | None = None, normalize: bool = False,
               show_progress_bar: bool | None = None, convert_to_tensor: bool = False):
        sentences = list(sentences)
        if not sentences:
            return torch.zeros(0, self.dimension) if convert_to_tensor else np.zeros((0, self.dimension), np.float32)
        for i, s in enumerate(sentences):
            if not isinstance(s, str):
                raise CapcseError(f"encode() takes strings; item {i} is {type(s).__name__}")
        positions: dict[str, int] = {}
        inverse = np.fromiter((positions.setdefault(s, len(positions)) for s in sentences), dtype=np.int64,
                              count=len(sentences))
        unique = list(positions)
        batch_size = batch_size or self.batch_size
        if not hasattr(self.model[0], "auto_model"):  # e.g. static embeddings: the library's own path
            out = self.model.encode(unique, batch_size=batch_size, convert_to_numpy=True,
                                    show_progress_bar=bool(show_progress_bar))
            emb = torch.from_numpy(np.asarray(out, dtype=np.float32))
        else:
            emb = self._encode_unique(unique, batch_size, show_progress_bar)
        if normalize:
            emb = torch.nn.functional.normalize(emb, dim=-1)
        emb = emb[torch.from_numpy(inverse)]
        return emb if convert_to_tensor else emb.numpy()

    def _encode_unique(self, unique: list[str], batch_size: int, show: bool | None) -> torch.Tensor:
        ids, types = self._tokenize(unique)
        lengths = np.fromiter((len(x) for x in ids), dtype=np.int64, count=len(ids))
        order = np.argsort(-lengths, kind="stable")
        out = torch.empty(len(unique), self.dimension, dtype=torch.float32)
        was_training = self.model.training
        self.model.eval()
        batches = progress(range(0, len(order), batch_size), show=show, desc=f"encode {len(unique)} sentences",
                           unit="batch")
        try:
            with torch.inference_mode(), autocast_context(self.device, self.dtype):
                for start in batches:
                    idx = order[start: start + batch_size]
                    feats = self._pad([ids[i] for i in idx], [types[i] for i in idx] if types else None)
                    emb = self.model(feats)["sentence_embedding"]
                    out[torch.from_numpy(idx)] = emb.float().cpu()
        finally:
            self.model.train(was_training)
        return out

    def __call__(self, sentences: Sequence[str], **kwargs):
        return self.encode(sentences, **kwargs)

    def __repr__(self) -> str:
        return (f"SentenceEncoder(name={self.name!r}, pooler={self.pooler!r}, device={self.device}, "
                f"dtype={self.dtype})")


def load_encoder(name_or_path: str | os.PathLike, pooler: str | None = None,
                 device: str | torch.device | None = None, dtype: str | torch.dtype | None = None,
                 max_length: int | None = None, batch_size: int = 128,
                 trust_remote_code: bool = False) -> SentenceEncoder:
    """Load a text encoder by alias (e.g. ``all-MiniLM-L6-v2``), local path or hub id.

    ``pooler``: one of :data:`capcse.models.poolers.POOLERS`; ``None`` keeps a sentence-transformers
    model's own pooling and gives a plain transformers model ``avg``. ``dtype``: fp32 | bf16 | fp16
    autocast at inference. ``device``: None picks CUDA, then MPS, then CPU.
    """
    model = load_sentence_transformer(name_or_path, pooler=pooler, device=device, max_length=max_length,
                                      trust_remote_code=trust_remote_code)
    return SentenceEncoder(model, name=str(name_or_path), pooler=pooler, device=model.device, dtype=dtype,
                           batch_size=batch_size)


EncodeFn = Callable[[list[str]], np.ndarray]
