"""infer.py end to end, as a user runs it: a subprocess on a folder of real complexes plus junk.

Most tests score the bundled examples/ with a checkpoint trained here on generated graphs (conftest.py), so
they run without the reference; only the comparison with the published predictions needs it."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import torch

from model.checkpoint import load_model, read_checkpoint, write_safetensors
from model.graph_io import load_graph
from tests.conftest import REPO_ROOT, default_sigint, single_chain_copy

EXAMPLES = REPO_ROOT / "examples"
EXAMPLE_NAMES = ["1BD2", "1HVR", "4E43"]  # examples/1BD2.pdb.gz, 1HVR.pdb, 4E43.pdb
SMALL_EXAMPLE = EXAMPLES / "1HVR.pdb"  # two chains: the quickest to featurise


def run_infer(*args: str, **extra_env: str) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if key != "TOPOQA_CHECKPOINT"} | extra_env
    # Never the user's cache: runs that do not name --cache_dir or --no_cache get a throw-away one.
    env["TOPOQA_CACHE_DIR"] = str(Path(tempfile.mkdtemp(prefix="topoqa-test-cache-")))
    return subprocess.run([sys.executable, "infer.py", *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True)


def read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def complex_folder(tmp_path_factory) -> Path:
    """The bundled examples (one gzip-compressed) plus three files that cannot be scored."""
    folder = tmp_path_factory.mktemp("complexes")
    for path in EXAMPLES.iterdir():
        if path.name != "README.md":
            shutil.copy(path, folder / path.name)
    (folder / "notes.txt").write_text("not a structure\n")
    (folder / "empty.pdb").write_text("")
    single_chain_copy(SMALL_EXAMPLE, folder / "monomer.pdb")
    return folder


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def first_run(tmp_path_factory, complex_folder, trained_checkpoint):
    """(result folder, finished process, -w graph folder) of one run on the examples."""
    out, work = tmp_path_factory.mktemp("out"), tmp_path_factory.mktemp("graphs")
    completed = run_infer("-c", str(complex_folder), "-r", str(out), "-w", str(work), "--checkpoint",
                          str(trained_checkpoint), "--jobs", "2", "--batch_size", "16", "--no_cache")
    return out, completed, work


def predictions(path: Path) -> dict[str, float]:
    return {row["MODEL"]: float(row["PRED_DOCKQ"]) for row in read_rows(path)}


def test_result_csv_matches_reference(tmp_path, golden_dirs, published_checkpoint):
    """The published checkpoint on the golden complexes gives the reference's recorded predictions."""
    folder = tmp_path / "in"
    folder.mkdir()
    for golden in golden_dirs:
        shutil.copy(golden / "input.pdb", folder / f"{golden.name}.pdb")
    completed = run_infer("-c", str(folder), "-r", str(tmp_path / "out"), "--checkpoint", str(published_checkpoint),
                          "--jobs", "2", "--no_cache")
    assert completed.returncode == 0, completed.stderr
    rows = read_rows(tmp_path / "out" / "result.csv")
    assert list(rows[0]) == ["MODEL", "PRED_DOCKQ"]
    predicted = {row["MODEL"]: float(row["PRED_DOCKQ"]) for row in rows}
    expected = {g.name: json.loads((g / "expected.json").read_text())["pred_dockq"] for g in golden_dirs}
    assert set(predicted) == set(expected)
    for name, value in expected.items():
        assert abs(predicted[name] - value) <= 1e-5, (name, predicted[name], value)


def test_every_example_is_scored_by_the_network_on_its_graph(first_run, trained_checkpoint):
    """result.csv holds, under each complex's name, what the network gives on the graph written for it."""
    out, completed, work = first_run
    assert completed.returncode == 0, completed.stderr
    rows = read_rows(out / "result.csv")
    assert list(rows[0]) == ["MODEL", "PRED_DOCKQ"]
    assert sorted(row["MODEL"] for row in rows) == EXAMPLE_NAMES
    assert sorted(path.stem for path in work.glob("*.pt")) == EXAMPLE_NAMES
    model = load_model(trained_checkpoint)
    predicted = predictions(out / "result.csv")
    for name in EXAMPLE_NAMES:
        graph = load_graph(work / f"{name}.pt")
        assert graph.name == name
        with torch.no_grad():
            expected = model(graph.x, graph.edge_index, graph.edge_attr, torch.zeros(len(graph.x), dtype=torch.long))
        assert abs(predicted[name] - expected.item()) <= 1e-6, (name, predicted[name], expected.item())


