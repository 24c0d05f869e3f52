"""Read a PDB complex (plain or gzipped, any line endings) into flat atom and residue arrays (first model only)."""

from __future__ import annotations

import gzip
import io
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from Bio.PDB import PDBParser

COORDINATE_RECORDS = ("ATOM  ", "HETATM")
# Records among the atoms whose numbers Biopython parses (column ranges as it reads them).
BIOPYTHON_NUMBER_RECORDS = {
    "ANISOU": ((28, 35), (35, 42), (43, 49), (49, 56), (56, 63), (63, 70)),
    "SIGUIJ": ((28, 35), (35, 42), (42, 49), (49, 56), (56, 63), (63, 70)),
    "SIGATM": ((30, 38), (38, 46), (46, 54), (54, 60), (60, 66)),
}


class UnscorableComplex(ValueError):
    """A complex that cannot be featurised; the message is a one-line reason without the file name.

    `lasting` is False for a reason that says nothing about the file (mkdssp missing, killed by a signal, or out
    of time on a busy machine): such a reason is reported but never cached, so the next run tries again.
    """

    def __init__(self, reason: str, lasting: bool = True) -> None:
        super().__init__(reason)
        self.lasting = lasting


@dataclass
class ComplexStructure:
    """First model of a complex, flattened in Biopython's chain -> residue -> atom order.

    Coordinates are the parser's float32 values. Residue arrays have one entry per residue; `residue_ca` is the
    index of the residue's CA atom or -1, `residue_atoms` the [start, stop) atom range of each residue.
    """

    pdb_text: str
    atom_xyz: np.ndarray
    atom_name_initial: np.ndarray
    residue_chain: np.ndarray
    residue_hetero: np.ndarray
    residue_seq: np.ndarray
    residue_icode: np.ndarray
    residue_name: np.ndarray
    residue_ca: np.ndarray
    residue_atoms: np.ndarray


def first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def read_first_model_text(path: str | os.PathLike) -> str:
    """The file as text with `\\n` line endings, cut to its first model; MODEL/ENDMDL lines removed."""
    try:
        raw = Path(path).read_bytes()
    except OSError as error:
        raise UnscorableComplex(f"cannot read file: {error.strerror or error}") from None
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, gzip.BadGzipFile) as error:
            raise UnscorableComplex(f"cannot read file: broken gzip data ({error})") from None
    if not raw.strip():
        raise UnscorableComplex("empty file")
    text = raw.decode("latin-1").replace("\r\n", "\n").replace("\r", "\n")
    if text.lstrip().startswith("data_"):
        raise UnscorableComplex("not a PDB file: mmCIF is not supported (convert it to PDB format)")
    kept = []
    for line in text.split("\n"):
        if line.startswith("ENDMDL"):
            break
        if line.startswith("MODEL"):
            continue
        kept.append(line)
    return "\n".join(kept).rstrip("\n") + "\n"


def require_coordinates(pdb_text: str) -> None:
    if not any(line.startswith(COORDINATE_RECORDS) for line in pdb_text.split("\n")):
        raise UnscorableComplex("not a PDB file: no ATOM/HETATM records")


def parse_structure(pdb_text: str) -> ComplexStructure:
    """Parse first-model PDB text into arrays as Biopython's PDBParser (the reference parser) reads it.

    Text without the irregularities Biopython resolves in its own ways (see `read_regular_atoms`) is read
    directly, into the same arrays, much faster; everything else goes through Biopython itself.
    """
    require_coordinates(pdb_text)
    return read_regular_atoms(pdb_text) or parse_with_biopython(pdb_text)


def parse_with_biopython(pdb_text: str) -> ComplexStructure:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            structure = PDBParser(QUIET=True).get_structure("complex", io.StringIO(pdb_text))
    except Exception as error:  # noqa: BLE001 - Biopython raises many types for malformed records
        raise UnscorableComplex(f"unreadable PDB: {first_line(error)}") from None
    models = list(structure)
    if not models:
        raise UnscorableComplex("not a PDB file: no atoms parsed")

    coordinates, initials = [], []
    chains, hetero, seqs, icodes, names, ca_index, bounds = [], [], [], [], [], [], []
    for chain in models[0]:
        for residue in chain:
            het, seq, icode = residue.id
            start = len(coordinates)
            ca = -1
            for atom in residue:
                if atom.get_name() == "CA" and ca < 0:
                    ca = len(coordinates)
                coordinates.append(atom.coord)
                initials.append(atom.get_name()[:1])
            chains.append(chain.id)
            hetero.append(het)
            seqs.append(seq)
            icodes.append(icode)
            names.append(residue.get_resname())
            ca_index.append(ca)
            bounds.append((start, len(coordinates)))
    if not coordinates:
        raise UnscorableComplex("not a PDB file: no atoms parsed")
    return ComplexStructure(
        pdb_text=pdb_text,
        atom_xyz=np.asarray(coordinates, dtype=np.float32).reshape(-1, 3),
        atom_name_initial=np.asarray(initials, dtype="U1"),
        residue_chain=np.asarray(chains, dtype=object),
        residue_hetero=np.asarray(hetero, dtype=object),
        residue_seq=np.asarray(seqs, dtype=np.int64),
        residue_icode=np.asarray(icodes, dtype=object),
        residue_name=np.asarray(names, dtype=object),
        residue_ca=np.asarray(ca_index, dtype=np.int64),
        residue_atoms=np.asarray(bounds, dtype=np.int64).reshape(-1, 2),
    )


