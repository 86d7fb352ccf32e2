"""Masked-language-model pretraining of a BERT-style encoder (``capcse pretrain``).

The loop is the transformers Trainer with ``DataCollatorForLanguageModeling`` (15 % of the tokens
chosen; of those 80 % become [MASK], 10 % a random token, 10 % stay; whole-word masking as an option),
exactly as transformers' ``run_mlm`` example: each sentence is tokenised with its [CLS]/[SEP], the
token stream is concatenated and cut into blocks of ``model.block_size`` (the remainder is dropped).
From scratch (a ``BertConfig`` given in the recipe) or continued from any ``*ForMaskedLM`` checkpoint
(domain-adaptive pretraining). What capcse adds:

* ``mlm.prediction: masked`` applies the prediction head (transform + vocabulary projection) only at
  the masked positions, where the loss is; the loss is the same mean cross-entropy over masked tokens
  as transformers' (the head over every position, ``prediction: full``, is the stock behaviour);
* a fixed held-out set (sentences chosen by a hash of their text, masked once with a fixed seed), on
  which masked-token accuracy, loss and perplexity are measured every ``eval.steps``: a curve that
  compares across steps and across resumed runs;
* model-only snapshots every ``train.snapshot_steps`` (``snapshots/step-N``), kept for experiments on
  the encoder at rising MLM quality;
* the saved folder is a plain ``BertForMaskedLM`` (safetensors, tokenizer, model card) that
  ``AutoModelForMaskedLM``, ``AutoModel`` and ``capcse train`` load; its MLM head is the one SimCSE's
  auxiliary MLM loss starts from.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import time
import types
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from capcse.errors import ConfigError
from capcse.io import atomic_write_json, atomic_write_text
from capcse.train.recipe import RECIPE_KINDS, load_recipe

logger = logging.getLogger(__name__)

HELDOUT_SEED = 20261202


# ------------------------------------------------------------------------------------------ the recipe
@dataclass
class PretrainModelSection:
    init: str = "scratch"               # scratch | a *ForMaskedLM folder / alias / hub id to continue from
    tokenizer: str = "all-MiniLM-L6-v2"  # a tokenizer folder/alias, or "train" (WordPiece trained on the corpus)
    vocab_size: int = 30522             # for tokenizer: train
    lowercase: bool = True              # for tokenizer: train
    config: dict[str, Any] = field(default_factory=dict)  # BertConfig values (from scratch)
    block_size: int = 128


@dataclass
class PretrainDataSection:
    train: str = "corpus:en"            # a one-sentence-per-line file, or corpus:<lang> (built, leakage-checked)
    data_dir: str | None = None
    heldout_per_mille: int = 10         # sentences whose text hash falls in the first N of 1000 are held out
    heldout: str | None = None          # or a held-out file of its own (then nothing of data.train is held out)
    heldout_blocks: int = 256           # at most this many held-out blocks are evaluated
    limit: int | None = None            # first N training sentences


@dataclass
class MLMSection:
    probability: float = 0.15
    mask_replace: float = 0.8
    random_replace: float = 0.1
    whole_word: bool = False
    prediction: str = "masked"          # masked (head at masked positions only) | full (every position, stock)


@dataclass
class PretrainTrainSection:
    output_dir: str | None = None
    batch_size: int = 64
    learning_rate: float = 1e-3
    max_steps: int = 1000
    warmup_ratio: float = 0.06
    lr_scheduler: str = "linear"
    weight_decay: float = 0.01
    adam_beta2: float = 0.98
    adam_epsilon: float = 1e-6
    optim: str = "adamw_torch_fused"
    max_grad_norm: float = 1.0
    seed: int = 42
    precision: str = "bf16"             # fp32 | bf16 | fp16 (autocast)
    fast_dropout: str = "auto"
    gradient_accumulation_steps: int = 1
    logging_steps: int = 50
    save_steps: int = 250
    save_total_limit: int | None = 2
    snapshot_steps: int | None = None   # model-only copies kept in snapshots/step-N
    report_to: list[str] = field(default_factory=lambda: ["tensorboard"])
    dataloader_num_workers: int = 0
    device: str | None = None
    torch_threads: int | None = None
    progress: str = "auto"              # auto (a bar on a terminal) | on | off


@dataclass
class PretrainEvalSection:
    steps: int = 250
    batch_size: int = 64


@dataclass
class PretrainRecipe:
    name: str = "mlm"
    description: str = ""
    reference: str = ""
    model: PretrainModelSection = field(default_factory=PretrainModelSection)
    data: PretrainDataSection = field(default_factory=PretrainDataSection)
    mlm: MLMSection = field(default_factory=MLMSection)
    train: PretrainTrainSection = field(default_factory=PretrainTrainSection)
    eval: PretrainEvalSection = field(default_factory=PretrainEvalSection)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def output_dir(self) -> Path:
        return Path(self.train.output_dir or f"outputs/{self.name}")


RECIPE_KINDS[PretrainRecipe] = {"model": PretrainModelSection, "data": PretrainDataSection, "mlm": MLMSection,
                                "train": PretrainTrainSection, "eval": PretrainEvalSection}

#: --set keys that may change when a run is resumed: they do not change what has been trained
RESUME_SAFE = ("train.max_steps", "train.logging_steps", "train.save_steps", "train.save_total_limit",
               "train.snapshot_steps", "train.report_to", "train.dataloader_num_workers", "train.device",
               "train.torch_threads", "train.progress", "eval.steps", "eval.batch_size", "data.data_dir")


def load_pretrain_recipe(name_or_path, overrides=()) -> PretrainRecipe:
    recipe = load_recipe(name_or_path, overrides, kind=PretrainRecipe)
    check_recipe(recipe)
    return recipe


def check_recipe(r: PretrainRecipe) -> None:
    """Reject bad values before anything is loaded."""
    from capcse.train.trainer import check_precision, show_progress, wants_fast_dropout

    check_precision(r.train.precision)  # the switches capcse train checks, with the same messages
    wants_fast_dropout(r.train.fast_dropout, "cpu")
    show_progress(r.train.progress)
    if r.mlm.prediction not in ("masked", "full"):
        raise ConfigError(f"mlm.prediction must be masked or full, got {r.mlm.prediction!r}")
    if not 0 < r.mlm.probability < 1:
        raise ConfigError(f"mlm.probability must be in (0, 1), got {r.mlm.probability}")
    if r.train.learning_rate <= 0:
        raise ConfigError(f"train.learning_rate must be > 0, got {r.train.learning_rate}")
    if r.train.max_steps <= 0 or r.train.batch_size <= 0:
        raise ConfigError("train.max_steps and train.batch_size must be > 0")
    if r.model.block_size < 8:
        raise ConfigError(f"model.block_size must be >= 8, got {r.model.block_size}")
    if not 0 <= r.data.heldout_per_mille < 1000:
        raise ConfigError("data.heldout_per_mille must be in [0, 1000)")


# ------------------------------------------------------------------------------------------ data
def is_heldout(sentence: str, per_mille: int) -> bool:
    """A stable, order-free split: the first ``per_mille`` of 1000 buckets of the text's MD5 are held out."""
    digest = hashlib.md5(sentence.encode("utf-8")).digest()
    return int.from_bytes(digest[:4], "little") % 1000 < per_mille