def test_unscorable_inputs_are_listed_with_reasons(first_run):
    out, completed, _ = first_run
    skipped = {row["MODEL"]: row["REASON"] for row in read_rows(out / "skipped.csv")}
    assert set(skipped) == {"notes.txt", "empty", "monomer"}
    assert "not a structure file" in skipped["notes.txt"]
    assert "empty" in skipped["empty"].lower()
    assert "chain" in skipped["monomer"].lower()
    for name in skipped:
        assert name in completed.stderr


def test_ranking_is_sorted_by_prediction(first_run):
    out, _, _ = first_run
    ranking = read_rows(out / "ranking.csv")
    values = [float(row["PRED_DOCKQ"]) for row in ranking]
    assert values == sorted(values, reverse=True)
    assert [int(row["RANK"]) for row in ranking] == list(range(1, len(ranking) + 1))
    assert {row["MODEL"] for row in ranking} == {row["MODEL"] for row in read_rows(out / "result.csv")}


def test_existing_results_are_not_overwritten(first_run, complex_folder, trained_checkpoint):
    out, _, _ = first_run
    before = (out / "result.csv").read_bytes()
    completed = run_infer("-c", str(complex_folder), "-r", str(out), "--checkpoint", str(trained_checkpoint))
    assert completed.returncode == 2
    assert "already exists" in completed.stderr and "--overwrite" in completed.stderr
    assert (out / "result.csv").read_bytes() == before


def test_same_predictions_with_safetensors_one_job_batch_of_one(
    tmp_path, first_run, complex_folder, trained_checkpoint, shared_cache
):
    weights = tmp_path / "trained.safetensors"
    write_safetensors(weights, read_checkpoint(trained_checkpoint).state_dict)
    out = tmp_path / "out"
    out.mkdir()
    (out / "result.csv").write_text("MODEL,PRED_DOCKQ\nstale,0.5\n")  # an earlier run's, which --overwrite replaces
    completed = run_infer("-c", str(complex_folder), "-r", str(out), "--checkpoint", str(weights),
                          "--jobs", "1", "--batch_size", "1", "--cache_dir", str(shared_cache), "--overwrite")
    assert completed.returncode == 0, completed.stderr
    first, second = predictions(first_run[0] / "result.csv"), predictions(out / "result.csv")
    assert sorted(first) == sorted(second) == EXAMPLE_NAMES
    assert first == second  # bit for bit: every complex is scored alone, whatever --batch_size and --jobs say


def test_labels_give_an_evaluation(tmp_path, first_run, complex_folder, trained_checkpoint, shared_cache):
    labels = tmp_path / "labels.csv"
    names = EXAMPLE_NAMES
    with open(labels, "w") as handle:
        handle.write("MODEL,DockQ,target\n")
        for index, name in enumerate(names):
            handle.write(f"{name},{0.1 + 0.2 * index},{'T1' if index < 2 else 'T2'}\n")
    out = tmp_path / "out"
    completed = run_infer("-c", str(complex_folder), "-r", str(out), "--checkpoint", str(trained_checkpoint),
                          "--labels", str(labels), "--cache_dir", str(shared_cache))
    assert completed.returncode == 0, completed.stderr
    rows = {row["TARGET"]: row for row in read_rows(out / "evaluation.csv")}
    assert set(rows) == {"T1", "T2", "ALL"}
    assert int(rows["ALL"]["MODELS"]) == len(names)
    assert "Pearson" in completed.stdout and "hit rate" in completed.stdout


def test_bad_arguments_exit_2(tmp_path, trained_checkpoint):
    empty = tmp_path / "empty"
    empty.mkdir()
    completed = run_infer("-c", str(empty), "-r", str(tmp_path / "out"), "--checkpoint", str(trained_checkpoint))
    assert completed.returncode == 2 and "no structure files" in completed.stderr
    completed = run_infer("-c", str(tmp_path / "missing"), "-r", str(tmp_path / "out"))
    assert completed.returncode == 2 and "not found" in completed.stderr
    (empty / "a.pdb").write_text("ATOM\n")
    completed = run_infer("-c", str(empty), "-r", str(tmp_path / "out"), "--checkpoint", str(tmp_path / "nope.ckpt"))
    assert completed.returncode == 2 and "nope.ckpt" in completed.stderr
    assert "Traceback" not in completed.stderr


