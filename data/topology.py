"""Persistent-homology features of each interface residue's 8 A atom neighbourhood (SPEC 1.2): 140 numbers."""

from __future__ import annotations

import gudhi
import numpy as np
from Bio.PDB.kdtrees import KDTree
from scipy.sparse.csgraph import minimum_spanning_tree

NEIGHBOURHOOD_RADIUS = 8.0
NEIGHBOR_SEARCH_BUCKET_SIZE = 10  # Biopython NeighborSearch default
H0_DEATH_LIMIT = 8.0
MIN_PERSISTENCE = 0.01
ELEMENT_GROUPS = ("C", "N", "O", "CN", "CO", "NO", "CNO")
STATISTICS = ("sum", "min", "max", "mean", "std")

TOPO_COLUMNS = [f"f0_{group}_death_{stat}" for group in ELEMENT_GROUPS for stat in STATISTICS] + [
    f"f1_{group}_{part}_{stat}"
    for group in ELEMENT_GROUPS
    for part in ("len", "birth", "death")
    for stat in STATISTICS
]


def summarise(values: np.ndarray) -> list[float]:
    """sum, min, max, mean, population std; all zeros when there are no values."""
    if values.size == 0:
        return [0.0] * 5
    return [float(np.sum(values)), float(np.min(values)), float(np.max(values)), float(np.mean(values)),
            float(np.std(values))]


def pairwise_distances(points: np.ndarray) -> np.ndarray:
    """Dense Euclidean distance matrix, summing squared differences in x, y, z order like GUDHI."""
    diff = points[:, None, :] - points[None, :, :]
    squared = diff[..., 0] * diff[..., 0] + diff[..., 1] * diff[..., 1]
    squared += diff[..., 2] * diff[..., 2]
    return np.sqrt(squared)


def rips_h0_deaths(points: np.ndarray) -> np.ndarray:
    """Finite H0 deaths of the Vietoris-Rips filtration: the minimum-spanning-tree edge lengths.

    Duplicate points are removed first; they only add zero-length bars, and zero entries would read as
    missing edges to the sparse MST routine.
    """
    unique = np.unique(points, axis=0)
    if len(unique) < 2:
        return np.empty(0)
    tree = minimum_spanning_tree(pairwise_distances(unique))
    return np.sort(tree.data)


def alpha_h1_bars(points: np.ndarray) -> np.ndarray:
    """Dimension-1 bars (birth, death) of GUDHI's alpha complex (squared radii), all of them."""
    if len(points) < 3:
        return np.empty((0, 2))
    tree = gudhi.AlphaComplex(points=points).create_simplex_tree()
    tree.compute_persistence()
    bars = tree.persistence_intervals_in_dimension(1)
    return np.asarray(bars, dtype=np.float64).reshape(-1, 2)


def cloud_features(points: np.ndarray) -> tuple[list[float], list[float]]:
    """(5 H0 numbers, 15 H1 numbers) of one element group's point cloud."""
    # GUDHI lists bars by decreasing length; summing in that order reproduces the reference to the last bit.
    deaths = rips_h0_deaths(points)[::-1]
    deaths = deaths[(deaths <= H0_DEATH_LIMIT) & (deaths >= MIN_PERSISTENCE)]
    bars = alpha_h1_bars(points)
    lengths = bars[:, 1] - bars[:, 0]
    order = np.argsort(-lengths, kind="stable")
    bars, lengths = bars[order], lengths[order]
    keep = lengths >= MIN_PERSISTENCE
    bars, lengths = bars[keep], lengths[keep]
    return summarise(deaths), summarise(lengths) + summarise(bars[:, 0]) + summarise(bars[:, 1])


def neighbourhoods(atom_xyz: np.ndarray, centres: np.ndarray) -> list[np.ndarray]:
    """Atom indices within 8 A (inclusive) of each centre, in the order Biopython's NeighborSearch returns them.

    One KD-tree for the whole structure. The order matters for bit-exact parity: GUDHI's inexact alpha
    radii depend on the order of the input points.
    """
    tree = KDTree(np.ascontiguousarray(atom_xyz, dtype=np.float64), NEIGHBOR_SEARCH_BUCKET_SIZE)
    return [
        np.fromiter((point.index for point in tree.search(centre, NEIGHBOURHOOD_RADIUS)), dtype=np.int64)
        for centre in np.asarray(centres, dtype=np.float64)
    ]


def group_masks(initials: np.ndarray) -> list[np.ndarray]:
    return [np.isin(initials, list(group)) for group in ELEMENT_GROUPS]


def residue_topology(points: np.ndarray, initials: np.ndarray) -> np.ndarray:
    """The 140 raw features of one neighbourhood: 35 H0 numbers group by group, then 105 H1 numbers."""
    h0, h1 = [], []
    for mask in group_masks(initials):
        zero, one = cloud_features(points[mask])
        h0 += zero
        h1 += one
    return np.asarray(h0 + h1, dtype=np.float64)


def topology_table(atom_xyz: np.ndarray, atom_initials: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """[len(centres), 140] raw topological features (float64), one row per centre atom."""
    rows = []
    for atoms in neighbourhoods(atom_xyz, centres):
        rows.append(residue_topology(atom_xyz[atoms].astype(np.float64), atom_initials[atoms]))
    return np.vstack(rows) if rows else np.zeros((0, len(TOPO_COLUMNS)))
