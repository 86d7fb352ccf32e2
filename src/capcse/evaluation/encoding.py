"""One small adapter between the evaluators and whatever produces embeddings.

The evaluators accept any of:

* an object with ``.encode(list[str]) -> array`` (capcse's ``SentenceEncoder``, a plain
  ``sentence_transformers.SentenceTransformer``, anything alike);
* a plain function ``f(list[str]) -> array``.

The array may be a numpy array, a torch tensor or a nested list; it becomes a float32 numpy matrix
``[N, D]``. Sentences are deduplicated before encoding (STS12-16 and STS-B share many sentences,
SICK repeats many), so every unique sentence of an evaluation is encoded exactly once, in one call.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Sequence

import numpy as np

EncodeFn = Callable[[list[str]], np.ndarray]


def _accepted_kwargs(fn: Callable, wanted: dict[str, Any]) -> dict[str, Any]:
    """The subset of ``wanted`` that ``fn`` accepts (all of it when ``fn`` takes ``**kwargs``)."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):  # builtins / C functions: pass nothing optional
        return {}
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return dict(wanted)
    return {k: v for k, v in wanted.items() if k in params}


def _to_matrix(out: Any, n: int) -> np.ndarray:
    if hasattr(out, "detach"):  # torch tensor, without importing torch here
        out = out.detach().float().cpu().numpy()
    arr = np.asarray(out, dtype=np.float32)
    if arr.ndim != 2 or arr.shape[0] != n:
        raise ValueError(f"the encoder returned shape {arr.shape} for {n} sentences; expected [{n}, D]")
    return arr


def as_encode_fn(model: Any, *, batch_size: int | None = None,
                 show_progress_bar: bool | None = None) -> EncodeFn:
    """Wrap ``model`` (encoder object or function) into ``f(list[str]) -> float32 [N, D]``.

    ``batch_size`` and ``show_progress_bar`` are passed on only when given and when the model's
    ``encode`` accepts them (a SentenceTransformer does; a bare function usually does not).
    """
    if hasattr(model, "encode") and callable(model.encode):
        fn = model.encode
    elif callable(model):
        fn = model
    else:
        raise TypeError(f"cannot encode with {type(model).__name__}: need .encode(list[str]) or a function")
    wanted: dict[str, Any] = {}
    if batch_size is not None:
        wanted["batch_size"] = int(batch_size)
    if show_progress_bar is not None:
        wanted["show_progress_bar"] = bool(show_progress_bar)
    kwargs = _accepted_kwargs(fn, wanted)

    def encode(sentences: list[str]) -> np.ndarray:
        sentences = list(sentences)
        if not sentences:
            raise ValueError("nothing to encode: empty sentence list")
        return _to_matrix(fn(sentences, **kwargs), len(sentences))

    encode.model = model  # type: ignore[attr-defined]
    return encode


def model_name(model: Any) -> str:
    """A readable name for reports: ``.name`` if the encoder has one, else its class or function name."""
    name = getattr(model, "name", None)
    if isinstance(name, str) and name:
        return name
    return getattr(model, "__name__", None) or type(model).__name__


@dataclass
class EmbeddingTable:
    """Embeddings of a set of unique sentences, looked up by text."""

    texts: list[str]
    vectors: np.ndarray  # float32 [len(texts), D]
    seconds: float = 0.0
    n_requested: int = 0

    def __post_init__(self) -> None:
        self._row = {t: i for i, t in enumerate(self.texts)}

    def rows(self, sentences: Sequence[str]) -> np.ndarray:
        return np.fromiter((self._row[s] for s in sentences), dtype=np.int64, count=len(sentences))

    def lookup(self, sentences: Sequence[str]) -> np.ndarray:
        return self.vectors[self.rows(sentences)]

    def __contains__(self, sentence: str) -> bool:
        return sentence in self._row

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])


def embed_unique(encode: EncodeFn, sentences: Iterable[str]) -> EmbeddingTable:
    """Encode each distinct sentence of ``sentences`` once (first-seen order), in a single call."""
    import time

    all_sentences = list(sentences)
    texts = list(dict.fromkeys(all_sentences))
    t0 = time.perf_counter()
    vectors = encode(texts)
    return EmbeddingTable(texts, vectors, time.perf_counter() - t0, len(all_sentences))