def test_unwritable_result_folder_fails_before_featurising(tmp_path, trained_checkpoint):
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(SMALL_EXAMPLE, folder / "a.pdb")
    blocker = tmp_path / "a-file"
    blocker.write_text("the result folder cannot be created below a file\n")
    completed = run_infer("-c", str(folder), "-r", str(blocker / "out"), "--checkpoint", str(trained_checkpoint),
                          "--no_cache")
    assert completed.returncode == 2, completed.stderr
    assert f"{blocker / 'out'}: cannot write the --result_folder" in completed.stderr
    assert "Traceback" not in completed.stderr and "featurising" not in completed.stderr


def example_folder(folder: Path, names: tuple[str, ...] = ("1HVR.pdb", "4E43.pdb")) -> Path:
    folder.mkdir()
    for name in names:
        shutil.copy(REPO_ROOT / "examples" / name, folder / name)
    return folder


@pytest.mark.parametrize("whole_group", [True, False], ids=["ctrl-c", "kill-int-parent-only"])
def test_interrupt_stops_cleanly(tmp_path, trained_checkpoint, whole_group):
    folder = example_folder(tmp_path / "in")
    # An mkdssp that never ends, and workers that block once it runs: the interrupt is sure to find them both.
    endless_dssp = tmp_path / "mkdssp"
    endless_dssp.write_text("#!/bin/sh\nexec sleep 3600\n")
    endless_dssp.chmod(0o755)
    marker = tmp_path / "blocked"
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    env = {**os.environ, "TOPOQA_CACHE_DIR": str(tmp_path / "cache"), "TMPDIR": str(temporary),
           "TOPOQA_MKDSSP": str(endless_dssp), "TOPOQA_FAULT": "after-dssp-start:block",
           "TOPOQA_FAULT_MARKER": str(marker)}
    # A new session, so that the test can signal the whole process group, as a terminal's Ctrl-C does.
    process = subprocess.Popen(
        [sys.executable, "infer.py", "-c", str(folder), "-r", str(tmp_path / "out"),
         "--checkpoint", str(trained_checkpoint), "--jobs", "2", "--no_cache"],
        cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        preexec_fn=default_sigint,  # as from a terminal, whatever this test process inherited
    )
    try:
        deadline = time.monotonic() + 120
        while not marker.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)  # polling an observable state: a worker has started mkdssp and blocks
        assert marker.exists(), "no featurisation worker reached the point after mkdssp started"
        assert process.poll() is None
        if whole_group:
            os.killpg(process.pid, signal.SIGINT)
        else:
            os.kill(process.pid, signal.SIGINT)
        _, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
    assert process.returncode == 130, stderr[-2000:]
    assert "interrupted" in stderr and "Traceback" not in stderr
    assert not (tmp_path / "out" / "result.csv").exists()
    # Exited processes waiting to be collected (state Z) are gone already; anything else is left running.
    listed = subprocess.run(["ps", "-o", "pid=,stat=,args=", "-g", str(process.pid)], capture_output=True, text=True)
    survivors = [line for line in listed.stdout.splitlines() if not line.split()[1].startswith("Z")]
    assert survivors == [], "processes left behind:\n" + "\n".join(survivors)
    assert list(temporary.iterdir()) == []  # mkdssp's temporary copies are gone too


@pytest.fixture(scope="module")
def undisturbed_example_scores(tmp_path_factory, trained_checkpoint) -> dict[str, float]:
    root = tmp_path_factory.mktemp("undisturbed")
    folder = example_folder(root / "in")
    completed = run_infer("-c", str(folder), "-r", str(root / "out"), "--checkpoint", str(trained_checkpoint),
                          "--jobs", "2", "--no_cache")
    assert completed.returncode == 0, completed.stderr
    return {row["MODEL"]: float(row["PRED_DOCKQ"]) for row in read_rows(root / "out" / "result.csv")}


