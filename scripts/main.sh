#!/usr/bin/env bash
# The README's main job: SimCSE from capcse's own raw masked-LM encoder (capcse-bert-mini-en, models/; made by
# `capcse pretrain mlm-bert-mini`), before and after, every row evaluated on the 7-task STS test suite at the
# same inference length (128 tokens, the encoder's maximum) with mean pooling:
#   reference  all-MiniLM-L6-v2 (trained contrastively on 1B pairs): the figure a finished model reaches
#   raw        the raw encoder (masked-LM pretraining only)
#   unsup      unsupervised SimCSE from it on the local Wikipedia prefix (dropout positives)
#   sup        supervised SimCSE from it on the SNLI dev+test triplets (entailment positive, contradiction
#              hard negative; `capcse triplets`)
# Output: outputs/main/{reference,raw,unsup,sup,report.html}. About 10 minutes on 2 cores.
#   CAPCSE_MAIN_STEPS=...  training steps of each SimCSE run (default 500, batch 64, 32-token training length)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${CAPCSE_VENV:-.venv}
OUT=${CAPCSE_OUT:-outputs/main}
STEPS=${CAPCSE_MAIN_STEPS:-500}
ENCODER=${CAPCSE_MAIN_ENCODER:-capcse-bert-mini-en}
DATA=${CAPCSE_DATA:?set CAPCSE_DATA to the data folder (make main does when ../shared/data exists)}
LEN=128
capcse() { "$VENV/bin/capcse" "$@"; }
mkdir -p "$OUT"
start=$(date +%s)

# the same training settings for both SimCSE runs: mean pooling, no MLP, bf16 autocast, the saved model
# keeps the 128-token inference length (training length 32 never leaks into evaluation)
common=(--set model.name="$ENCODER" --set model.pooler=avg --set model.mlp_only_train=false
        --set model.inference_max_length=$LEN --set train.batch_size=64 --set train.max_steps="$STEPS"
        --set train.precision=bf16 --set train.group_by_length=true --set train.report_to=none
        --set eval.steps=100 --set 'eval.final=[sts]')

capcse eval all-MiniLM-L6-v2 --tasks sts --mode test --max-length $LEN --output "$OUT/reference"
capcse eval "$ENCODER" --tasks sts --mode test --max-length $LEN --pooler avg --output "$OUT/raw"
capcse train simcse-unsup-bert-base --output "$OUT/unsup" --overwrite "${common[@]}" \
  --set data.train="$DATA/wiki1m_prefix/wiki1m_for_simcse.first11914.txt"
for split in dev test; do
  [ -s "$OUT/snli_${split}_triplets.csv" ] || \
    capcse triplets --nli "$DATA/downstream/SNLI" --split $split --out "$OUT/snli_${split}_triplets.csv"
done
if [ ! -s "$OUT/snli_devtest_triplets.csv" ]; then
  { cat "$OUT/snli_dev_triplets.csv"; tail -n +2 "$OUT/snli_test_triplets.csv"; } > "$OUT/snli_devtest_triplets.csv.tmp"
  mv "$OUT/snli_devtest_triplets.csv.tmp" "$OUT/snli_devtest_triplets.csv"
fi
capcse train simcse-sup-bert-base --output "$OUT/sup" --overwrite "${common[@]}" \
  --set data.train="$OUT/snli_devtest_triplets.csv"
# differences to the first run (raw): what SimCSE moved; the reference row shows the distance left
capcse report compare raw="$OUT/raw" unsup="$OUT/unsup/eval" sup="$OUT/sup/eval" reference="$OUT/reference" \
  --output "$OUT"
echo "main job: $(( ($(date +%s) - start) / 60 )) min $(( ($(date +%s) - start) % 60 )) s; report: $OUT/report.html"
