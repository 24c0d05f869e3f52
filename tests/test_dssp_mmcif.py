"""The copy mkdssp reads, written from the parsed structure, gives mkdssp's own result on the file.

The oracle is mkdssp reading the PDB copy, as the reference ran it (`dssp_input_text`): the same secondary
structure, accessibility and angles residue by residue. Inputs: plain forms of the bundled wwPDB examples
(crystal structures: chain breaks, several chains, waters), two of them whole (ligands, modified residues
written as HETATM, SEQRES), example 1HVR written as a docking model and the edits docking tools and AlphaFold
make to it (hydrogens, insertion codes, CRLF, MODEL records, full TER records), and every golden (docking
models) when the reference is present. Where mkdssp's own PDB reader goes wrong (a bare TER, more than 62
chains), the copy must give what the clean file gives (tests/test_input_variants.py compares whole graphs).
"""

from __future__ import annotations

import dataclasses
import subprocess
from pathlib import Path

import gemmi
import numpy as np
import pytest

from data.dssp import HEADER_LINE, MKDSSP, DsspRun, dssp_input_text, is_water, parse_dssp_output, residues_within_reach
from data.dssp_mmcif import dssp_copy
from data.interface import interface_residues
from data.structure import parse_structure, read_first_model_text, read_structure
from tests.conftest import REPO_ROOT, docking_model, need_reference, needs_mkdssp


def residue_lines(input_path: Path) -> str:
    output = input_path.with_suffix(".dssp")
    subprocess.run([MKDSSP, "--output-format=dssp", str(input_path), str(output)], check=True, capture_output=True)
    text = output.read_text()
    return text[text.index("  #  RESIDUE") :]


def values(residues) -> list[tuple]:
    """What the featurisation reads of each residue, in a stable order."""
    return sorted((r.chain, r.seq, r.icode, r.secondary_structure, r.accessibility, r.phi, r.psi) for r in residues)


def reference_dssp(pdb_text: str, folder: Path) -> list[tuple]:
    """mkdssp on the PDB copy the reference gave it."""
    pdb_copy = folder / "copy.pdb"
    pdb_copy.write_text(dssp_input_text(pdb_text))
    return values(parse_dssp_output(residue_lines(pdb_copy)))


def assert_same_dssp(pdb_text: str, folder: Path) -> None:
    expected = reference_dssp(pdb_text, folder)
    assert len(expected) > 10
    assert values(DsspRun(parse_structure(pdb_text)).result()) == expected


def plain_form(pdb_text: str, keep_waters: bool) -> str:
    """Atoms (and waters) only, first alternate location (as a docking tool writes a crystal structure back)."""
    lines = []
    for line in pdb_text.split("\n"):
        water = line.startswith("HETATM") and line[17:20] == "HOH"
        if not (line.startswith(("ATOM", "TER", "END")) or (water and keep_waters)):
            continue
        if line.startswith("ATOM") and line[16] != " ":
            if line[16] != "A":
                continue
            line = f"{line[:16]} {line[17:]}"
        lines.append(line)
    return "\n".join(lines)


def docking_model_file(folder: Path) -> Path:
    """examples/1HVR.pdb as a docking tool writes a model (two chains, MODEL records, segment ids, TER lines)."""
    path = folder / "1HVR_model.pdb"
    path.write_text("\n".join(docking_model((REPO_ROOT / "examples" / "1HVR.pdb").read_text().split("\n"))) + "\n")
    return path


def model_lines(tmp_path: Path) -> list[str]:
    """The docking model's first model, as the featurisation reads it."""
    return read_first_model_text(docking_model_file(tmp_path)).split("\n")


@needs_mkdssp
def test_a_docking_model(tmp_path):
    assert_same_dssp("\n".join(model_lines(tmp_path)), tmp_path)


@needs_mkdssp
@pytest.mark.parametrize("name", ["1A2K_r_l_b_model", "dimer_dimer_model", "dove_correct", "test_model"])
def test_goldens(name, tmp_path):
    # Real docking-tool output (the test above is a crystal structure written like it), as the reference read it.
    assert_same_dssp(read_first_model_text(need_reference("golden", name, "input.pdb")), tmp_path)


@needs_mkdssp
@pytest.mark.parametrize(
    ("example", "keep_waters"),
    [("1BD2.pdb.gz", False), ("1BD2.pdb.gz", True), ("1HVR.pdb", False), ("4E43.pdb", False), ("4E43.pdb", True)],
)
def test_crystal_structures_in_plain_form(example, keep_waters, tmp_path):
    text = read_first_model_text(REPO_ROOT / "examples" / example)
    plain = plain_form(text, keep_waters)
    assert ("HOH" in plain) == keep_waters
    assert_same_dssp(plain, tmp_path)


