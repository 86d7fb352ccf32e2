"""capcse pretrain: masked-LM pretraining through the transformers Trainer (tiny configs, tiny corpora)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from capcse.errors import ConfigError
from capcse.train.pretrain import (PretrainRecipe, evaluate_mlm, is_heldout, masked_heldout, pack_blocks,
                                   recipe_from_dict_pretrain, run_pretraining, use_masked_prediction)

TINY = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64,
        "max_position_embeddings": 64}

SENTENCES = [
    "a dog runs across the green field .", "two children play football in the park .",
    "a man is playing a guitar on the stage .", "the woman reads a book under a tree .",
    "a cat sleeps on the warm window sill .", "people walk along the beach at sunset .",
    "a boy rides a red bicycle down the street .", "an old man feeds the birds in the square .",
]


@pytest.fixture()
def corpus(tmp_path) -> Path:
    path = tmp_path / "corpus.txt"
    # the same eight sentences over and over: a masked LM can learn them
    path.write_text("\n".join(SENTENCES * 40) + "\n", encoding="utf-8")
    return path


def tiny_recipe(out: Path, corpus: Path, tokenizer: str, **train) -> PretrainRecipe:
    values = {"batch_size": 8, "learning_rate": 3e-3, "max_steps": 30, "warmup_ratio": 0.0, "precision": "fp32",
              "logging_steps": 5, "save_steps": 10, "report_to": ["none"], "output_dir": str(out),
              "device": "cpu", "progress": "off", "seed": 7, **train}
    return recipe_from_dict_pretrain({
        "name": "tiny-mlm",
        "model": {"init": "scratch", "tokenizer": tokenizer, "config": TINY, "block_size": 32},
        "data": {"train": str(corpus), "heldout": str(corpus), "heldout_blocks": 8},
        "train": values, "eval": {"steps": 10, "batch_size": 8}})


def test_heldout_split_is_stable_and_proportional():
    sentences = [f"sentence number {i}" for i in range(20000)]
    held = [s for s in sentences if is_heldout(s, 10)]
    assert 150 < len(held) < 250                      # ~1 %
    assert held == [s for s in reversed(sentences) if is_heldout(s, 10)][::-1]  # order-free
    assert not any(is_heldout(s, 0) for s in sentences[:100])


def test_pack_blocks_is_run_mlm_grouping(minilm_path):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(minilm_path))
    blocks = pack_blocks(tok, ["a dog runs .", "the cat sleeps on the mat ."], 4)
    stream = tok("a dog runs .")["input_ids"] + tok("the cat sleeps on the mat .")["input_ids"]
    n = len(stream) // 4
    assert blocks["input_ids"].tolist() == np.asarray(stream[: n * 4]).reshape(n, 4).tolist()
    special = {tok.cls_token_id, tok.sep_token_id}
    assert blocks["special_tokens_mask"].tolist() == [[int(t in special) for t in row] for row in
                                                      blocks["input_ids"].tolist()]


def test_masked_prediction_has_the_stock_loss_and_gradients(minilm_path):
    """The head at masked positions only gives the same loss and gradients as the head everywhere."""
    from transformers import AutoTokenizer, BertConfig, BertForMaskedLM

    tok = AutoTokenizer.from_pretrained(str(minilm_path))
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=len(tok), **TINY)
    stock, sparse = BertForMaskedLM(cfg), BertForMaskedLM(cfg)
    sparse.load_state_dict(stock.state_dict())
    stock.eval(), sparse.eval()
    use_masked_prediction(sparse)
    ids = torch.tensor(tok(SENTENCES[:4], padding="max_length", max_length=16)["input_ids"])
    labels = torch.full_like(ids, -100)
    labels[:, 2], labels[1, 5], labels[3, 7] = ids[:, 2], ids[1, 5], ids[3, 7]
    a = stock(input_ids=ids, labels=labels)
    b = sparse(input_ids=ids, labels=labels)
    assert b.logits.shape == (6, len(tok))
    assert torch.allclose(a.loss, b.loss, atol=1e-6)
    a.loss.backward(), b.loss.backward()
    for (name, p), q in zip(stock.named_parameters(), sparse.parameters()):
        assert torch.allclose(p.grad, q.grad, atol=1e-6), name
    # without labels the forward is the stock one (every position)
    assert sparse(input_ids=ids).logits.shape == (4, 16, len(tok))
    assert type(sparse).__name__ == "BertForMaskedLM"


def test_heldout_masking_is_fixed(minilm_path):
    from transformers import AutoTokenizer

    from capcse.train.pretrain import MLMSection

    tok = AutoTokenizer.from_pretrained(str(minilm_path))
    blocks = pack_blocks(tok, SENTENCES * 4, 16)
    a, b = masked_heldout(tok, blocks, MLMSection(), 8), masked_heldout(tok, blocks, MLMSection(), 8)
    assert torch.equal(a["input_ids"], b["input_ids"]) and torch.equal(a["labels"], b["labels"])
    chosen = a["labels"] != -100
    assert 0 < int(chosen.sum()) < chosen.numel()
    # special tokens are never chosen
    special = torch.from_numpy(blocks["special_tokens_mask"][:8].astype(bool))
    assert not bool((chosen & special).any())


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, minilm_path):
    """One 30-step pretraining run of a tiny BERT on the repeated corpus, shared by the tests below."""
    tmp = tmp_path_factory.mktemp("pretrain")
    corpus = tmp / "corpus.txt"
    corpus.write_text("\n".join(SENTENCES * 40) + "\n", encoding="utf-8")
    res = run_pretraining(tiny_recipe(tmp / "run", corpus, str(minilm_path)), log=lambda *a: None)
    return res, tmp / "run" / "model"


def test_pretrain_loss_falls_and_saved_folder_loads(tiny_run):
    from transformers import AutoModel, AutoModelForMaskedLM, AutoTokenizer

    from capcse.train.pretrain import MLMSection

    res, model_dir = tiny_run
    assert res.steps == 30
    assert res.losses[-1]["loss"] < res.losses[0]["loss"] - 1.0
    assert res.curve[-1]["mlm_loss"] < res.curve[0]["mlm_loss"] - 0.5
    mlm = AutoModelForMaskedLM.from_pretrained(model_dir)
    assert type(mlm).__name__ == "BertForMaskedLM"
    assert json.loads((model_dir / "config.json").read_text())["architectures"] == ["BertForMaskedLM"]
    assert AutoModel.from_pretrained(model_dir).config.hidden_size == 32
    card = (model_dir / "README.md").read_text()
    assert "held-out masked-token accuracy" in card and "capcse pretrain tiny-mlm" in card
    # the accuracy in the card is the saved model's, on the same fixed-mask held-out blocks
    tok = AutoTokenizer.from_pretrained(model_dir)
    held = masked_heldout(tok, pack_blocks(tok, SENTENCES * 40, 32), MLMSection(), 8)
    acc = evaluate_mlm(mlm, held, 8)["mlm_accuracy"]
    assert f"{acc:.4f}" in card
    assert (model_dir / "model.safetensors").stat().st_mode & 0o777 == 0o644


def test_saved_folder_starts_capcse_train_with_its_mlm_head(tiny_run, tmp_path):
    """capcse train from the pretrained folder: SimCSE's auxiliary MLM loss starts from the saved head."""
    from safetensors.torch import load_file

    from capcse.train.recipe import recipe_from_dict
    from capcse.train.trainer import build_model, build_objective, run_training

    _, model_dir = tiny_run
    saved = load_file(str(model_dir / "model.safetensors"))
    text = tmp_path / "wiki.txt"
    text.write_text("\n".join(SENTENCES * 4) + "\n", encoding="utf-8")
    data = {"model": {"name": str(model_dir), "pooler": "cls", "mlp_only_train": True, "max_length": 16},
            "data": {"train": str(text)},
            "loss": {"mlm_weight": 0.1, "mlm_head_init": "pretrained"},
            "train": {"batch_size": 8, "max_steps": 2, "output_dir": str(tmp_path / "simcse"), "report_to": ["none"],
                      "device": "cpu", "progress": "off"},
            "eval": {"during": "none", "final": ["none"]}}
    recipe = recipe_from_dict(data)
    objective = build_objective(recipe, build_model(recipe))
    head = {k: v for k, v in objective.state_dict().items() if not k.startswith("model.")}
    dense = next(v for k, v in head.items() if k.endswith("dense.weight"))
    assert torch.equal(dense, saved["cls.predictions.transform.dense.weight"])
    res = run_training(recipe, log=lambda *a: None)
    assert res.steps == 2 and (tmp_path / "simcse" / "model").is_dir()


