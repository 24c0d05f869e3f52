"""The input mkdssp reads fastest: a minimal mmCIF copy of a plain PDB complex.

mkdssp 4.x converts a PDB file to mmCIF before it computes anything, and that conversion is most of its time
(bench/RESULTS.md has the measurements). DSSP itself reads
only two categories: the polymer residues (`pdbx_poly_seq_scheme`) and their atoms (`atom_site`). For input in
the plain form docking tools and AlphaFold write, this module writes those two categories the way mkdssp's own
conversion fills them, so the residue lines it prints are byte-identical (tested on every input the tests
use). Anything else gets None, and mkdssp reads the PDB copy as before: SEQRES or DBREF, ligands or modified
residues, alternate locations, non-standard residue names, hydrogens without an element column, a chain or
residue in pieces, records not known to be harmless, a non-coordinate record between atoms (mkdssp's reader
stops there), non-ASCII text.
"""

from __future__ import annotations

import re

STANDARD_RESIDUES = frozenset(
    "ALA ARG ASN ASP CYS GLN GLU GLY HIS ILE LEU LYS MET PHE PRO SER THR TRP TYR VAL".split()
)
WATERS = frozenset({"HOH", "WAT", "DOD"})
# Records checked to leave mkdssp's conversion unchanged (others, DBREF and SEQRES among them, change how it
# orders or numbers residues: those files keep the PDB route).
KNOWN_HARMLESS_RECORDS = frozenset(
    "ATOM HETATM TER END ENDMDL MODEL HEADER CRYST1 ORIGX1 ORIGX2 ORIGX3 SCALE1 SCALE2 SCALE3 REMARK TITLE "
    "COMPND SOURCE KEYWDS EXPDTA AUTHOR REVDAT JRNL SEQADV HELIX SHEET CISPEP CONECT FORMUL MASTER".split()
)
ATOM_SITE_COLUMNS = (
    "group_PDB id type_symbol label_atom_id label_alt_id label_comp_id label_asym_id label_entity_id "
    "label_seq_id pdbx_PDB_ins_code Cartn_x Cartn_y Cartn_z occupancy B_iso_or_equiv pdbx_formal_charge "
    "auth_seq_id auth_comp_id auth_asym_id auth_atom_id pdbx_PDB_model_num"
).split()
POLY_SEQ_SCHEME_COLUMNS = (
    "asym_id entity_id seq_id mon_id ndb_seq_num pdb_seq_num auth_seq_num pdb_mon_id auth_mon_id "
    "pdb_strand_id pdb_ins_code hetero"
).split()


RESIDUE_NUMBER = re.compile(r"-?[0-9]+")
BACKBONE_ATOMS = frozenset({"N", "CA", "C", "O"})
# x, y, z, occupancy and B (columns 31-66), each a plain decimal, joined by spaces.
COORDINATE_FIELDS = re.compile(r"-?\d+\.\d+(?: -?\d+\.\d+){4}")


def is_water(line: str) -> bool:
    return line.startswith("HETATM") and line[17:20].strip() in WATERS


def label_asym_id(index: int) -> str:
    """A, B, ..., Z, AA, BA, ... as mkdssp's conversion names chains (only distinct, consistent ids matter)."""
    letters = ""
    index += 1
    while index > 0:
        index, remainder = divmod(index - 1, 26)
        letters += chr(ord("A") + remainder)
    return letters


def dssp_mmcif_text(pdb_text: str, whole_residues: set[tuple[str, int, str]] | None = None) -> str | None:
    """The minimal mmCIF for mkdssp, or None when the PDB text is not in the plain form this covers.

    `pdb_text` is the first model only (as `read_first_model_text` gives it). With `whole_residues` (chain,
    number, insertion code), other residues keep only their backbone (N, CA, C, O): all DSSP needs for their
    hydrogen bonds, secondary structure and angles. Only their own accessibility changes, and that of
    residues within reach of their side chains, which the caller includes in `whole_residues`.
    """
    plain = plain_residues_and_atoms(pdb_text)
    if plain is None:
        return None
    residues, atoms = plain
    if whole_residues is not None:
        atoms = [atom for atom in atoms if atom[1] in BACKBONE_ATOMS or residues[atom[0]][:3] in whole_residues]
    return mmcif_text(residues, atoms)


