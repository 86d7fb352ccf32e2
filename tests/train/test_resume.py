"""Resume after a kill: `capcse train` is SIGKILLed once a checkpoint exists, `--resume` finishes the
run, and the final weights equal an uninterrupted run's (CPU, fixed seed, dropout on, MLM head on)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import torch
import yaml

pytestmark = pytest.mark.slow  # three CLI runs in subprocesses


def write_recipe(path, model, train, out):
    recipe = {
        "name": "resume-test",
        "model": {"name": str(model), "pooler": "cls", "mlp_only_train": True, "max_length": 32},
        "data": {"train": str(train)},
        "loss": {"temperature": 0.05, "mlm_weight": 0.1},
        "train": {"output_dir": str(out), "batch_size": 4, "learning_rate": 5e-4, "max_steps": 60,
                  "save_steps": 5, "save_total_limit": None, "report_to": ["none"], "seed": 3,
                  "device": "cpu", "torch_threads": 1, "warmup_ratio": 0.1, "logging_steps": 5},
        "eval": {"during": "none", "final": []},
    }
    path.write_text(yaml.safe_dump(recipe))
    return path


def cli(*args):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    return [sys.executable, "-m", "capcse", "train", *map(str, args)], env


def weights(folder):
    from safetensors.torch import load_file

    return load_file(str(folder / "model" / "model.safetensors"))


def test_resume_after_kill_gives_the_uninterrupted_weights(tiny_bert_path, sentences, tmp_path):
    data = tmp_path / "train.txt"
    data.write_text("\n".join(sentences * 2) + "\n")

    full_dir, cut_dir = tmp_path / "full", tmp_path / "cut"
    cmd, env = cli(write_recipe(tmp_path / "full.yaml", tiny_bert_path, data, full_dir))
    subprocess.run(cmd, env=env, check=True, capture_output=True, timeout=600)

    cmd, env = cli(write_recipe(tmp_path / "cut.yaml", tiny_bert_path, data, cut_dir))
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 600
    try:
        while time.time() < deadline and proc.poll() is None:
            if any((c / "capcse_objective.safetensors").is_file() for c in cut_dir.glob("checkpoint-*")):
                proc.send_signal(signal.SIGKILL)
                break
            time.sleep(0.02)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    assert not (cut_dir / "model").exists()
    killed_at = max(int(c.name.split("-")[1]) for c in cut_dir.glob("checkpoint-*"))
    assert killed_at < 60

    cmd, env = cli(tmp_path / "cut.yaml", "--resume")
    done = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True, timeout=600)
    assert "resuming from" in done.stdout

    a, b = weights(full_dir), weights(cut_dir)
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(b[k], a[k], atol=1e-6, rtol=1e-5, msg=lambda m: f"{k}: {m}")
    start = weights_of_base(tiny_bert_path)
    assert any(not torch.allclose(a[k], start[k]) for k in a if k in start)  # it really trained


def weights_of_base(path):
    from safetensors.torch import load_file

    return load_file(str(path / "model.safetensors"))
