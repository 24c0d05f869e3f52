"""Large assemblies: the memory-bounded topology and edge stages give the same bits as the plain algorithms."""

from __future__ import annotations

import numpy as np
import pytest

import data.topology as topology
from data.edges import EDGE_CUTOFF, decimal_ca_coordinates, distance_histograms, edge_features, edge_geometry_points
from data.graph_arrays import EDGE_FEATURES
from data.node_features import min_max_scale
from data.structure import read_structure
from tests.conftest import REPO_ROOT


@pytest.fixture(scope="module")
def tcr_complex():
    """1BD2 (five chains, 6,339 atoms): many cross-chain residue pairs."""
    return read_structure(REPO_ROOT / "examples" / "1BD2.pdb.gz")


def all_pairs_edge_features(structure, nodes, ca_decimal, geometry):
    """The edges as the reference lists them: every node pair i < j, tested one by one (row-major order)."""
    chains = structure.residue_chain[nodes]
    first, second = np.triu_indices(len(nodes), k=1)
    diff = ca_decimal[first] - ca_decimal[second]
    distance = np.sqrt(diff[:, 0] * diff[:, 0] + diff[:, 1] * diff[:, 1] + diff[:, 2] * diff[:, 2])
    keep = (chains[first] != chains[second]) & (distance > 0) & (distance < EDGE_CUTOFF)
    first, second, distance = first[keep], second[keep], distance[keep]
    features = np.zeros((len(first), EDGE_FEATURES))
    features[:, 0] = distance
    points = edge_geometry_points(structure.atom_xyz, geometry)
    features[:, 1:] = distance_histograms(points, structure.residue_atoms[nodes], first, second)
    edge_index = np.empty((2, 2 * len(first)), dtype=np.int64)
    edge_index[0, 0::2], edge_index[1, 0::2] = first, second
    edge_index[0, 1::2], edge_index[1, 1::2] = second, first
    return edge_index, min_max_scale(np.repeat(features, 2, axis=0))


@pytest.mark.parametrize("geometry", ["xyy", "xyz"])
def test_edges_from_kd_tree_candidates_equal_all_pairs(tcr_complex, geometry):
    # Every standard residue with a CA as a node: ~800 nodes, ~320,000 pairs, many at exactly the same
    # distances as others; a second copy of a few CAs makes zero-distance pairs too.
    nodes = np.flatnonzero((tcr_complex.residue_ca >= 0) & (tcr_complex.residue_hetero == " "))
    nodes = np.concatenate([nodes, nodes[:5]])
    ca_decimal = decimal_ca_coordinates(tcr_complex.atom_xyz[tcr_complex.residue_ca[nodes]])
    expected_index, expected_attr = all_pairs_edge_features(tcr_complex, nodes, ca_decimal, geometry)
    edge_index, edge_attr = edge_features(tcr_complex, nodes, ca_decimal, geometry)
    assert edge_index.shape[1] > 1000
    assert edge_index.dtype == expected_index.dtype and edge_attr.dtype == expected_attr.dtype
    assert edge_index.tobytes() == expected_index.tobytes()
    assert edge_attr.tobytes() == expected_attr.tobytes()


def test_edges_of_fewer_than_two_nodes(tcr_complex):
    nodes = np.flatnonzero(tcr_complex.residue_ca >= 0)[:1]
    ca_decimal = decimal_ca_coordinates(tcr_complex.atom_xyz[tcr_complex.residue_ca[nodes]])
    edge_index, edge_attr = edge_features(tcr_complex, nodes, ca_decimal)
    assert edge_index.shape == (2, 0) and edge_attr.shape == (0, EDGE_FEATURES)


def test_topology_rows_do_not_depend_on_the_chunking(tcr_complex, monkeypatch):
    residues = np.flatnonzero(tcr_complex.residue_ca >= 0)[::9][:40]
    centres = tcr_complex.atom_xyz[tcr_complex.residue_ca[residues]]
    tables = {}
    for chunk in (1, 7, 10_000):
        monkeypatch.setattr(topology, "CENTRES_PER_CHUNK", chunk)
        tables[chunk] = topology.topology_table(tcr_complex.atom_xyz, tcr_complex.atom_name_initial, centres)
    assert tables[1].shape == (40, len(topology.TOPO_COLUMNS)) and tables[1].dtype == np.float64
    assert tables[1].tobytes() == tables[7].tobytes() == tables[10_000].tobytes()


def test_topology_of_no_centre(tcr_complex):
    table = topology.topology_table(tcr_complex.atom_xyz, tcr_complex.atom_name_initial, np.zeros((0, 3)))
    assert table.shape == (0, len(topology.TOPO_COLUMNS))


def test_generated_assembly_packs_copies_into_contact_without_clashes(tmp_path):
    from scipy.spatial import cKDTree

    from bench.large_assembly import CLASH_DISTANCE, write_assembly

    path = write_assembly(tmp_path / "assembly.pdb", copies=2, chains=3, seed=3)
    structure = read_structure(path)
    assert len(structure.atom_xyz) == 2 * 6339
    assert sorted(set(structure.residue_chain.tolist())) == ["A", "B", "C"]  # the first copy split in two
    second_copy = structure.residue_chain[np.searchsorted(structure.residue_atoms[:, 1], np.arange(6339, 2 * 6339),
                                                          side="right")] == "C"
    assert second_copy.all()
    nearest = cKDTree(structure.atom_xyz[6339:]).query(structure.atom_xyz[:6339])[0].min()
    assert CLASH_DISTANCE - 0.01 <= nearest < 5.0  # in contact, no clash (coordinates rounded to 0.001 A)
