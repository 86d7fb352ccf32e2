#!/usr/bin/env bash
# The README's main job: evaluate the default model (all-MiniLM-L6-v2) on the 7-task STS suite, train a
# short unsupervised SimCSE run on local image captions (Flickr30k, human-written), evaluate again, and
# write a before/after report. Output: outputs/main/{before,train,report.html}. A few minutes on 2 cores.
#   CAPCSE_MAIN_STEPS=...  training steps (default 200)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${CAPCSE_VENV:-.venv}
OUT=${CAPCSE_OUT:-outputs/main}
STEPS=${CAPCSE_MAIN_STEPS:-200}
capcse() { "$VENV/bin/capcse" "$@"; }

capcse eval all-MiniLM-L6-v2 --tasks sts --mode test --output "$OUT/before"
capcse train caption-simcse --output "$OUT/train" --overwrite \
  --set model.name=all-MiniLM-L6-v2 --set model.pooler=avg --set model.mlp_only_train=false \
  --set model.max_length=32 --set train.batch_size=64 --set train.max_steps="$STEPS" \
  --set train.group_by_length=true --set train.precision=bf16 --set train.report_to=none \
  --set eval.steps=100 --set 'eval.final=[sts]'
capcse report compare before="$OUT/before" after="$OUT/train/eval" --output "$OUT"
echo "report: $OUT/report.html"