@needs_mkdssp
@pytest.mark.parametrize("example", ["1BD2.pdb.gz", "1HVR.pdb", "4E43.pdb"])
def test_whole_crystal_structures(example, tmp_path):
    # Ligands, waters, modified residues as HETATM (1HVR's ABA), SEQRES and the other header records: mkdssp's
    # own conversion keeps the modified residues in their chains and leaves ligands out, and so does the copy.
    # 4E43 has alternate locations (A 0.60, B 0.40 at 7 residues): see the tests below.
    assert_same_dssp(read_first_model_text(REPO_ROOT / "examples" / example), tmp_path)


# ---- alternate locations. mkdssp reads every conformer: of N, CA, C and O the last alternate location in
# label order (B of A/B, whatever the occupancies and the order of the lines), and every side-chain conformer
# counts in the accessibility. Biopython (the features' atoms) takes the highest occupancy.

def alternate_lines(lines: list[str]) -> list[int]:
    return [k for k, line in enumerate(lines) if line.startswith(("ATOM", "HETATM")) and line[16] != " "]


def with_occupancies_swapped(lines: list[str]) -> list[str]:
    # Biopython now takes conformer B, mkdssp still B for the backbone: nothing it computes changes.
    out = list(lines)
    for k in alternate_lines(lines):
        out[k] = f"{lines[k][:54]}{1 - float(lines[k][54:60]):6.2f}{lines[k][60:]}"
    return out


def with_labels_swapped(lines: list[str]) -> list[str]:
    # The first listed conformer, of higher occupancy, is now labelled B: Biopython and mkdssp both take it.
    out = list(lines)
    for k in alternate_lines(lines):
        out[k] = f"{lines[k][:16]}{'B' if lines[k][16] == 'A' else 'A'}{lines[k][17:]}"
    return out


def with_b_listed_first(lines: list[str]) -> list[str]:
    out = list(lines)
    for k in alternate_lines(lines):
        if lines[k][16] == "A" and lines[k + 1][16] == "B" and lines[k][12:16] == lines[k + 1][12:16]:
            out[k], out[k + 1] = lines[k + 1], lines[k]
    return out


def with_conformers_in_blocks(lines: list[str]) -> list[str]:
    # Each residue's conformer B atoms, then its conformer A atoms, where its first alternate was (as some
    # refinement programs write them).
    alternates = alternate_lines(lines)
    residues: dict[str, list[str]] = {}
    for k in alternates:
        residues.setdefault(lines[k][17:27], []).append(lines[k])
    out = []
    for k, line in enumerate(lines):
        if k not in alternates:
            out.append(line)
        elif residues[line[17:27]][0] == line:
            block = residues[line[17:27]]
            out += [atom for atom in block if atom[16] == "B"] + [atom for atom in block if atom[16] == "A"]
    return out


def with_a_third_conformer(lines: list[str]) -> list[str]:
    # Conformer C (A moved by 0.5 A, occupancy 0.05) after each B: Biopython keeps A, mkdssp's backbone is C's.
    out = []
    for line in lines:
        out.append(line)
        if line.startswith("ATOM") and line[16] == "B":
            a = next(prior for prior in reversed(out) if prior[16] == "A" and prior[12:16] == line[12:16])
            out.append(f"{a[:16]}C{a[17:30]}{float(a[30:38]) + 0.5:8.3f}{a[38:54]}  0.05{a[60:]}")
    return out


def only_biopython_s_conformer(structure):
    """The structure as the copy held it before: Biopython's conformer only."""
    return dataclasses.replace(structure, atom_alternates={})


@needs_mkdssp
@pytest.mark.parametrize(
    "edit", [with_occupancies_swapped, with_labels_swapped, with_b_listed_first, with_conformers_in_blocks,
             with_a_third_conformer],
)
def test_alternate_locations_as_mkdssp_reads_them(edit, tmp_path):
    lines = read_first_model_text(REPO_ROOT / "examples" / "4E43.pdb").split("\n")
    edited = edit(lines)
    assert edited != lines and len(alternate_lines(edited)) >= len(alternate_lines(lines)) == 68
    text = "\n".join(edited)
    expected = reference_dssp(text, tmp_path)
    structure = parse_structure(text)
    assert values(DsspRun(structure).result()) == expected
    # The rule matters: Biopython's conformer alone gives other values.
    assert values(DsspRun(only_biopython_s_conformer(structure)).result()) != expected