def test_export_stores_bf16_loads_fp32_and_states_its_checksum(tiny_run, tmp_path):
    import hashlib

    from safetensors import safe_open
    from sentence_transformers import SentenceTransformer
    from transformers import AutoModel, AutoModelForMaskedLM

    from capcse.cli import main
    from capcse.train.pretrain import card_checksum

    _, model_dir = tiny_run
    dest = tmp_path / "shipped"
    assert main(["pretrain", "--export", str(model_dir), str(dest)]) == 0
    weights = dest / "model.safetensors"
    with safe_open(str(weights), "pt") as f:
        assert f.get_tensor(next(iter(f.keys()))).dtype == torch.bfloat16
    assert weights.stat().st_size < 0.6 * (model_dir / "model.safetensors").stat().st_size
    assert card_checksum(dest) == hashlib.sha256(weights.read_bytes()).hexdigest()
    assert AutoModel.from_pretrained(dest).dtype == torch.float32
    mlm = AutoModelForMaskedLM.from_pretrained(dest)
    ref = AutoModelForMaskedLM.from_pretrained(model_dir)
    w, r = mlm.get_input_embeddings().weight, ref.get_input_embeddings().weight
    assert w.dtype == torch.float32 and torch.equal(w, r.to(torch.bfloat16).float())
    assert next(SentenceTransformer(str(dest), device="cpu").parameters()).dtype == torch.float32


