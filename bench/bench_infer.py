"""End-to-end speed of infer.py against the recorded reference pipeline times.

    python bench/bench_infer.py [--jobs 2] [--repeats 5]

Copies the golden inputs into a temporary folder, runs `python infer.py` as a
fresh process (start-up, featurisation, prediction, writing result.csv) and
compares its wall time with the sum of the reference's recorded per-complex
times for the same complexes (2-core machine). Also runs with --jobs 1 in the
same session to show the parallel speed-up, times a re-scoring of the same
files from the featurisation cache (what scoring with a retrained checkpoint
costs), and checks the predictions against the golden values so a
fast-but-wrong run cannot pass unnoticed.

Other processes on the machine make timings noisy: the settings are
interleaved, the minimum and the median of the repeats are printed with the
CPU time of each run (user + sys of infer.py and everything it started) and
the load average. The parts of a run are timed separately, each in a fresh
process: the heavy imports (torch and the network, without PyG, as infer.py
does), which infer.py overlaps with featurisation, and the featurisation alone.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from model.checkpoint_paths import reference_root  # noqa: E402


def timed(command: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the process and all it waited for) of one fresh process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(command, cwd=REPO, check=True, capture_output=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


def run_infer(folder: Path, out: Path, jobs: int, cache: Path | None = None) -> tuple[float, float]:
    if out.exists():
        shutil.rmtree(out)
    # Without a cache every run featurises from scratch; with one (already filled) it times a re-scoring.
    caching = ["--cache_dir", str(cache)] if cache else ["--no_cache"]
    return timed([sys.executable, "infer.py", "-c", str(folder), "-r", str(out), "--jobs", str(jobs), *caching])


def load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def summary(runs: list[tuple[float, float]]) -> str:
    walls = [wall for wall, _ in runs]
    cpu = min(runs)[1]
    return f"min {min(walls):6.2f} s  median {statistics.median(walls):6.2f} s  (CPU of the fastest run {cpu:5.1f} s)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--repeats", type=int, default=5, help="runs per setting (min and median are printed)")
    args = parser.parse_args()

    reference = reference_root()
    goldens = sorted(p for p in (reference / "golden").iterdir() if p.is_dir())
    expected = {p.name: json.loads((p / "expected.json").read_text()) for p in goldens}
    reference_total = sum(e["reference_wall_seconds_single_complex_2_cores"] for e in expected.values())
    settings = sorted({1, args.jobs})

    print(f"complexes: {len(goldens)}  cores: {os.cpu_count()}  load average before: {load()}")
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / "complexes"
        folder.mkdir()
        for golden in goldens:
            shutil.copy(golden / "input.pdb", folder / f"{golden.name}.pdb")
        paths = [str(p) for p in sorted(folder.iterdir())]
        timings: dict[int, list[tuple[float, float]]] = {jobs: [] for jobs in settings}
        parts: dict[str, list[tuple[float, float]]] = {"imports": [], "featurisation": [], "cached": []}
        cache = Path(scratch) / "cache"
        run_infer(folder, Path(scratch) / "out", args.jobs, cache)  # fills the cache
        for _ in range(args.repeats):  # interleaved, so that a burst of load hits every setting alike
            for jobs in settings:
                timings[jobs].append(run_infer(folder, Path(scratch) / "out", jobs))
            parts["imports"].append(timed([sys.executable, "-c", "import os, torch, model.predict; os._exit(0)"]))
            script = ("import sys, time; from data.featurize import featurize_many; t = time.perf_counter(); "
                      f"featurize_many(sys.argv[1:], jobs={args.jobs}, progress=False); "
                      "print(time.perf_counter() - t)")
            parts["featurisation"].append(timed([sys.executable, "-c", script, *paths]))
            parts["cached"].append(run_infer(folder, Path(scratch) / "cached", args.jobs, cache))
        predicted = {}
        for run in ("out", "cached"):
            with open(Path(scratch) / run / "result.csv") as handle:
                predicted[run] = {row["MODEL"]: float(row["PRED_DOCKQ"]) for row in csv.DictReader(handle)}
    worst = max(abs(predicted[run][name] - e["pred_dockq"]) for run in predicted for name, e in expected.items())

    print(f"max |pred - golden|: {worst:.2e}   load average after: {load()}")
    print(f"reference pipeline, recorded (sum of per-complex times): {reference_total:6.2f} s")
    for jobs in settings:
        best = min(wall for wall, _ in timings[jobs])
        print(f"infer.py --jobs {jobs} (process start to result.csv): {summary(timings[jobs])}"
              f"   speed-up vs reference {reference_total / best:4.1f}x")
    print("parts, each alone in a fresh process (infer.py overlaps them):")
    print(f"  import torch + the network (as infer.py does):         {summary(parts['imports'])}")
    print(f"  featurise the {len(goldens)} complexes (--jobs {args.jobs}, incl. light imports): "
          f"{summary(parts['featurisation'])}")
    best_cached = min(wall for wall, _ in parts["cached"])
    print(f"infer.py again on the same files (featurisation cache hit): {summary(parts['cached'])}"
          f"   speed-up vs reference {reference_total / best_cached:4.1f}x")
    if len(settings) > 1:
        one, many = (min(wall for wall, _ in timings[jobs]) for jobs in settings)
        print(f"parallel scaling --jobs {args.jobs} vs --jobs 1: {one / many:.2f}x")


if __name__ == "__main__":
    main()
