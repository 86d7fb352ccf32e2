"""capcse.evaluation: SentEval-exact STS and transfer evaluation of any sentence encoder.

Any object with ``.encode(list[str]) -> array`` (a capcse ``SentenceEncoder``, a plain
``SentenceTransformer``) or a plain function ``f(list[str]) -> array`` can be evaluated::

    from capcse.evaluation import evaluate_sts, evaluate_transfer, run_evaluation
    res = evaluate_sts(encoder, mode="test", data_dir="../shared/data")
    res.table()        # {"STS12": 72.37, ..., "SICK-R": ...}  (cosine Spearman x100, SimCSE's 'all')
"""

from capcse.evaluation.alignment import alignment, sts_alignment_uniformity, uniformity
from capcse.evaluation.encoding import EmbeddingTable, as_encode_fn, embed_unique, model_name
from capcse.evaluation.sts import (AGGREGATIONS, CORRELATION_KEYS, DEV_STS_TASKS, STS_TASKS, STSResults,
                                   STSTaskResult, aggregate, correlations, evaluate_sts, score_sts_task,
                                   similarity_scores)
from capcse.evaluation.suite import SUITES, EvaluationResult, resolve_tasks, run_evaluation
from capcse.evaluation.transfer import (TRANSFER_TASKS, ProbeConfig, TransferResults, TransferTaskResult,
                                        evaluate_transfer, inner_kfold_probe, kfold_probe, split_probe)

__all__ = [
    "AGGREGATIONS", "CORRELATION_KEYS", "DEV_STS_TASKS", "STS_TASKS", "SUITES", "TRANSFER_TASKS",
    "EmbeddingTable", "EvaluationResult", "ProbeConfig", "STSResults", "STSTaskResult", "TransferResults",
    "TransferTaskResult", "aggregate", "alignment", "as_encode_fn", "correlations", "embed_unique",
    "evaluate_sts", "evaluate_transfer", "inner_kfold_probe", "kfold_probe", "model_name", "resolve_tasks",
    "run_evaluation", "score_sts_task", "similarity_scores", "split_probe", "sts_alignment_uniformity",
    "uniformity",
]
