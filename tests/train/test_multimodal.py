"""Multimodal training: MCSE schedule, homogeneous batches, objective terms against the losses, teachers,
feature cache reuse across epochs and runs (vision calls counted), saved model = plain text encoder."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from capcse.errors import ConfigError
from capcse.losses.grounding import MCSEGroundingLoss
from capcse.losses.dalr import AngularMarginInfoNCE, SoftLabelAlignmentLoss, angular_margin_cosine, cosine_matrix
from capcse.losses.ranking import DistributionAlignmentLoss, ListMLELoss
from capcse.losses.simcse import SimCSELoss
from capcse.models.image import ImageEncoder, PillowPreprocessor
from capcse.train.multimodal import (MixedModalityBatchSampler, MultimodalConfig, MultimodalObjective, TeacherBank,
                                     TextLookup, build_mixed_dataset, mcse_schedule, pair_label)
from capcse.train.recipe import recipe_from_dict

SENTENCES = [f"sentence number {i} about {w}" for i, w in
             enumerate(["dogs", "cats", "rain", "music", "trains", "apples", "rivers", "chess", "snow", "bread"] * 4)]
CAPTIONS = ["a dog runs on grass", "two cats sleep", "a man rides a bike", "children play football",
            "a red car on a road", "a woman reads a book", "birds over the sea", "a boy jumps into water"]


def test_mcse_schedule_hand_computed():
    # T = 10 text batches, P = 3 pair batches: stride 10 // 3 = 3, 13 steps, pairs at 0, 3, 6, 9, 12
    sched = mcse_schedule(10, 3)
    assert len(sched) == 13 and [s for s, p in enumerate(sched) if p] == [0, 3, 6, 9, 12]
    assert mcse_schedule(2, 5) == [True] * 7          # more pair batches than text: stride floored at 1
    assert mcse_schedule(4, 0) == [False] * 4 and mcse_schedule(0, 2) == [True, True]


def test_sampler_batches_are_homogeneous_and_cover_each_stream():
    from datasets import Dataset

    ds = build_mixed_dataset(Dataset.from_dict({"text": SENTENCES}), CAPTIONS)
    assert ds.column_names == ["text", "label"] and ds[0]["label"] == 0 and ds[len(SENTENCES)]["label"] == -1
    sampler = MixedModalityBatchSampler(ds, batch_size=4, drop_last=False, seed=3)
    assert len(sampler) == 10 + 2
    labels = np.array(ds["label"])
    epoch0 = list(sampler)
    kinds = [bool((labels[b] < 0).all()) for b in epoch0]
    assert all((labels[b] < 0).all() or (labels[b] >= 0).all() for b in epoch0)
    assert kinds == mcse_schedule(10, 2)               # stride 5: pairs at steps 0, 5, 10
    text_rows = sorted(i for b, k in zip(epoch0, kinds) if not k for i in b)
    assert len(text_rows) == 36 and len(set(text_rows)) == 36  # 9 text steps: distinct rows within a pass
    assert epoch0 == list(sampler)                     # same seed and epoch: same order
    sampler.set_epoch(1)
    assert list(sampler) != epoch0


def test_sampler_streams_continue_across_epochs_as_mcse_inf_train_gen():
    """MCSE creates its two inf_train_gen streams once: epoch e + 1 takes the next batches of each stream."""
    from datasets import Dataset

    ds = build_mixed_dataset(Dataset.from_dict({"text": SENTENCES}), CAPTIONS)
    sampler = MixedModalityBatchSampler(ds, batch_size=4, drop_last=False, seed=3)
    labels = np.array(ds["label"])
    epochs = []
    for e in range(3):
        sampler.set_epoch(e)
        epochs.append(list(sampler))
    # T = 10 text, P = 2 pair batches, stride 5: each epoch takes 9 text and 3 pair batches (steps 0, 5, 10)
    text = [[b for b in ep if labels[b[0]] >= 0] for ep in epochs]
    pairs = [[b for b in ep if labels[b[0]] < 0] for ep in epochs]
    assert [len(t) for t in text] == [9, 9, 9] and [len(p) for p in pairs] == [3, 3, 3]
    # epoch 1 opens with the 10th batch of the first text pass: the 4 rows epoch 0 did not reach
    seen0 = {i for b in text[0] for i in b}
    assert set(text[1][0]) == set(range(40)) - seen0
    # pairs: 2 batches per pass; epoch 0 took pass 0 and the first half of pass 1, epoch 1 begins with its second half
    assert set(pairs[0][0]) | set(pairs[0][1]) == set(range(40, 48))
    assert set(pairs[1][0]) == set(range(40, 48)) - set(pairs[0][2])
    # the whole run is one stream: epochs 0-2 give 27 text batches = passes of 10 with every row once per pass
    stream = [b for t in text for b in t]
    for k in range(2):
        assert sorted(i for b in stream[10 * k: 10 * (k + 1)] for i in b) == list(range(40))
    # positions are computed from the epoch: a fresh sampler (a resumed run) gives the same batches
    fresh = MixedModalityBatchSampler(ds, batch_size=4, drop_last=False, seed=3)
    fresh.set_epoch(2)
    assert list(fresh) == epochs[2]


def test_config_defaults_and_errors():
    r = recipe_from_dict({"loss": {"name": "dalr"}, "multimodal": {"pairs": "x", "teachers": "all-MiniLM-L6-v2"}})
    cfg = MultimodalConfig.from_recipe(r)
    assert cfg.weights == {"text": 1.0, "grounding": 0.1, "soft_label": 0.1, "global_alignment": 0.2, "ranking": 0.2,
                           "consistency": 0.0}
    assert cfg.margins == {"text": 0.18, "cross": 0.18} and cfg.teachers == ["all-MiniLM-L6-v2"]
    m = MultimodalConfig.from_recipe(recipe_from_dict({"loss": {"name": "mcse"}, "multimodal": {"pairs": "x"}}))
    assert m.weights["grounding"] == 0.01 and m.margins == {"text": 0.0, "cross": 0.0} and not m.needs_teacher()
    with pytest.raises(ConfigError, match="unknown key"):
        MultimodalConfig.from_recipe(recipe_from_dict({"loss": {"name": "mcse"}, "multimodal": {"pairs": "x", "lbd": 1}}))
    with pytest.raises(ConfigError, match="need multimodal.teachers"):
        MultimodalConfig.from_recipe(recipe_from_dict({"loss": {"name": "dalr"}, "multimodal": {"pairs": "x"}}))
    with pytest.raises(ConfigError, match="unknown term"):
        MultimodalConfig.from_recipe(recipe_from_dict({"loss": {"name": "mcse"},
                                                       "multimodal": {"pairs": "x", "weights": {"inter": 1}}}))


@pytest.fixture
def tiny_st(tiny_bert_path):
    from capcse.models.encoder import load_sentence_transformer

    torch.manual_seed(0)
    return load_sentence_transformer(tiny_bert_path, device="cpu", pooler="avg")


def batch_for(model, texts):
    return [model.preprocess(texts) if hasattr(model, "preprocess") else model.tokenize(texts)]


def objective_for(method, model, weights=None, teacher=None, image_rows=(0, 1, 2, 0), **multimodal):
    r = recipe_from_dict({"loss": {"name": method},
                          "multimodal": {"pairs": "x", "teachers": ["t"] if teacher else [],
                                         "weights": weights or {}, **multimodal}})
    cfg = MultimodalConfig.from_recipe(r)
    g = np.random.default_rng(0)
    feats = np.abs(g.normal(size=(3, 6))).astype(np.float32)
    obj = MultimodalObjective(model, method, cfg, temperature=0.05, image_features=feats,
                              pair_image_rows=np.array(image_rows), texts=TextLookup(None, CAPTIONS[:4]),
                              teacher=teacher)
    return obj, feats


def test_mcse_objective_terms_equal_the_losses(tiny_st):
    obj, feats = objective_for("mcse", tiny_st)
    tiny_st.eval()                                      # no dropout: the two views coincide, recompute exactly
    labels = torch.tensor([pair_label(p) for p in range(4)])
    terms = obj(batch_for(tiny_st, CAPTIONS[:4]), labels)
    with torch.no_grad():
        z = tiny_st(batch_for(tiny_st, CAPTIONS[:4])[0])["sentence_embedding"]
        g = obj.mm.text_head(z)
        v = obj.mm.project_images(torch.from_numpy(feats[[0, 1, 2, 0]]))
        same = torch.zeros(4, 4, dtype=torch.bool)
        same[0, 3] = same[3, 0] = True                  # captions 0 and 3 share image 0
        expected_g = 0.01 * MCSEGroundingLoss(0.05)(torch.stack([g, g]), v, ignore=same)
    assert terms["text"].item() == pytest.approx(SimCSELoss(0.05)(z, z).item(), rel=1e-5)
    assert terms["grounding"].item() == pytest.approx(expected_g.item(), rel=1e-5)
    assert all(terms[t].item() == 0 for t in ("soft_label", "global_alignment", "ranking", "consistency"))
    # a text-only batch: the text term only
    text_terms = obj(batch_for(tiny_st, SENTENCES[:4]), torch.arange(4))
    assert text_terms["grounding"].item() == 0 and text_terms["text"].item() > 0
    with pytest.raises(ValueError, match="mixes"):
        obj(batch_for(tiny_st, SENTENCES[:2]), torch.tensor([0, -1]))


def test_dalr_objective_terms_and_ablation(tiny_st, tiny_bert_path, tmp_path):
    from capcse.models.encoder import load_encoder

    teacher_enc = load_encoder(tiny_bert_path, device="cpu", pooler="cls_before_pooler")
    bank = TeacherBank(["tiny-teacher"], mode="precompute", cache_dir=tmp_path, encoders=[teacher_enc])
    bank.prepare(CAPTIONS[:4])
    obj, feats = objective_for("dalr", tiny_st, teacher=bank, image_rows=(0, 1, 2, 1))
    tiny_st.eval()
    labels = torch.tensor([pair_label(p) for p in range(4)])
    torch.manual_seed(0)
    terms = obj(batch_for(tiny_st, CAPTIONS[:4]), labels)
    with torch.no_grad():
        z = tiny_st(batch_for(tiny_st, CAPTIONS[:4])[0])["sentence_embedding"]
        g = obj.mm.text_head(z)
        raw = torch.from_numpy(feats[[0, 1, 2, 1]])
        v = obj.mm.project_images(raw)
        t_emb = torch.from_numpy(teacher_enc.encode(CAPTIONS[:4]))
        s_t = cosine_matrix(t_emb, t_emb)
        s_v = cosine_matrix(raw, raw)
        same = torch.zeros(4, 4, dtype=torch.bool)
        same[1, 3] = same[3, 1] = True
    assert torch.allclose(bank.similarities(CAPTIONS[:4]), s_t, atol=1e-6)
    # DALR's students carry the text margin (ArcSimilarity(temp, margin1)): ranking, global and soft-label KL
    student = angular_margin_cosine(cosine_matrix(z, z), 0.18)
    exp = {
        "text": AngularMarginInfoNCE(0.05, 0.18)(z, z),
        "grounding": 0.1 * AngularMarginInfoNCE(0.05, 0.18)(torch.stack([g, g]), v, soft_labels=s_v, ignore=same),
        "soft_label": 0.1 * SoftLabelAlignmentLoss(0.0225, 0.5, margin=0.18)(g, v, s_t, s_v),
        "global_alignment": 0.2 * DistributionAlignmentLoss(0.0225, 0.5)(student, s_t),
    }
    for name, value in exp.items():
        assert terms[name].item() == pytest.approx(value.item(), rel=1e-4), name
    torch.manual_seed(0)
    rank = 0.2 * ListMLELoss(form="reference")(student / 0.05, s_t / 0.05)
    assert terms["ranking"].item() == pytest.approx(rank.item(), rel=1e-4)
    # student_margin: false -> plain cosines in the distillation students; listmle: exact -> exact ListMLE
    plain, _ = objective_for("dalr", tiny_st, teacher=bank, image_rows=(0, 1, 2, 1), student_margin=False,
                             listmle="exact")
    plain.mm.load_state_dict(obj.mm.state_dict())
    torch.manual_seed(0)
    t_plain = plain(batch_for(tiny_st, CAPTIONS[:4]), labels)
    cos = cosine_matrix(z, z)
    assert t_plain["global_alignment"].item() == pytest.approx(
        0.2 * DistributionAlignmentLoss(0.0225, 0.5)(cos, s_t).item(), rel=1e-4)
    assert t_plain["soft_label"].item() == pytest.approx(
        0.1 * SoftLabelAlignmentLoss(0.0225, 0.5)(g, v, s_t, s_v).item(), rel=1e-4)
    torch.manual_seed(0)
    assert t_plain["ranking"].item() == pytest.approx(0.2 * ListMLELoss()(cos / 0.05, s_t / 0.05).item(), rel=1e-4)
    assert t_plain["text"].item() == pytest.approx(terms["text"].item(), rel=1e-6)  # the text term keeps its margin
    assert t_plain["global_alignment"].item() != pytest.approx(terms["global_alignment"].item(), rel=1e-3)
    # ablation: a zero weight removes the term (and nothing else)
    abl, _ = objective_for("dalr", tiny_st, weights={"ranking": 0.0}, teacher=bank, image_rows=(0, 1, 2, 1))
    abl.mm.load_state_dict(obj.mm.state_dict())
    t2 = abl(batch_for(tiny_st, CAPTIONS[:4]), labels)
    assert t2["ranking"].item() == 0.0
    assert t2["global_alignment"].item() == pytest.approx(terms["global_alignment"].item(), rel=1e-5)
    # teacher embeddings are cached on disk: a new bank reads them without encoding
    calls = []
    orig = teacher_enc.encode
    teacher_enc.encode = lambda *a, **k: calls.append(1) or orig(*a, **k)
    TeacherBank(["tiny-teacher"], cache_dir=tmp_path, encoders=[teacher_enc]).prepare(CAPTIONS[:4])
    assert calls == []


class CountingBackbone(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 8, 3, stride=2)
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return torch.relu(self.conv(x)).mean(dim=(2, 3))


@pytest.fixture
def pair_files(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    (tmp_path / "images").mkdir()
    rows = []
    for i, cap in enumerate(CAPTIONS):
        Image.fromarray(rng.integers(0, 255, (20, 20, 3), dtype=np.uint8)).save(tmp_path / "images" / f"{i}.png")
        rows.append({"image": f"{i}.png", "caption": cap, "split": "train"})
    rows.append({"image": "0.png", "caption": "held-out test caption", "split": "test"})
    (tmp_path / "pairs.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    (tmp_path / "wiki.txt").write_text("\n".join(SENTENCES) + "\n")
    return tmp_path


@pytest.mark.slow
def test_end_to_end_vision_runs_once_and_saved_model_is_text_only(pair_files, tiny_bert_path, monkeypatch):
    import capcse.models.image as image_mod
    from sentence_transformers import SentenceTransformer

    from capcse.train.trainer import run_training

    backbone = CountingBackbone()
    encoder = ImageEncoder(backbone, lambda b, x: b(x), PillowPreprocessor(18, 16), 8, "counting-cnn", trainable=False)
    monkeypatch.setattr(image_mod, "load_image_encoder", lambda name, **kw: encoder)

    def recipe(out, method="mcse", **train):
        return recipe_from_dict({
            "name": f"tiny-{method}", "model": {"name": str(tiny_bert_path), "pooler": "avg", "max_length": 16},
            "data": {"train": str(pair_files / "wiki.txt")},
            "loss": {"name": method, "temperature": 0.05},
            "multimodal": {"pairs": str(pair_files / "pairs.jsonl"), "captions_per_image": None, "proj_dim": 8,
                           "feature_cache": str(pair_files / "cache"), "vision": "counting-cnn",
                           **({"teachers": [str(tiny_bert_path)]} if method == "dalr" else {})},
            "train": {"output_dir": str(out), "batch_size": 8, "epochs": 2, "learning_rate": 1e-4, "seed": 1,
                      "report_to": ["none"], "logging_steps": 1, "save_steps": 1000, "device": "cpu", **train},
            "eval": {"during": "none", "final": ["none"]},
        })

    res = run_training(recipe(pair_files / "out"), log=lambda *a: None)
    after_features = backbone.calls
    assert after_features == 1                         # 8 train images, one batch of 32, encoded once
    assert res.steps == 2 * (5 + 1)                     # 2 epochs x (5 text + 1 pair batch)
    assert res.train_examples == 40 + 8                 # the held-out test caption is not trained on
    # the vision model was not called during the 2 epochs, nor by a second run (features cached)
    second = run_training(recipe(pair_files / "out2", "dalr", max_steps=2), log=lambda *a: None)
    assert second.steps == 2
    assert backbone.calls == after_features
    reloaded = SentenceTransformer(str(res.model_dir), device="cpu")
    assert [type(m).__name__ for m in reloaded] == ["Transformer", "Pooling"]
    emb = reloaded.encode(["a dog runs on grass"])
    assert emb.shape == (1, 32) and np.isfinite(emb).all()


def test_objective_state_is_the_heads_only(tiny_st):
    obj, _ = objective_for("mcse", tiny_st)
    state = {k for k in obj.state_dict() if not k.startswith("model.")}  # what the trainer checkpoints beside the model
    assert set(state) == {"mm.text_head.dense.weight", "mm.text_head.dense.bias", "mm.image_head.dense.weight",
                          "mm.image_head.dense.bias"}
    assert any(k.startswith("model.") for k in obj.state_dict())   # the Trainer's path to the model stays


def test_teacher_pooler_sets_the_teachers_pooling_and_the_cache_identity(tiny_bert_path, tmp_path):
    """DALR pools its teachers with cls_before_pooler; a plain HF id would otherwise be mean-pooled."""
    from transformers import AutoModel, AutoTokenizer

    texts = CAPTIONS[:3]
    tok, bert = AutoTokenizer.from_pretrained(str(tiny_bert_path)), AutoModel.from_pretrained(str(tiny_bert_path))
    with torch.no_grad():
        enc = tok(texts, padding=True, return_tensors="pt")
        hidden = bert(**enc).last_hidden_state
    cls = hidden[:, 0]
    mask = enc["attention_mask"].unsqueeze(-1).float()
    mean = (hidden * mask).sum(1) / mask.sum(1)
    cls_bank = TeacherBank([str(tiny_bert_path)], mode="batch", pooler="cls_before_pooler")
    mean_bank = TeacherBank([str(tiny_bert_path)], mode="batch")
    assert torch.allclose(cls_bank.embeddings(texts)[0].float(), cls, atol=1e-5)
    assert torch.allclose(mean_bank.embeddings(texts)[0].float(), mean, atol=1e-5)
    # the on-disk cache is keyed by the pooling too: a pooler change never reads stale embeddings
    assert cls_bank.identity(0)["pooler"] == "cls_before_pooler" and mean_bank.identity(0)["pooler"] is None
    # max_length truncates the teachers' input as the student's (DALR/RankCSE: the student's tokenisation)
    short = TeacherBank([str(tiny_bert_path)], mode="batch", pooler="cls_before_pooler", max_length=4)
    assert short.identity(0)["max_seq_length"] == 4
    with torch.no_grad():
        enc4 = tok(texts, padding=True, truncation=True, max_length=4, return_tensors="pt")
        assert torch.allclose(short.embeddings(texts)[0].float(), bert(**enc4).last_hidden_state[:, 0], atol=1e-5)
    with pytest.raises(ConfigError, match="teacher_pooler"):
        MultimodalConfig.from_recipe(recipe_from_dict({"loss": {"name": "dalr"}, "multimodal": {
            "pairs": "x", "teachers": ["t"], "teacher_pooler": "max"}}))
    with pytest.raises(ConfigError, match="listmle"):
        MultimodalConfig.from_recipe(recipe_from_dict({"loss": {"name": "dalr"}, "multimodal": {
            "pairs": "x", "teachers": ["t"], "listmle": "approximate"}}))


class FixedTeacher:
    """A stand-in teacher whose embeddings are given rows (for hand-computed teacher mixing)."""

    def __init__(self, rows):
        self.rows = {t: torch.tensor(r, dtype=torch.float32) for t, r in rows.items()}
        self.model = nn.Sequential()

    def encode(self, texts, convert_to_tensor=True):
        return torch.stack([self.rows[t] for t in texts])


def test_teacher_feature_mixing_versus_similarity_mixing():
    """DALR's KL targets are cosines of the mixed teacher embeddings alpha z1 + (1 - alpha) z2; its ranking
    target (and capcse's 'similarities') mixes the two cosine matrices."""
    a = FixedTeacher({"x": [1.0, 0.0], "y": [0.0, 1.0]})
    b = FixedTeacher({"x": [0.0, 1.0], "y": [1.0, 0.0]})
    bank = TeacherBank(["a", "b"], alpha=0.5, mode="batch", encoders=[a, b])
    # each teacher alone: cos(x, y) = 0, so the mixed similarity matrix is the identity ...
    assert torch.allclose(bank.similarities(["x", "y"]), torch.eye(2))
    # ... while the mixed embeddings are both (0.5, 0.5): cosine 1 everywhere
    assert torch.allclose(bank.similarities(["x", "y"], mix="features"), torch.ones(2, 2))
    wide = FixedTeacher({"x": [1.0, 0.0, 0.0], "y": [0.0, 1.0, 0.0]})
    with pytest.raises(ConfigError, match="one width"):
        TeacherBank(["a", "w"], mode="batch", encoders=[a, wide]).similarities(["x", "y"], mix="features")


def test_dalr_objective_kl_targets_mix_features_and_ranking_mixes_similarities(tiny_st):
    g = torch.Generator().manual_seed(0)
    rows = torch.randn(2, 4, 5, generator=g)
    a = FixedTeacher({c: rows[0, i].tolist() for i, c in enumerate(CAPTIONS[:4])})
    b = FixedTeacher({c: rows[1, i].tolist() for i, c in enumerate(CAPTIONS[:4])})
    labels = torch.tensor([pair_label(p) for p in range(4)])
    tiny_st.eval()
    z = tiny_st(batch_for(tiny_st, CAPTIONS[:4])[0])["sentence_embedding"].detach()
    student = angular_margin_cosine(cosine_matrix(z, z), 0.18)
    mixed_features = 0.33 * rows[0] + 0.67 * rows[1]
    by_features = cosine_matrix(mixed_features, mixed_features)
    by_sims = 0.33 * cosine_matrix(rows[0], rows[0]) + 0.67 * cosine_matrix(rows[1], rows[1])
    for mode, kl_target in (("features", by_features), ("similarities", by_sims)):
        bank = TeacherBank(["a", "b"], alpha=0.33, mode="batch", encoders=[a, b])
        obj, _ = objective_for("dalr", tiny_st, teacher=bank, teacher_similarity=mode)
        torch.manual_seed(0)
        terms = obj(batch_for(tiny_st, CAPTIONS[:4]), labels)
        assert terms["global_alignment"].item() == pytest.approx(
            0.2 * DistributionAlignmentLoss(0.0225, 0.5)(student, kl_target).item(), rel=1e-4), mode
        torch.manual_seed(0)
        rank = 0.2 * ListMLELoss(form="reference")(student / 0.05, by_sims / 0.05)
        assert terms["ranking"].item() == pytest.approx(rank.item(), rel=1e-4), mode


@pytest.mark.parametrize("name", ["mcse-flickr-bert-base", "dalr-flickr-bert-base", "dalr-coco-bert-base"])
def test_recipes_follow_the_released_code(name, tmp_path):
    """MCSE / DALR build transformers.AdamW with its default eps 1e-6; DALR's switches are the released ones."""
    from capcse.train.recipe import load_recipe
    from capcse.train.trainer import training_arguments

    recipe = load_recipe(name, [f"train.output_dir={tmp_path}"])
    assert recipe.train.adam_epsilon == 1e-6
    assert training_arguments(recipe, evaluate=False).adam_epsilon == 1e-6
    cfg = MultimodalConfig.from_recipe(recipe)
    if name.startswith("dalr"):
        assert (cfg.teacher_pooler, cfg.teacher_similarity, cfg.listmle, cfg.student_margin) == \
            ("cls_before_pooler", "features", "reference", True)
    assert recipe_from_dict({}).train.adam_epsilon == 1e-8         # other recipes: transformers' default
