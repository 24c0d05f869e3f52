"""Inputs as they come from docking tools and AlphaFold, built at test time from a bundled wwPDB complex.

The base input is examples/1HVR.pdb written the way a docking tool writes a model (see `docking_model`). Where an
edit must not change the result, the edited file's graph is compared with the base file's graph; where it must
change, what changes is checked; where the input cannot be scored, the reason is checked. That the base graph
itself is right is test_featurize_parity's job (against the reference's goldens), and the last test here ties
the format edits to a golden's recorded graph when the reference is present.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.numpy import load_file

import data.dssp
from data.featurize import (
    UnscorableComplex,
    complex_name,
    featurize_complex,
    featurize_many,
    featurize_one,
    featurize_stages,
)
from tests.conftest import REPO_ROOT, docking_model, need_reference, needs_mkdssp

EXAMPLE = REPO_ROOT / "examples" / "1HVR.pdb"  # the smallest bundled complex: HIV-1 protease, chains A and B
GOLDEN = "dove_correct"  # the smallest golden, for the one test against the reference's recorded graph
TOLERANCE = 1e-6


@pytest.fixture(scope="module")
def base_lines() -> list[str]:
    lines = docking_model(EXAMPLE.read_text().splitlines())
    assert {line[21] for line in lines if line.startswith("ATOM")} == {"A", "B"}
    return lines


@pytest.fixture(scope="module")
def base_path(base_lines, tmp_path_factory) -> Path:
    return write(tmp_path_factory.mktemp("base") / "base.pdb", base_lines)


@pytest.fixture(scope="module")
def base_stages(mkdssp, base_path):
    """The unedited base input, featurised once; edits that must change nothing are compared with it bit for bit."""
    stages = featurize_stages(base_path)
    # A real interface graph, or the comparisons below would compare nothing: both chains, cross-chain edges.
    assert len(stages.interface_ids) > 50 and {identifier[2] for identifier in stages.interface_ids} == {"A", "B"}
    assert stages.graph.edge_index.shape[1] > 100
    return stages


@pytest.fixture(scope="module")
def base_graph(base_stages) -> dict[str, np.ndarray]:
    graph = base_stages.graph
    return {"x": graph.x.numpy(), "edge_index": graph.edge_index.numpy(), "edge_attr": graph.edge_attr.numpy()}


def write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def atom_lines(lines: list[str]) -> list[str]:
    return [line for line in lines if line.startswith(("ATOM", "HETATM"))]


def with_coordinates(line: str, xyz) -> str:
    return f"{line[:30]}{xyz[0]:8.3f}{xyz[1]:8.3f}{xyz[2]:8.3f}{line[54:]}"


def coordinates(line: str) -> np.ndarray:
    return np.array([float(line[30:38]), float(line[38:46]), float(line[46:54])])


def residue(line: str) -> tuple[str, int]:
    """(chain, residue number) of an ATOM or HETATM line."""
    return line[21], int(line[22:26])


def assert_same_graph(graph, base_graph, tolerance: float = 0.0):
    np.testing.assert_array_equal(graph.edge_index.numpy(), base_graph["edge_index"])
    assert np.abs(graph.x.numpy() - base_graph["x"]).max() <= tolerance
    assert np.abs(graph.edge_attr.numpy() - base_graph["edge_attr"]).max() <= tolerance


# ---------------------------------------------------------------- names


@pytest.mark.parametrize(
    ("file_name", "expected"),
    [("a.pdb", "a"), ("a.b.pdb", "a.b"), ("x.pdb.gz", "x"), ("1abc.ent", "1abc"), ("m.ent.gz", "m"),
     ("Model.PDB", "Model"), ("v1.2_model.pdb", "v1.2_model")],
)
def test_complex_name_cuts_only_the_last_known_extension(file_name, expected):
    assert complex_name(Path("/some/folder") / file_name) == expected


# ---------------------------------------------------------------- inputs that must give the base graph


def reformatted_copies(folder: Path, lines: list[str]) -> tuple[Path, Path, Path]:
    """The same structure with CRLF line endings, gzipped, and without its MODEL/ENDMDL records."""
    crlf = folder / "crlf.pdb"
    crlf.write_bytes(("\r\n".join(lines) + "\r\n").encode())
    gzipped = folder / "zipped.pdb.gz"
    gzipped.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    no_model = write(folder / "nomodel.pdb", [ln for ln in lines if not ln.startswith(("MODEL", "ENDMDL"))])
    return crlf, gzipped, no_model


@needs_mkdssp
def test_crlf_gzip_and_no_model_records_give_the_same_graph(tmp_path, base_lines, base_graph):
    crlf, gzipped, no_model = reformatted_copies(tmp_path, base_lines)
    for path in (crlf, gzipped, no_model):
        graph = featurize_complex(path)
        assert_same_graph(graph, base_graph)
    assert featurize_complex(gzipped).name == "zipped"


@needs_mkdssp
def test_header_cryst1_present_and_user_file_untouched(tmp_path, base_lines, base_graph):
    header = ["HEADER    DOCKING DECOY                           01-JAN-24   XXXX",
              "CRYST1   50.000   60.000   70.000  90.00  90.00  90.00 P 1           1"]
    path = write(tmp_path / "with_header.pdb", header + base_lines)
    before = path.read_bytes()
    assert_same_graph(featurize_complex(path), base_graph)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["with_header.pdb"]


@needs_mkdssp
def test_only_the_first_model_is_used(tmp_path, base_lines, base_graph):
    atoms = atom_lines(base_lines)
    shifted = [with_coordinates(line, coordinates(line) + [3.0, -2.0, 1.0]) for line in atoms]
    lines = ["MODEL        1", *atoms, "ENDMDL", "MODEL        2", *shifted, "ENDMDL", "END"]
    assert_same_graph(featurize_complex(write(tmp_path / "models.pdb", lines)), base_graph)


@needs_mkdssp
def test_alternate_locations_use_the_highest_occupancy(tmp_path, base_lines, base_stages, base_graph):
    # Every atom of three interface residues (the catalytic triad of chain A) gets a second, shifted conformer B
    # with lower occupancy.
    moved_residues = [("A", 25), ("A", 26), ("A", 27)]
    assert {f"c<A>r<{number}>" for _, number in moved_residues} <= {i.split("R<")[0] for i in base_stages.interface_ids}
    lines = []
    for line in base_lines:
        if line.startswith("ATOM") and residue(line) in moved_residues:
            lines.append(f"{line[:16]}A{line[17:54]}  0.60{line[60:]}")
            moved = with_coordinates(line, coordinates(line) + [0.7, 0.4, -0.5])
            lines.append(f"{moved[:16]}B{moved[17:54]}  0.40{moved[60:]}")
        else:
            lines.append(line)
    graph = featurize_complex(write(tmp_path / "altloc.pdb", lines))
    # Biopython keeps conformer A: interface, topology and edges are the unedited file's. mkdssp reads the same copy
    # the reference fed it, conformer B included, so its accessibility may differ: columns from AA_0 on must not.
    np.testing.assert_array_equal(graph.edge_index.numpy(), base_graph["edge_index"])
    np.testing.assert_array_equal(graph.edge_attr.numpy(), base_graph["edge_attr"])
    np.testing.assert_array_equal(graph.x.numpy()[:, 11:], base_graph["x"][:, 11:])


@needs_mkdssp
def test_far_waters_and_no_segment_ids_change_nothing(tmp_path, base_lines, base_graph):
    lines = [f"{line[:72]}    {line[76:]}" if line.startswith("ATOM") else line for line in base_lines]
    assert lines != base_lines  # the base model has segment ids to remove
    waters = [
        f"HETATM{9000 + k:5d}  O   HOH W{k + 1:4d}    {200.0 + 3 * k:8.3f}{200.0:8.3f}{200.0:8.3f}  1.00  0.00"
        "           O"
        for k in range(5)
    ]
    end = lines.index("ENDMDL")
    lines = lines[:end] + waters + lines[end:]
    graph = featurize_complex(write(tmp_path / "waters.pdb", lines))
    # Waters change the KD-tree layout, hence GUDHI's input order: equal up to rounding.
    assert_same_graph(graph, base_graph, TOLERANCE)


@needs_mkdssp
def test_insertion_codes_appear_in_ids_and_change_nothing_else(tmp_path, base_lines, base_stages, base_graph):
    assert base_stages.interface_ids[0] == "c<A>r<1>R<PRO>"
    lines = [
        f"{line[:26]}A{line[27:]}" if line.startswith("ATOM") and residue(line) == ("A", 1) else line
        for line in base_lines
    ]
    stages = featurize_stages(write(tmp_path / "icode.pdb", lines))
    assert stages.interface_ids[0] == "c<A>r<1>i<A>R<PRO>"
    assert "c<A>r<1>R<PRO>" not in stages.interface_ids
    assert_same_graph(stages.graph, base_graph)


# ---------------------------------------------------------------- inputs that change the result


@needs_mkdssp
def test_hydrogens_count_in_edge_histograms_only(tmp_path, base_lines, base_stages, base_graph):
    # One hydrogen 0.9 A from every N: out of every element group, but inside every atom-pair histogram.
    lines = []
    for line in base_lines:
        lines.append(line)
        if line.startswith("ATOM") and line[12:16] == " N  ":
            hydrogen = with_coordinates(line, coordinates(line) + [0.9, 0.0, 0.0])
            lines.append(f"{hydrogen[:12]} H  {hydrogen[16:76]} H")
    with_h = featurize_stages(write(tmp_path / "hydrogens.pdb", lines))
    assert with_h.interface_ids == base_stages.interface_ids
    assert np.abs(with_h.topology - base_stages.topology).max() <= TOLERANCE
    np.testing.assert_array_equal(with_h.graph.edge_index.numpy(), base_graph["edge_index"])
    assert not torch.equal(with_h.graph.edge_attr, base_stages.graph.edge_attr)


@needs_mkdssp
def test_true_geometry_changes_only_the_histograms(base_path, base_stages):
    # The reference built its atom-pair distance histograms from (x, y, y) points; --geometry xyz uses (x, y, z)
    # there and nowhere else.
    true = featurize_stages(base_path, geometry="xyz").graph
    defect = base_stages.graph
    assert true.geometry == "xyz" and defect.geometry == "xyy"
    assert torch.equal(true.x, defect.x) and torch.equal(true.edge_index, defect.edge_index)
    assert torch.equal(true.edge_attr[:, 0], defect.edge_attr[:, 0])  # CA distance uses x, y, z in both
    assert not torch.equal(true.edge_attr[:, 1:], defect.edge_attr[:, 1:])


@needs_mkdssp
def test_hetatm_ligand_joins_neighbourhoods_but_not_the_interface(tmp_path, base_lines, base_stages):
    # A three-atom ligand placed on the CA of the first interface residue.
    ca = next(line for line in base_lines if line[12:16] == " CA " and residue(line) == ("A", 1))
    centre = coordinates(ca) + [0.0, 0.0, 3.0]
    ligand = [
        f"HETATM{9100 + k:5d}  {atom:<3} LIG A 901    {x:8.3f}{y:8.3f}{z:8.3f}  1.00  0.00           {atom[0]}"
        for k, (atom, (x, y, z)) in enumerate(
            [("C1", centre), ("O1", centre + [1.2, 0.0, 0.0]), ("N1", centre + [0.0, 1.3, 0.0])]
        )
    ]
    end = base_lines.index("ENDMDL")
    stages = featurize_stages(write(tmp_path / "ligand.pdb", base_lines[:end] + ligand + base_lines[end:]))
    assert stages.interface_ids == base_stages.interface_ids
    assert not any("LIG" in identifier for identifier in stages.node_ids)
    assert not np.allclose(stages.topology[0], base_stages.topology[0])


@needs_mkdssp
@pytest.mark.parametrize("chain", ["A", "B"])
def test_modified_residue_written_as_hetatm_is_handled(tmp_path, base_lines, base_stages, base_graph, chain):
    # MET 36 -> MSE as HETATM inside a chain (the reference crashed on these: DSSP keys them differently). MET 36
    # is out of DSSP's reach of the interface: mkdssp leaves a HETATM residue out of its chain, which changes the
    # secondary structure of its neighbours (MET 46, next to the interface, would change the graph that way).
    assert not any(i.startswith(f"c<{chain}>r<36>") for i in base_stages.interface_ids)
    lines = []
    for line in base_lines:
        if line.startswith("ATOM") and residue(line) == (chain, 36):
            assert line[17:20] == "MET"
            line = f"HETATM{line[6:17]}MSE{line[20:]}"
            if line[12:16] == " SD ":
                line = f"{line[:12]}SE  {line[16:76]}SE"
        lines.append(line)
    assert any(line[17:20] == "MSE" for line in lines)
    stages = featurize_stages(write(tmp_path / "mse.pdb", lines))
    assert stages.interface_ids == base_stages.interface_ids
    # Same atoms, same name initials, same order, and nothing DSSP reads changes: the unedited graph.
    np.testing.assert_array_equal(stages.topology, base_stages.topology)
    assert_same_graph(stages.graph, base_graph)


@needs_mkdssp
def test_interface_modified_residue_is_left_out_without_crashing(tmp_path, base_lines, base_stages):
    # THR B 26 (interface, next to the catalytic ASP) written as phosphothreonine TPO in HETATM records, as
    # crystal structures write modified residues (the atoms stay the threonine's: only the records matter here).
    assert "c<B>r<26>R<THR>" in base_stages.interface_ids
    lines = [
        f"HETATM{line[6:17]}TPO{line[20:]}" if line.startswith("ATOM") and residue(line) == ("B", 26) else line
        for line in base_lines
    ]
    stages = featurize_stages(write(tmp_path / "tpo_interface.pdb", lines))
    assert "c<B>r<26>R<THR>" not in stages.interface_ids
    assert not any("TPO" in identifier for identifier in stages.interface_ids)
    assert stages.graph.num_nodes == len(stages.node_ids) > 0


@needs_mkdssp
def test_many_chains(tmp_path, base_lines):
    # Nine chains: chain A (residues 1-99) cut into five pieces and chain B into four, by residue number.
    def chain_of(line: str) -> str:
        number = int(line[22:26])
        if line[21] == "A":
            return "ACDEF"[min((number - 1) // 20, 4)]
        return "BGHI"[min((number - 1) // 25, 3)]

    lines = [f"{ln[:21]}{chain_of(ln)}{ln[22:]}" if ln.startswith("ATOM") else ln for ln in base_lines]
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


def test_one_chain_only(tmp_path, base_lines):
    lines = [line for line in base_lines if not (line.startswith("ATOM") and line[21] == "B")]
    assert unscorable_reason(write(tmp_path / "monomer.pdb", lines)) == "only one chain (A)"


def test_blank_chain_ids_say_so(tmp_path, base_lines):
    lines = [f"{line[:21]} {line[22:]}" if line.startswith("ATOM") else line for line in base_lines]
    assert unscorable_reason(write(tmp_path / "blank.pdb", lines)).startswith("only one chain (all chain ids blank")


def test_broken_mmcif_gets_a_reason(tmp_path):
    path = tmp_path / "model.cif"
    path.write_text("data_model\nloop_\n_atom_site.group_PDB\n_atom_site.Cartn_x\nATOM 1.0 2.0\n")
    assert unscorable_reason(path).startswith("unreadable mmCIF")
    path.write_text("data_model\n_cell.length_a 10\n")
    assert unscorable_reason(path) == "mmCIF without atom_site records (no coordinates)"


def test_ca_only_model_says_so(tmp_path, base_lines):
    lines = [line for line in base_lines if not line.startswith("ATOM") or line[12:16] == " CA "]
    assert unscorable_reason(write(tmp_path / "coarse.pdb", lines)).startswith("CA-only (coarse-grained) model")


def hetero_line(record: str, serial: int, atom: str, residue: str, chain: str, number: int, xyz) -> str:
    return (f"{record:<6}{serial:5d} {atom:<4} {residue:>3} {chain}{number:4d}    {xyz[0]:8.3f}{xyz[1]:8.3f}"
            f"{xyz[2]:8.3f}  1.00  0.00          {atom.strip()[:2]:>2}")


@pytest.mark.parametrize(
    ("kind", "records", "described"),
    [
        ("ion as an ATOM chain", [("ATOM", "ZN", "ZN")], "Z: ion ZN"),
        ("calcium as an ATOM chain", [("ATOM", "CA", "CA")], "Z: ion CA"),
        ("ion as a HETATM chain", [("HETATM", "MG", "MG")], "Z: ion MG"),
        ("nucleic acid", [("ATOM", "P", "DA"), ("ATOM", "C1'", "DA"), ("ATOM", "N9", "DA")], "Z: nucleic acid"),
        ("glycan", [("HETATM", "C1", "NAG"), ("HETATM", "O5", "NAG")], "Z: glycan NAG"),
    ],
)
def test_one_protein_chain_beside_non_protein_chains_says_so(tmp_path, base_lines, kind, records, described):
    chain_a = [line for line in base_lines if not (line.startswith("ATOM") and line[21] == "B")]
    ca = next(line for line in base_lines if line[12:16] == " CA " and residue(line) == ("A", 1))
    extra = [hetero_line(record, 9000 + k, atom, name, "Z", 1, coordinates(ca) + [3.0 + k, 0.0, 0.0])
             for k, (record, atom, name) in enumerate(records)]
    reason = unscorable_reason(write(tmp_path / "one_protein.pdb", chain_a[:-1] + extra + chain_a[-1:]))
    assert reason.startswith("only one protein chain (A); the other chains hold no amino acids")
    assert described in reason


def test_no_interface(tmp_path, base_lines):
    lines = [
        with_coordinates(line, coordinates(line) + [100.0, 0.0, 0.0])
        if line.startswith("ATOM") and line[21] == "B" else line
        for line in base_lines
    ]
    assert unscorable_reason(write(tmp_path / "apart.pdb", lines)).startswith("no interface")


def test_no_ca_atoms(tmp_path, base_lines):
    lines = [line for line in base_lines if line[12:16] != " CA "]
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


def test_dssp_failure_is_a_reason(tmp_path, base_lines, monkeypatch):
    monkeypatch.setattr(data.dssp, "MKDSSP", "false")  # a "mkdssp" that always fails
    assert unscorable_reason(write(tmp_path / "complex.pdb", base_lines)).startswith("mkdssp failed")


def test_missing_mkdssp_is_a_reason_after_the_input_s_own_problems(tmp_path, base_lines, monkeypatch):
    monkeypatch.setattr(data.dssp, "MKDSSP", "no-such-mkdssp-anywhere")
    monomer = [line for line in base_lines if not (line.startswith("ATOM") and line[21] == "B")]
    assert unscorable_reason(write(tmp_path / "monomer.pdb", monomer)) == "only one chain (A)"
    reason = unscorable_reason(write(tmp_path / "complex.pdb", base_lines))
    assert reason.startswith("mkdssp failed") and "not found" in reason


@needs_mkdssp
def test_an_mkdssp_killed_by_a_signal_is_reported_but_not_cached(tmp_path, base_lines, monkeypatch):
    # An out-of-memory kill says nothing about the file: the next run must try again, not read the reason back.
    killed_dssp = tmp_path / "mkdssp"
    killed_dssp.write_text("#!/bin/sh\nkill -9 $$\n")
    killed_dssp.chmod(0o755)
    path = write(tmp_path / "complex.pdb", base_lines)
    cache = tmp_path / "cache"
    monkeypatch.setattr(data.dssp, "MKDSSP", str(killed_dssp))
    first = featurize_one(path, cache_dir=cache)
    assert first.arrays is None and first.reason.startswith("mkdssp failed") and "-9" in first.reason
    monkeypatch.undo()
    second = featurize_one(path, cache_dir=cache)
    assert second.arrays is not None and not second.cached
    # A lasting reason is cached: a monomer's comes back from the cache the second time.
    chain_a = [line for line in base_lines if not (line.startswith("ATOM") and line[21] == "B")]
    monomer = write(tmp_path / "monomer.pdb", chain_a)
    assert not featurize_one(monomer, cache_dir=cache).cached
    again = featurize_one(monomer, cache_dir=cache)
    assert again.cached and again.reason == "only one chain (A)"


@needs_mkdssp
def test_batch_continues_past_bad_inputs_in_input_order(tmp_path, base_lines):
    good = write(tmp_path / "good.pdb", base_lines)
    empty = tmp_path / "empty.pdb"
    empty.write_text("")
    monomer = write(tmp_path / "mono.pdb", [ln for ln in base_lines if not (ln.startswith("ATOM") and ln[21] == "B")])
    results = featurize_many([empty, good, tmp_path / "nothere.pdb", monomer], jobs=1, progress=False)
    assert [r.name for r in results] == ["empty", "good", "nothere", "mono"]
    assert [r.graph is not None for r in results] == [False, True, False, False]
    assert results[0].reason == "empty file"
    assert results[2].reason.startswith("cannot read file")
    assert results[3].reason == "only one chain (A)"
    assert results[1].reason is None and results[1].graph.name == "good"


# ---------------------------------------------------------------- against the reference


@needs_mkdssp
def test_line_endings_gzip_and_model_records_keep_a_golden_s_reference_graph(tmp_path):
    # The edits above on a golden docking model, compared with the graph the reference recorded for it (within
    # the parity tolerance: the default double-precision alpha radii differ from the reference's in the last
    # bits of a few features, see test_featurize_parity).
    lines = need_reference("golden", GOLDEN, "input.pdb").read_text().splitlines()
    reference = load_file(need_reference("golden", GOLDEN, "graph.safetensors"))
    assert "ENDMDL" in lines and "\r" not in "".join(lines)
    for path in reformatted_copies(tmp_path, lines):
        graph = featurize_complex(path)
        np.testing.assert_array_equal(graph.edge_index.numpy(), reference["edge_index"])
        np.testing.assert_array_equal(graph.edge_attr.numpy(), reference["edge_attr"])
        np.testing.assert_allclose(graph.x.numpy(), reference["x"], rtol=0, atol=TOLERANCE)
