#!/usr/bin/env bash
# Create .venv and install capcse with all extras at the exact tested versions of requirements/lock.txt
# (pip constraints; refresh with scripts/lock.sh). Idempotent: re-running after a finished install is a
# quick no-op (a stamp keyed on pyproject.toml, the lock and this script).
#   PYTHON=python3.11 bash scripts/setup.sh      # choose the interpreter
#   TORCH_SPEC='torch==2.13.0'                   # override the torch requirement (must agree with the lock)
#   TORCH_INDEX_URL=...                          # e.g. a CPU-only wheel index on a machine with internet
#   CAPCSE_LOCK=none                             # newest versions inside pyproject.toml's ranges instead
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=${CAPCSE_VENV:-.venv}
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
stamp="$VENV/.capcse-setup"
LOCK=${CAPCSE_LOCK:-requirements/lock.txt}
constraints=()
if [ "$LOCK" != none ]; then
  constraints=(-c "$LOCK")
fi
key=$( (cat pyproject.toml scripts/setup.sh; [ "$LOCK" = none ] || cat "$LOCK") | sha256sum | cut -d' ' -f1)
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
    "${pip[@]}" install -q "${constraints[@]}" "$spec" --index-url "$TORCH_INDEX_URL"
  else
    "${pip[@]}" install -q "${constraints[@]}" "$spec"
  fi
fi
"${pip[@]}" install -q "${constraints[@]}" -e ".[all]"
echo "$key" > "$stamp"
