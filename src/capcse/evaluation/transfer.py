"""SentEval transfer tasks with logistic-regression probes on frozen sentence embeddings.

The protocol follows facebookresearch/SentEval (``senteval/tools/validation.py`` and the task files
``binary.py``, ``sst.py``, ``trec.py``, ``mrpc.py``) on its scikit-learn path (``usepytorch=False``),
without installing SentEval:

* MR, CR, SUBJ, MPQA -- ``InnerKFoldClassifier``: stratified k-fold cross-validation (k=10); inside
  each outer training fold a second stratified k-fold chooses C from 2^-2 .. 2^3; the model refit
  with that C on the outer training fold is scored on the outer test fold. Reported: mean test
  accuracy over the k folds (``acc``) and mean best inner accuracy (``devacc``).
* SST2 -- ``SplitClassifier``: fit on train for each C in 2^-2 .. 2^3, pick C on dev, score on test.
* TREC, MRPC -- ``KFoldClassifier``: stratified k-fold on train chooses C from 2^-1 .. 2^5; refit on
  all of train; score on test. MRPC features are ``[|u - v|, u * v]``; MRPC also reports F1 of the
  positive (paraphrase) class.

Details kept from SentEval: both fold splitters are ``StratifiedKFold(shuffle=True,
random_state=1111)``; samples are ordered as SentEval orders them before embedding (stable sort by
whitespace-token length, then label) so that the folds are the same; per-C validation accuracies are
rounded to 2 decimals (x100) before the arg-max, so ties go to the smallest C; accuracies x100.

``fast=True`` mirrors SimCSE's fast setting (``kfold=5``) and uses a sparser grid (every other C).

The classifier is built exactly as SentEval builds it, ``LogisticRegression(C=C,
random_state=seed)``, so it runs with the installed scikit-learn's defaults (today: multinomial
lbfgs, tol 1e-4, max_iter 100; SentEval was written when the default was liblinear). Fits that stop
at ``max_iter`` are counted and reported (``not_converged``), never hidden. SimCSE's published transfer
numbers use SentEval's PyTorch logistic regression (Adam, early stopping) instead; see
docs/results.md for what that means for comparisons.
"""

from __future__ import annotations

import os
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from capcse.evaluation.encoding import as_encode_fn, embed_unique

TRANSFER_TASKS = ("mr", "cr", "subj", "mpqa", "sst2", "trec", "mrpc")
DISPLAY_NAMES = {"mr": "MR", "cr": "CR", "subj": "SUBJ", "mpqa": "MPQA", "sst2": "SST2",
                 "trec": "TREC", "mrpc": "MRPC"}
INNER_KFOLD_TASKS = ("mr", "cr", "subj", "mpqa")
SPLIT_TASKS = ("sst2",)
KFOLD_TASKS = ("trec", "mrpc")

#: SentEval's scikit-learn grids of the inverse regularisation strength C.
INNER_GRID = tuple(2.0 ** t for t in range(-2, 4))   # InnerKFoldClassifier, SplitClassifier
KFOLD_GRID = tuple(2.0 ** t for t in range(-1, 6))   # KFoldClassifier
FAST_INNER_GRID = tuple(2.0 ** t for t in (-2, 0, 2))
FAST_KFOLD_GRID = tuple(2.0 ** t for t in (-1, 1, 3, 5))
SENTEVAL_SEED = 1111


@dataclass(frozen=True)
class ProbeConfig:
    """How the logistic-regression probes are trained and selected."""

    kfold: int = 10
    inner_grid: tuple[float, ...] = INNER_GRID
    kfold_grid: tuple[float, ...] = KFOLD_GRID
    seed: int = SENTEVAL_SEED
    max_iter: int = 100  # scikit-learn's default, i.e. what SentEval's call gets
    n_jobs: int | None = None  # None: min(2, cpu count)

    @classmethod
    def senteval(cls, fast: bool = False, **overrides) -> "ProbeConfig":
        base = cls(kfold=5, inner_grid=FAST_INNER_GRID, kfold_grid=FAST_KFOLD_GRID) if fast else cls()
        return base.__class__(**{**base.__dict__, **overrides})

    @property
    def jobs(self) -> int:
        if self.n_jobs is not None:
            return max(1, int(self.n_jobs))
        return max(1, min(2, os.cpu_count() or 1))