def test_the_features_keep_biopython_s_conformer():
    # Occupancies swapped: Biopython's conformer (the features' atoms) changes; what mkdssp gets does not.
    lines = read_first_model_text(REPO_ROOT / "examples" / "4E43.pdb").split("\n")
    original, swapped = parse_structure("\n".join(lines)), parse_structure("\n".join(with_occupancies_swapped(lines)))
    ca = next(k for k in alternate_lines(lines) if lines[k][12:16] == " CA ")
    x_a, x_b = float(lines[ca][30:38]), float(lines[ca + 1][30:38])
    first = int(original.residue_ca[(original.residue_chain == "A") & (original.residue_seq == 34)][0])
    assert (original.atom_xyz[first, 0], swapped.atom_xyz[first, 0]) == (np.float32(x_a), np.float32(x_b))
    assert dssp_copy(original).text == dssp_copy(swapped).text


@needs_mkdssp
@pytest.mark.parametrize("edit", [None, with_occupancies_swapped, with_a_third_conformer])
def test_pdb_and_mmcif_forms_give_mkdssp_the_same_copy(edit, tmp_path):
    lines = read_first_model_text(REPO_ROOT / "examples" / "4E43.pdb").split("\n")
    pdb = tmp_path / "4E43.pdb"
    pdb.write_text("\n".join(edit(lines) if edit else lines))
    document = gemmi.read_structure(str(pdb))
    document.setup_entities()
    cif = tmp_path / "4E43.cif"
    cif.write_text(document.make_mmcif_document().as_string())
    assert "label_alt_id" in cif.read_text()
    copy = dssp_copy(read_structure(pdb)).text
    assert dssp_copy(read_structure(cif)).text == copy
    alternates = [row.split()[4] for row in copy.split("\n") if row.startswith("ATOM ")]
    assert alternates.count("A") == alternates.count("B") == 34  # every conformer of 4E43's 68 alternate atoms


def with_hydrogens(lines: list[str]) -> list[str]:
    out = []
    for line in lines:
        out.append(line)
        if line.startswith("ATOM") and line[12:16] == " CA ":
            x = float(line[30:38]) + 1.0
            out.append(f"{line[:12]} HA {line[16:30]}{x:8.3f}{line[38:76]} H")
    return out


def with_insertion_codes(lines: list[str]) -> list[str]:
    return [f"{line[:26]}A{line[27:]}" if line.startswith("ATOM") and line[22:26] == "  30" else line for line in lines]


def with_full_ter_records(lines: list[str]) -> list[str]:
    out, previous = [], None
    for line in lines:
        if line.startswith("ATOM") and previous is not None and line[21] != previous[21]:
            out.append(f"TER   {int(previous[6:11]) + 1:5d}      {previous[17:27]}")
        if line.startswith("ATOM"):
            previous = line
        out.append(line)
    return out


@needs_mkdssp
@pytest.mark.parametrize(
    "edit", [with_hydrogens, with_insertion_codes, with_full_ter_records]
)
def test_edits_docking_tools_make(edit, tmp_path):
    assert_same_dssp("\n".join(edit(model_lines(tmp_path))), tmp_path)


def without_element_columns(lines: list[str]) -> list[str]:
    return [line[:66] if line.startswith("ATOM") else line for line in lines]


def with_left_justified_names(lines: list[str]) -> list[str]:
    return [f"{line[:12]}{line[12:16].strip():<4}{line[16:66]}" if line.startswith("ATOM") else line for line in lines]


@needs_mkdssp
@pytest.mark.parametrize("edit", [without_element_columns, with_left_justified_names])
def test_heavy_atoms_without_element_columns(edit, tmp_path):
    assert_same_dssp("\n".join(edit(model_lines(tmp_path))), tmp_path)


def with_docking_header(lines: list[str]) -> list[str]:
    # No CRYST1: the PDB copy gets one after these (before them, mkdssp rejected the file).
    return ["TITLE     DECOY 17 OF RUN 3", "REMARK   1 SCORE -123.4", "REMARK 465 MISSING RESIDUES"] + lines


def with_a_backbone_atom_labelled_hydrogen(lines: list[str]) -> list[str]:
    k = next(k for k, line in enumerate(lines) if line.startswith("ATOM") and line[12:16] == " CA ")
    return replace_line(lines, k, f"{lines[k][:76]} H")  # DSSP finds backbone atoms by name: it must stay


