"""Semantic textual similarity exactly as SimCSE reports it, plus the 8-correlation table.

Protocol (SimCSE's ``evaluation.py`` over its modified SentEval ``senteval/sts.py``):

* the system score of a pair is the cosine similarity of the two sentence embeddings;
* a task's score is Spearman's rank correlation between system scores and gold scores, x100;
* STS12-16 are made of subsets (e.g. STS12 = MSRpar, MSRvid, SMTeuroparl, OnWN, SMTnews). They are
  aggregated three ways: ``all`` concatenates the predictions and gold scores of every subset and
  correlates once (SimCSE's default, the number in its table), ``wmean`` averages the per-subset
  correlations weighted by subset size, ``mean`` averages them unweighted;
* ``mode="test"``: STS12-16, STS-B test, SICK-R test (the SimCSE table: STS12 STS13 STS14 STS15
  STS16 STS-B SICK-R Avg.); ``mode="dev"``: STS-B dev and SICK-R dev (SimCSE's dev table).

Every correlation is computed for four similarities, as sentence-transformers'
``EmbeddingSimilarityEvaluator`` defines them: cosine, euclidean (= -L2 distance), manhattan
(= -L1 distance) and dot product; each with Pearson and Spearman -- the 8-correlation table that
SimCSE-KO reports for KorSTS.

Speed: all sentences of all requested tasks are deduplicated and encoded in ONE call; the
correlations are vectorised (one ranking per similarity, float64 throughout).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
from scipy.stats import rankdata

from capcse.errors import ConfigError
from capcse.evaluation.encoding import EmbeddingTable, as_encode_fn, embed_unique

SIMILARITIES = ("cosine", "euclidean", "manhattan", "dot")
#: Cosine similarities are rounded to this many decimals before they are ranked (see similarity_scores).
COSINE_DECIMALS = 6
CORRELATIONS = ("pearson", "spearman")
CORRELATION_KEYS = tuple(f"{s}_{c}" for s in SIMILARITIES for c in CORRELATIONS)
AGGREGATIONS = ("all", "wmean", "mean")

#: The SimCSE table, in order (task id -> column name).
STS_TASKS = ("sts12", "sts13", "sts14", "sts15", "sts16", "stsb", "sickr")
DEV_STS_TASKS = ("stsb", "sickr")
KORSTS_TASKS = ("korsts",)
DISPLAY_NAMES = {
    "sts12": "STS12", "sts13": "STS13", "sts14": "STS14", "sts15": "STS15", "sts16": "STS16",
    "stsb": "STS-B", "sickr": "SICK-R", "korsts": "KorSTS",
}
#: Tasks that have train/dev/test splits; the others (STS12-16) are test sets only.
SPLIT_TASKS = ("stsb", "sickr", "korsts")


# --------------------------------------------------------------------------------------------------
# similarities and correlations


def _norm_rows(x: np.ndarray) -> np.ndarray:
    # torch.nn.functional.normalize semantics (what sentence-transformers uses): x / max(|x|, 1e-12)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def similarity_scores(emb1: np.ndarray, emb2: np.ndarray,
                      similarities: Sequence[str] = SIMILARITIES) -> dict[str, np.ndarray]:
    """Pairwise similarity of row i of ``emb1`` with row i of ``emb2``, float64, for each similarity.

    cosine = <a,b>/(|a||b|); euclidean = -|a-b|_2; manhattan = -|a-b|_1; dot = <a,b>. Distances are
    negated so that larger always means more similar (sentence-transformers' convention).

    Cosine is rounded to ``COSINE_DECIMALS`` (1e-6). Float32 embeddings carry ~1e-7 of noise that
    depends on batch composition and padding; a pair of identical sentences (or of sentences with the
    same tokens, e.g. differing only in case for an uncased model) has a cosine of exactly 1, and
    such pairs must tie. Unrounded, the noise ranks them arbitrarily: STS12 SMTeuroparl (52 identical
    pairs) then moves by up to 2e-4 Spearman with the encoding batch size alone. Rounding at 1e-6
    merges only values closer than any real difference float32 embeddings can express.
    """
    a = np.asarray(emb1, dtype=np.float64)
    b = np.asarray(emb2, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"embedding shapes differ or are not 2-D: {a.shape} vs {b.shape}")
    out: dict[str, np.ndarray] = {}
    for name in similarities:
        if name == "cosine":
            s = np.round(np.einsum("ij,ij->i", _norm_rows(a), _norm_rows(b)), COSINE_DECIMALS)
        elif name == "dot":
            s = np.einsum("ij,ij->i", a, b)
        elif name == "euclidean":
            s = -np.linalg.norm(a - b, axis=1)
        elif name == "manhattan":
            s = -np.abs(a - b).sum(axis=1)
        else:
            raise ValueError(f"unknown similarity {name!r}; choose from {SIMILARITIES}")
        out[name] = np.nan_to_num(s)  # SentEval: a NaN similarity counts as 0
    return out


def _pearson_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pearson r of each row of ``x`` [K, N] with ``y`` [N]; NaN where a row or y is constant."""
    xc = x - x.mean(axis=1, keepdims=True)
    yc = y - y.mean()
    num = xc @ yc
    den = np.sqrt((xc * xc).sum(axis=1) * (yc @ yc))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)
    return np.clip(r, -1.0, 1.0)


