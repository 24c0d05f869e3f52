"""Inputs as they come from docking tools and AlphaFold, built at test time from a golden input.pdb.

Where an edit must not change the result, the graph is compared with that golden's unedited graph (itself
checked against the reference's); where the input cannot be scored, the reason is checked.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.numpy import load_file

import data.dssp
from data.dssp import mkdssp_available
from data.featurize import (
    UnscorableComplex,
    complex_name,
    featurize_complex,
    featurize_many,
    featurize_stages,
)
from tests.conftest import need_reference

GOLDEN = "dove_correct"  # the smallest golden: chains A and B, MODEL/ENDMDL records, segment ids
TOLERANCE = 1e-6

needs_mkdssp = pytest.mark.skipif(not mkdssp_available(), reason="mkdssp not installed (scripts/setup.sh installs it)")


@pytest.fixture(scope="module")
def golden_lines() -> list[str]:
    return need_reference("golden", GOLDEN, "input.pdb").read_text().splitlines()


@pytest.fixture(scope="module")
def golden_graph() -> dict[str, np.ndarray]:
    """The unedited golden input's graph as this code computes it, checked against the reference's graph first.

    Edits that must change nothing are compared with it bit for bit. (The reference's own graph differs from it
    in the last bits of a few features: the default double-precision alpha radii, see test_featurize_parity.)
    """
    reference = load_file(need_reference("golden", GOLDEN, "graph.safetensors"))
    graph = featurize_complex(need_reference("golden", GOLDEN, "input.pdb"))
    ours = {"x": graph.x.numpy(), "edge_index": graph.edge_index.numpy(), "edge_attr": graph.edge_attr.numpy()}
    np.testing.assert_array_equal(ours["edge_index"], reference["edge_index"])
    np.testing.assert_array_equal(ours["edge_attr"], reference["edge_attr"])
    np.testing.assert_allclose(ours["x"], reference["x"], rtol=0, atol=TOLERANCE)
    return ours


def write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def atom_lines(lines: list[str]) -> list[str]:
    return [line for line in lines if line.startswith(("ATOM", "HETATM"))]


def with_coordinates(line: str, xyz) -> str:
    return f"{line[:30]}{xyz[0]:8.3f}{xyz[1]:8.3f}{xyz[2]:8.3f}{line[54:]}"


def coordinates(line: str) -> np.ndarray:
    return np.array([float(line[30:38]), float(line[38:46]), float(line[46:54])])


def assert_same_graph(graph, golden_graph, tolerance: float = 0.0):
    np.testing.assert_array_equal(graph.edge_index.numpy(), golden_graph["edge_index"])
    assert np.abs(graph.x.numpy() - golden_graph["x"]).max() <= tolerance
    assert np.abs(graph.edge_attr.numpy() - golden_graph["edge_attr"]).max() <= tolerance


# ---------------------------------------------------------------- names


@pytest.mark.parametrize(
    ("file_name", "expected"),
    [("a.pdb", "a"), ("a.b.pdb", "a.b"), ("x.pdb.gz", "x"), ("1abc.ent", "1abc"), ("m.ent.gz", "m"),
     ("Model.PDB", "Model"), ("v1.2_model.pdb", "v1.2_model")],
)
def test_complex_name_cuts_only_the_last_known_extension(file_name, expected):
    assert complex_name(Path("/some/folder") / file_name) == expected


# ---------------------------------------------------------------- inputs that must give the reference graph


@needs_mkdssp
def test_crlf_gzip_and_no_model_records_give_the_reference_graph(tmp_path, golden_lines, golden_graph):
    crlf = tmp_path / "crlf.pdb"
    crlf.write_bytes(("\r\n".join(golden_lines) + "\r\n").encode())
    gzipped = tmp_path / "zipped.pdb.gz"
    gzipped.write_bytes(gzip.compress(("\n".join(golden_lines) + "\n").encode()))
    no_model = write(tmp_path / "nomodel.pdb", [ln for ln in golden_lines if not ln.startswith(("MODEL", "ENDMDL"))])
    for path in (crlf, gzipped, no_model):
        graph = featurize_complex(path)
        assert_same_graph(graph, golden_graph)
    assert featurize_complex(gzipped).name == "zipped"


@needs_mkdssp
def test_header_cryst1_present_and_user_file_untouched(tmp_path, golden_lines, golden_graph):
    header = ["HEADER    DOCKING DECOY                           01-JAN-24   XXXX",
              "CRYST1   50.000   60.000   70.000  90.00  90.00  90.00 P 1           1"]
    path = write(tmp_path / "with_header.pdb", header + golden_lines)
    before = path.read_bytes()
    assert_same_graph(featurize_complex(path), golden_graph)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["with_header.pdb"]


@needs_mkdssp
def test_only_the_first_model_is_used(tmp_path, golden_lines, golden_graph):
    atoms = atom_lines(golden_lines)
    shifted = [with_coordinates(line, coordinates(line) + [3.0, -2.0, 1.0]) for line in atoms]
    lines = ["MODEL        1", *atoms, "ENDMDL", "MODEL        2", *shifted, "ENDMDL", "END"]
    assert_same_graph(featurize_complex(write(tmp_path / "models.pdb", lines)), golden_graph)


@needs_mkdssp
def test_alternate_locations_use_the_highest_occupancy(tmp_path, golden_lines, golden_graph):
    # Every atom of three interface residues gets a second, shifted conformer B with lower occupancy.
    lines = []
    for line in golden_lines:
        if line.startswith("ATOM") and line[22:26].strip() in ("642", "643", "644") and line[21] == "A":
            lines.append(f"{line[:16]}A{line[17:54]}  0.60{line[60:]}")
            moved = with_coordinates(line, coordinates(line) + [0.7, 0.4, -0.5])
            lines.append(f"{moved[:16]}B{moved[17:54]}  0.40{moved[60:]}")
        else:
            lines.append(line)
    graph = featurize_complex(write(tmp_path / "altloc.pdb", lines))
    # Biopython keeps conformer A: interface, topology and edges are the reference's. mkdssp reads the same copy
    # the reference fed it, conformer B included, so its accessibility may differ: columns from AA_0 on must not.
    np.testing.assert_array_equal(graph.edge_index.numpy(), golden_graph["edge_index"])
    np.testing.assert_array_equal(graph.edge_attr.numpy(), golden_graph["edge_attr"])
    np.testing.assert_array_equal(graph.x.numpy()[:, 11:], golden_graph["x"][:, 11:])


@needs_mkdssp
def test_far_waters_and_no_segment_ids_change_nothing(tmp_path, golden_lines, golden_graph):
    lines = [f"{line[:72]}    {line[76:]}" if line.startswith("ATOM") else line for line in golden_lines]
    waters = [
        f"HETATM{9000 + k:5d}  O   HOH W{k + 1:4d}    {200.0 + 3 * k:8.3f}{200.0:8.3f}{200.0:8.3f}  1.00  0.00"
        "           O"
        for k in range(5)
    ]
    end = lines.index("ENDMDL")
    lines = lines[:end] + waters + lines[end:]
    graph = featurize_complex(write(tmp_path / "waters.pdb", lines))
    # Waters change the KD-tree layout, hence GUDHI's input order: equal up to rounding.
    assert_same_graph(graph, golden_graph, TOLERANCE)


@needs_mkdssp
def test_insertion_codes_appear_in_ids_and_change_nothing_else(tmp_path, golden_lines, golden_graph):
    lines = [
        f"{line[:26]}A{line[27:]}" if line.startswith("ATOM") and line[21] == "A" and line[22:26] == " 642" else line
        for line in golden_lines
    ]
    stages = featurize_stages(write(tmp_path / "icode.pdb", lines))
    assert stages.interface_ids[0] == "c<A>r<642>i<A>R<PRO>"
    assert "c<A>r<642>R<PRO>" not in stages.interface_ids
    assert_same_graph(stages.graph, golden_graph)


# ---------------------------------------------------------------- inputs that change the result


@needs_mkdssp
def test_hydrogens_count_in_edge_histograms_only(tmp_path, golden_lines, golden_graph):
    # One hydrogen 0.9 A from every N: out of every element group, but inside every atom-pair histogram.
    lines = []
    for line in golden_lines:
        lines.append(line)
        if line.startswith("ATOM") and line[12:16] == " N  ":
            hydrogen = with_coordinates(line, coordinates(line) + [0.9, 0.0, 0.0])
            lines.append(f"{hydrogen[:12]} H  {hydrogen[16:76]} H")
    plain = featurize_stages(need_reference("golden", GOLDEN, "input.pdb"))
    with_h = featurize_stages(write(tmp_path / "hydrogens.pdb", lines))
    assert with_h.interface_ids == plain.interface_ids
    assert np.abs(with_h.topology - plain.topology).max() <= TOLERANCE
    np.testing.assert_array_equal(with_h.graph.edge_index.numpy(), golden_graph["edge_index"])
    assert not torch.equal(with_h.graph.edge_attr, plain.graph.edge_attr)


@needs_mkdssp
def test_hetatm_ligand_joins_neighbourhoods_but_not_the_interface(tmp_path, golden_lines):
    # A three-atom ligand placed on the CA of the first interface residue.
    ca = next(line for line in golden_lines if line[12:16] == " CA " and line[21] == "A" and line[22:26] == " 642")
    centre = coordinates(ca) + [0.0, 0.0, 3.0]
    ligand = [
        f"HETATM{9100 + k:5d}  {atom:<3} LIG A 901    {x:8.3f}{y:8.3f}{z:8.3f}  1.00  0.00           {atom[0]}"
        for k, (atom, (x, y, z)) in enumerate(
            [("C1", centre), ("O1", centre + [1.2, 0.0, 0.0]), ("N1", centre + [0.0, 1.3, 0.0])]
        )
    ]
    end = golden_lines.index("ENDMDL")
    stages = featurize_stages(write(tmp_path / "ligand.pdb", golden_lines[:end] + ligand + golden_lines[end:]))
    plain = featurize_stages(need_reference("golden", GOLDEN, "input.pdb"))
    assert stages.interface_ids == plain.interface_ids
    assert not any("LIG" in identifier for identifier in stages.node_ids)
    assert not np.allclose(stages.topology[0], plain.topology[0])


@needs_mkdssp
@pytest.mark.parametrize("residue", [" 585", " 788"])
def test_modified_residue_written_as_hetatm_is_handled(tmp_path, golden_lines, golden_graph, residue):
    # MET -> MSE as HETATM inside chain A (the reference crashed on these: DSSP keys them differently).
    lines = []
    for line in golden_lines:
        if line.startswith("ATOM") and line[21] == "A" and line[22:26] == residue and line[17:20] == "MET":
            line = f"HETATM{line[6:17]}MSE{line[20:]}"
            if line[12:16] == " SD ":
                line = f"{line[:12]}SE  {line[16:76]}SE"
        lines.append(line)
    stages = featurize_stages(write(tmp_path / "mse.pdb", lines))
    plain = featurize_stages(need_reference("golden", GOLDEN, "input.pdb"))
    assert stages.interface_ids == plain.interface_ids
    # Same atoms, same name initials, same order, and DSSP still reports the residue: the reference graph.
    np.testing.assert_array_equal(stages.topology, plain.topology)
    assert_same_graph(stages.graph, golden_graph)


@needs_mkdssp
def test_interface_modified_residue_is_left_out_without_crashing(tmp_path, golden_lines):
    lines = [
        f"HETATM{line[6:17]}MSE{line[20:]}" if line.startswith("ATOM") and line[17:26] == "MET B  26" else line
        for line in golden_lines
    ]
    stages = featurize_stages(write(tmp_path / "mse_interface.pdb", lines))
    assert "c<B>r<26>R<MET>" not in stages.interface_ids
    assert not any("MSE" in identifier for identifier in stages.interface_ids)
    assert stages.graph.num_nodes == len(stages.node_ids) > 0


@needs_mkdssp
def test_many_chains(tmp_path, golden_lines):
    # Nine chains: chain A cut into five pieces and chain B into four, by residue number.
    def chain_of(line: str) -> str:
        number = int(line[22:26])
        if line[21] == "A":
            return "ACDEF"[min((number - 545) // 50, 4)]
        return "BGHI"[min(number // 40, 3)]

    lines = [f"{ln[:21]}{chain_of(ln)}{ln[22:]}" if ln.startswith("ATOM") else ln for ln in golden_lines]
    stages = featurize_stages(write(tmp_path / "nine.pdb", lines))
    chains = {identifier[2] for identifier in stages.node_ids}
    assert len(chains) >= 8
    index = stages.graph.edge_index.numpy()
    node_chain = np.array([identifier[2] for identifier in stages.node_ids])
    assert index.shape[1] > 0 and (node_chain[index[0]] != node_chain[index[1]]).all()


# ---------------------------------------------------------------- unscorable inputs


def unscorable_reason(path) -> str:
    with pytest.raises(UnscorableComplex) as caught:
        featurize_complex(path)
    reason = str(caught.value)
    assert "\n" not in reason and str(path) not in reason
    return reason


def test_one_chain_only(tmp_path, golden_lines):
    lines = [line for line in golden_lines if not (line.startswith("ATOM") and line[21] == "B")]
    assert unscorable_reason(write(tmp_path / "monomer.pdb", lines)) == "only one chain (A)"


def test_blank_chain_ids_say_so(tmp_path, golden_lines):
    lines = [f"{line[:21]} {line[22:]}" if line.startswith("ATOM") else line for line in golden_lines]
    assert unscorable_reason(write(tmp_path / "blank.pdb", lines)).startswith("only one chain (all chain ids blank")


def test_mmcif_is_refused_with_a_reason(tmp_path):
    path = tmp_path / "model.pdb"
    path.write_text("data_model\nloop_\n_atom_site.group_PDB\nATOM   1    N N   . MET A 1 1 ? 0.0 0.0 0.0\n")
    assert unscorable_reason(path) == "not a PDB file: mmCIF is not supported (convert it to PDB format)"


def test_no_interface(tmp_path, golden_lines):
    lines = [
        with_coordinates(line, coordinates(line) + [100.0, 0.0, 0.0])
        if line.startswith("ATOM") and line[21] == "B" else line
        for line in golden_lines
    ]
    assert unscorable_reason(write(tmp_path / "apart.pdb", lines)).startswith("no interface")


def test_no_ca_atoms(tmp_path, golden_lines):
    lines = [line for line in golden_lines if line[12:16] != " CA "]
    assert "no CA atoms" in unscorable_reason(write(tmp_path / "noca.pdb", lines))


@pytest.mark.parametrize("content", [b"hello, this is not a structure\n", bytes(range(256)) * 4])
def test_non_pdb_file(tmp_path, content):
    path = tmp_path / "junk.pdb"
    path.write_bytes(content)
    assert unscorable_reason(path).startswith("not a PDB file")


@pytest.mark.parametrize("content", [b"", b"\n\n  \r\n", gzip.compress(b"")])
def test_empty_file(tmp_path, content):
    path = tmp_path / "empty.pdb"
    path.write_bytes(content)
    assert unscorable_reason(path) == "empty file"


def test_unreadable_files(tmp_path):
    assert unscorable_reason(tmp_path / "missing.pdb").startswith("cannot read file")
    folder = tmp_path / "folder.pdb"
    folder.mkdir()
    assert unscorable_reason(folder).startswith("cannot read file")
    broken = tmp_path / "broken.pdb.gz"
    broken.write_bytes(gzip.compress(b"ATOM" * 100)[:20])
    assert unscorable_reason(broken).startswith("cannot read file")


def test_dssp_failure_is_a_reason(tmp_path, golden_lines, monkeypatch):
    monkeypatch.setattr(data.dssp, "MKDSSP", "false")  # a "mkdssp" that always fails
    assert unscorable_reason(write(tmp_path / "complex.pdb", golden_lines)).startswith("mkdssp failed")


def test_missing_mkdssp_is_a_reason_after_the_input_s_own_problems(tmp_path, golden_lines, monkeypatch):
    monkeypatch.setattr(data.dssp, "MKDSSP", "no-such-mkdssp-anywhere")
    monomer = [line for line in golden_lines if not (line.startswith("ATOM") and line[21] == "B")]
    assert unscorable_reason(write(tmp_path / "monomer.pdb", monomer)) == "only one chain (A)"
    reason = unscorable_reason(write(tmp_path / "complex.pdb", golden_lines))
    assert reason.startswith("mkdssp failed") and "not found" in reason


@needs_mkdssp
def test_batch_continues_past_bad_inputs_in_input_order(tmp_path, golden_lines):
    good = write(tmp_path / "good.pdb", golden_lines)
    empty = tmp_path / "empty.pdb"
    empty.write_text("")
    monomer = write(tmp_path / "mono.pdb", [ln for ln in golden_lines if not (ln.startswith("ATOM") and ln[21] == "B")])
    results = featurize_many([empty, good, tmp_path / "nothere.pdb", monomer], jobs=1, progress=False)
    assert [r.name for r in results] == ["empty", "good", "nothere", "mono"]
    assert [r.graph is not None for r in results] == [False, True, False, False]
    assert results[0].reason == "empty file"
    assert results[2].reason.startswith("cannot read file")
    assert results[3].reason == "only one chain (A)"
    assert results[1].reason is None and results[1].graph.name == "good"
