#!/usr/bin/env bash
# The README's main job. Output lands in outputs/main/ (report.html, results.json, results.md, plots).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${CAPCSE_VENV:-.venv}
OUT=${CAPCSE_OUT:-outputs/main}
"$VENV/bin/capcse" eval all-MiniLM-L6-v2 --tasks sts --mode test --output "$OUT"
echo "report: $OUT/report.html"
