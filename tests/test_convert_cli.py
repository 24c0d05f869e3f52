"""The converter command line (`python convert.py`) on the published checkpoint and on one that train.py
writes here from generated graphs (conftest.py), so that the converter is tested without the reference too."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from convert import main
from data.files import sha256_file
from model.checkpoint import read_checkpoint
from model.graph_io import load_graph
from model.topoqa import TopoQA
from tests.conftest import REPO_ROOT, need_reference
from tests.test_checkpoint_io import _TouchMarker, assert_same_tree

EXAMPLE = REPO_ROOT / "examples" / "1HVR.pdb"  # two chains: the quickest bundled complex to featurise


@pytest.fixture
def graph_arguments(request, lightning_file) -> tuple[list, str]:
    """verify's graph-set arguments for `lightning_file`, and how its report names that set: the reference's
    golden graphs (the default) for the published checkpoint, the generated run's graphs otherwise."""
    if lightning_file.name == "topoqa.ckpt.original":
        golden_dirs = request.getfixturevalue("golden_dirs")
        return [], f"predictions on {len(golden_dirs)} golden graphs"
    graphs = request.getfixturevalue("generated_graphs")
    return ["--graphs", graphs], f"predictions on {len(list(graphs.glob('*.pt')))} graphs from {graphs}"


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main([str(arg) for arg in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_line_error(err: str, *expected: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    for text in expected:
        assert text in lines[0], (text, lines[0])


def perturbed_copy(source, target, key: str, delta: float = 1e-3) -> None:
    checkpoint = torch.load(source, map_location="cpu", weights_only=True)
    checkpoint["state_dict"][key] = checkpoint["state_dict"][key] + delta
    torch.save(checkpoint, target)


def test_round_trip_keeps_everything(tmp_path, capsys, lightning_file):
    weights, back = tmp_path / "topoqa.safetensors", tmp_path / "topoqa.ckpt"
    assert run(capsys, "to-safetensors", lightning_file, weights)[0] == 0
    companion = tmp_path / "topoqa.training.safetensors"
    assert companion.exists()
    code, out, _ = run(capsys, "to-lightning", weights, back)
    assert code == 0 and f"from {companion}" in out

    original = torch.load(lightning_file, map_location="cpu", weights_only=True)
    rebuilt = torch.load(back, weights_only=True)
    assert_same_tree(rebuilt, original)  # every tensor bit-identical, optimizer state and loops included
    assert len(original["optimizer_states"][0]["state"]) == 30  # there was Adam state to keep

    # The reference loads checkpoints this way: the state dict straight into the network, strictly.
    TopoQA().load_state_dict(torch.load(back)["state_dict"], strict=True)

    with safe_open(weights, framework="pt") as handle:
        metadata = handle.metadata()
        assert len(list(handle.keys())) == 39
    assert metadata["source_sha256"] == sha256_file(lightning_file)
    assert metadata["source_file"] == lightning_file.name
    assert (metadata["epoch"], metadata["global_step"]) == (str(original["epoch"]), str(original["global_step"]))
    assert (metadata["format"], metadata["format_version"]) == ("topoqa-safetensors", "1")
    assert (metadata["hidden"], metadata["heads"], metadata["node_features"], metadata["edge_features"]) == (
        "32", "8", "172", "11"
    )
    assert metadata["training_state"] == companion.name


def test_weights_only_round_trip(tmp_path, capsys, lightning_file):
    weights, back = tmp_path / "w.safetensors", tmp_path / "w.ckpt"
    code, out, _ = run(capsys, "to-safetensors", "--weights-only", lightning_file, weights)
    assert code == 0 and "--weights-only" in out
    assert not (tmp_path / "w.training.safetensors").exists()
    assert run(capsys, "to-lightning", weights, back)[0] == 0

    original = torch.load(lightning_file, map_location="cpu", weights_only=True)
    rebuilt = torch.load(back, weights_only=True)
    assert list(rebuilt) == [key for key in original if key != "topoqa_resume"]  # train.py's own resume state
    assert_same_tree(rebuilt["state_dict"], original["state_dict"])
    assert_same_tree(rebuilt["loops"], original["loops"])
    fields = ("epoch", "global_step", "pytorch-lightning_version")
    assert [rebuilt[field] for field in fields] == [original[field] for field in fields]
    assert rebuilt["optimizer_states"] == [] and rebuilt["callbacks"] == {} and rebuilt["lr_schedulers"] == []


def test_converting_never_clobbers(tmp_path, capsys, trained_checkpoint):
    weights = tmp_path / "w.safetensors"
    companion = tmp_path / "w.training.safetensors"
    companion.write_bytes(b"precious")
    code, _, err = run(capsys, "to-safetensors", trained_checkpoint, weights)
    assert code == 2
    assert_one_line_error(err, str(companion), "already exists", "--overwrite")
    assert companion.read_bytes() == b"precious" and not weights.exists()

    assert run(capsys, "to-safetensors", "--overwrite", trained_checkpoint, weights)[0] == 0
    assert read_checkpoint(weights).format == "safetensors"

    ckpt = tmp_path / "w.ckpt"
    ckpt.write_bytes(b"precious")
    code, _, err = run(capsys, "to-lightning", weights, ckpt)
    assert code == 2 and ckpt.read_bytes() == b"precious"
    assert_one_line_error(err, str(ckpt), "already exists")
    assert run(capsys, "to-lightning", "--overwrite", weights, ckpt)[0] == 0


def test_to_lightning_refuses_a_foreign_or_missing_companion(tmp_path, capsys, trained_checkpoint):
    weights = tmp_path / "w.safetensors"
    assert run(capsys, "to-safetensors", trained_checkpoint, weights)[0] == 0
    other = tmp_path / "other.safetensors"
    (first_epoch,) = trained_checkpoint.parent.glob("topo_epoch=0_*.ckpt")  # other weights, same run
    assert run(capsys, "to-safetensors", "--weights-only", first_epoch, other)[0] == 0
    code, _, err = run(capsys, "to-lightning", "--training-state", tmp_path / "w.training.safetensors", other,
                       tmp_path / "x.ckpt")
    assert code == 2
    assert_one_line_error(err, "w.training.safetensors", "belongs to another weights file")

    (tmp_path / "w.training.safetensors").unlink()
    code, _, err = run(capsys, "to-lightning", weights, tmp_path / "y.ckpt")
    assert code == 2
    assert_one_line_error(err, "w.training.safetensors", "not found", "--weights-only")
    assert run(capsys, "to-lightning", "--weights-only", weights, tmp_path / "y.ckpt")[0] == 0
    assert not (tmp_path / "x.ckpt").exists()


def test_verify_against_itself_passes(capsys, lightning_file, graph_arguments):
    graphs, graph_set = graph_arguments
    code, out, _ = run(capsys, "verify", lightning_file, "--reference", lightning_file, *graphs)
    assert code == 0
    digest = sha256_file(lightning_file)
    assert out.count(f"sha256: {digest}") == 2
    assert len(re.findall(r"^  \S+\s+0\.000e\+00$", out, flags=re.M)) == 39
    assert "weights: IDENTICAL (all 39 tensors bit-identical)" in out
    assert graph_set in out
    assert "max abs prediction difference: 0.000e+00" in out
    assert out.rstrip().endswith("verdict: PASS")


def test_verify_defaults_to_the_published_checkpoint(tmp_path, capsys, published_checkpoint, monkeypatch):
    monkeypatch.delenv("TOPOQA_CHECKPOINT", raising=False)
    monkeypatch.setenv("TOPOQA_REFERENCE", str(published_checkpoint.parent))
    weights = tmp_path / "w.safetensors"
    assert run(capsys, "to-safetensors", "--weights-only", published_checkpoint, weights)[0] == 0
    code, out, _ = run(capsys, "verify", weights)
    assert code == 0 and f"reference: {published_checkpoint}" in out and "verdict: PASS" in out


def test_verify_perturbed_copy_fails_and_names_the_tensor(tmp_path, capsys, lightning_file, graph_arguments):
    graphs, _ = graph_arguments
    perturbed = tmp_path / "perturbed.ckpt"
    perturbed_copy(lightning_file, perturbed, "out.bias")
    code, out, _ = run(capsys, "verify", perturbed, "--reference", lightning_file, *graphs)
    assert code == 1
    assert re.search(r"^  out\.bias\s+1\.000e-03  <- differs$", out, flags=re.M)
    assert len(re.findall(r"<- differs$", out, flags=re.M)) == 1
    assert "weights: DIFFERENT (1 of 39 tensors differ; largest 1.000e-03 at out.bias)" in out
    largest = float(re.search(r"max abs prediction difference: (\S+)", out).group(1))
    assert 1e-5 < largest < 1e-3
    assert out.rstrip().endswith("verdict: FAIL")

    # The tolerance flag moves the line.
    code, out, _ = run(capsys, "verify", perturbed, "--reference", lightning_file, "--tolerance", "1e-3", *graphs)
    assert code == 0 and "verdict: PASS" in out


def test_verify_reports_conv3_changes_but_judges_predictions(tmp_path, capsys, lightning_file, graph_arguments):
    graphs, _ = graph_arguments
    perturbed = tmp_path / "conv3.ckpt"
    perturbed_copy(lightning_file, perturbed, "conv3.0.lin_l.weight")
    code, out, _ = run(capsys, "verify", perturbed, "--reference", lightning_file, *graphs)
    assert code == 0
    assert "only conv3, which the forward pass never applies" in out
    assert "max abs prediction difference: 0.000e+00" in out


def test_verify_mixes_formats_and_graph_folders(tmp_path, capsys, trained_checkpoint, generated_graphs):
    weights = tmp_path / "w.safetensors"
    assert run(capsys, "to-safetensors", "--weights-only", trained_checkpoint, weights)[0] == 0
    graphs = tmp_path / "graphs"
    (graphs / "nested").mkdir(parents=True)
    first, second, third = sorted(generated_graphs.glob("*.pt"))[:3]
    shutil.copy(first, graphs / "graph_pt.pt")
    graph = load_graph(second)
    tensors = {"x": graph.x, "edge_index": graph.edge_index, "edge_attr": graph.edge_attr}
    save_file(tensors, graphs / "graph_safetensors.safetensors")  # <MODEL>.safetensors
    graph = load_graph(third)
    save_file({"x": graph.x, "edge_index": graph.edge_index, "edge_attr": graph.edge_attr},
              graphs / "nested" / "graph.safetensors")  # <MODEL>/graph.safetensors, the golden folders' layout
    (graphs / "broken.pt").write_bytes(b"not a graph")
    code, out, _ = run(capsys, "verify", trained_checkpoint, "--reference", weights, "--graphs", graphs)
    assert code == 0
    assert f"predictions on 3 graphs from {graphs}" in out
    assert re.search(r"broken\.pt: not a loadable graph file .*; skipped", out)
    for name in ("graph_pt", "graph_safetensors", "nested"):
        assert re.search(rf"^  {name}\s+candidate", out, flags=re.M), name
    assert "verdict: PASS" in out


def test_verify_on_the_training_graphs(capsys, published_checkpoint):
    graphs = need_reference("training_run", "graphs")
    code, out, _ = run(capsys, "verify", published_checkpoint, "--reference", published_checkpoint, "--graphs", graphs)
    assert code == 0 and "predictions on 128 graphs" in out and "verdict: PASS" in out


def test_verify_heads4_model_is_bad_input(tmp_path, capsys, trained_checkpoint):
    heads4 = tmp_path / "heads4.ckpt"
    torch.save({"epoch": 0, "state_dict": TopoQA(heads=4).state_dict()}, heads4)
    code, out, err = run(capsys, "verify", heads4, "--reference", trained_checkpoint)
    assert code == 2 and out == ""
    assert_one_line_error(err, str(heads4), "conv1.0.att", "[1, 4, 32]", "[1, 8, 32]")


@pytest.mark.parametrize("command", ["to-safetensors", "to-lightning", "inspect", "verify"])
def test_missing_input_is_one_line(tmp_path, capsys, command):
    missing = tmp_path / "nowhere.ckpt"
    argv = [command, missing] + ([tmp_path / "out"] if command.startswith("to-") else [])
    code, _, err = run(capsys, *argv, *(["--reference", missing] if command == "verify" else []))
    assert code == 2
    assert_one_line_error(err, str(missing), "file not found")


def test_wrong_direction_is_refused(tmp_path, capsys, trained_checkpoint):
    code, _, err = run(capsys, "to-lightning", trained_checkpoint, tmp_path / "x.ckpt")
    assert code == 2
    assert_one_line_error(err, str(trained_checkpoint), "already a Lightning checkpoint")


def test_inspect_reports_format_counts_and_metadata(tmp_path, capsys, lightning_file):
    original = torch.load(lightning_file, map_location="cpu", weights_only=True)
    where = f"epoch {original['epoch']}, global step {original['global_step']}"
    parameters = sum(tensor.numel() for tensor in original["state_dict"].values())
    code, out, _ = run(capsys, "inspect", lightning_file)
    assert code == 0
    for line in (f"format: Lightning checkpoint, {where}", "tensors: 39", f"parameters: {parameters}",
                 f"pytorch-lightning version: {original['pytorch-lightning_version']}",
                 f"optimizer 0: state for {len(original['optimizer_states'][0]['state'])} parameters"):
        assert line in out, line
    weights = tmp_path / "w.safetensors"
    assert run(capsys, "to-safetensors", lightning_file, weights)[0] == 0
    code, out, _ = run(capsys, "inspect", weights)
    assert code == 0 and f"format: safetensors, {where}" in out
    assert f"metadata source_sha256: {sha256_file(lightning_file)}" in out
    assert "metadata training_state: w.training.safetensors (present)" in out
    code, out, _ = run(capsys, "inspect", tmp_path / "w.training.safetensors")
    assert code == 0 and "format: training-state companion" in out and f"sha256 {sha256_file(weights)}" in out


def test_command_line_refuses_a_malicious_checkpoint(tmp_path, capsys):
    marker = tmp_path / "payload_ran"
    evil = tmp_path / "evil.ckpt"
    torch.save({"state_dict": _TouchMarker(marker)}, evil)
    for argv in (["inspect", evil], ["verify", evil, "--reference", evil]):
        code, out, err = run(capsys, *argv)
        assert code == 2 and out == ""
        assert_one_line_error(err, str(evil), "refused to load", "system")
    # The real entry point, in its own process (one start: importing torch is slow on CI).
    argv = [sys.executable, "convert.py", "to-safetensors", str(evil), str(tmp_path / "out.safetensors")]
    result = subprocess.run(argv, cwd=REPO_ROOT, capture_output=True, text=True)
    assert result.returncode == 2 and result.stdout == ""
    assert_one_line_error(result.stderr, str(evil), "refused to load", "system")
    assert not marker.exists() and not (tmp_path / "out.safetensors").exists()


def test_verify_complex_folder_featurises_real_complexes(tmp_path, capsys, trained_checkpoint):
    shutil.copy(EXAMPLE, tmp_path / EXAMPLE.name)
    (tmp_path / "empty.pdb").write_text("")
    (tmp_path / "notes.txt").write_text("not a structure\n")
    code, out, _ = run(capsys, "verify", trained_checkpoint, "--reference", trained_checkpoint,
                       "--complex_folder", tmp_path, "--jobs", "1")
    assert code == 0
    assert f"predictions on 1 complexes featurised from {tmp_path}" in out
    assert "empty: empty file; skipped" in out
    assert re.search(rf"^  {EXAMPLE.stem}\s", out, flags=re.M) and "verdict: PASS" in out
