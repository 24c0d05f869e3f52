#!/usr/bin/env bash
# Prepare a fresh machine: a virtual environment with pinned packages, and mkdssp.
# Usage: bash scripts/setup.sh [--dev]    (--dev adds the test-only packages)
# Idempotent: a second run only checks; set TOPOQA_VENV to use another venv path.
set -euo pipefail
cd "$(dirname "$0")/.."

venv="${TOPOQA_VENV:-.venv}"
requirements="requirements.txt"
[[ "${1:-}" == "--dev" ]] && requirements="requirements-dev.txt"

python="${PYTHON:-python3}"
if [[ ! -x "$venv/bin/python" ]]; then
  echo "setup: creating virtual environment $venv"
  "$python" -m venv "$venv"
fi

stamp="$venv/.installed-$(sha256sum requirements.txt "$requirements" | sha256sum | cut -c1-16)"
if [[ ! -f "$stamp" ]]; then
  echo "setup: installing $requirements into $venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements" 2>&1 \
    | grep -v "is ignored: it is neither a file nor a directory" || true
  "$venv/bin/python" -c "import torch, torch_geometric, accelerate, gudhi, numba, Bio, gemmi, matplotlib" \
    || { echo "setup: package installation failed (see pip output above)" >&2; exit 1; }
  touch "$stamp"
fi

# The alpha-complex code is compiled by numba on first use (~20 s) and cached beside its source; do it now,
# once, rather than in the first featurisation (a no-op when the cache is current).
"$venv/bin/python" -c "from data.alpha_complex import compile_ahead; compile_ahead()"

if ! command -v mkdssp >/dev/null 2>&1; then
  echo "setup: mkdssp not found; installing Debian's dssp package"
  sudo=""
  [[ $(id -u) -ne 0 ]] && command -v sudo >/dev/null 2>&1 && sudo="sudo"
  if command -v apt-get >/dev/null 2>&1; then
    $sudo apt-get install -y -q dssp >/dev/null 2>&1 \
      || { $sudo apt-get update -q >/dev/null 2>&1 && $sudo apt-get install -y -q dssp >/dev/null 2>&1; } \
      || true
  fi
  if ! command -v mkdssp >/dev/null 2>&1; then
    cat >&2 <<'MSG'
setup: could not install mkdssp. Install DSSP 4.x yourself and put `mkdssp` on PATH:
  Debian/Ubuntu:  sudo apt-get install dssp
  conda:          conda install -c conda-forge dssp
Featurising PDB files (infer.py, data.featurize) needs it; training on graph files does not.
MSG
    exit 1
  fi
fi
