"""Screening with infer.py: the same bytes from any number of processes (`accelerate launch`), any company and
batch size, and a killed run finished by --resume without scoring anything twice.

Subprocesses on the bundled examples plus unscorable files, with the checkpoint trained here (conftest.py), so
that nothing needs the reference."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import pytest

from model.checkpoint import read_checkpoint, write_safetensors
from scoring.partial import PartialResults, Record
from tests.conftest import REPO_ROOT, needs_mkdssp, single_chain_copy

EXAMPLES = REPO_ROOT / "examples"
OUTPUTS = ("result.csv", "ranking.csv", "skipped.csv", "evaluation.csv")


def environment(**extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in ("TOPOQA_CHECKPOINT", "TOPOQA_FAULT")}
    env["TOPOQA_CACHE_DIR"] = tempfile.mkdtemp(prefix="topoqa-test-cache-")  # never the user's cache
    return env | extra


def free_port() -> int:
    with socket.socket() as probe:  # other test runs may be on the machine: never accelerate's fixed default port
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def infer_command(processes: int, *args: str) -> list[str]:
    if processes == 1:
        return [sys.executable, "infer.py", *args]
    # What a 2-machine launch looks like, on one machine: --num_machines 1 with the main process's address.
    launch = ["-m", "accelerate.commands.launch", "--config_file", "accelerate_config/screen.yaml",
              "--num_machines", "1", "--machine_rank", "0", "--main_process_ip", "127.0.0.1",
              "--main_process_port", str(free_port()), "--num_processes", str(processes)]
    return [sys.executable, *launch, "infer.py", *args]


def run_infer(processes: int, *args: str, **extra_env: str) -> subprocess.CompletedProcess:
    return subprocess.run(infer_command(processes, *args), cwd=REPO_ROOT, env=environment(**extra_env),
                          capture_output=True, text=True, timeout=900)


def output_bytes(folder: Path) -> dict[str, bytes]:
    return {name: (folder / name).read_bytes() for name in OUTPUTS if (folder / name).exists()}


@pytest.fixture(scope="module")
def screen_folder(tmp_path_factory) -> Path:
    """The examples, a copy of one under another name, and three files that cannot be scored."""
    folder = tmp_path_factory.mktemp("screen")
    for path in EXAMPLES.iterdir():
        if path.name != "README.md":
            shutil.copy(path, folder / path.name)
    shutil.copy(EXAMPLES / "1HVR.pdb", folder / "twin.pdb")
    (folder / "notes.txt").write_text("not a structure\n")
    (folder / "empty.pdb").write_text("")
    single_chain_copy(EXAMPLES / "1HVR.pdb", folder / "monomer.pdb")
    return folder


@pytest.fixture(scope="module")
def labels(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("labels") / "labels.csv"
    path.write_text("MODEL,DockQ,target\n1BD2,0.2,T1\n1HVR,0.8,T1\n4E43,0.5,T2\ntwin,0.7,T2\n")
    return path


@pytest.fixture(scope="module")
def one_process(tmp_path_factory, screen_folder, labels, trained_checkpoint) -> Path:
    """The outputs of `python infer.py` on the screen folder."""
    out = tmp_path_factory.mktemp("one") / "out"
    completed = run_infer(1, "-c", str(screen_folder), "-r", str(out), "--checkpoint", str(trained_checkpoint),
                          "--labels", str(labels), "--jobs", "2", "--no_cache")
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert set(output_bytes(out)) == set(OUTPUTS)
    assert not (out / "partial").exists()  # finished: nothing left to resume
    return out


@needs_mkdssp
def test_two_processes_write_the_same_bytes(tmp_path, screen_folder, labels, trained_checkpoint, one_process):
    out = tmp_path / "out"
    completed = run_infer(2, "-c", str(screen_folder), "-r", str(out), "--checkpoint", str(trained_checkpoint),
                          "--labels", str(labels), "--jobs", "1", "--no_cache")
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert output_bytes(out) == output_bytes(one_process)
    skipped = [line.split(",")[0] for line in (out / "skipped.csv").read_text().splitlines()[1:]]
    assert skipped == ["notes.txt", "empty", "monomer"]  # each with its reason, as one process gives it
    assert completed.stdout.count("scored 4 of 6 complexes") == 1  # the main process reports, once
    # One bar for the run: the main process's, which counts the other's complexes too.
    assert completed.stderr.count("scoring:   0%") == 1 and "| 6/6 [" in completed.stderr
    assert not (out / "partial").exists()


def predictions(folder: Path) -> dict[str, str]:
    lines = (folder / "result.csv").read_text().splitlines()[1:]
    return dict(line.split(",") for line in lines)


@needs_mkdssp
def test_a_complex_gets_the_same_bits_whatever_it_is_scored_with(tmp_path, trained_checkpoint):
    """1HVR alone, then as 4 copies at the start, middle and end of 16 complexes, batch size 16 and 1."""
    cache = str(tmp_path / "cache")  # the copies are featurised once: this is about the scoring
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(EXAMPLES / "1HVR.pdb", alone / "1HVR.pdb")
    completed = run_infer(1, "-c", str(alone), "-r", str(tmp_path / "out-alone"), "--checkpoint",
                          str(trained_checkpoint), "--cache_dir", cache)
    assert completed.returncode == 0, completed.stderr[-3000:]
    expected = predictions(tmp_path / "out-alone")["1HVR"]

    crowd = tmp_path / "crowd"
    crowd.mkdir()
    sources = ["1BD2.pdb.gz", "4E43.pdb"]
    copies = {0, 7, 8, 15}
    for position in range(16):
        source = "1HVR.pdb" if position in copies else sources[position % 2]
        suffix = ".pdb.gz" if source.endswith(".gz") else ".pdb"
        shutil.copy(EXAMPLES / source, crowd / f"m{position:02d}{suffix}")
    for batch_size in ("16", "1"):
        out = tmp_path / f"out-{batch_size}"
        completed = run_infer(1, "-c", str(crowd), "-r", str(out), "--checkpoint", str(trained_checkpoint),
                              "--cache_dir", cache, "--batch_size", batch_size)
        assert completed.returncode == 0, completed.stderr[-3000:]
        scores = predictions(out)
        assert len(scores) == 16
        assert {scores[f"m{position:02d}"] for position in copies} == {expected}, batch_size
        assert len(set(scores.values())) == 3  # three structures, three scores: nothing got mixed up


def partial_records(out: Path) -> dict[str, Record]:
    return PartialResults(out).records()


def kill_whole_run(process: subprocess.Popen) -> None:
    """SIGKILL every process group of the run at once, as a job scheduler ends a job: the launcher's, and those
    of the processes it started (torchrun starts each in a session of its own), with their workers."""
    groups = {process.pid}
    try:
        for child in psutil.Process(process.pid).children(recursive=True):
            groups.add(os.getpgid(child.pid))
    except (psutil.Error, ProcessLookupError):
        pass  # ended meanwhile: its group is gone or in the set already
    for group in groups:
        try:
            os.killpg(group, signal.SIGKILL)
        except ProcessLookupError:
            pass


def kill_after_recording(command: list[str], marker: Path, env: dict[str, str]) -> None:
    """Run until a process blocks at the fault point after recording a complex, then SIGKILL the whole run."""
    process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 600
        while not marker.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)  # polling an observable state: a process recorded the complex and blocks
        assert marker.exists(), f"no process reached the fault point: {process.poll()}"
    finally:
        kill_whole_run(process)
        process.communicate(timeout=120)


@needs_mkdssp
@pytest.mark.parametrize(("processes", "resumed_with"), [(1, 1), (2, 1)], ids=["python", "2-processes-then-1"])
def test_a_killed_run_resumes_to_the_same_bytes_scoring_only_what_is_missing(
    tmp_path, screen_folder, labels, trained_checkpoint, one_process, processes, resumed_with
):
    out = tmp_path / "out"
    arguments = ["-c", str(screen_folder), "-r", str(out), "--checkpoint", str(trained_checkpoint),
                 "--labels", str(labels), "--jobs", "1", "--no_cache"]
    marker = tmp_path / "recorded"
    kill_after_recording(infer_command(processes, *arguments), marker,
                         environment(TOPOQA_FAULT="complex-recorded@1HVR:block", TOPOQA_FAULT_MARKER=str(marker)))
    finished = partial_records(out)
    assert "1HVR.pdb" in finished
    assert not (out / "result.csv").exists()

    refused = run_infer(1, *arguments)
    assert refused.returncode == 2 and "--resume" in refused.stderr and "unfinished run" in refused.stderr

    # A finished complex featurised again would kill every process it runs in: it would show in skipped.csv.
    faults = ",".join(f"complex-start@{record.model}:die" for record in finished.values())
    resumed = run_infer(resumed_with, *arguments, "--resume", TOPOQA_FAULT=faults)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    remaining = 6 - len(finished)  # of the 6 PDB files (notes.txt is not one)
    assert f"{len(finished)} of 6 complexes are finished already" in resumed.stderr
    assert f"scoring the other {remaining}" in resumed.stderr
    assert output_bytes(out) == output_bytes(one_process)
    assert not (out / "partial").exists()


@needs_mkdssp
def test_leftover_partial_results_are_refused_or_discarded(tmp_path, trained_checkpoint):
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(EXAMPLES / "1HVR.pdb", folder / "1HVR.pdb")
    out = tmp_path / "out"
    arguments = ["-c", str(folder), "-r", str(out), "--checkpoint", str(trained_checkpoint), "--no_cache"]
    marker = tmp_path / "recorded"
    kill_after_recording(infer_command(1, *arguments), marker,
                         environment(TOPOQA_FAULT="complex-recorded:block", TOPOQA_FAULT_MARKER=str(marker)))
    assert set(partial_records(out)) == {"1HVR.pdb"}

    weights = tmp_path / "same-weights.safetensors"  # same numbers, another file: not the run that was killed
    write_safetensors(weights, read_checkpoint(trained_checkpoint).state_dict)
    other = run_infer(1, "-c", str(folder), "-r", str(out), "--checkpoint", str(weights), "--no_cache", "--resume")
    assert other.returncode == 2 and "checkpoint_sha256" in other.stderr, other.stderr
    assert "Traceback" not in other.stderr

    recorded = json.loads((out / "partial" / "settings.json").read_text())
    assert recorded["geometry"] == "xyy"
    started_again = run_infer(1, *arguments, "--overwrite")
    assert started_again.returncode == 0, started_again.stderr[-3000:]
    assert "resuming" not in started_again.stderr
    assert not (out / "partial").exists()


def test_partial_records_survive_a_torn_line(tmp_path):
    partial = PartialResults(tmp_path)
    partial.start({"geometry": "xyy"})
    first = Record("a.pdb", "a", 0.1234567, None)
    second = Record("b.pdb", "b", None, "only one chain")
    writer = partial.writer(0)
    writer.append([first, second])
    writer.close()
    path = partial.folder / "process-0.jsonl"
    with open(path, "ab") as handle:
        handle.write(b'{"file": "c.pdb", "model": "c", "pred_d')  # a kill in the middle of a line
    assert partial.records() == {"a.pdb": first, "b.pdb": second}
    third = Record("c.pdb", "c", 0.5, None)
    writer = partial.writer(0)  # the same process again, after --resume: the torn line is cut off first
    writer.append([third])
    writer.close()
    assert partial.records() == {"a.pdb": first, "b.pdb": second, "c.pdb": third}
    assert path.read_bytes().count(b"\n") == 3
    assert partial.settings() == {"geometry": "xyy"}
