"""What mkdssp reads: a minimal mmCIF copy of the structure, written by the project whatever the input looked like.

mkdssp 4.x reads PDB text with a reader of its own (it rejects some header records, loses the atom after a bare
`TER`, refuses blank chain ids and more than 62 chains, stops at records between atoms) and converts it to
mmCIF before it computes anything, which is most of its time (bench/RESULTS.md). DSSP itself reads only two
categories: the polymer residues (`pdbx_poly_seq_scheme`) and their atoms (`atom_site`). This module writes
those two from the parsed structure (`data.structure`), so the input's formatting never reaches mkdssp: a PDB
file and its mmCIF form, or a file and its atoms-only copy, give mkdssp the same bytes.

What goes in: the amino acids, i.e. residues of ATOM records with a CA atom, and HETATM residues with the N,
CA and C of one (modified residues: mkdssp's own conversion keeps them in their chains too), with their atoms
except hydrogens off the backbone (DSSP skips them). Ligands, ions, nucleic acids, glycans and waters stay out:
DSSP never reads them (its values on 1HVR with and without its inhibitor are the same). An atom with alternate
locations goes in with every conformer, as mkdssp read them from the PDB file (`atom_conformers`).
Each chain gets a one-character author id and residues are numbered 1, 2, ... per id, so that the classic
DSSP output (one character for the chain, 4 digits for the number) holds any number of chains and residues:
`DsspCopy.residue_index` maps its (chain, number) back to the structure's residues.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from data.structure import ComplexStructure

WATERS = frozenset({"HOH", "WAT", "DOD"})
BACKBONE_ATOMS = frozenset({"N", "CA", "C", "O"})
# One-character author chain ids of the copy, cycled through: consecutive chains never share one.
CHAIN_CHARACTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
ATOM_SITE_COLUMNS = (
    "group_PDB id type_symbol label_atom_id label_alt_id label_comp_id label_asym_id label_entity_id "
    "label_seq_id pdbx_PDB_ins_code Cartn_x Cartn_y Cartn_z occupancy B_iso_or_equiv pdbx_formal_charge "
    "auth_seq_id auth_comp_id auth_asym_id auth_atom_id pdbx_PDB_model_num"
).split()
POLY_SEQ_SCHEME_COLUMNS = (
    "asym_id entity_id seq_id mon_id ndb_seq_num pdb_seq_num auth_seq_num pdb_mon_id auth_mon_id "
    "pdb_strand_id pdb_ins_code hetero"
).split()


@dataclass
class DsspCopy:
    text: str
    residue_index: dict[tuple[str, int], int]  # (chain character, number) in mkdssp's output -> structure residue


def is_hydrogen(name: str, element: str) -> bool:
    """Element H or D; without an element, a name that starts with H after any digits (PDB naming)."""
    if element:
        return element in ("H", "D")
    return name.lstrip("0123456789")[:1] in ("H", "D")


def element_of(name: str, element: str) -> str:
    """The element written for mkdssp, which only asks 'hydrogen or not': the file's, else the name's initial."""
    if element.isalpha():
        return element
    initial = name.lstrip("0123456789")[:1]
    return initial if initial.isalpha() else "X"


def cif_value(name: str) -> str:
    """An atom or residue name as a CIF value: quoted when it needs to be (O5', a name with a space or a
    leading _, $, # or quote); UNK for an empty residue name."""
    if not name:
        return "UNK"
    if all(c.isalnum() or c in "-+'*" for c in name) and name[0] != "'":
        return name
    return f'"{name}"' if '"' not in name else f"'{name}'"


def coordinate_texts(xyz: np.ndarray) -> list[str]:
    """x y z of each atom: 3 decimals, which give back the float32 values exactly for PDB-sized coordinates
    (all a PDB file holds); 9 significant digits, which always do, where 3 decimals would not."""
    xyz = np.asarray(xyz, dtype=np.float32)
    rounded = np.round(xyz.astype(np.float64), 3)
    if np.array_equal(rounded.astype(np.float32), xyz):
        return [f"{x:.3f} {y:.3f} {z:.3f}" for x, y, z in rounded.tolist()]
    return [f"{x:.9g} {y:.9g} {z:.9g}" for x, y, z in xyz.astype(np.float64).tolist()]


def protein_residues(structure: ComplexStructure) -> np.ndarray:
    """Indices of the residues mkdssp gets: ATOM-record residues with a CA atom (waters aside), and HETATM
    residues with the N, CA and C of an amino acid (modified residues: ABA, CSO, MSE, TPO...)."""
    kept = []
    for residue, (het, name, ca, (start, stop)) in enumerate(
        zip(structure.residue_hetero, structure.residue_name, structure.residue_ca, structure.residue_atoms,
            strict=True)
    ):
        if ca < 0 or name in WATERS:
            continue
        if het == " " or {"N", "C"} <= set(structure.atom_name[start:stop].tolist()):
            kept.append(residue)
    return np.asarray(kept, dtype=np.int64)


def atom_conformers(structure: ComplexStructure, atoms: list[int]) -> list[tuple[int, str, tuple]]:
    """(atom, label_alt_id, xyz) rows for the copy: one per atom, or one per conformer of an atom with alternate
    locations, by alternate location, as mkdssp's own PDB conversion lists them.

    mkdssp reads every row: of N, CA, C and O it keeps the last one (the last alternate location in that order,
    whatever the occupancies), and every side-chain conformer counts in its accessibility. Rows for all of them
    give it what it computed from the reference's PDB copy, while the features keep Biopython's conformer.
    """
    rows = []
    for atom in atoms:
        conformers = structure.atom_alternates.get(atom)
        if not conformers:
            rows.append((atom, ".", tuple(structure.atom_xyz[atom].tolist())))
            continue
        rows += [(atom, cif_value(alt) if alt.strip() else ".", (x, y, z)) for alt, x, y, z in conformers]
    return rows


def dssp_copy(structure: ComplexStructure, whole_residues: set[tuple[str, int, str]] | None = None) -> DsspCopy:
    """The minimal mmCIF for mkdssp, and how to read its output back.

    With `whole_residues` (chain, number, insertion code), other residues keep only their backbone (N, CA, C, O):
    all DSSP needs for their hydrogen bonds, secondary structure and angles. Only their own accessibility
    changes, and that of residues within reach of their side chains, which the caller includes in
    `whole_residues`.
    """
    residues = protein_residues(structure)
    chains = list(dict.fromkeys(structure.residue_chain[residues].tolist()))
    chain_index = {chain: k for k, chain in enumerate(chains)}
    poly_rows, atom_rows = [], []
    residue_index: dict[tuple[str, int], int] = {}
    numbers = dict.fromkeys(CHAIN_CHARACTERS, 0)
    serial = 0
    for residue in residues.tolist():
        chain = structure.residue_chain[residue]
        index = chain_index[chain]
        # One character as label and author chain id: mkdssp refuses longer ones in its classic output.
        asym = character = CHAIN_CHARACTERS[index % len(CHAIN_CHARACTERS)]
        numbers[character] += 1
        number = seq_id = numbers[character]  # the 63rd chain continues the 1st one's numbers, and so on
        entity = index % len(CHAIN_CHARACTERS) + 1
        residue_index[(character, number)] = residue
        name = cif_value(structure.residue_name[residue])
        poly_rows.append(f"{asym} {entity} {seq_id} {name} {seq_id} {number} {number} {name} {name} {character} . n")
        key = (chain, int(structure.residue_seq[residue]), structure.residue_icode[residue])
        whole = whole_residues is None or key in whole_residues
        start, stop = structure.residue_atoms[residue]
        kept = [
            atom for atom in range(start, stop)
            if structure.atom_name[atom] in BACKBONE_ATOMS
            or (whole and not is_hydrogen(structure.atom_name[atom], structure.atom_element[atom]))
        ]
        rows = atom_conformers(structure, kept)
        xyz_texts = coordinate_texts(np.asarray([xyz for _, _, xyz in rows], dtype=np.float32).reshape(-1, 3))
        for (atom, alt, _), xyz in zip(rows, xyz_texts, strict=True):
            serial += 1
            atom_name = cif_value(structure.atom_name[atom])
            element = element_of(structure.atom_name[atom], structure.atom_element[atom])
            atom_rows.append(
                f"ATOM {serial} {element} {atom_name} {alt} {name} {asym} {entity} {seq_id} ? {xyz} 1.00 0.00 ? "
                f"{number} {name} {character} {atom_name} 1"
            )
    out = ["data_TOPOQA", "#", "loop_", *(f"_pdbx_poly_seq_scheme.{column}" for column in POLY_SEQ_SCHEME_COLUMNS)]
    out += poly_rows
    out += ["#", "loop_", *(f"_atom_site.{column}" for column in ATOM_SITE_COLUMNS)]
    out += atom_rows
    out.append("#")
    return DsspCopy("\n".join(out) + "\n", residue_index)