def corpus_file(recipe: PretrainRecipe, out: Path, log=print) -> Path:
    """The training text: a file as given, or ``corpus:<lang>`` built (once) into ``<out>/corpus/``."""
    spec = recipe.data.train
    if not spec.startswith("corpus:"):
        path = Path(spec).expanduser()
        if not path.is_file():
            raise ConfigError(f"data.train: no file {spec!r} (give a one-sentence-per-line file or corpus:en / corpus:ko)")
        return path
    lang = spec.split(":", 1)[1]
    folder = out / "corpus"
    path, report_path = folder / f"corpus-{lang}.txt", folder / f"corpus-{lang}.json"
    if path.is_file() and report_path.is_file():
        return path
    from capcse.data.pretrain_corpus import build_corpus, write_report

    tok = None if recipe.model.tokenizer == "train" else load_tokenizer(recipe.model.tokenizer)
    log(f"building the leakage-checked {lang} corpus into {folder} ...")
    report = build_corpus(lang, path, data_dir=recipe.data.data_dir, tokenizer=tok)
    write_report(report, path)  # corpus-<lang>.json (report_path) and .md
    log(f"corpus: {report.sentences:,} sentences, {report.tokens:,} tokens; evaluation matches after filtering "
        f"{report.matches_after}")
    return path


