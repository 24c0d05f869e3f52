"""The topology building blocks against GUDHI itself, on clouds with the awkward cases (duplicates, tiny clouds)."""

from __future__ import annotations

import os
import subprocess
import sys

import gudhi
import numpy as np
import pytest

from data.dssp import dssp_input_text, parse_dssp_output, relative_accessibility
from data.graph_cache import cache_key
from data.node_features import min_max_scale
from data.topology import alpha_precision, minimum_spanning_tree_weights, pairwise_distances
from tests.conftest import REPO_ROOT


def gudhi_rips_h0_deaths(points: np.ndarray) -> np.ndarray:
    tree = gudhi.RipsComplex(points=points).create_simplex_tree(max_dimension=1)
    tree.compute_persistence()
    deaths = tree.persistence_intervals_in_dimension(0)[:, 1]
    return np.sort(deaths[np.isfinite(deaths)])


def test_batched_prim_equals_gudhi_rips_h0():
    rng = np.random.default_rng(7)
    distances, memberships, clouds = [], [], []
    for size in (0, 1, 2, 3, 7, 40, 90):
        points = np.round(rng.uniform(-8, 8, size=(size, 3)), 3)
        if size >= 7:
            points[3] = points[1]  # a duplicate point: a zero-length bar in GUDHI, a zero-weight MST edge here
        masks = np.stack([rng.random(size) < 0.5, rng.random(size) < 0.8, np.ones(size, dtype=bool)])
        distances.append(pairwise_distances(points))
        memberships.append(masks)
        clouds.extend(points[mask] for mask in masks)
    weights = [w for residue in minimum_spanning_tree_weights(distances, memberships) for w in residue]
    for points, mst in zip(clouds, weights, strict=True):
        expected = gudhi_rips_h0_deaths(points)
        ours = np.sort(mst)
        ours = ours[ours > 0]  # GUDHI drops zero-length bars
        np.testing.assert_array_equal(ours, expected[expected > 0])


def test_min_max_scale_constant_column_is_zero():
    scaled = min_max_scale(np.array([[1.0, 5.0], [3.0, 5.0], [2.0, 5.0]]))
    np.testing.assert_array_equal(scaled, [[0.0, 0.0], [1.0, 0.0], [0.5, 0.0]])


def test_dssp_copy_gets_header_first_and_cryst1_before_the_coordinates():
    text = dssp_input_text("REMARK x\nHEADER    OLD\nATOM      1  N   ALA A   1       0.000   0.000   0.000\n")
    lines = text.split("\n")
    assert lines[0].startswith("HEADER") and lines[1] == "REMARK x" and lines[2].startswith("CRYST1")
    assert lines[3].startswith("ATOM") and sum(line.startswith("HEADER") for line in lines) == 1
    kept = dssp_input_text("CRYST1   10.000   10.000   10.000  90.00  90.00  90.00 P 1           1\n")
    assert kept.split("\n")[1].startswith("CRYST1   10.000") and kept.count("CRYST1") == 1


def test_dssp_output_parsing_and_relative_accessibility():
    header = "  #  RESIDUE AA STRUCTURE BP1 BP2  ACC     N-H-->O    O-->H-N    N-H-->O    O-->H-N    TCO  KAPPA ALPHA  PHI   PSI    X-CA   Y-CA   Z-CA"  # noqa: E501
    rows = [
        "    1  545 A S              0   0  155      0, 0.0     2,-0.6     0, 0.0     0, 0.0   0.000 360.0 360.0 360.0  60.9   63.0  -16.4   64.8",  # noqa: E501
        "    2        !              0   0    0      0, 0.0     0, 0.0     0, 0.0     0, 0.0   0.000 360.0 360.0 360.0 360.0    0.0    0.0    0.0",  # noqa: E501
        "    3   52AH E  H  > S+     0   0   20      0, 0.0     2,-0.6     0, 0.0     0, 0.0   0.000 360.0 360.0 -60.5 -40.2   63.0  -16.4   64.8",  # noqa: E501
    ]
    residues = parse_dssp_output("\n".join(["DSSP output", header, *rows]))
    assert [(r.chain, r.seq, r.icode, r.secondary_structure) for r in residues] == [
        ("A", 545, " ", "-"), ("H", 52, "A", "H")]
    assert residues[0].accessibility == 155 and residues[1].phi == -60.5 and residues[1].psi == -40.2
    assert relative_accessibility(155, "SER") == 1.0  # capped, as Biopython does
    assert relative_accessibility(20, "GLU") == 20 / 194.0
    assert relative_accessibility(20, "MSE") is None  # 'NA': the row is dropped later


def test_alpha_precision_comes_from_the_environment(monkeypatch):
    monkeypatch.delenv("TOPOQA_ALPHA_PRECISION", raising=False)
    assert alpha_precision() == "fast"
    monkeypatch.setenv("TOPOQA_ALPHA_PRECISION", "safe")
    assert alpha_precision() == "safe"
    monkeypatch.setenv("TOPOQA_ALPHA_PRECISION", "sloppy")
    with pytest.raises(ValueError, match="TOPOQA_ALPHA_PRECISION='sloppy'"):
        alpha_precision()


def test_alpha_precision_is_part_of_the_cache_key(tmp_path, monkeypatch):
    # Even within one process: a graph computed with 'fast' radii must never be served for 'safe'.
    pdb = tmp_path / "model.pdb"
    pdb.write_text("ATOM      1  CA  GLY A   1       0.000   0.000   0.000  1.00  0.00           C\n")
    monkeypatch.setenv("TOPOQA_ALPHA_PRECISION", "fast")
    fast = cache_key(pdb, "xyy")
    monkeypatch.setenv("TOPOQA_ALPHA_PRECISION", "safe")
    assert cache_key(pdb, "xyy") != fast
    monkeypatch.setenv("TOPOQA_ALPHA_PRECISION", "fast")
    assert cache_key(pdb, "xyy") == fast


@pytest.mark.parametrize("command", [["infer.py", "-c", "examples"], ["featurize.py", "--complex_folder",
                                                                       "examples", "--out_dir", "unused"]])
def test_unknown_alpha_precision_is_refused_before_any_work(tmp_path, command):
    if command[0] == "infer.py":
        command = [*command, "-r", str(tmp_path / "out")]
    else:
        command = [*command[:-1], str(tmp_path / "out")]
    environment = {**os.environ, "TOPOQA_ALPHA_PRECISION": "sloppy"}
    completed = subprocess.run([sys.executable, *command], cwd=REPO_ROOT, env=environment, capture_output=True,
                               text=True, timeout=120)
    assert completed.returncode == 2
    assert "TOPOQA_ALPHA_PRECISION='sloppy': expected one of fast, safe, exact" in completed.stderr
    assert not (tmp_path / "out").exists()
