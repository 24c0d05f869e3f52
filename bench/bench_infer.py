"""End-to-end speed of infer.py against the recorded reference pipeline times.

    python bench/bench_infer.py [--jobs 2] [--repeats 3]

Copies the golden inputs into a temporary folder, runs `python infer.py` as a
fresh process (start-up, featurisation, prediction, writing result.csv) and
compares its wall time with the sum of the reference's recorded per-complex
times for the same complexes (2-core machine). Also runs with --jobs 1 in the
same session to show the parallel speed-up, and checks the predictions
against the golden values so a fast-but-wrong run cannot pass unnoticed.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def run_infer(folder: Path, out: Path, jobs: int) -> float:
    if out.exists():
        shutil.rmtree(out)
    started = time.perf_counter()
    # --no_cache: every run featurises from scratch (a cache hit would time nothing but start-up).
    subprocess.run([sys.executable, "infer.py", "-c", str(folder), "-r", str(out), "--jobs", str(jobs), "--no_cache"],
                   cwd=REPO, check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--repeats", type=int, default=3, help="best-of-N wall time per setting")
    args = parser.parse_args()

    reference = Path(os.environ.get("TOPOQA_REFERENCE", REPO.parent / "shared" / "reference"))
    goldens = sorted(p for p in (reference / "golden").iterdir() if p.is_dir())
    expected = {p.name: json.loads((p / "expected.json").read_text()) for p in goldens}
    reference_total = sum(e["reference_wall_seconds_single_complex_2_cores"] for e in expected.values())

    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / "complexes"
        folder.mkdir()
        for golden in goldens:
            shutil.copy(golden / "input.pdb", folder / f"{golden.name}.pdb")
        timings = {}
        for jobs in sorted({1, args.jobs}):
            timings[jobs] = min(run_infer(folder, Path(scratch) / "out", jobs) for _ in range(args.repeats))
        with open(Path(scratch) / "out" / "result.csv") as handle:
            predicted = {row["MODEL"]: float(row["PRED_DOCKQ"]) for row in csv.DictReader(handle)}
    worst = max(abs(predicted[name] - e["pred_dockq"]) for name, e in expected.items())

    print(f"complexes: {len(goldens)}  cores: {os.cpu_count()}  max |pred - golden|: {worst:.2e}")
    print(f"reference pipeline, recorded (sum of per-complex times): {reference_total:8.2f} s")
    for jobs, seconds in timings.items():
        print(f"infer.py --jobs {jobs} (process start to result.csv):   {seconds:8.2f} s"
              f"   speed-up vs reference {reference_total / seconds:5.1f}x")
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import infer"], cwd=REPO, check=True)
    print(f"of which process start-up and imports (python -c 'import infer'): {time.perf_counter() - started:.2f} s")
    if len(timings) > 1:
        print(f"parallel scaling --jobs {args.jobs} vs --jobs 1: {timings[1] / timings[args.jobs]:.2f}x")


if __name__ == "__main__":
    main()
