#!/usr/bin/env bash
# The main job on bundled inputs, from a fresh machine:
#   1. set up (venv, pinned packages, mkdssp);
#   2. score examples/ with the published checkpoint -> results/demo/scores/ (report.html too)
#      (the checkpoint comes from $TOPOQA_CHECKPOINT, or the reference copy in
#      $TOPOQA_REFERENCE, default ../shared/reference; skipped with a note when neither exists);
#   3. a short deterministic training run with `accelerate launch train.py` on a generated
#      graph set -> results/demo/training/, then inspect its last checkpoint.
# Everything it writes is under results/demo/ ($TOPOQA_DEMO_DIR to change), which each run replaces.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
venv="${TOPOQA_VENV:-.venv}"
python="$venv/bin/python"
out="${TOPOQA_DEMO_DIR:-results/demo}"
export TOPOQA_CACHE_DIR="${TOPOQA_CACHE_DIR:-$out/cache}"

checkpoint=$("$python" -c "from model.checkpoint_paths import default_checkpoint_path as d; p = d(); print(p or '')")
if [[ -n "$checkpoint" && -f "$checkpoint" ]]; then
  echo "== 1/2 scoring examples/ with $checkpoint -> $out/scores/"
  "$python" infer.py --complex_folder examples --result_folder "$out/scores" --report --overwrite
else
  echo "== 1/2 scoring skipped: no checkpoint. Set TOPOQA_CHECKPOINT to topoqa.ckpt.original (or a .safetensors)."
fi

echo "== 2/2 short training run on a generated graph set -> $out/training/"
"$python" -m training.synthetic_graphs "$out/train_graphs" --count 96 --num_epochs 3 --overwrite
"$venv/bin/accelerate" launch --config_file accelerate_config/default.yaml train.py \
  --config "$out/train_graphs/config.yaml" --save_dir "$out/training" --overwrite
"$python" convert.py inspect "$out/training/topo_last.ckpt"