def read_corpus(path: Path, per_mille: int, limit: int | None = None) -> tuple[list[str], list[str]]:
    """(training sentences, held-out sentences) of a one-sentence-per-line file."""
    from capcse.data.corpora import read_text_corpus

    train, heldout = [], []
    for sentence in read_text_corpus(path):
        (heldout if is_heldout(sentence, per_mille) else train).append(sentence)
        if limit is not None and len(train) >= limit:
            break
    if not train:
        raise ConfigError(f"{path}: no training sentences (empty file, or everything held out)")
    return train, heldout


def pack_blocks(tokenizer, sentences: list[str], block_size: int, *, offsets: bool = False,
                chunk: int = 20000) -> dict[str, np.ndarray]:
    """``run_mlm``'s grouping: every sentence tokenised with its special tokens, all concatenated, cut into
    ``block_size`` blocks (the remainder dropped). Returns ``input_ids`` and ``special_tokens_mask`` [N, L]
    (and ``offset_mapping`` [N, L, 2] when ``offsets``, for whole-word masking)."""
    ids_parts, special_parts, offset_parts = [], [], []
    for start in range(0, len(sentences), chunk):
        enc = tokenizer(sentences[start:start + chunk], add_special_tokens=True, truncation=False,
                        return_special_tokens_mask=True, return_offsets_mapping=offsets, verbose=False)
        for i, seq in enumerate(enc["input_ids"]):
            ids_parts.append(np.asarray(seq, dtype=np.int32))
            special_parts.append(np.asarray(enc["special_tokens_mask"][i], dtype=np.int8))
            if offsets:
                offset_parts.append(np.asarray(enc["offset_mapping"][i], dtype=np.int32).reshape(-1, 2))
    if not ids_parts:
        raise ConfigError("no sentences to pack into blocks")
    ids = np.concatenate(ids_parts)
    n = len(ids) // block_size
    if n == 0:
        raise ConfigError(f"{len(ids)} tokens make no block of {block_size}")
    out = {"input_ids": ids[: n * block_size].reshape(n, block_size),
           "special_tokens_mask": np.concatenate(special_parts)[: n * block_size].reshape(n, block_size)}
    if offsets:
        out["offset_mapping"] = np.concatenate(offset_parts)[: n * block_size].reshape(n, block_size, 2)
    return out


class BlockDataset(torch.utils.data.Dataset):
    """Packed blocks as the collator's input rows (plain lists, as a tokenizer would return them)."""

    def __init__(self, blocks: dict[str, np.ndarray]):
        self.blocks = blocks

    def __len__(self) -> int:
        return len(self.blocks["input_ids"])

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {k: v[i].tolist() for k, v in self.blocks.items()}


# ------------------------------------------------------------------------------------------ model
def load_tokenizer(name: str):
    from transformers import AutoTokenizer

    from capcse.models.registry import resolve_model

    try:
        return AutoTokenizer.from_pretrained(resolve_model(name))
    except OSError as exc:
        raise ConfigError(f"model.tokenizer {name!r}: cannot load a tokenizer ({exc})") from None


def train_wordpiece(sentences: list[str], vocab_size: int, lowercase: bool, folder: Path):
    """A BERT WordPiece vocabulary trained on ``sentences`` with ``tokenizers``, saved as a fast tokenizer."""
    from tokenizers import BertWordPieceTokenizer
    from transformers import BertTokenizerFast

    wp = BertWordPieceTokenizer(lowercase=lowercase, strip_accents=False if not lowercase else None)
    wp.train_from_iterator(sentences, vocab_size=vocab_size, min_frequency=2,
                           special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"])
    folder.mkdir(parents=True, exist_ok=True)
    wp.save_model(str(folder))
    # from_pretrained: transformers v5 tokenizers ignore ``vocab_file=`` in the constructor
    tok = BertTokenizerFast.from_pretrained(str(folder), do_lower_case=lowercase,
                                            strip_accents=False if not lowercase else None)
    tok.model_max_length = 512
    tok.save_pretrained(str(folder))
    return tok


def build_mlm_model(recipe: PretrainRecipe, tokenizer):
    from transformers import AutoModelForMaskedLM, BertConfig, BertForMaskedLM

    from capcse.models.registry import resolve_model

    m = recipe.model
    if m.init == "scratch":
        values = {"vocab_size": len(tokenizer), "pad_token_id": tokenizer.pad_token_id,
                  "max_position_embeddings": max(512, m.block_size), **m.config}
        try:
            config = BertConfig(**values)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"model.config: {exc}") from None
        if config.max_position_embeddings < m.block_size:
            raise ConfigError(f"model.block_size {m.block_size} > max_position_embeddings "
                              f"{config.max_position_embeddings}")
        torch.manual_seed(recipe.train.seed)
        return BertForMaskedLM(config)
    try:
        model = AutoModelForMaskedLM.from_pretrained(resolve_model(m.init), dtype=torch.float32)
    except OSError as exc:
        raise ConfigError(f"model.init {m.init!r}: cannot load a masked-LM checkpoint ({exc})") from None
    if model.get_input_embeddings().num_embeddings < len(tokenizer):
        raise ConfigError(f"model.init {m.init!r} has {model.get_input_embeddings().num_embeddings} embeddings, "
                          f"the tokenizer {len(tokenizer)} tokens")
    return model


