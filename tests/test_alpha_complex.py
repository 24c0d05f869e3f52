"""The compiled alpha complex against two independent oracles: GUDHI's bars and scipy's (qhull) Delaunay."""

from __future__ import annotations

import itertools

import gudhi
import numpy as np
import pytest
from scipy.spatial import Delaunay

from data.alpha_complex import alpha_h1_bars_compiled, delaunay_tetrahedra
from data.interface import interface_residues
from data.structure import read_structure
from data.topology import alpha_h1_bars, element_group_clouds, gudhi_h1_bars
from tests.conftest import REPO_ROOT


def interface_clouds(path) -> list[np.ndarray]:
    """Every element-group cloud of the complex's interface residues, as the featurisation makes them."""
    structure = read_structure(path)
    centres = structure.atom_xyz[structure.residue_ca[interface_residues(structure)]]
    clouds, _, _ = element_group_clouds(structure.atom_xyz, structure.atom_name_initial, centres)
    return clouds


def sorted_bars(bars: np.ndarray, min_length: float = 0.0) -> np.ndarray:
    bars = np.asarray(bars, dtype=np.float64).reshape(-1, 2)
    bars = bars[bars[:, 1] - bars[:, 0] > min_length]
    # Sorted on rounded values: births equal but for the last bit must not change places with their deaths.
    rounded = np.round(bars, 6)
    return bars[np.lexsort((rounded[:, 1], rounded[:, 0]))]


def test_every_cloud_of_a_complex_has_gudhis_bars():
    # GUDHI 'safe' is how the reference computed them. The clouds of this wwPDB interface (bundled example 1HVR)
    # are all in general position, so none may need GUDHI (the golden test_model has 9 of 581 near-cospherical
    # clouds that do).
    clouds = [points for points in interface_clouds(REPO_ROOT / "examples" / "1HVR.pdb") if len(points) >= 3]
    assert len(clouds) > 600
    bars_seen = 0
    for points in clouds:
        ours = alpha_h1_bars_compiled(points)
        assert ours is not None
        expected = sorted_bars(gudhi_h1_bars(points, "safe"))
        assert sorted_bars(ours).shape == expected.shape
        np.testing.assert_allclose(sorted_bars(ours), expected, rtol=0, atol=1e-9)
        bars_seen += len(expected)
    assert bars_seen > 10_000


def test_coefficients_are_gudhis_z11_not_z2():
    # On this wwPDB interface (bundled example 1BD2), one cloud has a loop that a later complex wraps twice:
    # over Z/2 it dies with the first of two triangles, over Z/11 (GUDHI's default, the reference's) with the
    # second. Two bars swap their deaths (by 0.24), so the field shows in the features.
    points = interface_clouds(REPO_ROOT / "examples" / "1BD2.pdb.gz")[325]  # interface residue 46, group CN
    tree = gudhi.AlphaComplex(points=points, precision="safe").create_simplex_tree()
    tree.compute_persistence(homology_coeff_field=2)
    over_z2 = sorted_bars(tree.persistence_intervals_in_dimension(1), 1e-9)
    expected = sorted_bars(gudhi_h1_bars(points, "safe"), 1e-9)
    assert over_z2.shape == expected.shape and np.abs(over_z2 - expected).max() > 0.2  # the case still bites
    np.testing.assert_allclose(sorted_bars(alpha_h1_bars_compiled(points), 1e-9), expected, rtol=0, atol=1e-9)