# --------------------------------------------------------------------------------------------------
# probes on arrays (no text, no encoder: testable on synthetic data)


def _classifier(C: float, cfg: ProbeConfig):
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=C, random_state=cfg.seed, max_iter=cfg.max_iter)


def _fit(clf, X, y):
    """Fit; returns (clf, converged). Convergence warnings are turned into a count, not printed."""
    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        clf.fit(X, y)
    return clf, not any(issubclass(w.category, ConvergenceWarning) for w in caught)


def _path_accuracies(Xa, ya, Xb, yb, grid: Sequence[float], cfg: ProbeConfig) -> tuple[np.ndarray, int]:
    """Fit on (Xa, ya) for every C of ``grid``; accuracy on (Xb, yb) per C, and non-converged fits."""
    accs = np.empty(len(grid))
    bad = 0
    for j, C in enumerate(grid):
        clf, ok = _fit(_classifier(C, cfg), Xa, ya)
        bad += not ok
        accs[j] = clf.score(Xb, yb)
    return accs, bad


def _cv_path(X, y, train_idx, test_idx, grid, cfg):
    return _path_accuracies(X[train_idx], y[train_idx], X[test_idx], y[test_idx], grid, cfg)


def _fit_predict(Xa, ya, Xb, C, cfg) -> tuple[np.ndarray, int]:
    clf, ok = _fit(_classifier(C, cfg), Xa, ya)
    return clf.predict(Xb), int(not ok)


def _cv_fit_predict(X, y, train_idx, test_idx, C, cfg):
    return _fit_predict(X[train_idx], y[train_idx], X[test_idx], C, cfg)


def _run(jobs: list, cfg: ProbeConfig) -> list:
    if cfg.jobs == 1 or len(jobs) == 1:
        return [fn(*args) for fn, *args in jobs]
    from joblib import Parallel, delayed

    return Parallel(n_jobs=cfg.jobs)(delayed(fn)(*args) for fn, *args in jobs)


def _select(acc_matrix: np.ndarray, grid: Sequence[float]) -> tuple[float, float]:
    """SentEval's choice: mean over folds, x100, rounded to 2 decimals, first arg-max."""
    scores = [round(100 * float(np.mean(acc_matrix[:, j])), 2) for j in range(len(grid))]
    best = int(np.argmax(scores))
    return float(grid[best]), float(scores[best])


def _stratified(k: int, seed: int):
    from sklearn.model_selection import StratifiedKFold

    return StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)


def inner_kfold_probe(X: np.ndarray, y: np.ndarray, cfg: ProbeConfig = ProbeConfig()) -> dict[str, Any]:
    """SentEval's InnerKFoldClassifier: outer k-fold test, inner k-fold choice of C per outer fold."""
    X, y = np.asarray(X, dtype=np.float64), np.asarray(y)
    grid = cfg.inner_grid
    # SentEval seeds both splitters with the literal 1111 here (not the task seed).
    outer = list(_stratified(cfg.kfold, SENTEVAL_SEED).split(X, y))
    jobs, owner = [], []
    for o, (tr, _te) in enumerate(outer):
        for itr, ite in _stratified(cfg.kfold, SENTEVAL_SEED).split(X[tr], y[tr]):
            jobs.append((_cv_path, X, y, tr[itr], tr[ite], grid, cfg))
            owner.append(o)
    paths = _run(jobs, cfg)
    accs = np.array([a for a, _ in paths])
    bad = sum(b for _, b in paths)
    owner = np.array(owner)
    chosen, dev = [], []
    for o in range(len(outer)):
        c, d = _select(accs[owner == o], grid)
        chosen.append(c)
        dev.append(d)
    finals = _run([(_cv_fit_predict, X, y, tr, te, chosen[o], cfg) for o, (tr, te) in enumerate(outer)], cfg)
    test = [round(100 * float(np.mean(p == y[te])), 2) for (p, _), (_tr, te) in zip(finals, outer)]
    bad += sum(b for _, b in finals)
    return {"devacc": round(float(np.mean(dev)), 2), "acc": round(float(np.mean(test)), 2),
            "C": chosen, "fold_acc": test, "fold_devacc": dev, "fits": len(jobs) * len(grid) + len(outer),
            "not_converged": bad, "protocol": f"{cfg.kfold}-fold CV, inner {cfg.kfold}-fold choice of C"}


