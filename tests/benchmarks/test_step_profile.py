"""benchmarks/step_profile.py: the matrix products' FLOPs it reads from torch.profiler are the model's
matmul FLOPs (forward + backward = 3 x the forward formula of train_throughput.py)."""

from __future__ import annotations

import torch


def test_profiled_matmul_flops_are_three_forwards(load_benchmark, tiny_bert_path):
    from torch.profiler import profile
    from transformers import BertModel

    sp = load_benchmark("step_profile")
    tt = load_benchmark("train_throughput")
    model = BertModel.from_pretrained(str(tiny_bert_path), add_pooling_layer=False, attn_implementation="eager")
    model.train()
    for m in model.modules():  # dropout changes no FLOPs; off so the step is a plain function
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
    cfg = model.config
    rows, width = 4, 9
    ids = torch.randint(1000, 2000, (rows, width))
    mask = torch.ones(rows, width, dtype=torch.long)
    with profile(with_flops=True) as prof:
        model(input_ids=ids, attention_mask=mask).last_hidden_state.pow(2).sum().backward()
    us, flops = sp.matmul_time_and_flops(prof.key_averages())
    expected = 3 * rows * tt.forward_flops(width, cfg.num_hidden_layers, cfg.hidden_size, cfg.intermediate_size)
    assert flops == expected
    total = sum(e.self_cpu_time_total for e in prof.key_averages())
    assert 0 < us < total
