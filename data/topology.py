"""Persistent-homology features of each interface residue's 8 A atom neighbourhood (SPEC 1.2): 140 numbers.

Per residue and element group: H0 of the Vietoris-Rips filtration (its finite deaths are exactly the
minimum-spanning-tree edge lengths, computed here for all clouds at once with a batched Prim's algorithm) and
H1 of the alpha complex (`data.alpha_complex`: a compiled Delaunay tetrahedralisation and persistence,
certified by error bounds to agree with GUDHI 'exact''s bars to a relative 1e-10, GUDHI itself for the clouds
it cannot certify). A complex's topology is computed in the one process that featurises it, while mkdssp runs
beside it; parallelism is over complexes (`data.featurize`). Same neighbour order, same distance arithmetic,
same bar order as the reference. The reference used GUDHI 'safe', whose radii are guaranteed only to a relative
1e-5 (on non-degenerate clouds in practice to rounding): the raw features are within 1e-6 of the reference on
its complexes (tests/test_featurize_parity.py), predictions unchanged; a bar within rounding of the 0.01 cut
could in principle flip. TOPOQA_ALPHA_PRECISION=safe computes with GUDHI as the reference did and gives its
values bit for bit; 'exact' uses GUDHI's exact radii.
"""

from __future__ import annotations

import os

import gudhi
import numpy as np
from Bio.PDB.kdtrees import KDTree

NEIGHBOURHOOD_RADIUS = 8.0
NEIGHBOR_SEARCH_BUCKET_SIZE = 10  # Biopython NeighborSearch default
H0_DEATH_LIMIT = 8.0
MIN_PERSISTENCE = 0.01
ELEMENT_GROUPS = ("C", "N", "O", "CN", "CO", "NO", "CNO")
STATISTICS = ("sum", "min", "max", "mean", "std")
PRIM_MATRIX_ENTRIES_PER_BATCH = 2_000_000  # ~16 MB of float64 per batch of residues
# Interface residues whose neighbourhoods are in memory at once (distance matrices ~0.5-2 MB each with hydrogens).
CENTRES_PER_CHUNK = 128
ALPHA_PRECISION_ENV = "TOPOQA_ALPHA_PRECISION"
ALPHA_PRECISIONS = ("fast", "safe", "exact")
# GUDHI's 'safe' values are only guaranteed to a relative precision, 1e-5 unless set: near-degenerate clouds
# (near-duplicates) are off 'exact' by 1e-8. The clouds that the compiled code hands over get 1e-12, within the
# 1e-10 of 'exact' that 'fast' promises, for ~1.6x the time of 1e-5 (and a tenth of 'exact''s).
FALLBACK_RELATIVE_PRECISION = 1e-12

TOPO_COLUMNS = [f"f0_{group}_death_{stat}" for group in ELEMENT_GROUPS for stat in STATISTICS] + [
    f"f1_{group}_{part}_{stat}"
    for group in ELEMENT_GROUPS
    for part in ("len", "birth", "death")
    for stat in STATISTICS
]


def summarise_many(rows: list[np.ndarray]) -> np.ndarray:
    """[len(rows), 5]: sum, min, max, mean, population std of each row; zeros for an empty row.

    Rows of equal length are reduced together. Each row's numbers are bit-identical to numpy's sum/mean/std of
    that row alone (a row reduction over a contiguous axis uses the same pairwise summation), hence to the
    reference as long as the values come in the same order (GUDHI's: bars by decreasing length).
    """
    table = np.zeros((len(rows), 5))
    sizes = np.fromiter((len(row) for row in rows), dtype=np.int64, count=len(rows))
    for size in np.unique(sizes[sizes > 0]):
        which = np.flatnonzero(sizes == size)
        block = np.stack([rows[k] for k in which])
        total = np.add.reduce(block, axis=1)
        mean = total / size
        centred = block - mean[:, None]
        std = np.sqrt(np.add.reduce(centred * centred, axis=1) / size)
        table[which] = np.column_stack([total, block.min(axis=1), block.max(axis=1), mean, std])
    return table


def pairwise_distances(points: np.ndarray) -> np.ndarray:
    """Dense Euclidean distances, summing squared differences in x, y, z order as GUDHI does."""
    diff = points[:, None, :] - points[None, :, :]
    squared = diff[..., 0] * diff[..., 0] + diff[..., 1] * diff[..., 1]
    squared += diff[..., 2] * diff[..., 2]
    return np.sqrt(squared)


