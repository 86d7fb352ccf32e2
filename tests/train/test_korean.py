"""Any language: a Korean path end to end. A tiny BERT whose WordPiece vocabulary is trained (with
`tokenizers`) on KorSTS-train / KorNLI text, supervised SimCSE on XNLI-ko dev triplets for a few steps
through the `simcse-ko-sup` recipe, then KorSTS test with SimCSE-KO's 8-correlation table."""

from __future__ import annotations

import pytest
import torch

pytestmark = pytest.mark.slow  # tokenizer training + a short run + KorSTS dev and test: ~45 s on 2 idle cores

CORRELATIONS = [f"{s}_{c}" for s in ("cosine", "euclidean", "manhattan", "dot") for c in ("pearson", "spearman")]


@pytest.fixture(scope="module")
def korean_bert(data_dir, tmp_path_factory):
    from tokenizers import BertWordPieceTokenizer
    from transformers import BertConfig, BertModel, BertTokenizerFast

    from capcse.data import load_nli_pairs, load_sts, resolve_dataset

    texts = []
    for data in load_sts("korsts", "train", data_dir=data_dir).values():
        texts += list(data.sentences1) + list(data.sentences2)
    kornli = resolve_dataset("kornli-xnli", data_dir=data_dir)
    for pair in load_nli_pairs(kornli / "xnli.test.ko.tsv"):
        texts += [pair.sentence1, pair.sentence2]
    # no lower-casing and no accent stripping: NFD would break Hangul syllables into jamo
    wordpiece = BertWordPieceTokenizer(lowercase=False, strip_accents=False, clean_text=True)
    wordpiece.train_from_iterator(texts, vocab_size=6000, min_frequency=2)
    out = tmp_path_factory.mktemp("ko-tiny-bert")
    tokenizer = BertTokenizerFast(tokenizer_object=wordpiece._tokenizer, do_lower_case=False, strip_accents=False,
                                  unk_token="[UNK]", sep_token="[SEP]", pad_token="[PAD]", cls_token="[CLS]",
                                  mask_token="[MASK]")
    tokenizer.save_pretrained(out)
    torch.manual_seed(0)
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=128, max_position_embeddings=128)
    BertModel(config).save_pretrained(out)
    return out


def test_the_wordpiece_vocabulary_covers_korean(korean_bert):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(korean_bert))
    pieces = tok.tokenize("한 남자가 큰 플루트를 연주하고 있다.")
    assert pieces == ["한", "남자가", "큰", "플루트를", "연주하고", "있다", "."]  # whole Hangul words, no jamo
    assert tok.unk_token_id not in tok("비행기가 이륙하고 있다.")["input_ids"]


def test_korean_supervised_simcse_and_korsts_table(korean_bert, data_dir, tmp_path):
    import numpy as np
    from scipy.stats import pearsonr, spearmanr
    from sentence_transformers import SentenceTransformer

    from capcse.data import load_sts
    from capcse.train.data import triplets_from_nli, write_triplets
    from capcse.train.recipe import load_recipe
    from capcse.train.trainer import run_training

    triplets, stats = triplets_from_nli(["kornli-xnli"], split="dev", data_dir=data_dir)
    assert stats["triplets"] == 830
    train = write_triplets(tmp_path / "xnli_ko_dev_triplets.csv", triplets)
    # pooler avg: a random 2-layer BERT gives nearly one [CLS] vector for every sentence (cosine 0.99998 +- 1e-5),
    # so [CLS] correlations would be float noise; mean pooling spreads the sentences (0.96 +- 0.02)
    recipe = load_recipe("simcse-ko-sup", [
        f"model.name={korean_bert}", "model.pooler=avg", f"data.train={train}", f"train.output_dir={tmp_path / 'run'}",
        "train.batch_size=32", "train.learning_rate=5e-4", "train.max_steps=10", "train.device=cpu",
        "train.logging_steps=1", "train.report_to=none", "eval.steps=10", f"eval.data_dir={data_dir}"])
    result = run_training(recipe, log=lambda *_: None)

    assert [h["steps"] for h in result.dev_history] == [10]  # KorSTS dev, the recipe's selection metric
    assert len(result.losses) == 10 and all(np.isfinite(x["loss"]) for x in result.losses)
    # (a random 2-layer model does not measurably learn in 10 steps: this is the plumbing, not quality)
    from safetensors.torch import load_file

    before, after = load_file(str(korean_bert / "model.safetensors")), load_file(str(result.model_dir / "model.safetensors"))
    assert any(not torch.equal(before[k], after[k]) for k in before if k in after)
    korsts = result.test["results"]["KorSTS"]
    assert korsts["n_pairs"] == 1379 and korsts["split"] == "test"
    card = (result.model_dir / "README.md").read_text()
    assert "KorSTS: the 8 correlations" in card and "| manhattan |" in card

    # the table is that of the saved model: recompute the 8 correlations with scipy
    data = next(iter(load_sts("korsts", "test", data_dir=data_dir).values()))
    model = SentenceTransformer(str(result.model_dir), device="cpu")
    a = model.encode(list(data.sentences1), convert_to_numpy=True).astype(np.float64)
    b = model.encode(list(data.sentences2), convert_to_numpy=True).astype(np.float64)
    gold = np.asarray(data.scores, dtype=np.float64)
    sims = {"cosine": (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1),
            "euclidean": -np.linalg.norm(a - b, axis=1), "manhattan": -np.abs(a - b).sum(1), "dot": (a * b).sum(1)}
    for name, sim in sims.items():
        assert korsts[f"{name}_pearson"] == pytest.approx(100 * pearsonr(sim, gold)[0], abs=1e-3)
        assert korsts[f"{name}_spearman"] == pytest.approx(100 * spearmanr(sim, gold)[0], abs=1e-3)