@pytest.mark.parametrize("alias", ["capcse-bert-mini-en", "capcse-bert-mini-ko"])
def test_shipped_encoders_match_their_cards(alias):
    import hashlib

    from capcse.models.registry import ALIASES, REPO_ROOT
    from capcse.train.pretrain import card_checksum

    folder = REPO_ROOT / ALIASES[alias].repo_subdir
    if not (folder / "model.safetensors").is_file():
        pytest.skip(f"{alias} is not committed yet (models/{alias})")
    weights = folder / "model.safetensors"
    assert card_checksum(folder) == hashlib.sha256(weights.read_bytes()).hexdigest()
    assert weights.stat().st_size <= 25 * 2**20


def test_resume_after_interruption_equals_the_uninterrupted_run(tmp_path, corpus, minilm_path):
    from safetensors.torch import load_file
    from transformers import TrainerCallback

    full = run_pretraining(tiny_recipe(tmp_path / "full", corpus, str(minilm_path), max_steps=8, save_steps=4),
                           log=lambda *a: None)

    class Crash(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == 6:
                raise KeyboardInterrupt("killed")

    with pytest.raises(KeyboardInterrupt):
        run_pretraining(tiny_recipe(tmp_path / "cut", corpus, str(minilm_path), max_steps=8, save_steps=4),
                        log=lambda *a: None, callbacks=[Crash()])
    assert (tmp_path / "cut" / "checkpoint-4" / "trainer_state.json").is_file()
    assert not (tmp_path / "cut" / "checkpoint-8").exists()
    resumed = run_pretraining(tiny_recipe(tmp_path / "cut", corpus, str(minilm_path), max_steps=8, save_steps=4),
                              resume=True, log=lambda *a: None)
    assert resumed.steps == full.steps == 8
    a = load_file(str(tmp_path / "full" / "model" / "model.safetensors"))
    b = load_file(str(tmp_path / "cut" / "model" / "model.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_trained_wordpiece_tokenizer(tmp_path, corpus):
    rec = tiny_recipe(tmp_path / "wp", corpus, "train", max_steps=2)
    rec.model.vocab_size = 300
    run_pretraining(rec, log=lambda *a: None)
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tmp_path / "wp" / "model")
    assert 60 < len(tok) <= 300
    text = "A dog runs across the green field ."
    ids = tok(text)["input_ids"]
    assert tok.unk_token_id not in ids and ids[0] == tok.cls_token_id
    assert tok.convert_ids_to_tokens(ids)[1:-1] == text.lower().split()
    assert len(ids) == 10  # with 300 entries every word of the corpus is one token


def test_bad_values_are_rejected_before_loading(tmp_path, corpus):
    rec = tiny_recipe(tmp_path / "bad", corpus, "/nonexistent-tokenizer")
    rec.train.learning_rate = -1.0
    with pytest.raises(ConfigError, match="learning_rate"):
        run_pretraining(rec, log=lambda *a: None)
    assert not (tmp_path / "bad").exists()



@pytest.mark.parametrize("key, value, match", [("precision", "fp8", "train.precision must be"),
                                               ("progress", "sometimes", "train.progress must be auto, on or off"),
                                               ("fast_dropout", "maybe", "train.fast_dropout must be")])
def test_switches_are_checked_as_capcse_train_checks_them(tmp_path, corpus, key, value, match):
    rec = tiny_recipe(tmp_path / "bad", corpus, "/nonexistent-tokenizer")
    setattr(rec.train, key, value)
    with pytest.raises(ConfigError, match=match):
        run_pretraining(rec, log=lambda *a: None)
    assert not (tmp_path / "bad").exists()


def test_cli_resume_keeps_the_saved_recipe(tmp_path, corpus, minilm_path):
    from capcse.cli import main

    out = tmp_path / "cli"
    rec = tiny_recipe(out, corpus, str(minilm_path), max_steps=4)
    out.mkdir()
    from capcse.train.recipe import dump_recipe

    (out / "recipe.yaml").write_text(dump_recipe(rec))
    # a --set that changes what is trained is refused on resume
    assert main(["pretrain", "--resume", "--output", str(out), "--set", "train.learning_rate=0.1"]) == 2
    # a new run into a non-empty folder is refused without --overwrite
    assert main(["pretrain", str(out / "recipe.yaml"), "--output", str(out)]) == 2
    assert main(["pretrain", "--resume", "--output", str(out), "--set", "train.max_steps=6"]) == 0
    assert json.loads((out / "pretrain_summary.json").read_text())["steps"] == 6
    assert "max_steps: 6" in (out / "recipe.yaml").read_text()


def test_per_batch_masks_do_not_depend_on_workers_or_resume(minilm_path):
    """Batch k is masked the same way with 0 or 2 DataLoader workers, and when a run resumes at batch k."""
    from transformers import AutoTokenizer

    from capcse.train.pretrain import BlockDataset, MLMSection, collator

    tok = AutoTokenizer.from_pretrained(str(minilm_path))
    data = BlockDataset(pack_blocks(tok, SENTENCES * 8, 16))

    def batches(workers: int, start: int = 0) -> list[torch.Tensor]:
        masking = collator(tok, MLMSection(), seed=3, per_batch=True)
        masking.batch_index = start
        indices = list(range(start * 4, len(data)))
        loader = torch.utils.data.DataLoader(torch.utils.data.Subset(data, indices), batch_size=4,
                                             collate_fn=masking, num_workers=workers)
        return [b["labels"] for b in loader]

    serial = batches(0)
    assert len(serial) >= 6 and not torch.equal(serial[0] != -100, serial[1] != -100)
    assert all(torch.equal(a, b) for a, b in zip(serial, batches(2)))
    assert all(torch.equal(a, b) for a, b in zip(serial[3:], batches(0, start=3)))


@pytest.mark.slow
def test_pretrain_under_torchrun_two_cpu_processes(tmp_path, corpus, minilm_path):
    """``torchrun --nproc_per_node 2 -m capcse pretrain``: DDP (gloo) on two CPU processes, rank 0 saves."""
    import os
    import subprocess
    import sys

    from capcse.train.recipe import dump_recipe

    rec = tiny_recipe(tmp_path / "ddp", corpus, str(minilm_path), max_steps=3, save_steps=3)
    path = tmp_path / "tiny-mlm.yaml"
    path.write_text(dump_recipe(rec), encoding="utf-8")
    env = dict(os.environ, OMP_NUM_THREADS="1", CUDA_VISIBLE_DEVICES="")
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                           "--master_port", "29517", "-m", "capcse", "pretrain", str(path)],
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((tmp_path / "ddp" / "pretrain_summary.json").read_text())
    assert summary["steps"] == 3
    state = json.loads((tmp_path / "ddp" / "checkpoint-3" / "trainer_state.json").read_text())
    assert state["global_step"] == 3
    assert (tmp_path / "ddp" / "model" / "model.safetensors").is_file()


def test_no_heldout_sentences_fail_before_the_tokenizer_loads(tmp_path, corpus):
    rec = tiny_recipe(tmp_path / "run", corpus, "/nonexistent-tokenizer")
    rec.data.heldout, rec.data.heldout_per_mille = None, 0
    with pytest.raises(ConfigError, match=r"no held-out sentences \(data.heldout_per_mille=0\)"):
        run_pretraining(rec, log=lambda *a: None)


def test_overwrite_deletes_the_earlier_run_but_keeps_its_corpus(tmp_path, corpus, minilm_path):
    from capcse.train.pretrain import prepare_output

    rec = tiny_recipe(tmp_path / "run", corpus, str(minilm_path))
    out = tmp_path / "run"
    (out / "corpus").mkdir(parents=True)
    (out / "corpus" / "corpus-en.txt").write_text("kept\n")
    prepare_output(rec, resume=False, overwrite=False)  # only a corpus: a fresh folder
    (out / "checkpoint-99").mkdir()
    (out / "tokenizer").mkdir()
    with pytest.raises(ConfigError, match=r"not empty \(checkpoint-99, tokenizer\)"):
        prepare_output(rec, resume=False, overwrite=False)
    prepare_output(rec, resume=False, overwrite=True)
    assert sorted(p.name for p in out.iterdir()) == ["corpus"]
    assert (out / "corpus" / "corpus-en.txt").read_text() == "kept\n"
