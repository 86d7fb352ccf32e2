"""Projection-head training for linkage (Trainer, CLIP then SupCon with hard-negative batches)."""

import numpy as np
import pytest
import torch

from capcse.train.linkage import ProjectionHeads, project_embeddings, train_heads


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
    assert (tmp_path / "heads.pt").is_file() and (tmp_path / "heads.json").is_file()
    out = project_embeddings(heads, z)
    assert out["image"].shape == (90, 16)
    np.testing.assert_allclose(np.linalg.norm(out["text"], axis=1), 1.0, rtol=1e-5)
    assert (out["cluster_id"] == z["cluster_id"]).all()