def read_regular_atoms(pdb_text: str) -> ComplexStructure | None:
    """The structure Biopython's PDBParser builds, read directly; None for text that needs its special rules.

    Follows PDBParser's reading: coordinates start at the first ATOM/HETATM/MODEL record and stop at an
    `END   ` or CONECT record; a residue is (chain, hetero flag, number, insertion code) with hetero flag
    ' ', 'W' (HOH/WAT) or 'H_' + name; chains keep the order they first appear in, and a chain that comes back
    continues where it left off. Left to Biopython: alternate locations, a residue in pieces or renamed, an
    atom name twice in a residue or with inner spaces, unreadable ANISOU/SIGUIJ/SIGATM numbers, MODEL
    records, anything it would fail to read.
    """
    lines = pdb_text.split("\n")
    first = next((k for k, line in enumerate(lines) if line[:6] in ("ATOM  ", "HETATM", "MODEL ")), None)
    if first is None:
        return None
    chains: dict[str, int] = {}
    residue_keys: list[tuple] = []
    residue_names: list[str] = []
    residue_chain_order: list[int] = []
    residue_ca_offset: list[int] = []
    atom_residue, initials, coordinates = [], [], []
    seen: set[tuple] = set()
    names_in_residue: set[str] = set()
    residue_columns = ""  # record and columns 18-27 of the previous atom line: the same residue is not re-read
    for line in lines[first:]:
        record = line[:6]
        if record in ("END   ", "CONECT"):
            break
        if record != "ATOM  " and record != "HETATM":
            if record in ("MODEL ", "ENDMDL") or (record in BIOPYTHON_NUMBER_RECORDS and not numbers_read(line)):
                return None
            continue
        try:
            if record + line[17:27] != residue_columns:
                residue_name = line[17:20].strip()
                number = int(line[22:26].split()[0])
                key = (line[21], water_or_hetero(residue_name) if record == "HETATM" else " ", number, line[26])
                residue_columns = record + line[17:27]
            name_parts = line[12:16].split()
            xyz = (float(line[30:38]), float(line[38:46]), float(line[46:54]))
        except (ValueError, IndexError):
            return None  # Biopython's own message says what is wrong
        if len(name_parts) != 1 or line[16] != " ":
            return None
        if not residue_keys or residue_keys[-1] != key or residue_names[-1] != residue_name:
            if key in seen:
                return None  # a residue in pieces, or renamed
            seen.add(key)
            residue_keys.append(key)
            residue_names.append(residue_name)
            residue_chain_order.append(chains.setdefault(key[0], len(chains)))
            residue_ca_offset.append(-1)
            names_in_residue = set()
        name = name_parts[0]
        if name in names_in_residue:
            return None  # an atom name twice in a residue
        if name == "CA":
            residue_ca_offset[-1] = len(names_in_residue)
        names_in_residue.add(name)
        atom_residue.append(len(residue_keys) - 1)
        initials.append(name[0])
        coordinates.append(xyz)
    if not coordinates:
        return None

    # Biopython's order: chain by chain (first appearance), residues and atoms as they came.
    residue_order = np.argsort(np.asarray(residue_chain_order), kind="stable")
    atom_residue = np.asarray(atom_residue)
    rank = np.empty_like(residue_order)
    rank[residue_order] = np.arange(len(residue_order))
    atom_order = np.argsort(rank[atom_residue], kind="stable")
    sizes = np.bincount(atom_residue, minlength=len(residue_keys))[residue_order]
    stops = np.cumsum(sizes)
    starts = stops - sizes
    ca_offset = np.asarray(residue_ca_offset, dtype=np.int64)[residue_order]
    residue_ca = np.where(ca_offset >= 0, starts + ca_offset, -1)
    keys = [residue_keys[k] for k in residue_order]
    return ComplexStructure(
        pdb_text=pdb_text,
        atom_xyz=np.asarray(coordinates, dtype=np.float64)[atom_order].astype(np.float32),
        atom_name_initial=np.asarray(initials, dtype="U1")[atom_order],
        residue_chain=np.asarray([key[0] for key in keys], dtype=object),
        residue_hetero=np.asarray([key[1] for key in keys], dtype=object),
        residue_seq=np.asarray([key[2] for key in keys], dtype=np.int64),
        residue_icode=np.asarray([key[3] for key in keys], dtype=object),
        residue_name=np.asarray([residue_names[k] for k in residue_order], dtype=object),
        residue_ca=residue_ca,
        residue_atoms=np.column_stack([starts, stops]).astype(np.int64).reshape(-1, 2),
    )


def numbers_read(line: str) -> bool:
    """Whether Biopython reads the numbers of an ANISOU/SIGUIJ/SIGATM record (it fails on the file if not)."""
    try:
        for start, stop in BIOPYTHON_NUMBER_RECORDS[line[:6]]:
            float(line[start:stop])
    except ValueError:
        return False
    return True


def water_or_hetero(residue_name: str) -> str:
    """Biopython's hetero flag of a HETATM residue."""
    return "W" if residue_name in ("HOH", "WAT") else "H_" + residue_name


def read_structure(path: str | os.PathLike) -> ComplexStructure:
    """Read and parse a PDB or PDB.gz file (first model)."""
    return parse_structure(read_first_model_text(path))
