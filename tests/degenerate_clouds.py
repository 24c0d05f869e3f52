"""Seeded near-degenerate point clouds for the alpha-complex property test, family by family."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import numpy as np


def _frame(rng: np.random.Generator) -> np.ndarray:
    """A random rotation (rows: two in-plane axes, then the normal)."""
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    return q.T * np.sign(np.diag(r))[:, None]


def _circle(rng: np.random.Generator, count: int, radius: float, regular: bool) -> np.ndarray:
    angles = np.arange(count) * 2 * np.pi / count if regular else np.sort(rng.uniform(0, 2 * np.pi, count))
    angles = angles + rng.uniform(0, 2 * np.pi)
    return np.c_[radius * np.cos(angles), radius * np.sin(angles), np.zeros(count)]


def _place(rng: np.random.Generator, local: np.ndarray, offset: float = 10.0) -> np.ndarray:
    return local @ _frame(rng) + rng.uniform(-offset, offset, 3)


def _atoms_around(rng: np.random.Generator, centre: np.ndarray, count: int) -> np.ndarray:
    """Points 1.2-3.5 apart-ish around a centre, like the atoms of a neighbourhood."""
    return centre + rng.uniform(-5, 5, size=(count, 3))


def slivers(rng: np.random.Generator) -> np.ndarray:
    """4-6 points nearly on one circle, each lifted off its plane by 1e-9 to 1e-5 of the radius."""
    count, radius = int(rng.integers(4, 7)), rng.uniform(1.0, 3.0)
    local = _circle(rng, count, radius, regular=rng.random() < 0.5)
    local[:, 2] = radius * 10.0 ** rng.uniform(-9, -5, count) * rng.choice([-1.0, 1.0], count)
    return _place(rng, local)


def slivers_in_a_cloud(rng: np.random.Generator) -> np.ndarray:
    """A lifted ring of 4-6 points (as in a flat residue) among other atoms."""
    ring = slivers(rng)
    others = _atoms_around(rng, ring.mean(axis=0), int(rng.integers(3, 20)))
    return rng.permutation(np.r_[ring, others])


def cocircular(rng: np.random.Generator) -> np.ndarray:
    """4-8 points on one circle (to rounding), alone, with poles on its axis, or with a few other points."""
    count, radius = int(rng.integers(4, 9)), rng.uniform(1.0, 3.0)
    local = _circle(rng, count, radius, regular=rng.random() < 0.5)
    kind = rng.integers(3)
    if kind == 1:
        local = np.r_[local, [[0, 0, radius], [0, 0, -radius * rng.uniform(0.5, 1.5)]]]
    elif kind == 2:
        local = np.r_[local, rng.uniform(-radius, radius, size=(int(rng.integers(1, 5)), 3))]
    return _place(rng, local)


def cospherical(rng: np.random.Generator) -> np.ndarray:
    """5-14 points on one sphere (to rounding), with or without its centre."""
    count, radius = int(rng.integers(5, 15)), rng.uniform(1.0, 4.0)
    directions = rng.normal(size=(count, 3))
    local = radius * directions / np.linalg.norm(directions, axis=1, keepdims=True)
    if rng.random() < 0.3:
        local = np.r_[local, [[0.0, 0.0, 0.0]]]
    return _place(rng, local)


def lattices(rng: np.random.Generator) -> np.ndarray:
    """Cubic or face-centred lattices, 2-4 a side, rotated or not, jittered or not, rounded to 0.001 as in PDB files."""
    side, spacing = int(rng.integers(2, 5)), rng.choice([1.0, 1.5, 1.54])
    points = np.array(list(itertools.product(range(side), repeat=3)), dtype=np.float64)
    if rng.random() < 0.3:
        points = np.r_[points, points[(points < side - 1).all(axis=1)] + 0.5]
    points = spacing * points
    if rng.random() < 0.5:
        points = points @ _frame(rng)
    if rng.random() < 0.5:
        points = points + rng.uniform(-1e-3, 1e-3, points.shape)
    points = points + rng.uniform(-10, 10, 3)
    return np.round(points, 3) if rng.random() < 0.8 else points


def duplicates(rng: np.random.Generator) -> np.ndarray:
    """Random atoms, some repeated exactly or within 1e-12 to 1e-6."""
    points = np.round(rng.uniform(-5, 5, size=(int(rng.integers(5, 25)), 3)), 3)
    copies = points[rng.integers(0, len(points), int(rng.integers(1, 5)))]
    if rng.random() < 0.5:
        copies = copies + 10.0 ** rng.uniform(-12, -6) * rng.normal(size=copies.shape)
    return rng.permutation(np.r_[points, copies])


def far_away(rng: np.random.Generator) -> np.ndarray:
    """Any other family, moved ~1e4 away (coordinates then carry fewer bits of the shape)."""
    family = FAMILIES[int(rng.integers(len(FAMILIES) - 1))]
    return family(rng) + rng.uniform(-1e4, 1e4, 3)


FAMILIES = [slivers, slivers_in_a_cloud, cocircular, cospherical, lattices, duplicates, far_away]


def generated_clouds(per_family: int, seed: int = 0) -> Iterator[tuple[str, np.ndarray]]:
    """(family name, points) for `per_family` clouds of every family, the same on every run."""
    for index, family in enumerate(FAMILIES):
        rng = np.random.default_rng([seed, index])
        for _ in range(per_family):
            yield family.__name__, family(rng)