def test_delaunay_tetrahedra_are_qhulls_and_neighbours_share_faces():
    rng = np.random.default_rng(3)
    clouds = [np.round(rng.uniform(-8, 8, size=(size, 3)), 3) for size in (4, 5, 12, 60, 150)]
    interface = interface_clouds(REPO_ROOT / "examples" / "1HVR.pdb")
    clouds += [points for points in interface[:60] if len(points) >= 5]
    for points in clouds:
        tetrahedra, neighbors, squared_radii, radius_errors, ok = delaunay_tetrahedra(points)
        assert ok
        ours = {tuple(sorted(tet)) for tet in tetrahedra.tolist()}
        assert ours == {tuple(sorted(tet)) for tet in Delaunay(points).simplices.tolist()}
        # Circumcentres solved independently: |c - a|^2 = |c - b|^2 = ... as a linear system.
        corners = points[tetrahedra]
        centres = np.linalg.solve(2 * (corners[:, 1:] - corners[:, :1]),
                                  ((corners[:, 1:] ** 2).sum(-1) - (corners[:, :1] ** 2).sum(-1))[..., None])[..., 0]
        radii = ((centres - corners[:, 0]) ** 2).sum(-1)
        np.testing.assert_allclose(squared_radii, radii, rtol=1e-9, atol=0)
        for t, k in itertools.product(range(len(tetrahedra)), range(4)):
            other = neighbors[t, k]
            shared = set(tetrahedra[t].tolist()) - {tetrahedra[t, k]}
            if other < 0:
                assert sum(shared <= set(tet) for tet in tetrahedra.tolist()) == 1  # a hull face: one tetrahedron
            else:
                assert shared <= set(tetrahedra[other].tolist()) and other != t


def square_lattice(size: int) -> np.ndarray:
    return 1.5 * np.array(list(itertools.product(range(size), repeat=3)), dtype=np.float64)


ring = np.c_[np.cos(np.arange(6) * np.pi / 3), np.sin(np.arange(6) * np.pi / 3), np.zeros(6)]
rng = np.random.default_rng(11)
random_cloud = np.round(rng.uniform(0, 10, size=(40, 3)), 3)
AWKWARD_CLOUDS = {
    # name: (points, whether the compiled code computes them itself; otherwise GUDHI's exact predicates do)
    "acute triangle": (np.array([[0, 0, 0], [1, 0, 0], [0.5, 0.9, 0]], dtype=np.float64), True),
    "obtuse triangle": (np.array([[0, 0, 0], [1, 0, 0], [0.5, 0.1, 0]], dtype=np.float64), True),
    "three on a line": (np.array([[0, 0, 0], [1, 0, 0], [2, 0, 0]], dtype=np.float64), False),
    "four in a plane": (np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]], dtype=np.float64), False),
    "flat ring": (ring, False),
    "ring and two poles": (np.r_[ring, [[0, 0, 1.0], [0, 0, -1.0]]], None),
    "cube corners (cospherical)": (square_lattice(2), None),
    "lattice 4x4x4": (square_lattice(4), None),
    "lattice, 0.001 A jitter": (np.round(square_lattice(4) + rng.uniform(0, 1e-3, (64, 3)), 3), None),
    "duplicate points": (np.r_[random_cloud, random_cloud[:5]], None),
    "random 40": (random_cloud, True),
}


@pytest.mark.parametrize("name", list(AWKWARD_CLOUDS))
def test_awkward_clouds_give_gudhis_bars(name):
    points, computed_here = AWKWARD_CLOUDS[name]
    compiled = alpha_h1_bars_compiled(points)
    if computed_here is not None:
        assert (compiled is not None) == computed_here
    # Against 'safe', the reference's mode (test_alpha_degenerate compares with 'exact', as multisets). Bars
    # matched by sorted births: where births tie this can pair them differently (the jittered lattice's 'safe'
    # and 'exact' bars differ by 1.5e-3 so, by 1e-15 as multisets), not on these clouds. Bars shorter than
    # 1e-9 come and go with rounding (features only keep bars of 0.01 and longer).
    expected = sorted_bars(gudhi_h1_bars(points, "safe"), 1e-9)
    ours = sorted_bars(alpha_h1_bars(points, "fast"), 1e-9)
    assert ours.shape == expected.shape
    np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-9)
    if compiled is not None:
        np.testing.assert_allclose(sorted_bars(compiled, 1e-9), expected, rtol=0, atol=1e-9)
