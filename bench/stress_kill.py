"""Kill featurisation processes at random moments: no run may hang, lose or duplicate a complex, or change a number.

    .venv/bin/python bench/stress_kill.py [--kills 200] [--infer-runs 3] [--seed 1] [--deadline 180]

Each run featurises copies of the bundled examples (distinct names, no cache) in a fresh process, as
`FeaturizeJobs` with one of several settings (a pool of 2 or 3, a background pool of 1 or 2), while this
script SIGKILLs featurisation processes of that run (its direct children: pool workers and the processes
that run a lost complex alone; not mkdssp) at random moments: some as soon as they appear (start-up), the
others after random delays. A few runs of infer.py are killed the same way. Runs go on until --kills kills
have landed (and at least --infer-runs of them were infer.py runs).

Checked for every run: it ends before --deadline seconds (else it counts as a hang and its process group is
killed); every complex comes back exactly once; every scored complex's arrays (infer.py: its prediction) are
bit-identical to an undisturbed run's; a skipped complex has the "process died" reason and every process it
names was killed here; no process of the run is left, nor anything in its temporary folder.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = ("1HVR.pdb", "4E43.pdb", "1BD2.pdb.gz")
DIED = "the featurisation process died"
POLL_SECONDS = 0.002

# Featurises the files named on the command line with the settings in $STRESS_SETTINGS; prints one JSON line
# per file: name, reason, and a digest of the arrays' bytes, shapes and types.
FEATURISE_SCRIPT = """
import json, os, sys
from bench.stress_kill import arrays_digest
from data.featurize import FeaturizeJobs
settings = json.loads(os.environ["STRESS_SETTINGS"])
for result in FeaturizeJobs(sys.argv[1:], **settings).results(progress=False):
    digest = arrays_digest(result.arrays) if result.arrays is not None else None
    print(json.dumps({"name": result.name, "reason": result.reason, "digest": digest}))