def mlm_parts(model):
    """(encoder, prediction head) of a ``*ForMaskedLM`` model: BERT's ``cls``, RoBERTa-style ``lm_head``."""
    head = getattr(model, "cls", None) or getattr(model, "lm_head", None)
    if head is None:
        raise ConfigError(f"{type(model).__name__}: no MLM head (cls / lm_head) found")
    return model.base_model, head


def use_masked_prediction(model) -> None:
    """Make ``model``'s forward apply the MLM head only at positions with a label (``labels != -100``).

    The loss is unchanged — the mean cross-entropy over the labelled positions, as the stock forward
    computes it over all positions with ``ignore_index=-100`` — but the head's transform and the
    ``hidden x vocabulary`` projection run on ~15 % of the tokens. ``logits`` are then [n_masked, vocab].
    The forward is set on the instance, so the saved model stays the stock class and DDP wraps it as usual.
    """
    stock = type(model).forward
    encoder, head = mlm_parts(model)

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, labels=None, **kwargs):
        from transformers.modeling_outputs import MaskedLMOutput

        if labels is None:
            return stock(self, input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids,
                         **kwargs)
        hidden = encoder(input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids,
                         return_dict=True).last_hidden_state
        chosen = labels != -100
        logits = head(hidden[chosen])
        loss = torch.nn.functional.cross_entropy(logits.float(), labels[chosen])
        return MaskedLMOutput(loss=loss, logits=logits)

    model.forward = types.MethodType(forward, model)


def collator(tokenizer, mlm: MLMSection, seed: int | None = None, *, per_batch: bool = False):
    """transformers' ``DataCollatorForLanguageModeling`` with the recipe's masking. ``per_batch``: the masks
    of the k-th batch are drawn from a generator seeded by (``seed``, process rank, k), so that a resumed
    run masks every batch as the uninterrupted run did (the Trainer restores the global RNG only after it
    has fetched the first resumed batch)."""
    from transformers import DataCollatorForLanguageModeling

    kwargs = dict(mlm=True, mlm_probability=mlm.probability, mask_replace_prob=mlm.mask_replace,
                  random_replace_prob=mlm.random_replace, whole_word_mask=mlm.whole_word, seed=seed)
    if not per_batch:
        return DataCollatorForLanguageModeling(tokenizer, **kwargs)
    if seed is None:
        raise ValueError("per_batch masking needs a seed")

    class PerBatchSeededCollator(DataCollatorForLanguageModeling):
        batch_index = 0  # the first batch's number (set to the batches already trained on resume)
        collated = 0     # batches this process has collated

        def torch_call(self, examples):
            # DataLoader workers take batches in turn: worker w of n collates batches w, w + n, w + 2n, ...
            info = torch.utils.data.get_worker_info()
            workers, worker = (info.num_workers, info.id) if info is not None else (1, 0)
            k = self.batch_index + self.collated * workers + worker
            self.collated += 1
            rank = int(os.environ.get("RANK", "0") or 0)
            self.generator = torch.Generator().manual_seed((self.seed * 1_000_003 + rank) * 1_000_003 + k)
            self._generator_pid = os.getpid()
            return super().torch_call(examples)

    return PerBatchSeededCollator(tokenizer, **kwargs)


