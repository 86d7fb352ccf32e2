"""Projection-head training for linkage (Trainer, CLIP then SupCon with hard-negative batches)."""

import numpy as np
import pytest
import torch

from capcse.train.linkage import (ProjectionHeads, load_heads, project_embeddings, train_heads, validation_ari,
                                  validation_clip_loss)


def _features(seed=0, n_clusters=30, per=3):
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(n_clusters), per)
    latent = rng.standard_normal((n_clusters, 8))[labels] + 0.3 * rng.standard_normal((len(labels), 8))
    image = latent @ rng.standard_normal((8, 20)) + 0.5 * rng.standard_normal((len(labels), 20))
    text = latent @ rng.standard_normal((8, 12)) + 0.5 * rng.standard_normal((len(labels), 12))
    split = np.where(labels < 20, "train", np.where(labels < 25, "validation", "test"))
    return {"image": image.astype(np.float32), "text": text.astype(np.float32), "cluster_id": labels.astype(str), "split": split,
            "record_id": np.arange(len(labels)).astype(str)}


def _supcon(heads, z):
    heads.stage = "supcon"
    train = z["split"] == "train"
    with torch.no_grad():
        return heads(torch.tensor(z["image"][train]), torch.tensor(z["text"][train]), torch.tensor(z["cluster_id"][train].astype(int)))["loss"].item()


def _clip(heads, z):
    heads.stage = "clip"
    train = z["split"] == "train"
    with torch.no_grad():
        return heads(torch.tensor(z["image"][train]), torch.tensor(z["text"][train]))["loss"].item()


@pytest.mark.slow
def test_stages_lower_their_losses(tmp_path):
    z = _features()
    before = ProjectionHeads(20, 12, dim=16, seed=0)
    clip_before, sup_before = _clip(before, z), _supcon(before, z)
    heads = train_heads(z, tmp_path, seed=0, dim=16, clip_epochs=8, supcon_epochs=8, clip_batch=20, supcon_batch=18,
                        clip_lr=1e-2, supcon_lr=1e-2, log=lambda *_: None)
    assert _supcon(heads, z) < sup_before
    only_clip = train_heads(z, tmp_path / "c", stages=("clip",), seed=0, dim=16, clip_epochs=8, clip_batch=20, clip_lr=1e-2, log=lambda *_: None)
    assert _clip(only_clip, z) < clip_before
    assert (tmp_path / "heads.safetensors").is_file() and (tmp_path / "heads.json").is_file()
    assert not list(tmp_path.glob("*.pt"))
    out = project_embeddings(heads, z)
    assert out["image"].shape == (90, 16)
    np.testing.assert_allclose(np.linalg.norm(out["text"], axis=1), 1.0, rtol=1e-5)
    assert (out["cluster_id"] == z["cluster_id"]).all()


def test_select_best_keeps_the_best_validation_epoch_and_saves_without_pickle(tmp_path):
    import json

    from capcse.train.linkage import _Features

    z = _features(seed=1)
    # a learning rate so large that later epochs can be worse: the kept state must be the best one seen
    heads = train_heads(z, tmp_path, seed=0, dim=16, clip_epochs=3, supcon_epochs=4, clip_batch=20, supcon_batch=18,
                        clip_lr=5e-2, supcon_lr=5e-1, select_best=True, log=lambda *_: None)
    info = json.loads((tmp_path / "heads.json").read_text())
    sup = info["selection"]["supcon"]
    scores = [e["score"] for e in sup["epochs"]]
    assert [e["epoch"] for e in sup["epochs"]] == [0, 1, 2, 3, 4]  # epoch 0 = the state before SupCon
    assert sup["kept_epoch"] == int(np.argmax(scores))
    val = z["split"] == "validation"
    data = _Features(z["image"][val], z["text"][val], np.unique(z["cluster_id"][val], return_inverse=True)[1])
    assert validation_ari(heads, data) == max(scores)  # the returned heads are the kept state
    clip = info["selection"]["clip"]
    losses = [e["score"] for e in clip["epochs"]]
    assert clip["kept_epoch"] == int(np.argmin(losses)) and len(losses) == 4
    # the file holds the kept state, read back without pickle
    again = load_heads(tmp_path)
    assert validation_ari(again, data) == max(scores)
    for k, v in heads.state_dict().items():
        assert torch.equal(again.state_dict()[k], v)


def test_validation_scores_by_hand():
    from capcse.train.linkage import _Features

    heads = ProjectionHeads(2, 2, dim=2, seed=0)
    with torch.no_grad():
        heads.image.weight.copy_(torch.eye(2))
        heads.text.weight.copy_(torch.eye(2))
    # two clusters on orthogonal axes: single linkage separates them at any threshold in [0, 1): ARI 1
    feats = np.array([[1.0, 0.0], [1.0, 0.01], [0.0, 1.0], [0.01, 1.0]], np.float32)
    data = _Features(feats, feats, np.array([0, 0, 1, 1]))
    assert validation_ari(heads, data) == 1.0
    # one pair, image = text: logits s * [[1, c], [c, 1]] with c = cos; loss = log(1 + exp(s (c - 1)))
    pair = _Features(feats[:2], feats[:2], np.array([0, 1]))
    c = float(feats[0] @ feats[1] / np.linalg.norm(feats[1]))
    s = float(heads.logit_scale.detach().exp())
    assert validation_clip_loss(heads, pair, 8) == pytest.approx(np.log1p(np.exp(s * (c - 1))), rel=1e-5)


def test_clip_stage_can_select_by_validation_ari(tmp_path):
    import json

    z = _features(seed=2)
    train_heads(z, tmp_path, stages=("clip",), seed=0, dim=16, clip_epochs=2, clip_batch=20, clip_lr=5e-2,
                select_best=True, clip_select="val_ari", log=lambda *_: None)
    sel = json.loads((tmp_path / "heads.json").read_text())["selection"]["clip"]
    scores = [e["score"] for e in sel["epochs"]]
    assert sel["metric"] == "validation_ari" and len(scores) == 3 and sel["kept_epoch"] == int(np.argmax(scores))
    with pytest.raises(Exception, match="clip_select"):
        train_heads(z, tmp_path / "x", stages=("clip",), select_best=True, clip_select="loss", log=lambda *_: None)
