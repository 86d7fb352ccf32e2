"""Caption corpus statistics and their plot.

Tokens here are the lower-cased words ``re.findall(r"[^\\W_]+(?:'[^\\W_]+)*", text.lower())``
(punctuation dropped). Per corpus:

* lengths in tokens and characters (mean, median, min, max, a histogram);
* ``distinct-1`` / ``distinct-2``: distinct token unigrams (bigrams) divided by the total number of
  unigrams (bigrams) in the corpus (Li et al., 2016, "A Diversity-Promoting Objective Function for
  Neural Conversation Models"); bigrams do not cross caption boundaries;
* vocabulary size: the number of distinct tokens.

Several corpora are shown side by side (nucleus vs beam, or synthetic vs the original alt-text);
a JSONL run holding more than one decoding method is split into one corpus per method.
"""

from __future__ import annotations

import os
import re
import statistics
from collections import Counter
from pathlib import Path
from typing import Any, Iterable

from capcse.caption.filters import read_corpus
from capcse.errors import CapcseError
from capcse.io import atomic_write_json, atomic_write_text

_TOKEN = re.compile(r"[^\W_]+(?:'[^\W_]+)*", re.UNICODE)


def tokens(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


def corpus_stats(captions: Iterable[str]) -> dict[str, Any]:
    uni: Counter = Counter()
    bi: Counter = Counter()
    n_uni = n_bi = 0
    tok_lens: list[int] = []
    char_lens: list[int] = []
    for cap in captions:
        text = " ".join(str(cap).split())
        toks = tokens(text)
        tok_lens.append(len(toks))
        char_lens.append(len(text))
        uni.update(toks)
        n_uni += len(toks)
        pairs = list(zip(toks, toks[1:]))
        bi.update(pairs)
        n_bi += len(pairs)
    if not tok_lens:
        raise CapcseError("empty corpus: no captions to describe")

    def summary(xs: list[int]) -> dict[str, float]:
        return {"mean": round(statistics.fmean(xs), 4), "median": float(statistics.median(xs)),
                "min": min(xs), "max": max(xs)}

    return {
        "captions": len(tok_lens),
        "tokens": summary(tok_lens),
        "chars": summary(char_lens),
        "distinct_1": round(len(uni) / n_uni, 6) if n_uni else 0.0,
        "distinct_2": round(len(bi) / n_bi, 6) if n_bi else 0.0,
        "vocab_size": len(uni),
        "token_length_histogram": dict(sorted(Counter(tok_lens).items())),
    }


def load_corpora(inputs: list[str], field: str = "caption") -> dict[str, list[str]]:
    """``[label=]path`` entries -> ``{label: captions}``; JSONL with several decoding methods is split."""
    corpora: dict[str, list[str]] = {}
    for entry in inputs:
        label, sep, path = entry.partition("=")
        if not sep or os.path.exists(entry):
            label, path = "", entry
        caps, records = read_corpus(path, field)
        base = label or (Path(path).stem if Path(path).is_file() else Path(path).name)
        methods = sorted({str((r.get("decoding") or {}).get("method", "")) for r in records}) if records else []
        if records and len(methods) > 1:
            for m in methods:
                corpora[f"{base}:{m}" if label else m] = [
                    c for c, r in zip(caps, records) if str((r.get("decoding") or {}).get("method", "")) == m]
        else:
            if base in corpora:
                raise CapcseError(f"two corpora named {base!r}: give labels as label=path")
            corpora[base] = caps
    return corpora


def plot_stats(stats: dict[str, dict[str, Any]], path: str | os.PathLike) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(stats)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4), gridspec_kw={"width_ratios": [3, 2]})
    max_len = max(max(map(int, s["token_length_histogram"])) for s in stats.values())
    width = 0.8 / len(names)
    for k, name in enumerate(names):
        hist = {int(a): b for a, b in stats[name]["token_length_histogram"].items()}
        total = sum(hist.values())
        xs = list(range(0, max_len + 1))
        ax1.bar([x + (k - (len(names) - 1) / 2) * width for x in xs], [hist.get(x, 0) / total for x in xs],
                width=width, label=f"{name} (n={stats[name]['captions']})")
    ax1.set_xlabel("caption length (tokens)")
    ax1.set_ylabel("fraction of captions")
    ax1.set_title("Length distribution")
    ax1.legend(fontsize=8)
    metrics = ["distinct_1", "distinct_2"]
    for k, name in enumerate(names):
        ax2.bar([m + (k - (len(names) - 1) / 2) * width for m in range(len(metrics))],
                [stats[name][m] for m in metrics], width=width, label=f"{name} (vocab {stats[name]['vocab_size']})")
    ax2.set_xticks(range(len(metrics)), ["distinct-1", "distinct-2"])
    ax2.set_ylim(0, 1.05)
    ax2.set_title("Diversity")
    ax2.legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    os.replace(tmp, path)
    return path


def markdown_table(stats: dict[str, dict[str, Any]]) -> str:
    lines = ["| corpus | captions | tokens mean | tokens median | chars mean | distinct-1 | distinct-2 | vocab |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, s in stats.items():
        lines.append(f"| {name} | {s['captions']} | {s['tokens']['mean']:.2f} | {s['tokens']['median']:g} | "
                     f"{s['chars']['mean']:.1f} | {s['distinct_1']:.4f} | {s['distinct_2']:.4f} | {s['vocab_size']} |")
    return "\n".join(lines) + "\n"


def describe_corpora(inputs: list[str], out: str | os.PathLike, field: str = "caption") -> dict[str, dict[str, Any]]:
    """Write ``stats.json``, ``stats.md`` and ``lengths.png`` for the given corpora into ``out``."""
    corpora = load_corpora(inputs, field)
    stats = {name: corpus_stats(caps) for name, caps in corpora.items()}
    out = Path(out)
    atomic_write_json(out / "stats.json", stats)
    atomic_write_text(out / "stats.md", markdown_table(stats))
    plot_stats(stats, out / "lengths.png")
    return stats
