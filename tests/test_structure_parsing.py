"""The direct PDB reader against its oracle, Biopython's PDBParser: the same arrays, or Biopython reads it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from data.structure import (
    UnscorableComplex,
    parse_structure,
    parse_with_biopython,
    read_first_model_text,
    read_regular_atoms,
)
from model.checkpoint_paths import reference_root

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
FIELDS = (
    "atom_xyz", "atom_name_initial", "residue_chain", "residue_hetero", "residue_seq", "residue_icode",
    "residue_name", "residue_ca", "residue_atoms", "atom_name",
)
REGULAR_CASES = (
    "chain comes back after another",
    "waters in a chain of their own and inside a protein chain",
    "ligand and hydrogens",
    "padded END stops the reading",
    "unpadded END does not",
    "CONECT stops the reading",
    "records and blank lines between atoms",
    "insertion codes, blank chain id, segment id, no element column",
)
IRREGULAR_CASES = (
    "alternate location",
    "atom name twice in a residue",
    "residue in pieces",
    "residue renamed under the same number",
    "atom name with an inner space",
    "residue number missing",
    "coordinate not a number",
    "anisotropic B factor not a number",
)


def assert_same_structure(ours, biopython) -> None:
    for field in FIELDS:
        mine, theirs = getattr(ours, field), getattr(biopython, field)
        assert mine.dtype == theirs.dtype, field
        assert np.array_equal(mine, theirs), field


@pytest.fixture(scope="module")
def example_lines() -> list[str]:
    """1HVR (two chains, a modified residue written as HETATM, waters, CONECT records), as lines."""
    return read_first_model_text(EXAMPLES / "1HVR.pdb").split("\n")


def atoms_of_chain(lines: list[str], chain: str) -> list[int]:
    return [k for k, line in enumerate(lines) if line.startswith(("ATOM  ", "HETATM")) and line[21] == chain]


def with_field(line: str, start: int, text: str) -> str:
    return line[:start] + text + line[start + len(text):]


def test_bundled_examples_and_reference_complexes_read_as_biopython_reads_them():
    paths = sorted(EXAMPLES.glob("*.pdb*"))
    golden = reference_root() / "golden"
    paths += sorted(golden.glob("*/input.pdb")) if golden.is_dir() else []
    read_directly = []
    for path in paths:
        text = read_first_model_text(path)
        ours = read_regular_atoms(text)
        if ours is not None:
            read_directly.append(path.name if path.parent == EXAMPLES else path.parent.name)
            assert_same_structure(ours, parse_with_biopython(text))
    # 4E43 has alternate locations: Biopython's rules for those are its own.
    assert {"1BD2.pdb.gz", "1HVR.pdb"} <= set(read_directly)
    assert "4E43.pdb" not in read_directly
    if golden.is_dir():
        assert {"1A2K_r_l_b_model", "dimer_dimer_model", "dove_correct", "test_model"} <= set(read_directly)


def edited(lines: list[str], case: str) -> list[str]:
    lines = list(lines)
    chain_a, chain_b = atoms_of_chain(lines, "A"), atoms_of_chain(lines, "B")
    if case == "chain comes back after another":
        last_residues = [k for k in chain_a if int(lines[k][22:26]) >= int(lines[chain_a[-1]][22:26]) - 4]
        tail = [lines[k] for k in last_residues]
        lines = [line for k, line in enumerate(lines) if k not in set(last_residues)]
        last_b = max(k for k, line in enumerate(lines) if line.startswith("ATOM  ") and line[21] == "B")
        lines[last_b + 1 : last_b + 1] = tail
    elif case == "waters in a chain of their own and inside a protein chain":
        water = "HETATM 9001  O   HOH W   1      10.000  20.000  30.000  1.00 20.00           O  "
        lines[chain_b[-1] + 1 : chain_b[-1] + 1] = [water, with_field(water, 21, "A").replace("   1 ", "   2 ")]
    elif case == "ligand and hydrogens":
        ligand = "HETATM 9002  C1  LIG L 900      11.000  21.000  31.000  1.00 20.00           C  "
        hydrogen = with_field(lines[chain_a[0]], 12, " H  ")
        lines.insert(chain_a[0] + 1, hydrogen)
        lines.insert(chain_b[-1] + 2, ligand)
    elif case == "padded END stops the reading":
        lines.insert(chain_b[len(chain_b) // 2], "END   ")
    elif case == "unpadded END does not":
        lines.insert(chain_b[len(chain_b) // 2], "END")
    elif case == "CONECT stops the reading":
        lines.insert(chain_a[-1] + 1, "CONECT    1    2")
    elif case == "records and blank lines between atoms":
        anisou = "ANISOU    1  N   PRO A   1     3771   2862   4393   -298   -436    -68       N  "
        lines[chain_a[10] : chain_a[10]] = ["REMARK 999 NOTE", "", "TER", anisou, anisou.replace("ANISOU", "SIGUIJ")]
    elif case == "insertion codes, blank chain id, segment id, no element column":
        lines[chain_a[0]] = with_field(lines[chain_a[0]], 26, "A")
        for k in chain_b:
            lines[k] = with_field(with_field(lines[k], 21, " "), 72, "SEGB    ")[:76]
    else:
        raise AssertionError(case)
    return lines


@pytest.mark.parametrize("case", REGULAR_CASES)
def test_regular_variants_are_read_directly_and_identically(example_lines, case):
    text = "\n".join(edited(example_lines, case))
    ours = read_regular_atoms(text)
    assert ours is not None
    assert_same_structure(ours, parse_with_biopython(text))


def irregular(lines: list[str], case: str) -> list[str]:
    lines = list(lines)
    chain_a = atoms_of_chain(lines, "A")
    first, second = chain_a[0], chain_a[1]
    if case == "alternate location":
        lines[second] = with_field(lines[second], 16, "A")
    elif case == "atom name twice in a residue":
        lines.insert(second, lines[second])
    elif case == "residue in pieces":
        lines.insert(chain_a[-1] + 1, lines[first])
    elif case == "residue renamed under the same number":
        lines[second] = with_field(lines[second], 17, "GLY")
    elif case == "atom name with an inner space":
        lines[second] = with_field(lines[second], 12, " C A")
    elif case == "residue number missing":
        lines[second] = with_field(lines[second], 22, "    ")
    elif case == "coordinate not a number":
        lines[second] = with_field(lines[second], 30, "  x.xxx ")
    elif case == "anisotropic B factor not a number":
        lines.insert(second, "ANISOU    2  CA  PRO A   1     1 2 3 4 5 6")
    else:
        raise AssertionError(case)
    return lines


@pytest.mark.parametrize("case", IRREGULAR_CASES)
def test_irregular_text_is_left_to_biopython(example_lines, case):
    text = "\n".join(irregular(example_lines, case))
    assert read_regular_atoms(text) is None
    try:
        expected = parse_with_biopython(text)
    except UnscorableComplex as error:
        with pytest.raises(UnscorableComplex, match="unreadable PDB") as raised:
            parse_structure(text)
        assert str(raised.value) == str(error)
        return
    assert_same_structure(parse_structure(text), expected)