def correlations(predictions: Mapping[str, np.ndarray], gold: np.ndarray) -> dict[str, float]:
    """Pearson and Spearman of each similarity vector against ``gold``, both x100.

    Spearman is Pearson on average ranks (ties share their mean rank), exactly scipy's
    ``spearmanr``; everything is float64. Keys: ``<similarity>_<pearson|spearman>``.
    """
    gold = np.asarray(gold, dtype=np.float64)
    names = list(predictions)
    if len(gold) < 2:
        raise ValueError(f"need at least 2 pairs to correlate, got {len(gold)}")
    pred = np.stack([np.asarray(predictions[n], dtype=np.float64) for n in names])
    if pred.shape[1] != len(gold):
        raise ValueError(f"{pred.shape[1]} predictions for {len(gold)} gold scores")
    pear = _pearson_rows(pred, gold)
    spear = _pearson_rows(rankdata(pred, axis=1), rankdata(gold))
    out: dict[str, float] = {}
    for i, n in enumerate(names):
        out[f"{n}_pearson"] = float(100.0 * pear[i])
        out[f"{n}_spearman"] = float(100.0 * spear[i])
    return out


def aggregate(subsets: Sequence[tuple[Mapping[str, np.ndarray], np.ndarray]]) -> dict[str, dict[str, float]]:
    """SentEval's three aggregations over subsets given as ``(predictions, gold)``.

    ``all``: correlate the concatenation of every subset; ``wmean``: per-subset correlations averaged
    with the subsets' sizes as weights; ``mean``: their plain average.
    """
    if not subsets:
        raise ValueError("nothing to aggregate")
    per = [correlations(p, g) for p, g in subsets]
    sizes = np.array([len(g) for _, g in subsets], dtype=np.float64)
    names = list(subsets[0][0])
    concat_pred = {n: np.concatenate([np.asarray(p[n], dtype=np.float64) for p, _ in subsets]) for n in names}
    concat_gold = np.concatenate([np.asarray(g, dtype=np.float64) for _, g in subsets])
    keys = list(per[0])
    return {
        "all": correlations(concat_pred, concat_gold),
        "wmean": {k: float(np.average([c[k] for c in per], weights=sizes)) for k in keys},
        "mean": {k: float(np.mean([c[k] for c in per])) for k in keys},
    }


# --------------------------------------------------------------------------------------------------
# results


@dataclass
class STSTaskResult:
    """One STS task (e.g. STS12 with its five subsets, or STS-B test as a single subset)."""

    task: str
    split: str
    subsets: dict[str, dict[str, float]]  # subset -> 8 correlations + n_pairs
    aggregates: dict[str, dict[str, float]]  # all / wmean / mean -> 8 correlations
    predictions: dict[str, np.ndarray] = field(repr=False, default_factory=dict)  # subset -> cosine
    gold: dict[str, np.ndarray] = field(repr=False, default_factory=dict)

    @property
    def name(self) -> str:
        return DISPLAY_NAMES.get(self.task, self.task)

    @property
    def n_pairs(self) -> int:
        return int(sum(s["n_pairs"] for s in self.subsets.values()))

    @property
    def scores(self) -> dict[str, float]:
        """The headline correlations: the ``all`` aggregation (for one subset, that subset)."""
        return self.aggregates["all"]

    @property
    def spearman(self) -> float:
        """SimCSE's number: cosine Spearman x100 of the ``all`` aggregation."""
        return self.scores["cosine_spearman"]

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = dict(self.scores)
        out["n_pairs"] = self.n_pairs
        out["split"] = self.split
        out["aggregation"] = "all"
        for agg in AGGREGATIONS:
            out[agg] = dict(self.aggregates[agg])
        out["subsets"] = {k: dict(v) for k, v in self.subsets.items()}
        return out


