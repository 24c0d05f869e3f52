"""Node table (SPEC 1.3): rASA, scaled phi/psi, SS8 and amino-acid one-hots, scaled topological features."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from data.dssp import DsspResidue, relative_accessibility
from data.structure import ComplexStructure
from data.topology import TOPO_COLUMNS

SECONDARY_STRUCTURES = ("H", "B", "E", "G", "I", "T", "S", "-")
AMINO_ACIDS = ("ALA", "CYS", "ASP", "GLU", "PHE", "GLY", "HIS", "ILE", "LYS", "LEU", "MET", "ASN", "PRO", "GLN",
               "ARG", "SER", "THR", "VAL", "TRP", "TYR")
NODE_COLUMNS = (
    ["rasa", "phi", "psi"]
    + [f"SS8_{k}" for k in range(len(SECONDARY_STRUCTURES))]
    + [f"AA_{k}" for k in range(len(AMINO_ACIDS) + 1)]
    + TOPO_COLUMNS
)


@dataclass
class DsspValues:
    rasa: float | None
    phi: float
    psi: float
    secondary_structure: str


def min_max_scale(values: np.ndarray) -> np.ndarray:
    """Column-wise min-max scaling to [0, 1] with scikit-learn MinMaxScaler's arithmetic (bit-exact with the reference).

    x * scale + offset with scale = 1 / (max - min) and offset = -min * scale; a constant column gets scale 1,
    so it becomes 0.
    """
    values = np.asarray(values, dtype=np.float64)
    low, high = values.min(axis=0), values.max(axis=0)
    span = high - low
    scale = 1.0 / np.where(span == 0.0, 1.0, span)
    offset = -low * scale
    return values * scale + offset


def residue_lookup(structure: ComplexStructure) -> tuple[dict, dict]:
    """(chain, seq, icode) -> residue index for standard residues, and for non-water hetero residues."""
    standard, hetero = {}, {}
    for index, (chain, het, seq, icode) in enumerate(
        zip(structure.residue_chain, structure.residue_hetero, structure.residue_seq, structure.residue_icode,
            strict=True)
    ):
        key = (chain, int(seq), icode)
        if het == " ":
            standard.setdefault(key, index)
        elif het != "W":
            hetero.setdefault(key, index)
    return standard, hetero


def dssp_by_residue(structure: ComplexStructure, residues: list[DsspResidue]) -> dict[int, DsspValues]:
    """DSSP values per structure residue index, phi/psi already min-max scaled over every DSSP residue.

    Keys are mapped the way Biopython's DSSP wrapper maps them: (chain, number, insertion code) to the standard
    residue, else to a non-water hetero residue with the same number (e.g. MSE written as HETATM). A DSSP
    residue matching nothing still counts in the phi/psi scaling but names no node.
    """
    if not residues:
        return {}
    angles = min_max_scale(np.array([[entry.phi, entry.psi] for entry in residues], dtype=np.float64))
    standard, hetero = residue_lookup(structure)
    values = {}
    for entry, (phi, psi) in zip(residues, angles, strict=True):
        key = (entry.chain, entry.seq, entry.icode)
        index = standard.get(key, hetero.get(key))
        if index is None:
            continue
        values[index] = DsspValues(
            rasa=relative_accessibility(entry.accessibility, structure.residue_name[index]),
            phi=float(phi), psi=float(psi), secondary_structure=entry.secondary_structure,
        )
    return values


def node_table(
    structure: ComplexStructure, interface: np.ndarray, topology: np.ndarray, dssp: list[DsspResidue]
) -> tuple[np.ndarray, np.ndarray]:
    """(kept positions in the interface list, [N, 172] float64 features).

    Rows follow the interface order; residues DSSP does not report, or with a missing value (rASA 'NA'), are
    dropped after the topological columns were scaled over the whole interface.
    """
    values = dssp_by_residue(structure, dssp)
    scaled_topology = min_max_scale(topology) if len(topology) else topology
    kept, rows = [], []
    for position, residue in enumerate(interface):
        entry = values.get(int(residue))
        if entry is None or entry.rasa is None:
            continue
        structure_onehot = np.zeros(len(SECONDARY_STRUCTURES))
        code = entry.secondary_structure
        structure_onehot[SECONDARY_STRUCTURES.index(code) if code in SECONDARY_STRUCTURES else -1] = 1.0
        name = structure.residue_name[residue]
        amino_onehot = np.zeros(len(AMINO_ACIDS) + 1)
        amino_onehot[AMINO_ACIDS.index(name) if name in AMINO_ACIDS else -1] = 1.0
        rows.append(np.concatenate([[entry.rasa, entry.phi, entry.psi], structure_onehot, amino_onehot,
                                    scaled_topology[position]]))
        kept.append(position)
    table = np.vstack(rows) if rows else np.zeros((0, len(NODE_COLUMNS)))
    return np.asarray(kept, dtype=np.int64), table