def plain_residues_and_atoms(pdb_text: str) -> tuple[list[tuple[str, int, str, str]], list[tuple]] | None:
    """Residues (chain, number, insertion code, name) and the atoms DSSP reads (residue index, name, element,
    the 5 numbers, residue name), in file order; None for input this module does not cover."""
    chains: list[str] = []
    residues: list[tuple[str, int, str, str]] = []  # (chain, number, insertion code, name) in file order
    atoms: list[tuple[int, str, str, str, str]] = []  # (residue, name, element, 5 numbers, residue name)
    seen_residues: set[tuple[str, int, str]] = set()
    atoms_began = atoms_interrupted = False
    residue_columns = None  # columns 18-27 of the previous atom line: the same residue needs no new checks
    for line in pdb_text.split("\n"):
        line = line.rstrip("\r")
        if not line.strip():
            continue
        record = line[:6].rstrip()
        if not line.isascii() or record not in KNOWN_HARMLESS_RECORDS:
            return None
        if record != "ATOM":
            if record == "HETATM":
                if atoms_interrupted:
                    return None
                atoms_began = True
                if is_water(line):
                    continue  # never read by DSSP (both copies leave waters out)
                return None  # ligands, modified residues
            # mkdssp's PDB reader stops at a non-coordinate record once the atoms have begun, and loses the atom
            # after a bare "TER": more atoms after either would be read differently.
            atoms_interrupted |= len(line) < 6 or (atoms_began and record != "TER")
            continue
        if atoms_interrupted:
            return None
        atoms_began = True
        if len(line) < 66 or line[16] != " ":
            return None  # alternate locations, truncated lines
        if line[17:27] != residue_columns:
            number = line[22:26].strip()
            if not RESIDUE_NUMBER.fullmatch(number):
                return None
            chain, insertion, residue_name = line[21], line[26], line[17:20]
            plain_residue = residue_name in STANDARD_RESIDUES and chain.isalnum()
            if not (plain_residue and (insertion == " " or insertion.isalnum())):
                return None
            key = (chain, int(number), insertion)
            if not chains or chains[-1] != chain:
                if chain in chains:
                    return None  # a chain in pieces
                chains.append(chain)
            if not residues or residues[-1][:3] != key:
                if key in seen_residues:
                    return None  # a residue in pieces
                seen_residues.add(key)
                residues.append((*key, residue_name))
            elif residues[-1][3] != residue_name:
                return None  # two residue types under one number (microheterogeneity)
            residue_columns = line[17:27]
        name, element = line[12:16].strip(), line[76:78].strip()
        if not element:
            # DSSP only asks "hydrogen or not". A heavy-atom name of a standard residue starts with C, N, O or S;
            # how mkdssp's conversion names the element of anything else was not checked: PDB route.
            if not name or name[0] not in "CNOS":
                return None
            element = name[0]
        numbers = (
            f"{line[30:38].strip()} {line[38:46].strip()} {line[46:54].strip()} {line[54:60].strip()} "
            f"{line[60:66].strip()}"
        )
        # Only values that need no quoting in CIF, and none that mkdssp's conversion would reinterpret.
        if not (name.isalnum() and element.isalpha() and COORDINATE_FIELDS.fullmatch(numbers)):
            return None
        # DSSP finds backbone atoms by name and skips other hydrogens: leaving those out shortens its scans.
        if element != "H" or name in BACKBONE_ATOMS:
            atoms.append((len(residues) - 1, name, element, numbers, residue_name))
    return (residues, atoms) if atoms else None


def mmcif_text(residues: list[tuple[str, int, str, str]], atoms: list[tuple]) -> str:
    """`pdbx_poly_seq_scheme` and `atom_site` as mkdssp's PDB conversion fills them for these residues."""
    chains = list(dict.fromkeys(chain for chain, *_ in residues))
    chain_index = {chain: k for k, chain in enumerate(chains)}
    asym_ids = [label_asym_id(k) for k in range(len(chains))]
    seq_ids, previous_chain = [], None
    for chain, *_ in residues:
        seq_ids.append(1 if chain != previous_chain else seq_ids[-1] + 1)
        previous_chain = chain

    out = ["data_TOPOQA", "#", "loop_", *(f"_pdbx_poly_seq_scheme.{column}" for column in POLY_SEQ_SCHEME_COLUMNS)]
    for (chain, number, insertion, name), seq_id in zip(residues, seq_ids, strict=True):
        index = chain_index[chain]
        code = insertion if insertion != " " else "."
        out.append(
            f"{asym_ids[index]} {index + 1} {seq_id} {name} {seq_id} {number} {number} {name} {name} "
            f"{chain} {code} n"
        )
    out += ["#", "loop_", *(f"_atom_site.{column}" for column in ATOM_SITE_COLUMNS)]
    for serial, (residue, name, element, numbers, residue_name) in enumerate(atoms, 1):
        chain, number, insertion, _ = residues[residue]
        index = chain_index[chain]
        code = insertion if insertion != " " else "?"
        out.append(
            f"ATOM {serial} {element} {name} . {residue_name} {asym_ids[index]} {index + 1} "
            f"{seq_ids[residue]} {code} {numbers} ? {number} "
            f"{residue_name} {chain} {name} 1"
        )
    out.append("#")
    return "\n".join(out) + "\n"