"""

SETTINGS = (
    {"jobs": 2},
    {"jobs": 3},
    {"jobs": 2, "background": True},
    {"jobs": 1, "background": True},
)


@dataclass
class Run:
    """One run under fire: what came back and what was done to it."""

    kind: str
    settings: dict
    names: list[str]
    killed: list[int] = field(default_factory=list)
    hung: bool = False
    returncode: int | None = None
    outcomes: list[dict] = field(default_factory=list)  # name, reason, digest (featurisation) or prediction
    stderr: str = ""
    strays: list[str] = field(default_factory=list)
    leftovers: list[str] = field(default_factory=list)


def arrays_digest(arrays) -> str:
    """SHA-256 of a graph's arrays: their types, shapes and bytes."""
    digest = hashlib.sha256()
    for array in (arrays.x, arrays.edge_index, arrays.edge_attr):
        digest.update(f"{array.dtype} {array.shape}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def make_inputs(folder: Path, copies: int) -> list[Path]:
    """`copies` copies of each bundled example, under distinct names."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for copy in range(copies):
        for example in EXAMPLES:
            stem, _, suffix = example.partition(".")
            target = folder / f"{stem}_{copy}.{suffix}"
            shutil.copy(REPO / "examples" / example, target)
            paths.append(target)
    return paths


def proc_stat(pid: str) -> tuple[str, int, int] | None:
    """(command name, parent pid, process group) of a live process, from /proc; None for a process that has
    exited (a zombie: only its exit status is left, for whoever adopted it to collect)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            text = handle.read()
    except OSError:
        return None
    name = text[text.index("(") + 1 : text.rindex(")")]
    fields = text[text.rindex(")") + 2 :].split()
    if fields[0] == "Z":
        return None
    return name, int(fields[1]), int(fields[2])


def featurisation_processes(run_pid: int) -> list[int]:
    """The run's direct children other than mkdssp: pool workers and processes that run a complex alone."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = proc_stat(entry)
            if stat is not None and stat[1] == run_pid and stat[0] != "mkdssp":
                found.append(int(entry))
    return found


def processes_in_group(group: int) -> list[str]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = proc_stat(entry)
            if stat is not None and stat[2] == group:
                found.append(f"{entry} {stat[0]}")
    return found


def kill_plan(rng: random.Random, kills: int) -> list[float | None]:
    """Per kill: None to kill a process as soon as it appears (start-up), else a delay after the previous kill."""
    return [None if rng.random() < 0.3 else rng.uniform(0.0, 2.5) for _ in range(kills)]


def run_under_fire(
    command: list[str], env: dict[str, str], plan: list[float | None], rng: random.Random, deadline: float,
    scratch: Path,
) -> tuple[int | None, bool, list[int], str, str, list[str]]:
    """Run `command` in a session of its own, killing featurisation processes by `plan`.

    Returns (exit status, hung, killed pids, stdout, stderr, processes of the session left afterwards).
    """
    out, err = scratch / "stdout", scratch / "stderr"
    with open(out, "w") as stdout, open(err, "w") as stderr:
        process = subprocess.Popen(command, cwd=REPO, env=env, stdout=stdout, stderr=stderr, start_new_session=True)
    started = time.monotonic()
    next_kill = started + (plan[0] or 0.0) if plan else None
    seen: set[int] = set()
    killed: list[int] = []
    hung = False
    while process.poll() is None:
        now = time.monotonic()
        if now - started > deadline:
            hung = True
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            break
        if plan:
            alive = featurisation_processes(process.pid)
            new = [pid for pid in alive if pid not in seen]
            seen.update(alive)
            target = None
            if plan[0] is None and new:
                target = rng.choice(new)
            elif plan[0] is not None and now >= next_kill and alive:
                target = rng.choice(alive)
            if target is not None:
                try:
                    os.kill(target, signal.SIGKILL)
                    killed.append(target)
                except ProcessLookupError:
                    pass  # it ended between the listing and the kill: not a kill
                else:
                    plan.pop(0)
                    if plan:
                        next_kill = time.monotonic() + (plan[0] or 0.0)
        time.sleep(POLL_SECONDS)
    # Whatever the run left behind: processes of its group (mkdssp, a worker), once the group leader is gone.
    strays = processes_in_group(process.pid)
    if strays:
        os.killpg(process.pid, signal.SIGKILL)
    return process.returncode, hung, killed, out.read_text(), err.read_text(), strays


def died_pids(reason: str) -> list[int]:
    return [int(pid) for pid in re.findall(r"pid (\d+)", reason)]


def featurise_run(
    paths: list[Path], settings: dict, plan: list[float | None], rng: random.Random, deadline: float, scratch: Path,
    fault: str | None = None,
) -> Run:
    """One featurisation run in a fresh process, under fire by `plan` (and `fault`, a TOPOQA_FAULT value)."""
    scratch.mkdir(parents=True, exist_ok=True)
    temporary = scratch / "tmp"
    temporary.mkdir()
    env = {**os.environ, "STRESS_SETTINGS": json.dumps(settings), "TMPDIR": str(temporary),
           "PYTHONPATH": str(REPO)}
    env.pop("TOPOQA_FAULT", None)
    if fault:
        env["TOPOQA_FAULT"] = fault
        env["TOPOQA_FAULT_MARKER"] = str(scratch / "fault-marker")
    run = Run("featurize", settings, [path_name(p) for p in paths])
    code, run.hung, run.killed, stdout, run.stderr, run.strays = run_under_fire(
        [sys.executable, "-c", FEATURISE_SCRIPT, *map(str, paths)], env, plan, rng, deadline, scratch
    )
    run.returncode = code
    run.outcomes = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
    run.leftovers = sorted(str(p.relative_to(temporary)) for p in temporary.rglob("*"))
    return run


def infer_run(
    folder: Path, checkpoint: Path, plan: list[float | None], rng: random.Random, deadline: float, scratch: Path
) -> Run:
    """One infer.py run (--jobs 2, no cache) under fire; outcomes from result.csv and skipped.csv."""
    scratch.mkdir(parents=True, exist_ok=True)
    temporary = scratch / "tmp"
    temporary.mkdir()
    out = scratch / "out"
    env = {key: value for key, value in os.environ.items() if not key.startswith("TOPOQA_FAULT")}
    env["TMPDIR"] = str(temporary)
    command = [sys.executable, "infer.py", "-c", str(folder), "-r", str(out), "--checkpoint", str(checkpoint),
               "--jobs", "2", "--no_cache"]
    run = Run("infer", {"jobs": 2}, sorted(path_name(p) for p in folder.iterdir()))
    code, run.hung, run.killed, _, run.stderr, run.strays = run_under_fire(command, env, plan, rng, deadline, scratch)
    run.returncode = code
    if (out / "result.csv").exists():
        with open(out / "result.csv") as handle:
            run.outcomes += [{"name": row["MODEL"], "reason": None, "digest": row["PRED_DOCKQ"]}
                             for row in csv.DictReader(handle)]
    if (out / "skipped.csv").exists():
        with open(out / "skipped.csv") as handle:
            run.outcomes += [{"name": row["MODEL"], "reason": row["REASON"], "digest": None}
                             for row in csv.DictReader(handle)]
    run.leftovers = sorted(str(p.relative_to(temporary)) for p in temporary.rglob("*"))
    return run


def path_name(path: Path) -> str:
    from data.featurize import complex_name

    return complex_name(path)


def problems(run: Run, expected: dict[str, str]) -> dict[str, list[str]]:
    """Everything wrong with a run, by kind; empty lists when it is right. `expected`: name -> undisturbed digest."""
    found: dict[str, list[str]] = {key: [] for key in
                                   ("hangs", "errors", "lost", "duplicated", "mismatches", "bad skips", "strays",
                                    "temporary files")}
    if run.hung:
        found["hangs"].append(f"{run.kind} {run.settings}: no end after the deadline")
        return found
    if run.returncode != 0:
        found["errors"].append(f"{run.kind} {run.settings}: exit status {run.returncode}: {run.stderr[-1500:]}")
    names = [outcome["name"] for outcome in run.outcomes]
    found["lost"] += sorted(set(run.names) - set(names))
    found["duplicated"] += sorted({name for name in names if names.count(name) > 1})
    for outcome in run.outcomes:
        if outcome["reason"] is None:
            if outcome["digest"] != expected.get(outcome["name"]):
                found["mismatches"].append(outcome["name"])
        elif not outcome["reason"].startswith(DIED):
            found["bad skips"].append(f"{outcome['name']}: {outcome['reason']}")
        else:
            pids = died_pids(outcome["reason"])
            if not pids or any(pid not in run.killed for pid in pids):
                found["bad skips"].append(f"{outcome['name']}: died, not all by our kills: {outcome['reason']}")
    found["strays"] += run.strays
    found["temporary files"] += run.leftovers
    return found


def skipped_after_kills(run: Run) -> int:
    return sum(1 for outcome in run.outcomes if outcome["reason"] and outcome["reason"].startswith(DIED))


def untrained_checkpoint(path: Path) -> Path:
    """The network's initial weights (fixed seed): infer.py needs a checkpoint, and any fixed one compares."""
    import torch

    from model.checkpoint import write_safetensors
    from model.topoqa import TopoQA

    torch.manual_seed(0)
    write_safetensors(path, TopoQA().state_dict())
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=200, help="kills to land in all (default 200)")
    parser.add_argument("--infer-runs", type=int, default=3, help="runs of infer.py among them (default 3)")
    parser.add_argument("--copies", type=int, default=2, help="copies of each example per run (default 2)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--deadline", type=float, default=180.0, help="seconds after which a run counts as hung")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    started = time.monotonic()
    totals = {"runs": 0, "featurize runs": 0, "infer runs": 0, "kills": 0, "skipped after kills": 0}
    failures: dict[str, list[str]] = {}
    with tempfile.TemporaryDirectory(prefix="topoqa-stress-") as scratch:
        scratch = Path(scratch)
        paths = make_inputs(scratch / "in", args.copies)
        undisturbed = featurise_run(paths, {"jobs": 2}, [], rng, args.deadline, scratch / "undisturbed")
        assert not any(problems(undisturbed, {o["name"]: o["digest"] for o in undisturbed.outcomes}).values())
        assert all(o["digest"] for o in undisturbed.outcomes), undisturbed.outcomes
        expected = {o["name"]: o["digest"] for o in undisturbed.outcomes}
        checkpoint = untrained_checkpoint(scratch / "untrained.safetensors")
        calm_infer = infer_run(scratch / "in", checkpoint, [], rng, args.deadline, scratch / "infer-undisturbed")
        predictions = {o["name"]: o["digest"] for o in calm_infer.outcomes}
        assert calm_infer.returncode == 0 and all(predictions.values()), calm_infer.stderr[-2000:]
        print(f"undisturbed: {len(expected)} complexes featurised, {len(predictions)} scored by infer.py")
        while totals["kills"] < args.kills or totals["infer runs"] < args.infer_runs:
            number = totals["runs"]
            plan = kill_plan(rng, rng.randint(1, 5))
            if totals["infer runs"] < args.infer_runs and number % 15 == 14:
                run = infer_run(scratch / "in", checkpoint, plan, rng, args.deadline, scratch / f"run-{number}")
                reference = predictions
            else:
                settings = SETTINGS[number % len(SETTINGS)]
                run = featurise_run(paths, settings, plan, rng, args.deadline, scratch / f"run-{number}")
                reference = expected
            totals["runs"] += 1
            totals[f"{run.kind} runs"] += 1
            totals["kills"] += len(run.killed)
            totals["skipped after kills"] += skipped_after_kills(run)
            for kind, items in problems(run, reference).items():
                failures.setdefault(kind, []).extend(f"run {number}: {item}" for item in items)
            shutil.rmtree(scratch / f"run-{number}", ignore_errors=True)
            print(f"run {number:3d} {run.kind:9s} {json.dumps(run.settings):34s} kills {len(run.killed)} "
                  f"skipped {skipped_after_kills(run)}  (kills so far {totals['kills']})", flush=True)
    wall = time.monotonic() - started
    print(f"\nkills {totals['kills']}, runs {totals['runs']} ({totals['featurize runs']} FeaturizeJobs, "
          f"{totals['infer runs']} infer.py), wall time {wall:.0f} s")
    for kind in ("hangs", "errors", "lost", "duplicated", "mismatches", "bad skips", "strays", "temporary files"):
        items = failures.get(kind, [])
        print(f"{kind}: {len(items)}" + "".join(f"\n  {item}" for item in items[:10]))
    print(f"skipped after their own processes were killed (each verified): {totals['skipped after kills']}")
    return 1 if any(failures.values()) else 0


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    sys.exit(main())