def with_one_residue_number_written_two_ways(lines: list[str]) -> list[str]:
    atoms = [k for k, line in enumerate(lines) if line.startswith("ATOM") and int(line[22:26]) > 9]
    k = atoms[1]  # second atom of a residue numbered 10+: a leading zero, as integer the same residue
    number = int(lines[k][22:26])
    return replace_line(lines, k, f"{lines[k][:22]}{number:04d}"[:26] + lines[k][26:]) if number < 1000 else lines


def with_a_water_numbered_like_a_protein_residue(lines: list[str]) -> list[str]:
    # With it, mkdssp's PDB conversion ran for minutes: both copies leave waters out.
    first = lines[first_atom(lines)]
    return lines + [f"HETATM 9999  O   HOH {first[21:26]}      90.000  90.000  90.000  1.00  0.00           O"]


@needs_mkdssp
@pytest.mark.parametrize(
    "edit",
    [with_docking_header, with_a_backbone_atom_labelled_hydrogen, with_one_residue_number_written_two_ways,
     with_a_water_numbered_like_a_protein_residue],
)
def test_unusual_but_covered_input(edit, tmp_path):
    edited = edit(model_lines(tmp_path))
    assert edited != model_lines(tmp_path)
    assert_same_dssp("\n".join(edited), tmp_path)


@needs_mkdssp
def test_windows_line_endings_and_model_records(tmp_path):
    text = docking_model_file(tmp_path).read_text().replace("\n", "\r\n")
    assert "\r\nMODEL" in "\r\n" + text
    path = tmp_path / "crlf.pdb"
    path.write_text(text)
    assert_same_dssp(read_first_model_text(path), tmp_path)


def replace_line(lines: list[str], index: int, line: str) -> list[str]:
    return lines[:index] + [line] + lines[index + 1 :]


def first_atom(lines: list[str]) -> int:
    return next(k for k, line in enumerate(lines) if line.startswith("ATOM"))