def masked_heldout(tokenizer, blocks: dict[str, np.ndarray], mlm: MLMSection, limit: int) -> dict[str, torch.Tensor]:
    """The held-out blocks masked once with a fixed seed: the same inputs at every evaluation."""
    rows = [{k: v[i].tolist() for k, v in blocks.items()} for i in range(min(limit, len(blocks["input_ids"])))]
    batch = collator(tokenizer, mlm, seed=HELDOUT_SEED)(rows)
    return {k: v for k, v in batch.items() if k in ("input_ids", "labels")}


@torch.inference_mode()
def evaluate_mlm(model, heldout: dict[str, torch.Tensor], batch_size: int, precision: str = "fp32") -> dict[str, float]:
    """Masked-token accuracy, mean loss and perplexity on the pre-masked held-out blocks."""
    from capcse.models.encoder import autocast_context, parse_dtype

    encoder, head = mlm_parts(model)
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    loss_sum, correct, count = 0.0, 0, 0
    try:
        with autocast_context(device, parse_dtype(precision)):
            for start in range(0, len(heldout["input_ids"]), batch_size):
                ids = heldout["input_ids"][start:start + batch_size].to(device)
                labels = heldout["labels"][start:start + batch_size].to(device)
                hidden = encoder(ids, attention_mask=torch.ones_like(ids), return_dict=True).last_hidden_state
                chosen = labels != -100
                logits = head(hidden[chosen]).float()
                target = labels[chosen]
                loss_sum += float(torch.nn.functional.cross_entropy(logits, target, reduction="sum"))
                correct += int((logits.argmax(-1) == target).sum())
                count += int(target.numel())
    finally:
        model.train(was_training)
    loss = loss_sum / max(count, 1)
    return {"mlm_accuracy": correct / max(count, 1), "mlm_loss": loss, "perplexity": math.exp(min(loss, 50.0)),
            "masked_tokens": count}


# ------------------------------------------------------------------------------------------ running
@dataclass
class PretrainResult:
    output_dir: Path
    model_dir: Path
    steps: int
    train_blocks: int
    heldout_blocks: int
    train_seconds: float
    tokens_per_second: float
    curve: list[dict[str, float]] = field(default_factory=list)   # held-out evaluations: step, accuracy, loss, ppl
    losses: list[dict[str, float]] = field(default_factory=list)  # training loss every logging_steps

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["output_dir"], d["model_dir"] = str(self.output_dir), str(self.model_dir)
        return d


def _trainer_class():
    from transformers import Trainer

    class MLMTrainer(Trainer):
        """The transformers Trainer whose evaluation is the fixed held-out MLM measurement."""

        heldout: dict[str, torch.Tensor] | None = None
        eval_batch_size: int = 64
        eval_precision: str = "fp32"

        def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix: str = "eval"):
            metrics = evaluate_mlm(self.model, self.heldout, self.eval_batch_size, self.eval_precision)
            metrics = {f"{metric_key_prefix}_{k}": v for k, v in metrics.items()}
            self.log(metrics)
            self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, metrics)
            return metrics

    return MLMTrainer


def _callbacks(recipe: PretrainRecipe, tokenizer, out: Path):
    from transformers import TrainerCallback

    class Snapshots(TrainerCallback):
        """Model-only copies every ``train.snapshot_steps`` (for experiments over pretraining)."""

        def on_step_end(self, args, state, control, model=None, **kwargs):
            every = recipe.train.snapshot_steps
            if every and state.global_step % every == 0 and state.is_world_process_zero and model is not None:
                save_model_folder(model, tokenizer, out / "snapshots" / f"step-{state.global_step}")

    return [Snapshots()]


