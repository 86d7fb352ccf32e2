"""capcse report mlm-curve: an experiment's <kind>-<step> rows joined with a pretraining run's held-out curve."""

from __future__ import annotations

import json

from capcse.cli import main


def _row(name, mean, std, n=3):
    return {"condition": name, "row": name, "kind": "train", "n_seeds": n, "planned_runs": n,
            "tasks": {"STS-B": {"mean": mean + 1, "std": std}, "Avg.": {"mean": mean, "std": std}}}


def test_mlm_curve_joins_rows_with_the_pretraining_curve(tmp_path, capsys):
    agg = {"name": "simcse-vs-mlm", "columns": ["STS-B", "Avg."],
           "rows": [_row("raw-500", 40.0, None, 1), _row("unsup-500", 35.5, 1.0), _row("sup-500", 48.0, 0.5),
                    _row("raw-1000", 45.0, None, 1), _row("unsup-1000", 47.0, 0.8), _row("other", 1.0, None)]}
    exp = tmp_path / "exp"
    exp.mkdir()
    (exp / "aggregate.json").write_text(json.dumps(agg))
    # a running pretraining: the newest checkpoint's trainer_state.json holds the held-out curve
    run = tmp_path / "pre"
    for step, acc in ((500, 0.17), (1000, 0.30)):
        (run / f"checkpoint-{step}").mkdir(parents=True)
        hist = [{"step": s, "eval_mlm_accuracy": a, "eval_mlm_loss": 5.0, "eval_perplexity": 150.0}
                for s, a in ((500, 0.17), (1000, 0.30)) if s <= step]
        (run / f"checkpoint-{step}" / "trainer_state.json").write_text(json.dumps({"log_history": hist}))
    assert main(["report", "mlm-curve", str(exp), str(run), "--output", str(tmp_path / "o")]) == 0
    saved = json.loads((tmp_path / "o" / "mlm_curve.json").read_text())
    p500, p1000 = saved["points"]
    assert p500["step"] == 500 and p500["mlm_accuracy"] == 0.17 and p1000["mlm_accuracy"] == 0.30
    assert p500["rows"]["unsup"]["delta"] == -4.5 and p500["rows"]["sup"]["delta"] == 8.0
    assert p1000["rows"]["unsup"]["delta"] == 2.0 and "sup" not in p1000["rows"]
    md = (tmp_path / "o" / "mlm_curve.md").read_text()
    assert "| 500 | 0.1700 | 40.00 | 35.50 ± 1.00 (-4.50) | 48.00 ± 0.50 (+8.00) |" in md
    assert "| 1,000 | 0.3000 | 45.00 | 47.00 ± 0.80 (+2.00) | - |" in md
    assert (tmp_path / "o" / "mlm_curve.png").stat().st_size > 1000
    assert "unsup Avg." in capsys.readouterr().out
    # a finished run's summary takes precedence; a folder that is neither is a one-line error
    (run / "pretrain_summary.json").write_text(json.dumps(
        {"curve": [{"step": 500, "mlm_accuracy": 0.2, "mlm_loss": 4.0, "perplexity": 55.0}]}))
    assert main(["report", "mlm-curve", str(exp), str(run), "--output", str(tmp_path / "o2")]) == 0
    assert json.loads((tmp_path / "o2" / "mlm_curve.json").read_text())["points"][0]["mlm_accuracy"] == 0.2
    assert main(["report", "mlm-curve", str(exp), str(tmp_path), "--output", str(tmp_path / "o3")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not a capcse pretrain output folder" in err[0]
