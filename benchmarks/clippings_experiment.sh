#!/bin/bash
# CLIPPINGS-style table on the Flickr8k reprint benchmark (issue 6; docs/results.md "CLIPPINGS").
#
#   bash benchmarks/clippings_experiment.sh ["SEEDS"]        default seeds "0 1 2"
#
# 1. build: every one of the 1,000 Flickr8k images reprinted 1-5 times (crop, rescale, colour jitter,
#    grey, JPEG) with a different human caption per copy + word noise, split by cluster 50/25/25;
# 2. embed with the frozen towers (all-MiniLM-L6-v2 + EfficientNet-Lite0, packaged weights);
# 3. per seed: self-supervised (CLIP InfoNCE) and supervised (CLIP then SupCon) projection heads;
# 4. `capcse link eval` of every embedding set: threshold (and multimodal im_wt) tuned on validation,
#    ARI on test, plus the Jaccard baseline; then the table (benchmarks/clippings_aggregate.py).
# Environment: CAPCSE_DATA, OUT (default outputs/clippings), LIMIT (first N source images; default all).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
DATA=${CAPCSE_DATA:-$ROOT/../shared/data}
export CAPCSE_DATA=$DATA HF_HUB_OFFLINE=${HF_HUB_OFFLINE:-1}
OUT=${OUT:-outputs/clippings}
SEEDS=${1:-0 1 2}
CAP=${PY:-$ROOT/.venv/bin}/capcse
mkdir -p "$OUT"
if [ ! -f "$OUT/bench/records.csv" ]; then
  "$CAP" link build --data-dir "$DATA" --out "$OUT/bench" --seed 0 ${LIMIT:+--limit $LIMIT}
fi
[ -f "$OUT/frozen.npz" ] || "$CAP" link embed "$OUT/bench/records.csv" --out "$OUT/frozen.npz"
[ -f "$OUT/none/results.json" ] || { mkdir -p "$OUT/none"; "$CAP" link eval "$OUT/frozen.npz" \
  --records "$OUT/bench/records.csv" --tune-im-wt --out "$OUT/none/results.json"; }
for seed in $SEEDS; do
  for kind in selfsup supervised; do
    run=$OUT/$kind-s$seed
    [ -f "$run/results.json" ] && continue
    "$CAP" link train "$OUT/frozen.npz" --config configs/clippings-$kind.yaml --seed "$seed" --out "$run"
    "$CAP" link eval "$run/embeddings.npz" --records "$OUT/bench/records.csv" --tune-im-wt --no-jaccard \
      --out "$run/results.json"
  done
done
"${PY:-$ROOT/.venv/bin}/python" benchmarks/clippings_aggregate.py --out "$OUT"
