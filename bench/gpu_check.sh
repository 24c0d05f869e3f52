#!/usr/bin/env bash
# Exact training on a GPU machine (issue 14), one prepared run: the generated small run twice on one GPU (must be
# bit-identical to itself), exact-parallel with 2 processes against 1 where the machine allows it (NCCL needs one
# GPU per process), the CPU-vs-GPU difference of the final weights, and epochs per second on the GPU and the CPU.
#   bash bench/gpu_check.sh [WORK_DIR]        (about 2-4 minutes; needs no network; GRAPHS=400 by default)
set -u
cd "$(dirname "$0")/.."
python=${PYTHON:-.venv/bin/python}; [ -x "$python" ] || python=python3
work=${1:-${OUT:-/tmp}/gpu_check}
mkdir -p "$work"
export TQDM_DISABLE=1
"$python" -m training.synthetic_graphs "$work/set" --count "${GRAPHS:-400}" --num_epochs 3 --overwrite > /dev/null
common=(--config "$work/set/config.yaml" --batch_size 16 --accumulate_grad_batches 5)
"$python" -c "import torch; print('GPUs:', [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())])"
for name in gpu_a gpu_b; do "$python" train.py "${common[@]}" --save_dir "$work/$name" --overwrite | tail -1; done
"$python" train.py "${common[@]}" --save_dir "$work/cpu" --cpu --overwrite | tail -1
gpus=$("$python" -c "import torch; print(torch.cuda.device_count())")
if [ "$gpus" -ge 2 ]; then
  "$python" -m accelerate.commands.launch --config_file accelerate_config/exact_parallel.yaml --num_processes 2 \
    train.py "${common[@]}" --save_dir "$work/gpu_n2" --overwrite | tail -1
else
  echo "exact parallel N=2 on GPUs: not run ($gpus GPU; NCCL needs one GPU per process)"
fi
"$python" - "$work" <<'PY'
import csv, sys
from pathlib import Path
import torch
work = Path(sys.argv[1])
def last(name):
    return torch.load(work / name / "topo_last.ckpt", map_location="cpu", weights_only=True)
def diff(a, b):
    return max((a["state_dict"][k].double() - b["state_dict"][k].double()).abs().max().item() for k in a["state_dict"])
def rate(name):
    rows = list(csv.DictReader(open(work / name / "timings.csv")))
    return len(rows) / sum(float(r["epoch_seconds"]) for r in rows)
a, b, cpu = last("gpu_a"), last("gpu_b"), last("cpu")
same_metrics = (work / "gpu_a/metrics.csv").read_bytes() == (work / "gpu_b/metrics.csv").read_bytes()
print(f"GPU run twice: metrics.csv identical {same_metrics}, max weight difference {diff(a, b)}")
print(f"GPU vs CPU: max final weight difference {diff(a, cpu):.3e}")
if (work / "gpu_n2" / "topo_last.ckpt").exists():
    n2 = last("gpu_n2")
    same = (work / "gpu_a/metrics.csv").read_bytes() == (work / "gpu_n2/metrics.csv").read_bytes()
    print(f"GPU exact N=2 vs N=1: metrics.csv identical {same}, max weight difference {diff(a, n2)}")
    print(f"epochs/s GPU N=2 {rate('gpu_n2'):.3f}")
print(f"epochs/s: GPU {rate('gpu_a'):.3f}, CPU (1 thread) {rate('cpu'):.3f}")
PY
