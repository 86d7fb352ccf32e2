#!/bin/bash
# CPU-scale MCSE / DALR experiment (issue 5; docs/results.md "Multimodal").
#
#   bash benchmarks/multimodal_experiment.sh "SEEDS" "RECIPES"      e.g.  "1 2 3" "simcse mcse dalr"
#
# RECIPES: simcse (MCSE's --framework simcse baseline: the same mixed text, no image term), mcse, dalr,
# dalr-no-<term> for term in grounding soft_label global_alignment ranking (DALR with that weight 0).
# Every run starts from all-MiniLM-L6-v2 (mean pooling) with the same budget (STEPS optimiser steps of
# batch 32); text = the wiki prefix, images = the training split of the 1,000-image Flickr8k sample
# with its captions (never a dev/test image), vision = EfficientNet-Lite0 (frozen, features cached),
# DALR teacher = the starting model. Then `capcse eval` on the STS suite (EVAL=test: the 7-task test
# table; EVAL=dev: STS-B/SICK-R dev). Resumable: a finished run (model + eval results) is skipped.
# Environment: CAPCSE_DATA (data folder), OUT (default outputs/mm/exp), STEPS (30), EVAL (test),
# THREADS (torch threads per run, default 2). Tabulate with benchmarks/multimodal_aggregate.py.
set -u
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
DATA=${CAPCSE_DATA:-$ROOT/../shared/data}
export CAPCSE_DATA=$DATA HF_HUB_OFFLINE=${HF_HUB_OFFLINE:-1} TOKENIZERS_PARALLELISM=false
OUT=${OUT:-outputs/mm/exp}
STEPS=${STEPS:-30}
EVAL=${EVAL:-test}
THREADS=${THREADS:-2}
export OMP_NUM_THREADS=$THREADS MKL_NUM_THREADS=$THREADS
PY=${PY:-$ROOT/.venv/bin}
mkdir -p "$OUT"
COMMON=(--set model.name=all-MiniLM-L6-v2 --set model.pooler=mean --set model.mlp_only_train=false
  --set data.train=$DATA/wiki1m_prefix/wiki1m_for_simcse.first11914.txt
  --set multimodal.pairs=$DATA/flickr8k_mini1000 --set multimodal.split=train
  --set multimodal.captions_per_image=null --set multimodal.vision=efficientnet-lite0
  --set multimodal.grounding_input=sentence --set multimodal.feature_cache=$OUT/../cache
  --set train.batch_size=32 --set train.max_steps=$STEPS --set train.learning_rate=2e-5
  --set train.report_to=[none] --set train.logging_steps=5 --set train.device=cpu
  --set train.torch_threads=$THREADS --set eval.during=none --set eval.final=[none])
# the teacher = the starting model with its own mean pooling (the recipe sets DALR's cls_before_pooler for SimCSE teachers)
DALR=(dalr-flickr-bert-base --set multimodal.teachers=[all-MiniLM-L6-v2] --set multimodal.teacher_pooler=null)
for seed in $1; do
  for cfg in $2; do
    case $cfg in
      simcse)   args=(mcse-flickr-bert-base --set multimodal.weights.grounding=0.0) ;;
      mcse)     args=(mcse-flickr-bert-base) ;;
      dalr)     args=("${DALR[@]}") ;;
      dalr-no-grounding|dalr-no-soft_label|dalr-no-global_alignment|dalr-no-ranking)
                args=("${DALR[@]}" --set multimodal.weights.${cfg#dalr-no-}=0.0) ;;
      *) echo "unknown recipe $cfg" >&2; exit 2 ;;
    esac
    out=$OUT/$cfg-s$seed
    [ -f $out/eval-$EVAL/results.json ] && continue
    echo "$(date +%T) start $cfg seed $seed"
    t0=$(date +%s)
    [ -f $out/model/model.safetensors ] || "$PY/capcse" train "${args[@]}" "${COMMON[@]}" --set train.seed=$seed \
      --output $out > $out.log 2>&1 || { echo "FAILED $cfg $seed (see $out.log)"; continue; }
    t1=$(date +%s)
    "$PY/capcse" eval $out/model --tasks sts --mode $EVAL --no-plots --output $out/eval-$EVAL \
      >> $out.log 2>&1 || echo "EVAL FAILED $cfg $seed (see $out.log)"
    echo "$(date +%T) done $cfg seed $seed (train $((t1 - t0)) s, eval $(($(date +%s) - t1)) s)"
  done
done
