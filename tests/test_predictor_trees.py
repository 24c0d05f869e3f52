"""Folders as structure predictors write them: which files are complexes, their names, and scoring a tree.

Trees are built at test time from the bundled examples, laid out as AlphaFold3 (`job/seed-1_sample-0/model.cif`),
Boltz (`predictions/<name>/<name>_model_0.cif`), Chai-1 (`pred.model_idx_0.cif`) and ColabFold
(`*_unrelaxed_rank_001_*.pdb`) lay out theirs, with the side files they write (JSON, NPZ, logs), hidden files
and folders. Every entry must end up scored or listed with a reason; same-named files in different subfolders
must never collide. A PDB/mmCIF pair holding ligands, ions, a nucleic acid and a glycan checks the non-protein
rule: such entities count in the atom neighbourhoods of the topology, never as interface residues, and the same
way in both formats.
"""

from __future__ import annotations

import csv
import gzip
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import gemmi
import numpy as np
import pytest
import torch

from data.featurize import featurize_many, featurize_stages
from data.inputs import complex_inputs, complex_name
from model.graph_io import load_graph
from tests.conftest import REPO_ROOT, needs_mkdssp

EXAMPLES = REPO_ROOT / "examples"


def mmcif_copy(source: Path, target: Path) -> Path:
    structure = gemmi.read_structure(str(source))
    structure.setup_entities()
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(structure.make_mmcif_document().as_string())
    return target


