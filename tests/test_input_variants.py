"""Formatting never changes a graph: real complexes and their variants give the same arrays, bit for bit.

The complexes are the bundled wwPDB examples (CC0): 1HVR (HIV-1 protease with an inhibitor, a modified residue
written as HETATM, waters), 4E43 (alternate locations, ligands, modified residues) and 1BD2 (a five-chain
TCR-MHC complex). Each variant is made here, at test time, from the example file: the structure's mmCIF form
(written by gemmi, also gzipped and under a .pdb name), its atoms-only copy, bare TER lines, header records
mkdssp's PDB reader rejects, extra chains far away (more than 26 in a PDB file, more than 62 with
multi-character ids in mmCIF), blank-chain HETATM records far away (membrane dummy atoms), residue numbers
past 9999 in hybrid-36. The graph arrays (what the network reads) must equal the original file's bit for bit.
That the original's graph is right is test_featurize_parity's job.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import gemmi
import numpy as np
import pytest

from data.featurize import featurize_arrays, featurize_stages
from tests.conftest import REPO_ROOT, need_reference, needs_mkdssp

pytestmark = needs_mkdssp

EXAMPLES = {"1HVR": "1HVR.pdb", "4E43": "4E43.pdb", "1BD2": "1BD2.pdb.gz"}
CHAIN_IDS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


def example_lines(name: str) -> list[str]:
    path = REPO_ROOT / "examples" / EXAMPLES[name]
    raw = path.read_bytes()
    text = gzip.decompress(raw).decode() if path.suffix == ".gz" else raw.decode()
    return text.splitlines()


def write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def is_atom(line: str) -> bool:
    return line.startswith(("ATOM  ", "HETATM"))


def coordinates(line: str) -> np.ndarray:
    return np.array([float(line[30:38]), float(line[38:46]), float(line[46:54])])


def moved(line: str, shift, chain: str | None = None) -> str:
    x, y, z = coordinates(line) + shift
    chain = line[21] if chain is None else chain
    return f"{line[:21]}{chain}{line[22:30]}{x:8.3f}{y:8.3f}{z:8.3f}{line[54:]}"


def far_shifts(lines: list[str], count: int) -> list[np.ndarray]:
    """`count` translations that put copies of the complex's first chain out of reach of everything: on a grid
    whose spacing exceeds the complex's size by 30 A, beside it."""
    xyz = np.array([coordinates(line) for line in lines if is_atom(line)])
    spacing = float((xyz.max(axis=0) - xyz.min(axis=0)).max()) + 30.0
    return [np.array([spacing * (1 + k % 6), spacing * (k // 6), 0.0]) for k in range(count)]


def first_chain_atoms(lines: list[str]) -> list[str]:
    first = next(line for line in lines if line.startswith("ATOM  "))[21]
    return [line for line in lines if line.startswith("ATOM  ") and line[21] == first]


# ---------------------------------------------------------------- the variants


def atoms_only(lines: list[str]) -> list[str]:
    return [line for line in lines if is_atom(line)]


def bare_ter_lines(lines: list[str]) -> list[str]:
    """A bare `TER` wherever the file has a TER record, and one after every chain that has none (Rosetta)."""
    out, previous = [], None
    for line in lines:
        if line.startswith("TER"):
            out.append("TER")
            previous = None
            continue
        if is_atom(line) and previous is not None and line[21] != previous:
            out.append("TER")
        out.append(line)
        previous = line[21] if is_atom(line) else previous
    return out


def rejected_header_records(lines: list[str]) -> list[str]:
    """Records mkdssp's PDB reader rejects: REMARK lines as ProDy writes them, old COMPND/SOURCE without MOL_ID."""
    header = [
        "REMARK Selection 'protein and not hydrogen'",
        "REMARK Written by ProDy",
        "COMPND    HIV-1 PROTEASE COMPLEX",
        "SOURCE    HUMAN IMMUNODEFICIENCY VIRUS 1",
    ]
    return header + [line for line in lines if not line.startswith(("HEADER", "COMPND", "SOURCE"))]


def extra_chains_pdb(lines: list[str]) -> list[str]:
    """The first chain copied far away under every other one-character id: more than 26 chains in all."""
    atoms = atoms_only(lines)
    used = {line[21] for line in atoms}
    free = [c for c in CHAIN_IDS if c not in used][:28]
    extra = []
    for chain, shift in zip(free, far_shifts(lines, len(free)), strict=True):
        extra += [moved(line, shift, chain) for line in first_chain_atoms(lines)]
    assert len(used) + len(free) > 26
    return atoms + extra + ["END"]


def blank_chain_hetatm_far_away(lines: list[str]) -> list[str]:
    """Membrane dummy atoms as OPM writes them: HETATM DUM with a blank chain id, far from the protein."""
    atoms = atoms_only(lines)
    corner = np.array([coordinates(line) for line in atoms]).max(axis=0) + 40.0
    dummies = [
        f"HETATM{90000 + k:5d}  O   DUM  {k + 1:4d}    {corner[0] + 2 * (k % 10):8.3f}{corner[1] + 2 * (k // 10):8.3f}"
        f"{corner[2]:8.3f}  1.00  0.00           O"
        for k in range(60)
    ]
    return atoms + dummies + ["END"]


def hybrid36(number: int) -> str:
    """A residue number in PDB's 4 columns, hybrid-36 past 9999."""
    if number < 10000:
        return f"{number:4d}"
    value = number - 10000 + 10 * 36**3
    digits = ""
    while value:
        value, remainder = divmod(value, 36)
        digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"[remainder] + digits
    return digits


def numbers_past_9999(lines: list[str]) -> list[str]:
    """Every residue of the last chain renumbered from 10000 up (order kept), written in hybrid-36."""
    last = [line for line in lines if line.startswith("ATOM  ")][-1][21]
    out = []
    for line in atoms_only(lines):
        if line[21] == last:
            line = f"{line[:22]}{hybrid36(int(line[22:26]) + 10000)}{line[26:]}"
        out.append(line)
    assert any(line[22].isalpha() for line in out)
    return out


PDB_VARIANTS = {
    "atoms only": atoms_only,
    "bare TER lines": bare_ter_lines,
    "header records mkdssp rejects": rejected_header_records,
    "more than 26 chains": extra_chains_pdb,
    "blank-chain HETATM far away": blank_chain_hetatm_far_away,
    "residue numbers past 9999 in hybrid-36": numbers_past_9999,
}


def mmcif_text(pdb_path: Path) -> str:
    structure = gemmi.read_structure(str(pdb_path))
    structure.setup_entities()
    return structure.make_mmcif_document().as_string()


def mmcif_with_far_chains(pdb_path: Path, lines: list[str]) -> str:
    """The mmCIF form with the first chain copied far away 68 times under two-character ids: 70+ chains."""
    structure = gemmi.read_structure(str(pdb_path))
    model = structure[0]
    template = model[0].clone()  # a reference into the model would not survive add_chain
    for k, shift in enumerate(far_shifts(lines, 68)):
        model.add_chain(template)
        copy = model[len(model) - 1]
        copy.name = f"X{k}"
        for residue in copy:
            for atom in residue:
                atom.pos = gemmi.Position(atom.pos.x + shift[0], atom.pos.y + shift[1], atom.pos.z + shift[2])
    structure.setup_entities()
    return structure.make_mmcif_document().as_string()


# ---------------------------------------------------------------- the tests


@pytest.fixture(scope="module")
def originals(tmp_path_factory) -> dict[str, tuple[Path, list[str], dict]]:
    """Each example, written out as is, and its graph arrays."""
    folder = tmp_path_factory.mktemp("originals")
    found = {}
    for name in EXAMPLES:
        lines = example_lines(name)
        path = write(folder / f"{name}.pdb", lines)
        found[name] = (path, lines, arrays_of(featurize_arrays(path)))
    return found


def arrays_of(graph) -> dict[str, np.ndarray]:
    return {"x": graph.x, "edge_index": graph.edge_index, "edge_attr": graph.edge_attr}


def assert_same_graph(graph, expected: dict[str, np.ndarray]) -> None:
    assert graph.x.shape[0] > 20 and graph.edge_index.shape[1] > 20
    for key, value in expected.items():
        mine = getattr(graph, key)
        assert mine.dtype == value.dtype and mine.shape == value.shape, key
        assert np.array_equal(mine, value), f"{key}: max difference {np.abs(mine - value).max()}"


@pytest.mark.parametrize("variant", sorted(PDB_VARIANTS))
@pytest.mark.parametrize("example", sorted(EXAMPLES))
def test_pdb_variants_give_the_same_graph(example, variant, originals, tmp_path):
    path, lines, expected = originals[example]
    edited = PDB_VARIANTS[variant](lines)
    assert edited != lines
    assert_same_graph(featurize_arrays(write(tmp_path / f"{example}.pdb", edited)), expected)


@pytest.mark.parametrize("example", sorted(EXAMPLES))
def test_mmcif_form_gives_the_same_graph(example, originals, tmp_path):
    path, _, expected = originals[example]
    text = mmcif_text(path)
    cif = tmp_path / f"{example}.cif"
    cif.write_text(text)
    zipped = tmp_path / f"{example}_zipped.cif.gz"
    zipped.write_bytes(gzip.compress(text.encode()))
    misnamed = tmp_path / f"{example}_misnamed.pdb"  # mmCIF content under a .pdb name: decided by content
    misnamed.write_text(text)
    for form in (cif, zipped, misnamed):
        assert_same_graph(featurize_arrays(form), expected)


@pytest.mark.parametrize("example", ["1HVR"])  # 1BD2 copied 68 times is 100,000 atoms: a minute of mkdssp
def test_more_than_62_chains_with_long_ids_in_mmcif(example, originals, tmp_path):
    path, lines, expected = originals[example]
    cif = tmp_path / f"{example}_many.cif"
    cif.write_text(mmcif_with_far_chains(path, lines))
    assert_same_graph(featurize_arrays(cif), expected)


def test_multi_character_chain_ids_name_the_nodes(originals, tmp_path):
    path, _, expected = originals["1HVR"]
    structure = gemmi.read_structure(str(path))
    for chain in structure[0]:  # every part of each chain (gemmi keeps ligands and waters apart)
        chain.name = {"A": "HEAVY", "B": "LIGHT"}.get(chain.name, chain.name)
    structure.setup_entities()
    cif = tmp_path / "long_ids.cif"
    cif.write_text(structure.make_mmcif_document().as_string())
    stages = featurize_stages(cif)
    assert {identifier.split(">")[0] for identifier in stages.node_ids} == {"c<HEAVY", "c<LIGHT"}
    assert_same_graph(stages.arrays, expected)


@pytest.mark.parametrize("golden", ["1A2K_r_l_b_model", "dimer_dimer_model", "dove_correct", "test_model"])
def test_a_golden_s_mmcif_form_gives_its_graph(golden, tmp_path):
    # Real docking-tool output as the reference scored it: its mmCIF form gives the PDB file's graph bit for bit
    # (which test_featurize_parity ties to the reference's recorded graph).
    source = need_reference("golden", golden, "input.pdb")
    cif = tmp_path / f"{golden}.cif"
    cif.write_text(mmcif_text(source))
    assert_same_graph(featurize_arrays(cif), arrays_of(featurize_arrays(source)))