def neighbourhoods(atom_xyz: np.ndarray, centres: np.ndarray) -> list[np.ndarray]:
    """Atom indices within 8 A (inclusive) of each centre, in the order Biopython's NeighborSearch returns them.

    One KD-tree for the whole structure. The order matters for bit-exact parity: GUDHI's alpha radii are
    computed in floating point and depend slightly on the order of the input points.
    """
    tree = KDTree(np.ascontiguousarray(atom_xyz, dtype=np.float64), NEIGHBOR_SEARCH_BUCKET_SIZE)
    return [
        np.fromiter((point.index for point in tree.search(centre, NEIGHBOURHOOD_RADIUS)), dtype=np.int64)
        for centre in np.asarray(centres, dtype=np.float64)
    ]


def minimum_spanning_tree_weights(distances: list[np.ndarray], memberships: list[np.ndarray]) -> list[list[np.ndarray]]:
    """MST edge weights of many point clouds at once (Prim's algorithm, vectorised across clouds).

    `distances[r]` is the distance matrix of residue r's points; `memberships[r]` is a [groups, points] boolean
    array, one cloud per row. Returns weights[r][g]: the (unsorted) MST edge lengths of that cloud.
    """
    results = [[np.empty(0)] * len(masks) for masks in memberships]
    order = np.argsort([len(matrix) for matrix in distances], kind="stable")
    start = 0
    while start < len(order):
        width = max(len(distances[order[start]]), 1)
        batch_size = max(1, PRIM_MATRIX_ENTRIES_PER_BATCH // (width * width))
        residues = order[start : start + batch_size]
        start += len(residues)
        width = max(len(distances[r]) for r in residues)  # sorted by size: the last is the widest
        if width < 2:
            continue
        matrices = np.full((len(residues), width, width), np.inf)
        member = np.zeros((len(residues), len(memberships[residues[0]]), width), dtype=bool)
        for row, r in enumerate(residues):
            n = len(distances[r])
            matrices[row, :n, :n] = distances[r]
            member[row, :, :n] = memberships[r]
        groups = member.shape[1]
        member = member.reshape(-1, width)
        lane_matrix = np.repeat(np.arange(len(residues)), groups)
        lane = np.arange(len(member))
        sizes = member.sum(axis=1)
        first = np.argmax(member, axis=1)
        done = ~member
        done[lane, first] = True
        key = np.where(done, np.inf, matrices[lane_matrix, first])
        weights = np.empty((len(member), max(int(sizes.max()) - 1, 0)))
        for step in range(weights.shape[1]):
            nearest = np.argmin(key, axis=1)
            weights[:, step] = key[lane, nearest]
            done[lane, nearest] = True
            np.minimum(key, matrices[lane_matrix, nearest], out=key)
            key[done] = np.inf
        for k in range(len(member)):
            if sizes[k] >= 2:
                residue_row, group = divmod(k, groups)
                results[residues[residue_row]][group] = weights[k, : sizes[k] - 1]
    return results


def alpha_precision() -> str:
    """Alpha-complex precision: 'fast' (compiled, within a relative 1e-10 of GUDHI 'exact') unless
    TOPOQA_ALPHA_PRECISION asks for GUDHI's 'safe' or 'exact'."""
    precision = os.environ.get(ALPHA_PRECISION_ENV, "fast")
    if precision not in ALPHA_PRECISIONS:
        raise ValueError(f"{ALPHA_PRECISION_ENV}={precision!r}: expected one of {', '.join(ALPHA_PRECISIONS)}")
    return precision


def alpha_h1_bars(points: np.ndarray, precision: str) -> np.ndarray:
    """All dimension-1 bars (birth, death) of the alpha complex (squared radii): GUDHI's with its 'safe' or
    'exact' precision, or for 'fast' compiled, within 1e-10 relative of GUDHI 'exact' (`data.alpha_complex`;
    the clouds it cannot certify go to GUDHI 'safe' at FALLBACK_RELATIVE_PRECISION)."""
    if len(points) < 3:
        return np.empty((0, 2))
    if precision == "fast":
        from data.alpha_complex import alpha_h1_bars_compiled  # numba: imported on first use, not by `import infer`

        bars = alpha_h1_bars_compiled(points)
        if bars is not None:
            return bars
        return gudhi_h1_bars(points, "safe", FALLBACK_RELATIVE_PRECISION)
    return gudhi_h1_bars(points, precision)


def gudhi_h1_bars(points: np.ndarray, precision: str, relative_precision: float | None = None) -> np.ndarray:
    """Dimension-1 bars of GUDHI's alpha complex with the given precision ('fast', 'safe' or 'exact'), and for
    'safe' optionally another relative precision than GUDHI's default (process-wide in GUDHI: restored after).

    Tetrahedra are pruned before the persistence computation: H1 depends only on the 2-skeleton, so the bars
    are identical, and the cohomology matrix is smaller.
    """
    if len(points) < 3:
        return np.empty((0, 2))
    default = gudhi.AlphaComplex.get_float_relative_precision()
    if relative_precision is not None:
        gudhi.AlphaComplex.set_float_relative_precision(relative_precision)
    try:
        tree = gudhi.AlphaComplex(points=points, precision=precision).create_simplex_tree()
    finally:
        gudhi.AlphaComplex.set_float_relative_precision(default)
    tree.prune_above_dimension(2)
    tree.compute_persistence()
    return np.asarray(tree.persistence_intervals_in_dimension(1), dtype=np.float64).reshape(-1, 2)


def h1_summaries_of_clouds(clouds: list[np.ndarray], precision: str) -> np.ndarray:
    """[len(clouds), 15]: summaries of the kept H1 bars' lengths, then births, then deaths, cloud by cloud."""
    lengths, births, deaths = [], [], []
    for points in clouds:
        bars = alpha_h1_bars(points, precision)
        length = bars[:, 1] - bars[:, 0]
        # GUDHI lists bars by decreasing length; the reference summed them in that order.
        order = np.argsort(-length, kind="stable")
        keep = order[length[order] >= MIN_PERSISTENCE]
        lengths.append(length[keep])
        births.append(bars[keep, 0])
        deaths.append(bars[keep, 1])
    return np.concatenate([summarise_many(lengths), summarise_many(births), summarise_many(deaths)], axis=1)


def h0_summaries_of_clouds(mst_weights: list[np.ndarray]) -> np.ndarray:
    """[len(clouds), 5]: summaries of the kept H0 deaths (the clouds' minimum-spanning-tree edge lengths)."""
    kept = []
    for weights in mst_weights:
        # GUDHI lists bars by decreasing length; the reference summed them in that order.
        deaths = np.sort(weights)[::-1]
        kept.append(deaths[(deaths <= H0_DEATH_LIMIT) & (deaths >= MIN_PERSISTENCE)])
    return summarise_many(kept)


def element_group_clouds(
    atom_xyz: np.ndarray, atom_initials: np.ndarray, centres: np.ndarray
) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    """The point clouds of every centre's 8 A neighbourhood, one per element group (centre by centre, groups in
    ELEMENT_GROUPS order); and per centre, its C/N/O points and their [groups, points] group membership."""
    return clouds_of_neighbourhoods(atom_xyz, group_membership(atom_initials), neighbourhoods(atom_xyz, centres))


def group_membership(atom_initials: np.ndarray) -> np.ndarray:
    """[groups, atoms] boolean: whether each atom's element is in each of ELEMENT_GROUPS."""
    return np.stack([np.isin(atom_initials, list(group)) for group in ELEMENT_GROUPS])


def clouds_of_neighbourhoods(
    atom_xyz: np.ndarray, groups: np.ndarray, neighbourhood_atoms: list[np.ndarray]
) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    """`element_group_clouds` for neighbourhoods already found (atom indices per centre)."""
    clouds, residue_points, memberships = [], [], []
    for atoms in neighbourhood_atoms:
        points = atom_xyz[atoms].astype(np.float64)
        member = groups[:, atoms]
        in_any = member.any(axis=0)
        residue_points.append(points[in_any])
        memberships.append(member[:, in_any])
        clouds.extend(points[mask] for mask in member)
    return clouds, residue_points, memberships


def topology_table(atom_xyz: np.ndarray, atom_initials: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """[len(centres), 140] raw topological features (float64): 35 H0 numbers group by group, then 105 H1 numbers.

    Centres are taken CENTRES_PER_CHUNK at a time, so that memory does not grow with the interface (each
    residue's distance matrix and clouds are dropped once its row is done): every row is computed on its own
    (the batched MST and summaries are row-independent), so the rows do not depend on the chunking.
    """
    groups = group_membership(atom_initials)
    neighbourhood_atoms = neighbourhoods(atom_xyz, centres)
    precision = alpha_precision()
    groups_in_row = len(ELEMENT_GROUPS)
    rows = [np.zeros((0, len(TOPO_COLUMNS)))]
    for start in range(0, len(neighbourhood_atoms), CENTRES_PER_CHUNK):
        chunk = neighbourhood_atoms[start : start + CENTRES_PER_CHUNK]
        clouds, residue_points, memberships = clouds_of_neighbourhoods(atom_xyz, groups, chunk)
        # One distance matrix per residue (its C/N/O atoms) serves all seven groups.
        distances = [pairwise_distances(points) for points in residue_points]
        mst = minimum_spanning_tree_weights(distances, memberships)
        del distances
        h0 = h0_summaries_of_clouds([weights for residue in mst for weights in residue])
        h1 = h1_summaries_of_clouds(clouds, precision)
        rows.append(np.concatenate(
            [h0.reshape(len(chunk), 5 * groups_in_row), h1.reshape(len(chunk), 15 * groups_in_row)], axis=1
        ))
    return np.concatenate(rows)
