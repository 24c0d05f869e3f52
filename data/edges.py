"""Edges (SPEC 1.4): cross-chain node pairs with CA-CA distance under 10 A, plus a 10-bin atom-distance histogram.

GEOMETRY_XYY reproduces the reference defect the published checkpoint was trained with: every atom's point is
(x, y, y). GEOMETRY_XYZ uses true coordinates, for retraining.
"""

from __future__ import annotations

import numpy as np
from Bio.PDB.kdtrees import KDTree

from data.graph_arrays import EDGE_FEATURES
from data.node_features import min_max_scale
from data.structure import ComplexStructure

GEOMETRY_XYY = "xyy"
GEOMETRY_XYZ = "xyz"
GEOMETRIES = (GEOMETRY_XYY, GEOMETRY_XYZ)
EDGE_CUTOFF = 10.0
HISTOGRAM_EDGES_PER_CHUNK = 2048  # bounds the [edges, atoms, atoms, 3] temporary to a few tens of MB
# Candidate pairs come from a KD-tree searched a little beyond the cutoff; the exact test follows.
CANDIDATE_SLACK = 1e-3
KDTREE_BUCKET_SIZE = 10


def decimal_ca_coordinates(ca32: np.ndarray) -> np.ndarray:
    """float64 of each float32 coordinate's shortest decimal text, as the reference reads its interface file."""
    return np.array([[float(str(value)) for value in row] for row in ca32.astype(np.float32)], dtype=np.float64)


def edge_geometry_points(xyz32: np.ndarray, geometry: str) -> np.ndarray:
    points = xyz32.astype(np.float64)
    if geometry == GEOMETRY_XYY:
        return points[:, [0, 1, 1]]
    if geometry == GEOMETRY_XYZ:
        return points
    raise ValueError(f"unknown edge geometry {geometry!r} (expected one of {', '.join(GEOMETRIES)})")


def distance_histograms(points: np.ndarray, bounds: np.ndarray, first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """[E, 10] counts of all atom-pair distances between residues first[e] and second[e], all edges at once.

    Bins [1,2), ..., [9,10), [10, inf); distances under 1 are not counted. Residue r owns atoms
    bounds[r, 0]:bounds[r, 1] of `points`; residues are padded with NaN atoms, which fall in no bin.
    """
    sizes = bounds[:, 1] - bounds[:, 0]
    width = int(sizes.max()) if len(sizes) else 0
    padded = np.full((len(bounds), max(width, 1), 3), np.nan)
    for residue, (start, stop) in enumerate(bounds):
        padded[residue, : stop - start] = points[start:stop]
    counts = np.zeros((len(first), 10), dtype=np.int64)
    for start in range(0, len(first), HISTOGRAM_EDGES_PER_CHUNK):
        a = padded[first[start : start + HISTOGRAM_EDGES_PER_CHUNK]][:, :, None, :]
        b = padded[second[start : start + HISTOGRAM_EDGES_PER_CHUNK]][:, None, :, :]
        diff = a - b
        squared = diff[..., 0] * diff[..., 0] + diff[..., 1] * diff[..., 1]
        squared += diff[..., 2] * diff[..., 2]
        distance = np.sqrt(squared).reshape(len(diff), -1)
        with np.errstate(invalid="ignore"):
            counted = distance >= 1.0  # NaN padding compares False
        bins = np.minimum(np.floor(np.where(counted, distance, 1.0)), 10.0).astype(np.int64) - 1
        rows = np.broadcast_to(np.arange(len(diff))[:, None], bins.shape)
        np.add.at(counts[start : start + len(diff)], (rows[counted], bins[counted]), 1)
    return counts


def candidate_pairs(points: np.ndarray, radius: float) -> tuple[np.ndarray, np.ndarray]:
    """(first, second), first < second: every pair of rows of `points` within `radius` (and maybe a few more),
    in row-major order (sorted by first, then second), as `np.triu_indices` would list them."""
    if len(points) < 2:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    tree = KDTree(np.ascontiguousarray(points, dtype=np.float64), KDTREE_BUCKET_SIZE)
    pairs = np.array([(pair.index1, pair.index2) for pair in tree.neighbor_search(radius)], dtype=np.int64)
    pairs = np.sort(pairs.reshape(-1, 2), axis=1)
    order = np.lexsort((pairs[:, 1], pairs[:, 0]))
    return pairs[order, 0], pairs[order, 1]


def edge_features(
    structure: ComplexStructure, nodes: np.ndarray, ca_decimal: np.ndarray, geometry: str = GEOMETRY_XYY
) -> tuple[np.ndarray, np.ndarray]:
    """(edge_index int64 [2, E], scaled edge features float64 [E, 11]) for residue indices `nodes` in node order.

    Node pairs in the reference's i < j double-loop order; only pairs a KD-tree finds near the cutoff are
    tested (all pairs of a large interface would take memory quadratic in its size), with the same arithmetic.
    """
    chains = structure.residue_chain[nodes]
    first, second = candidate_pairs(ca_decimal, EDGE_CUTOFF + CANDIDATE_SLACK)
    diff = ca_decimal[first] - ca_decimal[second]
    distance = np.sqrt(diff[:, 0] * diff[:, 0] + diff[:, 1] * diff[:, 1] + diff[:, 2] * diff[:, 2])
    keep = (chains[first] != chains[second]) & (distance > 0) & (distance < EDGE_CUTOFF)
    first, second, distance = first[keep], second[keep], distance[keep]

    points = edge_geometry_points(structure.atom_xyz, geometry)
    features = np.zeros((len(first), EDGE_FEATURES), dtype=np.float64)
    features[:, 0] = distance
    features[:, 1:] = distance_histograms(points, structure.residue_atoms[nodes], first, second)

    edge_index = np.empty((2, 2 * len(first)), dtype=np.int64)
    edge_index[0, 0::2], edge_index[1, 0::2] = first, second
    edge_index[0, 1::2], edge_index[1, 1::2] = second, first
    doubled = np.repeat(features, 2, axis=0)
    scaled = min_max_scale(doubled) if len(doubled) else doubled
    return edge_index, scaled