def copy(source: Path, target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(source, target)
    return target


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    """Predictor outputs (two complexes under the same file name in different folders) and their side files."""
    root = tmp_path_factory.mktemp("predictions")
    mmcif_copy(EXAMPLES / "1HVR.pdb", root / "af3_job" / "seed-1_sample-0" / "model.cif")
    mmcif_copy(EXAMPLES / "4E43.pdb", root / "af3_job" / "seed-1_sample-1" / "model.cif")
    (root / "af3_job" / "seed-1_sample-0" / "confidences.json").write_text("{}\n")
    boltz = mmcif_copy(EXAMPLES / "1HVR.pdb", root / "boltz" / "predictions" / "prot" / "prot_model_0.cif")
    boltz.with_name("prot_model_0.cif.gz").write_bytes(gzip.compress(boltz.read_bytes()))
    boltz.unlink()
    (root / "boltz" / "predictions" / "prot" / "pae_prot_model_0.npz").write_bytes(b"\x93NUMPY")
    mmcif_copy(EXAMPLES / "4E43.pdb", root / "chai" / "pred.model_idx_0.cif")
    copy(EXAMPLES / "1HVR.pdb", root / "colabfold" / "prot_unrelaxed_rank_001_alphafold2_multimer_v3_model_1.pdb")
    copy(EXAMPLES / "1HVR.pdb", root / "top.pdb")
    copy(EXAMPLES / "1HVR.pdb", root / "top.cif")  # the same name as top.pdb: one of them is a duplicate
    (root / ".hidden_model.pdb").write_text((EXAMPLES / "1HVR.pdb").read_text())
    (root / ".git").mkdir()
    (root / ".git" / "config").write_text("[core]\n")
    (root / "run.log").write_text("done\n")
    return root


def test_names_are_relative_paths_without_the_structure_extension():
    folder = Path("/data/out")
    assert complex_name(folder / "job" / "seed-1_sample-0" / "model.cif", folder) == "job/seed-1_sample-0/model"
    assert complex_name(folder / "a.b.cif.gz", folder) == "a.b"
    assert complex_name(folder / "x.MMCIF", folder) == "x"
    assert complex_name(folder / "m.ent.gz") == "m"
    assert complex_name(folder / "notes.txt", folder) == "notes.txt"


def test_a_tree_without_recursive_lists_its_folders(tree):
    inputs, names, skipped = complex_inputs(tree)
    assert names == ["top"]
    reasons = dict(skipped)
    assert reasons["af3_job/"].startswith("a folder: pass --recursive")
    assert reasons["top.pdb"].startswith("duplicate model name top (also top.cif)")
    assert reasons[".hidden_model.pdb"].startswith("hidden file")
    assert reasons[".git/"].startswith("hidden folder")
    assert reasons["run.log"].startswith("not a structure file")


def test_recursive_finds_every_structure_under_its_relative_path(tree):
    inputs, names, skipped = complex_inputs(tree, recursive=True)
    assert names == [
        "af3_job/seed-1_sample-0/model",
        "af3_job/seed-1_sample-1/model",
        "boltz/predictions/prot/prot_model_0",
        "chai/pred.model_idx_0",
        "colabfold/prot_unrelaxed_rank_001_alphafold2_multimer_v3_model_1",
        "top",
    ]
    assert [path.relative_to(tree).as_posix() for path in inputs][:2] == [
        "af3_job/seed-1_sample-0/model.cif", "af3_job/seed-1_sample-1/model.cif"]
    listed = {name for name, _ in skipped}
    assert listed == {
        "af3_job/seed-1_sample-0/confidences.json", "boltz/predictions/prot/pae_prot_model_0.npz", "run.log",
        "top.pdb", ".hidden_model.pdb", ".git/",
    }
    # Every file of the tree is scored or listed (a hidden folder as one entry).
    files = {p.relative_to(tree).as_posix() for p in tree.rglob("*") if p.is_file() and ".git" not in p.parts}
    assert files == {p.relative_to(tree).as_posix() for p in inputs} | (listed - {".git/"})


@needs_mkdssp
def test_same_file_names_in_different_folders_keep_their_own_graphs(tree):
    inputs, names, _ = complex_inputs(tree, recursive=True)
    results = featurize_many(inputs[:2], names=names[:2], jobs=1, progress=False)
    assert [r.name for r in results] == names[:2]
    assert all(r.arrays is not None and r.arrays.name == r.name for r in results)
    assert results[0].arrays.x.shape != results[1].arrays.x.shape  # 1HVR and 4E43: two complexes, not one twice


@needs_mkdssp
def test_infer_scores_a_tree_and_keeps_graphs_in_subfolders(tree, tmp_path, trained_checkpoint):
    out, work, cache = tmp_path / "out", tmp_path / "graphs", tmp_path / "cache"
    env = {key: value for key, value in os.environ.items() if key != "TOPOQA_CHECKPOINT"}
    env["TOPOQA_CACHE_DIR"] = tempfile.mkdtemp(prefix="topoqa-test-cache-")

    def run() -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "infer.py", "-c", str(tree), "--recursive", "-r", str(out), "-w", str(work),
             "--cache_dir", str(cache), "--checkpoint", str(trained_checkpoint), "--jobs", "2", "--overwrite"],
            cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=900,
        )

    completed = run()
    assert completed.returncode == 0, completed.stderr[-3000:]
    with open(out / "result.csv", newline="") as handle:
        scored = {row["MODEL"]: row["PRED_DOCKQ"] for row in csv.DictReader(handle)}
    with open(out / "skipped.csv", newline="") as handle:
        skipped = {row["MODEL"]: row["REASON"] for row in csv.DictReader(handle)}
    assert set(scored) == set(complex_inputs(tree, recursive=True)[1])
    assert set(skipped) == {name for name, _ in complex_inputs(tree, recursive=True)[2]}
    assert (work / "af3_job" / "seed-1_sample-0" / "model.pt").is_file()
    assert (work / "af3_job" / "seed-1_sample-1" / "model.pt").is_file()
    # The same structure in PDB and mmCIF form, under four names: one graph, bit for bit, and one score (to
    # float32 rounding here: that a row's bits do not depend on its batch is tests/ of batch independence).
    same = ("af3_job/seed-1_sample-0/model", "boltz/predictions/prot/prot_model_0",
            "colabfold/prot_unrelaxed_rank_001_alphafold2_multimer_v3_model_1", "top")
    graphs = [load_graph(work / f"{name}.pt") for name in same]
    for graph in graphs[1:]:
        for key in ("x", "edge_index", "edge_attr"):
            assert torch.equal(getattr(graph, key), getattr(graphs[0], key)), key
    assert max(float(scored[name]) for name in same) - min(float(scored[name]) for name in same) <= 1e-6
    # From the cache, the same names and numbers.
    again = run()
    assert again.returncode == 0, again.stderr[-3000:]
    with open(out / "result.csv", newline="") as handle:
        assert {row["MODEL"]: row["PRED_DOCKQ"] for row in csv.DictReader(handle)} == scored


# ---------------------------------------------------------------- the non-protein rule


