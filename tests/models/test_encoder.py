"""load_encoder / SentenceEncoder.encode: equal to sentence-transformers' own encode, faster paths exact."""

import numpy as np
import pytest
import torch

from capcse.errors import CapcseError
from capcse.models import ALIASES, load_encoder, resolve_model
from capcse.models.encoder import parse_dtype, pick_device

SENTS = ["A man is playing a guitar.", "A woman slices an onion.", "A man is playing a guitar.",
         "Two dogs run through a field of tall grass while a third one watches.", "ok", "",
         "A man is playing a guitar."]


def test_alias_resolves_to_packaged_folder(minilm_path):
    assert resolve_model("all-MiniLM-L6-v2") == str(minilm_path)
    assert resolve_model("sentence-transformers/all-MiniLM-L6-v2") == str(minilm_path)
    assert resolve_model("some-org/unknown-model") == "some-org/unknown-model"
    assert ALIASES["all-MiniLM-L6-v2"].hub_id == "sentence-transformers/all-MiniLM-L6-v2"


def test_local_path_wins_over_alias(tmp_path, monkeypatch):
    folder = tmp_path / "all-MiniLM-L6-v2"
    folder.mkdir()
    monkeypatch.chdir(tmp_path)
    assert resolve_model("all-MiniLM-L6-v2") == str(folder.resolve())


def test_encode_equals_sentence_transformers_encode(minilm_path):
    enc = load_encoder("all-MiniLM-L6-v2", device="cpu")
    ours = enc.encode(SENTS, batch_size=3)
    ref = enc.model.encode(SENTS, batch_size=3, convert_to_numpy=True)
    assert ours.shape == (len(SENTS), 384) and ours.dtype == np.float32
    np.testing.assert_allclose(ours, ref, atol=1e-5)
    # duplicates map to the identical row; order is the input order
    assert np.array_equal(ours[0], ours[2]) and np.array_equal(ours[0], ours[6])


def test_encode_normalize_tensor_and_empty(tiny_bert_path):
    enc = load_encoder(tiny_bert_path, device="cpu")
    t = enc.encode(SENTS, normalize=True, convert_to_tensor=True)
    assert isinstance(t, torch.Tensor)
    torch.testing.assert_close(t.norm(dim=-1), torch.ones(len(SENTS)))
    assert enc.encode([]).shape == (0, 32)
    with pytest.raises(CapcseError, match="item 1"):
        enc.encode(["ok", 3])


def test_batching_does_not_change_embeddings(tiny_bert_path):
    enc = load_encoder(tiny_bert_path, device="cpu")
    np.testing.assert_allclose(enc.encode(SENTS, batch_size=1), enc.encode(SENTS, batch_size=64), atol=1e-5)


def test_bf16_autocast_is_close(tiny_bert_path):
    fp32 = load_encoder(tiny_bert_path, device="cpu").encode(SENTS)
    bf16 = load_encoder(tiny_bert_path, device="cpu", dtype="bf16").encode(SENTS)
    cos = (fp32 * bf16).sum(1) / np.linalg.norm(fp32, axis=1) / np.linalg.norm(bf16, axis=1)
    assert cos.min() > 0.98


def test_plain_model_defaults_to_avg(tiny_bert_path):
    default = load_encoder(tiny_bert_path, device="cpu").encode(SENTS)
    avg = load_encoder(tiny_bert_path, pooler="avg", device="cpu").encode(SENTS)
    np.testing.assert_allclose(default, avg, atol=1e-6)


def test_truncation_to_max_length(tiny_bert_path):
    enc = load_encoder(tiny_bert_path, device="cpu", max_length=4)
    long = ["one two three four five six seven eight"]
    short = ["one two"]  # [CLS] one two [SEP] == first 4 tokens of the long one after truncation
    np.testing.assert_allclose(enc.encode(long), enc.encode(short), atol=1e-5)


def test_errors(tmp_path):
    with pytest.raises(CapcseError, match="unknown pooler"):
        load_encoder("all-MiniLM-L6-v2", pooler="max")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CapcseError, match="no config.json"):
        load_encoder(tmp_path / "empty")
    with pytest.raises(CapcseError, match="unknown dtype"):
        parse_dtype("int3")
    assert pick_device("cpu").type == "cpu"


def test_progress_bar_only_on_a_terminal_and_after_a_delay(monkeypatch, tiny_bert_path):
    """Issue 16 item 7: automatic bars are drawn only when stderr is a terminal, and only once the loop has
    run PROGRESS_DELAY (5) seconds; True draws at once, False never. Encoding goes through it."""
    import capcse.models.encoder as encoder_module
    from capcse.models.encoder import PROGRESS_DELAY, progress

    items = range(3)
    monkeypatch.setattr(encoder_module, "on_terminal", lambda stream=None: False)
    assert progress(items) is items and progress(items, show=False) is items
    forced = progress(items, show=True, desc="x")
    assert forced.delay == 0 and forced.total == 3 and list(forced) == [0, 1, 2]
    monkeypatch.setattr(encoder_module, "on_terminal", lambda stream=None: True)
    auto = progress(items, desc="x")
    assert PROGRESS_DELAY == 5.0 and auto.delay == 5.0 and list(auto) == [0, 1, 2]
    assert progress(items, show=False) is items

    seen = []
    monkeypatch.setattr(encoder_module, "progress", lambda it, **kw: seen.append(kw) or it)
    load_encoder(tiny_bert_path, device="cpu").encode(["a b", "c d e"])
    assert seen == [{"show": None, "desc": "encode 2 sentences", "unit": "batch"}]


def test_on_terminal_reads_the_stream():
    import io

    from capcse.models.encoder import on_terminal

    class Tty(io.StringIO):
        def isatty(self):
            return True

    assert on_terminal(Tty()) is True and on_terminal(io.StringIO()) is False


def test_one_hand_updated_bar_for_captioning_and_image_features(monkeypatch):
    """progress_bar (captioning's images, image-feature extraction) is drawn only when asked for and stderr is a
    terminal; it counts what it is told."""
    import capcse.models.encoder as encoder_module
    from capcse.models.encoder import progress_bar

    monkeypatch.setattr(encoder_module, "on_terminal", lambda stream=None: True)
    bar = progress_bar(5, "caption", "img")
    bar.update(2)
    assert not bar.disable and bar.total == 5 and bar.n == 2 and bar.unit == "img" and bar.desc == "caption"
    bar.close()
    assert progress_bar(5, "caption", show=False).disable
    monkeypatch.setattr(encoder_module, "on_terminal", lambda stream=None: False)
    assert progress_bar(5, "caption").disable
