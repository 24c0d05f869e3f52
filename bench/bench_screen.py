"""Screening scale: peak memory and complexes per second of infer.py for growing numbers of inputs, one and two
processes, measured in the same run.

    python bench/bench_screen.py [--sizes 200,2000] [--processes 1,2] [--checkpoint CKPT]

For each size, a folder of that many copies of the bundled examples under distinct names (so every one is
featurised: the cache is disabled), scored by `python infer.py` (one process, --jobs = all cores) and by
`accelerate launch --num_processes 2 infer.py` (the cores shared between the two). The process tree's memory is
sampled every 0.2 s (psutil): the peak of the largest process (the scoring process: graphs must not pile up
there) and the peak of the whole tree. Each run's result.csv must equal the 1-process run's, byte for byte.
Other processes on the machine slow every run alike; the load average is printed with the numbers.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from model.checkpoint_paths import default_checkpoint_path  # noqa: E402

EXAMPLES = sorted(path for path in (REPO / "examples").iterdir() if path.name != "README.md")


def make_inputs(folder: Path, count: int) -> None:
    folder.mkdir(parents=True)
    for index in range(count):
        source = EXAMPLES[index % len(EXAMPLES)]
        suffix = ".pdb.gz" if source.name.endswith(".gz") else ".pdb"
        shutil.copy(source, folder / f"copy{index:05d}{suffix}")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def command(processes: int, folder: Path, out: Path, checkpoint: Path) -> list[str]:
    infer = ["infer.py", "-c", str(folder), "-r", str(out), "--checkpoint", str(checkpoint), "--no_cache"]
    if processes == 1:
        return [sys.executable, *infer]
    return [sys.executable, "-m", "accelerate.commands.launch", "--config_file", "accelerate_config/screen.yaml",
            "--num_processes", str(processes), "--main_process_port", str(free_port()), *infer]


def tree_rss(root: psutil.Process) -> dict[int, int]:
    """RSS in bytes of `root` and every process below it."""
    sizes = {}
    for process in [root, *root.children(recursive=True)]:
        try:
            sizes[process.pid] = process.memory_info().rss
        except psutil.Error:
            pass  # ended meanwhile
    return sizes


def measure(argv: list[str]) -> tuple[float, int, int]:
    """(wall seconds, peak RSS of the largest single process, peak RSS of the whole tree) of one run."""
    started = time.perf_counter()
    process = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "TQDM_DISABLE": "1"})
    peaks = {"one": 0, "tree": 0}
    root = psutil.Process(process.pid)
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            sizes = tree_rss(root)
            if sizes:
                peaks["one"] = max(peaks["one"], max(sizes.values()))
                peaks["tree"] = max(peaks["tree"], sum(sizes.values()))
            stop.wait(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, stderr = process.communicate()
    stop.set()
    sampler.join()
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{stderr[-3000:]}")
    return time.perf_counter() - started, peaks["one"], peaks["tree"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="200,2000", help="numbers of inputs, comma-separated (default 200,2000)")
    parser.add_argument("--processes", default="1,2", help="process counts, comma-separated (default 1,2)")
    parser.add_argument("--checkpoint", help="default: $TOPOQA_CHECKPOINT, else the published checkpoint")
    args = parser.parse_args()
    checkpoint = Path(args.checkpoint) if args.checkpoint else default_checkpoint_path()
    if checkpoint is None or not checkpoint.is_file():
        raise SystemExit("no checkpoint: pass --checkpoint or set TOPOQA_CHECKPOINT")
    sizes = [int(size) for size in args.sizes.split(",")]
    process_counts = [int(count) for count in args.processes.split(",")]
    print(f"{os.cpu_count()} CPUs; load average at start {os.getloadavg()[0]:.1f}; checkpoint {checkpoint}")
    print(f"{'inputs':>7} {'processes':>9} {'seconds':>8} {'complex/s':>9} {'peak RSS, largest process':>26} "
          f"{'peak RSS, all':>14} {'load':>5}")
    with tempfile.TemporaryDirectory(prefix="bench-screen-") as scratch:
        for size in sizes:
            folder = Path(scratch) / f"in-{size}"
            make_inputs(folder, size)
            reference = None
            for processes in process_counts:
                out = Path(scratch) / f"out-{size}-{processes}"
                seconds, largest, tree = measure(command(processes, folder, out, checkpoint))
                result = (out / "result.csv").read_bytes()
                reference = reference or result
                same = "" if result == reference else "  <- result.csv DIFFERS from the first run's"
                print(f"{size:>7} {processes:>9} {seconds:>8.1f} {size / seconds:>9.2f} {largest / 2**20:>22.0f} MiB "
                      f"{tree / 2**20:>10.0f} MiB {os.getloadavg()[0]:>5.1f}{same}", flush=True)
                shutil.rmtree(out)
            shutil.rmtree(folder)


if __name__ == "__main__":
    main()
