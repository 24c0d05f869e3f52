#!/usr/bin/env bash
# The main job on bundled inputs: set up, then score examples/ with the published
# checkpoint (results/demo/). Needs a checkpoint: $TOPOQA_CHECKPOINT, or the
# reference copy at $TOPOQA_REFERENCE (default ../shared/reference).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
venv="${TOPOQA_VENV:-.venv}"
python="$venv/bin/python"

echo "== scoring examples/ -> results/demo/"
"$python" infer.py --complex_folder examples --result_folder results/demo --overwrite