def kfold_probe(Xtr, ytr, Xte, yte, cfg: ProbeConfig = ProbeConfig()) -> dict[str, Any]:
    """SentEval's KFoldClassifier: k-fold CV on train chooses C; refit on train; score on test."""
    Xtr, Xte = np.asarray(Xtr, dtype=np.float64), np.asarray(Xte, dtype=np.float64)
    ytr, yte = np.asarray(ytr), np.asarray(yte)
    grid = cfg.kfold_grid
    folds = list(_stratified(cfg.kfold, cfg.seed).split(Xtr, ytr))
    paths = _run([(_cv_path, Xtr, ytr, tr, te, grid, cfg) for tr, te in folds], cfg)
    c, dev = _select(np.array([a for a, _ in paths]), grid)
    yhat, bad = _fit_predict(Xtr, ytr, Xte, c, cfg)
    return {"devacc": dev, "acc": round(100 * float(np.mean(yhat == yte)), 2), "C": c, "yhat": yhat,
            "fits": len(folds) * len(grid) + 1, "not_converged": bad + sum(b for _, b in paths),
            "protocol": f"{cfg.kfold}-fold CV on train chooses C, test on test"}


def split_probe(Xtr, ytr, Xdev, ydev, Xte, yte, cfg: ProbeConfig = ProbeConfig()) -> dict[str, Any]:
    """SentEval's SplitClassifier: C chosen on dev, model trained on train, scored on test."""
    Xtr, Xdev, Xte = (np.asarray(a, dtype=np.float64) for a in (Xtr, Xdev, Xte))
    grid = cfg.inner_grid
    accs, bad = _path_accuracies(Xtr, np.asarray(ytr), Xdev, np.asarray(ydev), grid, cfg)
    c, dev = _select(accs[None, :], grid)
    yhat, bad2 = _fit_predict(Xtr, np.asarray(ytr), Xte, c, cfg)
    return {"devacc": dev, "acc": round(100 * float(np.mean(yhat == np.asarray(yte))), 2), "C": c,
            "fits": len(grid) + 1, "not_converged": bad + bad2, "protocol": "C chosen on dev, test on test"}


# --------------------------------------------------------------------------------------------------
# tasks (text -> embeddings -> probe)


@dataclass
class TransferTaskResult:
    task: str
    devacc: float
    acc: float
    n_train: int
    n_test: int
    protocol: str
    C: Any
    f1: float | None = None
    n_classes: int = 2
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return DISPLAY_NAMES.get(self.task, self.task)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"acc": self.acc, "devacc": self.devacc}
        if self.f1 is not None:
            out["f1"] = self.f1
        out.update({"n_train": self.n_train, "n_test": self.n_test, "n_classes": self.n_classes,
                    "protocol": self.protocol, "C": self.C, "seconds": round(self.seconds, 3)})
        out.update(self.extra)
        return out


@dataclass
class TransferResults:
    tasks: dict[str, TransferTaskResult]
    config: ProbeConfig
    encode_seconds: float = 0.0

    @property
    def avg(self) -> float:
        return float(np.mean([t.acc for t in self.tasks.values()]))

    @property
    def dev_avg(self) -> float:
        return float(np.mean([t.devacc for t in self.tasks.values()]))


def _ntok(s: str) -> int:
    return len(s.split())


def _senteval_order(items: list, labels: np.ndarray, pairs: bool) -> tuple[list, np.ndarray]:
    """The order SentEval embeds (and therefore folds) samples in: stable sort by token length, label."""
    if pairs:
        key = lambda i: (_ntok(items[i][0]), _ntok(items[i][1]), labels[i])  # noqa: E731
    else:
        key = lambda i: (_ntok(items[i]), labels[i])  # noqa: E731
    order = sorted(range(len(items)), key=key)
    return [items[i] for i in order], np.asarray(labels)[order]


