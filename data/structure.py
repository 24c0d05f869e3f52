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


class UnscorableComplex(ValueError):
    """A complex that cannot be featurised; the message is a one-line reason without the file name."""


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
    """Parse first-model PDB text with Biopython (the reference parser) and flatten it into arrays."""
    require_coordinates(pdb_text)
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


def read_structure(path: str | os.PathLike) -> ComplexStructure:
    """Read and parse a PDB or PDB.gz file (first model)."""
    return parse_structure(read_first_model_text(path))