@dataclass
class STSResults:
    tasks: dict[str, STSTaskResult]
    embeddings: EmbeddingTable = field(repr=False)
    mode: str = "test"
    variant: str = "senteval"

    @property
    def avg(self) -> float:
        """Average cosine Spearman over the evaluated tasks (the SimCSE table's Avg.)."""
        return float(np.mean([t.spearman for t in self.tasks.values()]))

    def table(self) -> dict[str, float]:
        return {t.name: t.spearman for t in self.tasks.values()}


# --------------------------------------------------------------------------------------------------
# evaluation


def _pairs_of(data: Any) -> tuple[list[str], list[str], np.ndarray]:
    s1, s2 = list(data.sentences1), list(data.sentences2)
    gold = np.asarray(data.scores, dtype=np.float64)
    if not (len(s1) == len(s2) == len(gold)):
        raise ValueError(f"{getattr(data, 'name', 'STS data')}: {len(s1)}/{len(s2)}/{len(gold)} "
                         "sentences1/sentences2/scores differ in length")
    return s1, s2, gold


def score_sts_task(task: str, subsets: Mapping[str, Any], table: EmbeddingTable,
                   split: str = "test") -> STSTaskResult:
    """Score one task whose sentences are already in ``table`` (no encoding happens here)."""
    per: list[tuple[dict[str, np.ndarray], np.ndarray]] = []
    subset_scores: dict[str, dict[str, float]] = {}
    preds: dict[str, np.ndarray] = {}
    golds: dict[str, np.ndarray] = {}
    for name, data in subsets.items():
        s1, s2, gold = _pairs_of(data)
        sims = similarity_scores(table.lookup(s1), table.lookup(s2))
        per.append((sims, gold))
        subset_scores[name] = {**correlations(sims, gold), "n_pairs": len(gold)}
        preds[name] = sims["cosine"]
        golds[name] = gold
    return STSTaskResult(task, split, subset_scores, aggregate(per), preds, golds)


def resolve_split(task: str, mode: str) -> str:
    if mode not in ("test", "dev"):
        raise ConfigError(f"mode must be 'test' or 'dev', got {mode!r}")
    if task in SPLIT_TASKS:
        return mode
    if mode == "dev":
        raise ConfigError(f"{task} is a test set only (no dev split); use mode 'test' "
                          f"(mode 'dev' evaluates {', '.join(DEV_STS_TASKS)})")
    return "test"


def load_sts_tasks(tasks: Iterable[str], mode: str = "test", *, data_dir=None,
                   variant: str = "senteval") -> dict[str, tuple[str, dict[str, Any]]]:
    """Load each task's split through ``capcse.data.load_sts``: ``task -> (split, {subset: STSData})``."""
    from capcse.data import load_sts

    out = {}
    for task in tasks:
        split = resolve_split(task, mode)
        kwargs = {"data_dir": data_dir}
        if task != "korsts":  # KorSTS has a single (raw) release
            kwargs["variant"] = variant
        out[task] = (split, load_sts(task, split, **kwargs))
    return out


def evaluate_sts(model: Any, tasks: Sequence[str] | None = None, mode: str = "test", *,
                 data_dir=None, variant: str = "senteval", batch_size: int | None = None,
                 datasets: Mapping[str, tuple[str, Mapping[str, Any]]] | None = None,
                 show_progress_bar: bool | None = None) -> STSResults:
    """Evaluate ``model`` (encoder object or function) on STS tasks.

    ``tasks`` defaults to the SimCSE table for ``mode`` (test: STS12-16, STS-B, SICK-R; dev: STS-B,
    SICK-R). ``datasets`` (``task -> (split, {subset: data})``, data having ``sentences1``,
    ``sentences2``, ``scores``) bypasses loading, e.g. for in-memory data.
    """
    if datasets is None:
        if tasks is None:
            tasks = STS_TASKS if mode == "test" else DEV_STS_TASKS
        datasets = load_sts_tasks(tasks, mode, data_dir=data_dir, variant=variant)
    encode = as_encode_fn(model, batch_size=batch_size, show_progress_bar=show_progress_bar)

    def every_sentence():
        for _split, subsets in datasets.values():
            for data in subsets.values():
                yield from data.sentences1
                yield from data.sentences2

    table = embed_unique(encode, every_sentence())
    results = {task: score_sts_task(task, subsets, table, split)
               for task, (split, subsets) in datasets.items()}
    return STSResults(results, table, mode, variant)
