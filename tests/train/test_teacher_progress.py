"""DALR set-up: the teacher precompute shows a bar with a total on a terminal and is silent in logs."""

from __future__ import annotations

import sys

import pytest

from capcse.train.multimodal import TeacherBank


@pytest.mark.parametrize("tty", [True, False])
def test_teacher_precompute_bar_on_a_terminal_only(tiny_bert_path, tmp_path, monkeypatch, capsys, tty):
    from capcse.models.encoder import load_encoder

    enc = load_encoder(tiny_bert_path, device="cpu", pooler="cls_before_pooler", batch_size=2)
    capsys.readouterr()  # transformers' own weight-loading bar is not ours
    monkeypatch.setattr(sys.stderr, "isatty", lambda: tty)  # capsys's stream, told it is (not) a terminal
    TeacherBank(["tiny-teacher"], cache_dir=tmp_path, encoders=[enc]).prepare([f"sentence {i}" for i in range(5)])
    err = capsys.readouterr().err
    if tty:   # 5 sentences in batches of 2: 3 batches, shown with their total
        assert "encode" in err and "3/3" in err
    else:
        assert err == ""
