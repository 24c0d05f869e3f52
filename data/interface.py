"""Interface residues: standard residues with a CA within 10 A (float32 arithmetic) of a CA on another chain."""

from __future__ import annotations

import numpy as np
from Bio.PDB.kdtrees import KDTree

from data.structure import ComplexStructure, UnscorableComplex

INTERFACE_CUTOFF = 10.0
KDTREE_BUCKET_SIZE = 10


def residue_id(chain: str, seq: int, icode: str, name: str) -> str:
    """`c<A>r<36>R<ALA>`, or `c<H>r<52>i<A>R<SER>` with an insertion code."""
    insertion = f"i<{icode}>" if icode.strip() else ""
    return f"c<{chain}>r<{seq}>{insertion}R<{name}>"


def float32_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise Euclidean distance computed entirely in float32, as the reference does."""
    diff = (a.astype(np.float32) - b.astype(np.float32)).astype(np.float32)
    squared = diff[:, 0] * diff[:, 0] + diff[:, 1] * diff[:, 1]
    squared = squared + diff[:, 2] * diff[:, 2]
    return np.sqrt(squared, dtype=np.float32)


def interface_residues(structure: ComplexStructure) -> np.ndarray:
    """Residue indices of the interface, ordered by chain, residue number, residue name (file order on ties).

    Raises UnscorableComplex when there is nothing to score.
    """
    standard = np.array([het == " " for het in structure.residue_hetero], dtype=bool)
    candidates = np.flatnonzero(standard & (structure.residue_ca >= 0))
    if candidates.size == 0:
        raise UnscorableComplex("no CA atoms in standard residues")
    chains = structure.residue_chain[candidates]
    distinct_chains = sorted(set(chains.tolist()))
    if len(distinct_chains) < 2:
        only = distinct_chains[0]
        if only.strip():
            raise UnscorableComplex(f"only one chain ({only})")
        raise UnscorableComplex("only one chain (all chain ids blank; segment ids are not read as chains)")

    ca = structure.atom_xyz[structure.residue_ca[candidates]]
    # Candidate pairs from a KD-tree with a little slack, then the exact float32 test of the reference.
    # (Biopython's KD-tree, which the topology uses anyway: scipy.spatial alone costs ~0.5 s to import.)
    tree = KDTree(np.ascontiguousarray(ca, dtype=np.float64), KDTREE_BUCKET_SIZE)
    found = tree.neighbor_search(INTERFACE_CUTOFF + 1e-3)
    pairs = np.array([(pair.index1, pair.index2) for pair in found], dtype=np.int64).reshape(-1, 2)
    if pairs.size:
        pairs = pairs[chains[pairs[:, 0]] != chains[pairs[:, 1]]]
        pairs = pairs[float32_distance(ca[pairs[:, 0]], ca[pairs[:, 1]]) < np.float32(INTERFACE_CUTOFF)]
    if pairs.size == 0:
        raise UnscorableComplex("no interface: no cross-chain CA pair under 10 A")
    members = candidates[np.unique(pairs.ravel())]
    order = sorted(
        range(len(members)),
        key=lambda k: (
            structure.residue_chain[members[k]],
            structure.residue_seq[members[k]],
            structure.residue_name[members[k]],
            members[k],
        ),
    )
    return members[order]


def interface_ids(structure: ComplexStructure, residues: np.ndarray) -> list[str]:
    return [
        residue_id(
            structure.residue_chain[r], int(structure.residue_seq[r]), structure.residue_icode[r],
            structure.residue_name[r],
        )
        for r in residues
    ]