@pytest.mark.parametrize("action", ["die", "die-once"])
def test_a_worker_killed_mid_complex_costs_only_time_or_that_complex(
    tmp_path, trained_checkpoint, undisturbed_example_scores, action
):
    # die: every process 4E43 runs in is killed once its topology is done, so it alone is skipped. die-once: the
    # first only, so 4E43 is featurised again in a process of its own and every complex is scored.
    folder = example_folder(tmp_path / "in")
    completed = run_infer("-c", str(folder), "-r", str(tmp_path / "out"), "--checkpoint", str(trained_checkpoint),
                          "--jobs", "2", "--no_cache", TOPOQA_FAULT=f"after-topology@4E43:{action}",
                          TOPOQA_FAULT_MARKER=str(tmp_path / "died"))
    assert completed.returncode == 0, completed.stderr
    scored = {row["MODEL"]: float(row["PRED_DOCKQ"]) for row in read_rows(tmp_path / "out" / "result.csv")}
    skipped = {row["MODEL"]: row["REASON"] for row in read_rows(tmp_path / "out" / "skipped.csv")}
    if action == "die":
        assert set(scored) == {"1HVR"} and set(skipped) == {"4E43"}
        assert skipped["4E43"].startswith("the featurisation process died"), skipped
    else:
        assert (tmp_path / "died").exists() and skipped == {}
    # Each complex is scored alone: what happened to the others changes none of its bits.
    assert scored == {name: undisturbed_example_scores[name] for name in scored}


def test_work_dir_graphs_are_not_replaced_silently(tmp_path, trained_checkpoint):
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(SMALL_EXAMPLE, folder / "dove.pdb")
    work_dir = tmp_path / "graphs"
    work_dir.mkdir()
    users_file = work_dir / "dove.pt"
    users_file.write_bytes(b"the user's own graph file")
    arguments = ["-c", str(folder), "-w", str(work_dir), "--checkpoint", str(trained_checkpoint), "--no_cache"]
    refused = run_infer(*arguments, "-r", str(tmp_path / "out"))
    assert refused.returncode == 2 and f"{users_file} already exists" in refused.stderr
    assert users_file.read_bytes() == b"the user's own graph file"
    assert not (tmp_path / "out").exists()  # refused before any work
    replaced = run_infer(*arguments, "-r", str(tmp_path / "out"), "--overwrite")
    assert replaced.returncode == 0, replaced.stderr
    assert load_graph(users_file).name == "dove"


def test_nothing_scorable_exits_1(tmp_path, trained_checkpoint):
    folder = tmp_path / "in"
    folder.mkdir()
    single_chain_copy(SMALL_EXAMPLE, folder / "monomer.pdb")
    completed = run_infer("-c", str(folder), "-r", str(tmp_path / "out"), "--checkpoint", str(trained_checkpoint))
    assert completed.returncode == 1
    assert "monomer" in completed.stderr
    assert read_rows(tmp_path / "out" / "result.csv") == []


def test_importing_infer_leaves_torch_for_later():
    # infer.py forks its featurisation workers before importing torch: they must never inherit or import it.
    completed = subprocess.run([sys.executable, "-c", "import sys, infer; print(sorted({'torch', 'pandas', "
                                "'scipy'} & {name.split('.')[0] for name in sys.modules}))"],
                               cwd=REPO_ROOT, capture_output=True, text=True)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == "[]"


@pytest.mark.parametrize("checkpoint_format", ["safetensors", "ckpt"])
def test_checkpoint_geometry_decides_the_graphs(tmp_path, trained_checkpoint, checkpoint_format):
    # A safetensors header names its geometry before featurisation starts; a Lightning .ckpt is read later
    # (featurisation starts with xyy meanwhile), and a different geometry there means featurising again.
    from model.checkpoint import LIGHTNING_METADATA_KEY

    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(SMALL_EXAMPLE, folder / "dove.pdb")
    if checkpoint_format == "safetensors":
        checkpoint = tmp_path / "xyz.safetensors"
        write_safetensors(checkpoint, read_checkpoint(trained_checkpoint).state_dict, {"geometry": "xyz"})
    else:
        checkpoint = tmp_path / "xyz.ckpt"
        lightning = torch.load(trained_checkpoint, map_location="cpu", weights_only=True)
        lightning[LIGHTNING_METADATA_KEY] = {"geometry": "xyz"}
        torch.save(lightning, checkpoint)
    completed = run_infer("-c", str(folder), "-r", str(tmp_path / "out"), "-w", str(tmp_path / "graphs"),
                          "--checkpoint", str(checkpoint), "--jobs", "2", "--no_cache")
    assert completed.returncode == 0, completed.stderr
    assert "warning" not in completed.stderr
    assert load_graph(tmp_path / "graphs" / "dove.pt").geometry == "xyz"