@needs_mkdssp
def test_more_chains_than_the_classic_format_has_letters(tmp_path):
    # 70 chains: copies of chain A placed far apart. mkdssp refuses such a PDB file and long chain ids in its
    # classic output; the copy gives every chain a one-character id and maps the output back.
    lines = model_lines(tmp_path)
    atoms = [line for line in lines if line.startswith("ATOM")]
    chain_a = [line for line in atoms if line[21] == "A"]
    far = []
    for k in range(68):
        dx, dy = 200.0 + 60.0 * (k % 8), 60.0 * (k // 8)
        far += [f"{line[:21]}{chr(0x100 + k)}{line[22:30]}{float(line[30:38]) + dx:8.3f}"
                f"{float(line[38:46]) + dy:8.3f}{line[46:]}" for line in chain_a]
    structure = parse_structure("\n".join(atoms + far))
    assert len(set(structure.residue_chain)) == 70
    residues = DsspRun(structure).result()
    assert len(residues) == 70 * len({line[22:27] for line in chain_a})
    base = values(DsspRun(parse_structure("\n".join(atoms))).result())
    assert [v for v in values(residues) if v[0] in "AB"] == base


def test_hydrogens_are_left_out(tmp_path):
    lines = with_hydrogens(model_lines(tmp_path))
    text = dssp_copy(parse_structure("\n".join(lines))).text
    atom_rows = [row.split() for row in text.split("\n") if row.startswith("ATOM ")]
    heavy = [line for line in lines if line.startswith("ATOM") and line[76:78].strip() != "H"]
    assert len(atom_rows) == len(heavy) < sum(line.startswith("ATOM") for line in lines)
    assert {row[2] for row in atom_rows} == {"C", "N", "O", "S"}


@needs_mkdssp
@pytest.mark.parametrize("example", ["1BD2.pdb.gz", "4E43.pdb"])
def test_waters_change_no_residue_line_of_the_pdb_copy(example, tmp_path):
    # The PDB copy leaves waters out (mkdssp's conversion can run away on them); the reference's copy kept them.
    text = read_first_model_text(REPO_ROOT / "examples" / example)
    copy = dssp_input_text(text)
    assert "\nCRYST1" in text and any(map(is_water, text.split("\n")))
    assert not any(map(is_water, copy.split("\n")))
    # The reference's copy: the same, waters where the file has them.
    with_waters = "\n".join([HEADER_LINE, *(line for line in text.split("\n") if not line.startswith("HEADER"))])
    (tmp_path / "with.pdb").write_text(with_waters)
    (tmp_path / "without.pdb").write_text(copy)
    assert residue_lines(tmp_path / "with.pdb") == residue_lines(tmp_path / "without.pdb")


def test_waters_are_left_out():
    lines = plain_form(read_first_model_text(REPO_ROOT / "examples" / "4E43.pdb"), keep_waters=True).split("\n")
    text = dssp_copy(parse_structure("\n".join(lines))).text
    atom_rows = [row for row in text.split("\n") if row.startswith("ATOM ")]
    assert len(atom_rows) == sum(line.startswith("ATOM") for line in lines) > 0
    assert "HOH" not in text


def side_chain_free_cases() -> list:
    goldens = [pytest.param(("golden", name), id=name) for name in ("1A2K_r_l_b_model", "dove_correct")]
    examples = [pytest.param(("example", name), id=name) for name in ("1BD2.pdb.gz", "4E43.pdb")]
    # Whole 4E43: every conformer of its alternate locations goes to mkdssp, and counts in the reach.
    return goldens + examples + [pytest.param(("whole example", "4E43.pdb"), id="4E43 whole")]


@needs_mkdssp
@pytest.mark.parametrize("case", side_chain_free_cases())
def test_side_chains_out_of_reach_change_nothing_that_is_read(case, tmp_path):
    # Residues out of reach of the interface go to mkdssp as backbone only. Every residue's secondary
    # structure and angles (phi/psi are scaled over all residues) and the interface residues' accessibility
    # must be those of the whole copy.
    kind, name = case
    if kind == "golden":
        text = read_first_model_text(need_reference("golden", name, "input.pdb"))
    elif kind == "example":
        text = plain_form(read_first_model_text(REPO_ROOT / "examples" / name), keep_waters=False)
    else:
        text = read_first_model_text(REPO_ROOT / "examples" / name)
    structure = parse_structure(text)
    interface = interface_residues(structure)
    whole = residues_within_reach(structure, interface)
    runs = {}
    for label, keep in (("whole", None), ("backbone out of reach", whole)):
        runs[label] = (DsspRun(structure, keep).result(), dssp_copy(structure, keep).text.count("\nATOM "))
    (full, full_atoms), (cut, cut_atoms) = runs["whole"], runs["backbone out of reach"]
    assert cut_atoms < full_atoms and len(whole) < len(structure.residue_chain)
    assert [(r.chain, r.seq, r.icode, r.secondary_structure, r.phi, r.psi) for r in cut] == [
        (r.chain, r.seq, r.icode, r.secondary_structure, r.phi, r.psi) for r in full
    ]
    keys = {(structure.residue_chain[r], int(structure.residue_seq[r]), structure.residue_icode[r]) for r in interface}
    read = [(r.chain, r.seq, r.icode, r.accessibility) for r in full if (r.chain, r.seq, r.icode) in keys]
    assert len(read) == len(interface)
    assert [(r.chain, r.seq, r.icode, r.accessibility) for r in cut if (r.chain, r.seq, r.icode) in keys] == read
    # Out of reach, accessibility does change: the check above can fail.
    assert [r.accessibility for r in cut] != [r.accessibility for r in full]


@needs_mkdssp
def test_names_cif_would_misread_are_quoted(tmp_path):
    # A blank residue name and atom names starting with a quote or an underscore: the copy stays valid CIF and
    # mkdssp reads every residue.
    lines = model_lines(tmp_path)
    atoms = [k for k, line in enumerate(lines) if line.startswith("ATOM") and line[21] == "A"]
    for k in atoms:
        if lines[k][22:27] == lines[atoms[0]][22:27]:  # every atom of the first residue
            lines[k] = f"{lines[k][:17]}   {lines[k][20:]}"
    side_chain = next(k for k in atoms if lines[k][12:16].strip() not in ("N", "CA", "C", "O"))
    lines[side_chain] = f"{lines[side_chain][:12]}'CB {lines[side_chain][16:]}"
    other = next(k for k in atoms[10:] if lines[k][12:16].strip() not in ("N", "CA", "C", "O"))
    lines[other] = f"{lines[other][:12]}_X1 {lines[other][16:]}"
    structure = parse_structure("\n".join(lines))
    residues = DsspRun(structure).result()
    assert len(residues) == len(DsspRun(parse_structure("\n".join(model_lines(tmp_path)))).result())
