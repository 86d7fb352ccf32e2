#!/usr/bin/env bash
# Create .venv and install capcse with all extras. Idempotent: re-running after a finished install is a
# quick no-op (a stamp keyed on pyproject.toml).
#   PYTHON=python3.11 bash scripts/setup.sh      # choose the interpreter
#   TORCH_SPEC='torch==2.13.0'                   # override the torch requirement
#   TORCH_INDEX_URL=...                          # e.g. a CPU-only wheel index on a machine with internet
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=${CAPCSE_VENV:-.venv}
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
stamp="$VENV/.capcse-setup"
key=$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$key" ]; then
  exit 0
fi
pip=("$VENV/bin/python" -m pip)
"${pip[@]}" install -q --upgrade pip
if ! "$VENV/bin/python" -c "import torch" 2>/dev/null; then
  # Torch first, so that no other package pulls a multi-GB CUDA build onto a machine without a GPU.
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    spec=${TORCH_SPEC:-torch}
  else
    spec=${TORCH_SPEC:-torch==2.13.0}
  fi
  if [ -n "${TORCH_INDEX_URL:-}" ]; then
    "${pip[@]}" install -q "$spec" --index-url "$TORCH_INDEX_URL"
  else
    "${pip[@]}" install -q "$spec"
  fi
fi
"${pip[@]}" install -q -e ".[all]"
echo "$key" > "$stamp"