def atom_line(record: str, serial: int, atom: str, residue: str, chain: str, number: int, xyz, element: str) -> str:
    return (f"{record:<6}{serial:5d} {atom:<4} {residue:>3} {chain}{number:4d}    {xyz[0]:8.3f}{xyz[1]:8.3f}"
            f"{xyz[2]:8.3f}  1.00  0.00          {element:>2}")


def with_every_kind_of_entity(lines: list[str]) -> list[str]:
    """1HVR (its inhibitor XK2 and waters included) with, beside the interface: a zinc ion (HETATM, chain A), a
    magnesium ion written as an ATOM record in a chain of its own, a two-nucleotide DNA chain, and a glycan
    (NAG, HETATM) on chain B."""
    ca = next(line for line in lines if line.startswith("ATOM") and line[12:16] == " CA " and line[21:26] == "A   1")
    centre = np.array([float(ca[30:38]), float(ca[38:46]), float(ca[46:54])])
    serial = 9000
    entities = [atom_line("HETATM", serial, "ZN", "ZN", "A", 901, centre + [4.0, 0.0, 0.0], "ZN"),
                atom_line("ATOM", serial + 1, "MG", "MG", "M", 1, centre + [0.0, 4.5, 0.0], "MG")]
    dna = [("P", "P"), ("OP1", "O"), ("C1'", "C"), ("N9", "N")]
    for number in (1, 2):
        for k, (name, element) in enumerate(dna):
            xyz = centre + [-5.0 - 1.4 * k, 1.5 * number, 2.0]
            entities.append(atom_line("ATOM", serial + 10 + 4 * number + k, name, "DA", "D", number, xyz, element))
    for k, (name, element) in enumerate([("C1", "C"), ("C2", "C"), ("O5", "O"), ("N2", "N")]):
        entities.append(atom_line("HETATM", serial + 30 + k, name, "NAG", "B", 902, centre + [1.3 * k, -5.0, 0.0],
                                  element))
    end = max(k for k, line in enumerate(lines) if line.startswith(("ATOM", "HETATM")))
    return lines[: end + 1] + entities + lines[end + 1 :]


@needs_mkdssp
def test_non_protein_entities_are_treated_alike_in_pdb_and_mmcif(tmp_path):
    lines = (EXAMPLES / "1HVR.pdb").read_text().splitlines()
    pdb = tmp_path / "entities.pdb"
    pdb.write_text("\n".join(with_every_kind_of_entity(lines)) + "\n")
    cif = mmcif_copy(pdb, tmp_path / "entities.cif")
    assert "DA" in cif.read_text() and "NAG" in cif.read_text()
    from_pdb, from_cif = featurize_stages(pdb), featurize_stages(cif)
    plain = featurize_stages(EXAMPLES / "1HVR.pdb")
    # The same interface as without them: protein residues only.
    assert from_pdb.interface_ids == from_cif.interface_ids == plain.interface_ids
    assert not any(kind in identifier for identifier in from_pdb.node_ids for kind in ("ZN", "MG", "DA", "NAG"))
    # They sit in the atom neighbourhoods of the interface residues near them.
    assert not np.array_equal(from_pdb.topology, plain.topology)
    # PDB and mmCIF: the same graph, bit for bit.
    np.testing.assert_array_equal(from_pdb.topology, from_cif.topology)
    for key in ("x", "edge_index", "edge_attr"):
        assert np.array_equal(getattr(from_pdb.arrays, key), getattr(from_cif.arrays, key)), key


@needs_mkdssp
def test_featurize_command_writes_a_tree_of_graph_files(tree, tmp_path, monkeypatch):
    from featurize import main

    monkeypatch.setenv("TOPOQA_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "graphs"
    assert main(["--complex_folder", str(tree), "--out_dir", str(out), "--recursive", "--no_cache"]) == 0
    _, names, listed = complex_inputs(tree, recursive=True)
    written = sorted(p.relative_to(out).as_posix()[: -len(".pt")] for p in out.rglob("*.pt"))
    assert written == names
    with open(out / "skipped.csv", newline="") as handle:
        assert {row["MODEL"] for row in csv.DictReader(handle)} == {name for name, _ in listed}
    assert load_graph(out / "af3_job" / "seed-1_sample-1" / "model.pt").name == "af3_job/seed-1_sample-1/model"