def _features(table, items: list, pairs: bool) -> np.ndarray:
    if not pairs:
        return table.lookup(items).astype(np.float64)
    u = table.lookup([a for a, _ in items]).astype(np.float64)
    v = table.lookup([b for _, b in items]).astype(np.float64)
    return np.concatenate([np.abs(u - v), u * v], axis=1)


def probe_task(task: str, data: Any, encode, cfg: ProbeConfig) -> TransferTaskResult:
    """Embed one transfer task's sentences (once, deduplicated) and run its SentEval probe."""
    splits = {}
    for split, (items, labels) in data.splits.items():
        items = [tuple(x) for x in items] if data.pairs else list(items)
        splits[split] = _senteval_order(items, np.asarray(labels), data.pairs)
    texts = []
    for items, _ in splits.values():
        for it in items:
            texts.extend(it if data.pairs else (it,))
    table = embed_unique(encode, texts)
    X = {s: _features(table, items, data.pairs) for s, (items, _) in splits.items()}
    y = {s: labels for s, (_, labels) in splits.items()}
    t0 = time.perf_counter()
    f1 = None
    if task in INNER_KFOLD_TASKS or set(splits) == {"all"}:
        r = inner_kfold_probe(X["all"], y["all"], cfg)
        n_train = n_test = len(y["all"])
    elif task in SPLIT_TASKS or set(splits) == {"train", "dev", "test"}:
        r = split_probe(X["train"], y["train"], X["dev"], y["dev"], X["test"], y["test"], cfg)
        n_train, n_test = len(y["train"]), len(y["test"])
    else:
        r = kfold_probe(X["train"], y["train"], X["test"], y["test"], cfg)
        n_train, n_test = len(y["train"]), len(y["test"])
        if task == "mrpc":
            from sklearn.metrics import f1_score

            f1 = round(100 * float(f1_score(y["test"], r["yhat"])), 2)
    extra = {k: r[k] for k in ("fold_acc", "fold_devacc", "fits", "not_converged") if k in r}
    extra["encode_seconds"] = round(table.seconds, 3)
    return TransferTaskResult(task, r["devacc"], r["acc"], n_train, n_test, r["protocol"], r["C"], f1,
                              int(getattr(data, "n_classes", len(np.unique(y[next(iter(y))])))),
                              time.perf_counter() - t0, extra)


def evaluate_transfer(model: Any, tasks: Sequence[str] | None = None, *, data_dir=None, fast: bool = False,
                      n_jobs: int | None = None, seed: int = SENTEVAL_SEED, batch_size: int | None = None,
                      datasets: Mapping[str, Any] | None = None, config: ProbeConfig | None = None,
                      show_progress_bar: bool | None = None, log=None) -> TransferResults:
    """Run the SentEval transfer probes for ``model`` (encoder object or function).

    ``datasets`` (``task -> TransferData``-like objects) bypasses ``capcse.data.load_transfer``.
    ``log`` is an optional ``print``-like callable for per-task progress lines.
    """
    cfg = config or ProbeConfig.senteval(fast, seed=seed, n_jobs=n_jobs)
    tasks = list(tasks or (datasets.keys() if datasets else TRANSFER_TASKS))
    encode = as_encode_fn(model, batch_size=batch_size, show_progress_bar=show_progress_bar)
    out: dict[str, TransferTaskResult] = {}
    enc_total = 0.0
    for task in tasks:
        if datasets is not None and task in datasets:
            data = datasets[task]
        else:
            from capcse.data import load_transfer

            data = load_transfer(task, data_dir=data_dir)
        res = probe_task(task, data, encode, cfg)
        enc_total += res.extra.get("encode_seconds", 0.0)
        out[task] = res
        if log is not None:
            extra = f" f1={res.f1:.2f}" if res.f1 is not None else ""
            log(f"{res.name}: acc={res.acc:.2f} devacc={res.devacc:.2f}{extra} "
                f"(encode {res.extra['encode_seconds']:.1f}s, probe {res.seconds:.1f}s)")
    return TransferResults(out, cfg, enc_total)
