"""Multimodal training (MCSE / DALR): text-only batches and image–caption batches, interleaved as MCSE does.

A multimodal recipe has ``loss.name: mcse`` or ``dalr`` and a ``multimodal:`` section (see
:class:`~capcse.train.multimodal.config.MultimodalConfig` and docs/multimodal.md). :func:`prepare_multimodal` turns it into what the
sentence-transformers Trainer needs:

* **data** — one ``datasets.Dataset`` with a ``text`` column and a ``label`` column that says what a
  row is: ``label >= 0`` a row of the text corpus (``data.train``, e.g. wiki), ``label = -(p + 1)``
  image–caption pair ``p``. :class:`MixedModalityBatchSampler` makes every batch homogeneous and
  interleaves them with MCSE's schedule (``train_mix.py``): an epoch has ``T + P`` steps (T text
  batches, P pair batches); step ``s`` takes a pair batch when ``s % (T // P) == 0``, else a text
  batch; both streams cycle, reshuffle when exhausted and continue across epochs.
* **image side** — a frozen vision encoder's features, computed once per (image, encoder) and read
  from a memory-mapped cache (:class:`capcse.data.image_features.ImageFeatureCache`); the vision
  model never runs inside the training loop.
* **teachers** (DALR) — up to two frozen sentence encoders; their caption–caption cosine matrices are
  mixed ``alpha * S_1 + (1 - alpha) * S_2``. ``teacher_mode: precompute`` embeds every sentence that
  needs a teacher once, before training, and caches the embeddings on disk (keyed by the sentence
  text and the teacher's weights); ``batch`` runs the frozen teachers on each batch.
* **objective** — :class:`MultimodalObjective`: one concatenated forward of the batch's two dropout
  views, then every loss term the batch supports, each weighted by configuration:

  ======================  =====================================================  ============
  term                    loss                                                   batches
  ======================  =====================================================  ============
  ``text``                SimCSE InfoNCE (DALR: with angular margin ``text``)    all
  ``grounding``           MCSE ``l^VS`` / DALR margin InfoNCE with soft labels   pairs
  ``soft_label``          DALR soft-label KL (image–image, teacher text–text)    pairs
  ``global_alignment``    DALR intra-modal KL to the teacher's distribution      pairs [+ text]
  ``ranking``             ListMLE / ListNet against the teacher ranking           pairs [+ text]
  ``consistency``         RankCSE JS divergence between the two views            all
  ======================  =====================================================  ============

  The objective returns the weighted terms as a dict (logged separately by the Trainer, summed
  into the loss). A term with weight 0 is not computed (ablations).
"""

from capcse.train.multimodal.config import (DEFAULT_MARGINS, DEFAULT_WEIGHTS, MULTIMODAL_LOSSES, TEACHER_SIMILARITIES,
                                            TERMS, MultimodalConfig)
from capcse.train.multimodal.data import (MultimodalData, TextLookup, build_mixed_dataset, label_column,
                                          load_multimodal_data, pair_label)
from capcse.train.multimodal.objective import MultimodalObjective
from capcse.train.multimodal.prepare import prepare_multimodal
from capcse.train.multimodal.sampler import MixedModalityBatchSampler, mcse_schedule
from capcse.train.multimodal.teachers import TeacherBank, text_key

__all__ = [
    "DEFAULT_MARGINS", "DEFAULT_WEIGHTS", "MULTIMODAL_LOSSES", "TEACHER_SIMILARITIES", "TERMS", "MultimodalConfig",
    "MultimodalData", "TextLookup", "build_mixed_dataset", "label_column", "load_multimodal_data", "pair_label",
    "MultimodalObjective", "prepare_multimodal", "MixedModalityBatchSampler", "mcse_schedule", "TeacherBank",
    "text_key",
]