def save_model_folder(model, tokenizer, folder: Path) -> None:
    """A plain ``*ForMaskedLM`` folder (safetensors + tokenizer), written to a temporary folder and renamed."""
    import shutil

    folder = Path(folder)
    tmp = folder.with_name(f".{folder.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(str(tmp), safe_serialization=True)
    tokenizer.save_pretrained(str(tmp))
    for path in tmp.iterdir():
        os.chmod(path, 0o644)
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(tmp, folder)


#: what a pretraining run writes into its output folder (deleted by --overwrite; the built corpus is kept)
RUN_ARTEFACTS = ("checkpoint-*", "snapshots", "model", "tokenizer", "runs", "recipe.yaml", "pretrain_summary.json")


def prepare_output(recipe: PretrainRecipe, *, resume: bool, overwrite: bool) -> None:
    """A new run needs an empty (or new) output folder; ``overwrite`` deletes the earlier run's artefacts (not
    its corpus). A resumed run's record was checked when its recipe was read (``capcse pretrain --resume``)."""
    from capcse.train.trainer import check_fresh_output

    if not resume:
        check_fresh_output(recipe.output_dir, overwrite, RUN_ARTEFACTS, keep=("corpus",))


def run_pretraining(recipe: PretrainRecipe, *, resume: bool = False, log=print, callbacks=()) -> PretrainResult:
    """Pretrain ``recipe``; ``resume``: continue from the newest complete checkpoint in the output folder;
    ``callbacks``: extra ``TrainerCallback``s."""
    from transformers import TrainingArguments, set_seed

    from capcse.train.recipe import dump_recipe
    from capcse.train.trainer import complete_checkpoints, is_main_process, show_progress, wants_fast_dropout

    check_recipe(recipe)
    t = recipe.train
    if t.torch_threads:
        torch.set_num_threads(t.torch_threads)
    out = recipe.output_dir
    out.mkdir(parents=True, exist_ok=True)
    checkpoint = None
    if resume:
        done = complete_checkpoints(out)
        if done:
            checkpoint = str(done[0])
        else:
            log(f"--resume: no complete checkpoint in {out} yet; starting from step 0")
    if is_main_process():
        atomic_write_text(out / "recipe.yaml", dump_recipe(recipe))
    set_seed(t.seed)

    path = corpus_file(recipe, out, log=log)
    if recipe.data.heldout:
        train_sents, _ = read_corpus(path, 0, recipe.data.limit)
        heldout_sents, _ = read_corpus(Path(recipe.data.heldout), 0)
    else:
        train_sents, heldout_sents = read_corpus(path, recipe.data.heldout_per_mille, recipe.data.limit)
    if not heldout_sents:  # before a tokenizer is loaded or trained and the corpus is packed
        raise ConfigError(f"{path}: no held-out sentences (data.heldout_per_mille={recipe.data.heldout_per_mille})")
    if recipe.model.tokenizer == "train":
        tok_dir = out / "tokenizer"
        if (tok_dir / "vocab.txt").is_file():
            tokenizer = load_tokenizer(str(tok_dir))
        else:
            tokenizer = train_wordpiece(train_sents, recipe.model.vocab_size, recipe.model.lowercase, tok_dir)
    else:
        tokenizer = load_tokenizer(recipe.model.tokenizer)
    whole = recipe.mlm.whole_word
    blocks = pack_blocks(tokenizer, train_sents, recipe.model.block_size, offsets=whole)
    held = pack_blocks(tokenizer, heldout_sents, recipe.model.block_size, offsets=whole)
    heldout = masked_heldout(tokenizer, held, recipe.mlm, recipe.data.heldout_blocks)
    n_tokens = blocks["input_ids"].size
    log(f"data: {len(train_sents):,} training sentences -> {len(blocks['input_ids']):,} blocks of "
        f"{recipe.model.block_size} ({n_tokens:,} tokens); held out: {len(heldout_sents):,} sentences -> "
        f"{len(heldout['input_ids'])} blocks, {int((heldout['labels'] != -100).sum()):,} masked tokens")

    model = build_mlm_model(recipe, tokenizer)
    if recipe.mlm.prediction == "masked":
        use_masked_prediction(model)
    device = torch.device(t.device) if t.device else (torch.device("cuda") if torch.cuda.is_available()
                                                       else torch.device("cpu"))
    if wants_fast_dropout(t.fast_dropout, device):
        from capcse.models.dropout import use_fast_dropout

        use_fast_dropout(model)
    args = TrainingArguments(
        output_dir=str(out), per_device_train_batch_size=t.batch_size, learning_rate=t.learning_rate,
        max_steps=t.max_steps, warmup_steps=float(t.warmup_ratio), lr_scheduler_type=t.lr_scheduler,
        weight_decay=t.weight_decay, adam_beta2=t.adam_beta2, adam_epsilon=t.adam_epsilon, optim=t.optim,
        max_grad_norm=t.max_grad_norm, seed=t.seed, data_seed=t.seed, bf16=t.precision == "bf16",
        fp16=t.precision == "fp16", gradient_accumulation_steps=t.gradient_accumulation_steps,
        logging_steps=t.logging_steps, save_strategy="steps", save_steps=t.save_steps,
        save_total_limit=t.save_total_limit, report_to=[r for r in t.report_to if r != "none"] or "none",
        dataloader_num_workers=t.dataloader_num_workers, use_cpu=device.type == "cpu",
        eval_strategy="steps", eval_steps=recipe.eval.steps, remove_unused_columns=False,
        disable_tqdm=not show_progress(t.progress),  # as capcse train's
    )
    steps_before = int(json.loads((Path(checkpoint) / "trainer_state.json").read_text())["global_step"]) if checkpoint else 0
    masking = collator(tokenizer, recipe.mlm, seed=t.seed, per_batch=True)
    masking.batch_index = steps_before * t.gradient_accumulation_steps
    trainer = _trainer_class()(model=model, args=args, train_dataset=BlockDataset(blocks),
                               eval_dataset=BlockDataset({k: v[:1] for k, v in held.items()}),
                               data_collator=masking,
                               callbacks=_callbacks(recipe, tokenizer, out) + list(callbacks))
    trainer.heldout, trainer.eval_batch_size, trainer.eval_precision = heldout, recipe.eval.batch_size, t.precision
    if checkpoint:
        log(f"resuming from {checkpoint}")
    t0 = time.perf_counter()
    trainer.train(resume_from_checkpoint=checkpoint)
    seconds = time.perf_counter() - t0
    steps = int(trainer.state.global_step)
    final = trainer.evaluate()
    history = trainer.state.log_history
    curve = heldout_curve(history)
    losses = [{"step": int(e["step"]), "loss": float(e["loss"])} for e in history if "loss" in e]
    tokens_per_block = recipe.model.block_size * t.batch_size * t.gradient_accumulation_steps
    tps = (steps - steps_before) * tokens_per_block / seconds if seconds > 0 else 0.0
    model_dir = out / "model"
    res = PretrainResult(out, model_dir, steps, len(blocks["input_ids"]), len(heldout["input_ids"]), seconds, tps,
                         curve, losses)
    if not trainer.is_world_process_zero():
        return res
    save_model_folder(trainer.model, tokenizer, model_dir)
    corpus_report = path.with_suffix(".json")
    write_pretrain_card(model_dir, recipe, res, final, corpus_report if corpus_report.is_file() else None)
    atomic_write_json(out / "pretrain_summary.json", res.to_dict())
    return res


def heldout_curve(log_history: list[dict]) -> list[dict[str, float]]:
    """The held-out evaluations in a Trainer ``log_history`` (``trainer_state.json``): one point per step with
    ``step``, ``mlm_accuracy``, ``mlm_loss``, ``perplexity`` (a repeated evaluation of a step is kept once)."""
    curve: list[dict[str, float]] = []
    for e in log_history:
        if "eval_mlm_accuracy" in e:
            point = {"step": int(e["step"]), "mlm_accuracy": e["eval_mlm_accuracy"], "mlm_loss": e["eval_mlm_loss"],
                     "perplexity": e["eval_perplexity"]}
            if not curve or curve[-1]["step"] != point["step"]:
                curve.append(point)
    return curve


def write_pretrain_card(folder: Path, recipe: PretrainRecipe, res: PretrainResult, final: dict[str, float],
                        corpus_report: Path | None) -> None:
    from capcse import __version__

    cfg = json.loads((folder / "config.json").read_text())
    corpus = json.loads(corpus_report.read_text()) if corpus_report else None
    sets = " ".join(f"--set {k}" for k in _card_overrides(recipe))
    lines = [
        "---", "library_name: transformers", "pipeline_tag: fill-mask", "tags:", "- capcse", "- masked-lm",
        "- bert", "---", "",
        f"# {recipe.name}: a BERT-style masked-LM encoder pretrained with capcse",
        "",
        f"{cfg.get('num_hidden_layers')} layers, hidden {cfg.get('hidden_size')}, {cfg.get('num_attention_heads')} heads, "
        f"intermediate {cfg.get('intermediate_size')}, vocabulary {cfg.get('vocab_size')}, blocks of "
        f"{recipe.model.block_size} tokens. A raw encoder: its sentence vectors are not trained for similarity "
        "(that is what `capcse train` does from it).",
        "",
        f"* steps: {res.steps:,} × {recipe.train.batch_size} blocks (lr {recipe.train.learning_rate}, "
        f"{recipe.train.lr_scheduler}, warm-up {recipe.train.warmup_ratio}, seed {recipe.train.seed}, "
        f"{recipe.train.precision})",
        f"* held-out masked-token accuracy **{final['eval_mlm_accuracy']:.4f}**, loss {final['eval_mlm_loss']:.4f}, "
        f"perplexity {final['eval_perplexity']:.2f} ({int(final['eval_masked_tokens']):,} masked tokens, fixed masking)",
        f"* training blocks: {res.train_blocks:,} ({res.train_blocks * recipe.model.block_size:,} tokens)",
    ]
    if corpus:
        lines.append(f"* corpus: {corpus['sentences']:,} sentences, {corpus['tokens']:,} tokens, sha256 "
                     f"`{corpus['sha256'][:16]}…`; leakage-checked against every evaluation set "
                     f"(matches after filtering: {corpus['matches_after']}); sources: "
                     + ", ".join(f"{s['name']} {s['kept']:,}" for s in corpus["sources"]))
    lines += ["", "Reproduce:", "", "```bash", f"capcse pretrain {recipe.name} {sets}".rstrip(), "```", "",
              f"Made with capcse {__version__}.", ""]
    atomic_write_text(folder / "README.md", "\n".join(lines))


def _card_overrides(recipe: PretrainRecipe) -> list[str]:
    """The recipe values that differ from the file of the same name in configs/ (the card's command)."""
    from capcse.train.recipe import find_recipe

    try:
        base = load_recipe(find_recipe(recipe.name), kind=PretrainRecipe).to_dict()
    except Exception:  # noqa: BLE001 - a recipe given by path: show every section's values
        base = {}
    cur = recipe.to_dict()
    out = []
    for section, values in cur.items():
        if not isinstance(values, dict):
            continue
        for k, v in values.items():
            if base.get(section, {}).get(k) != v and k not in ("output_dir",):
                out.append(f"{section}.{k}={json.dumps(v) if not isinstance(v, str) else v}")
    return out


def recipe_from_dict_pretrain(data: dict[str, Any]) -> PretrainRecipe:
    """A :class:`PretrainRecipe` from a mapping (as a YAML file would give it), checked."""
    from capcse.train.recipe import recipe_from_dict

    recipe = recipe_from_dict(data, kind=PretrainRecipe)
    check_recipe(recipe)
    return recipe


def export_model(src: str | Path, dest: str | Path, dtype: str = "bf16") -> dict[str, Any]:
    """Copy a pretrained ``*ForMaskedLM`` folder to ``dest`` with its weights stored in ``dtype`` (bf16 /
    fp16 halve the size) while ``config.json`` keeps ``dtype: float32``, so that ``AutoModel``,
    ``AutoModelForMaskedLM``, ``SentenceTransformer`` and ``capcse train`` load it in fp32. The model card
    (README.md) gains the weights' SHA-256 and size; returns them."""
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    from capcse.models.encoder import parse_dtype

    src, dest = Path(src), Path(dest)
    if not (src / "config.json").is_file():
        raise ConfigError(f"{src}: not a model folder (no config.json)")
    model = AutoModelForMaskedLM.from_pretrained(str(src), dtype=torch.float32).to(parse_dtype(dtype))
    tokenizer = AutoTokenizer.from_pretrained(str(src))
    save_model_folder(model, tokenizer, dest)
    config = json.loads((dest / "config.json").read_text(encoding="utf-8"))
    config["dtype"] = "float32"
    atomic_write_text(dest / "config.json", json.dumps(config, indent=2) + "\n")
    weights = dest / "model.safetensors"
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()
    info = {"sha256": digest, "bytes": weights.stat().st_size, "stored_dtype": dtype}
    card = (src / "README.md").read_text(encoding="utf-8") if (src / "README.md").is_file() else ""
    card += (f"\n## Shipped weights\n\n`model.safetensors`: {info['bytes']:,} bytes, stored in {dtype} "
             f"(loaded as float32), sha256 `{digest}`.\n")
    atomic_write_text(dest / "README.md", card)
    return info


def card_checksum(folder: str | Path) -> str | None:
    """The SHA-256 a model card (README.md) states for ``model.safetensors`` (see :func:`export_model`)."""
    import re

    text = (Path(folder) / "README.md").read_text(encoding="utf-8")
    found = re.search(r"sha256 `([0-9a-f]{64})`", text)
    return found.group(1) if found else None
