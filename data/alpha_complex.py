"""Dimension-1 persistence of the alpha complex of a small 3D point cloud, compiled with numba.

The same bars as GUDHI's `AlphaComplex` (squared radii), without its simplex tree: most of GUDHI's time goes
into inserting ~1,000 simplices per cloud into that tree, not into the geometry.

- Delaunay tetrahedralisation: Bowyer-Watson with a symbolic vertex at infinity, in double precision (a
  conflict too close to call there in double-double), then certified as a whole (below).
- Filtration (GUDHI's alpha values): a tetrahedron gets its squared circumradius; a triangle or an edge gets its
  own smallest-sphere radius if no coface's opposite vertex lies strictly inside that sphere (it is Gabriel),
  and otherwise the smallest value of its cofaces. GUDHI takes the minimum only from the first attaching
  coface on, in its own visiting order; the results are the same, because the coface with the smallest value
  is always an attaching one (its circumcentre is the point of the dual Voronoi cell nearest the face's own).
- Persistence: edges in filtration order through a union-find (those that join two components are H0 deaths),
  triangles that close a void found by a union-find over the complement in reverse order (Alexander duality),
  then the oriented boundary columns of the other triangles reduced over Z/11, GUDHI's
  default field, restricted to the other edges' rows (the youngest edge of a cycle never joins two
  components, so nothing is lost). Ties are broken edges first; the diagram does not depend on the rest.

Precision: every bar is within a relative 1e-10 of GUDHI 'exact''s, or the cloud is handed back (None) for
GUDHI (tests/test_alpha_degenerate.py checks it on thousands of near-degenerate clouds: log-bottleneck distance
of the diagrams). Each sign and value carries a forward error bound, rounding errors per unit of the
expression's permanent (a static filter, as in Shewchuk's predicates); circumspheres that double precision
does not certify (slivers: four atoms nearly on one circle, as in a ring) are computed again in double-double,
from exact coordinate differences. Certified, or the cloud goes back: the triangulation (every tetrahedron
positively oriented, every interior face locally Delaunay, every hull edge locally convex, every point a
vertex or an exact duplicate) and the value of every edge and triangle to VALUE_TOLERANCE, bar those certainly
beyond the squared radius of the smallest enclosing ball, after which no bar lives. Persistence being stable,
the bars then are too. Exactly degenerate clouds (five points cospherical: the tetrahedralisation is not
unique, GUDHI perturbs symbolically) always go back.
"""

from __future__ import annotations

import numba as nb
import numpy as np

UNIT_ROUNDOFF = 2.0**-53
# Every alpha value the bars are made of must be certified to this relative accuracy by a forward error bound
# (with a decision that rounding could flip tolerated only where both outcomes give values this close), so
# that the bars are too: persistence is stable, each endpoint moves by at most the largest error of a value.
# Otherwise the caller asks GUDHI. The margin to the 1e-10 that the tests check covers those two terms.
VALUE_TOLERANCE = 1e-11
# Rounding error of each expression per unit of its permanent (the same monomials in absolute value): the
# number of roundings on the longest path from a coordinate difference to the result, plus a margin.
ORIENTATION_ERROR = 10 * UNIT_ROUNDOFF
SPHERE_NUMERATOR_ERROR = 16 * UNIT_ROUNDOFF
TRIANGLE_AREA_ERROR = 14 * UNIT_ROUNDOFF
TRIANGLE_NUMERATOR_ERROR = 18 * UNIT_ROUNDOFF
# The same in double-double arithmetic (differences exact, each operation within 7u^2, Joldes-Muller-Popescu
# 2017), per unit of permanent, at most 8 operations deep.
DOUBLE_DOUBLE_ERROR = 64 * UNIT_ROUNDOFF**2
# Only steers the choice of the first tetrahedron away from nearly collinear points; decides nothing.
COLLINEAR_TOLERANCE = 1e-9
# GUDHI's default coefficient field, which the reference used. It matters: a loop that a later complex wraps
# twice (a solid torus around it) dies over Z/2 but lives on over Z/11 (seen on a real interface, 1BD2).
FIELD = 11
INVERSE = np.array([0, 1, 6, 4, 3, 9, 2, 8, 7, 5, 10], dtype=np.int64)  # k * INVERSE[k] = 1 mod 11


@nb.njit(cache=True)
def _centre_error(radius, numerator_error, denominator, denominator_error) -> float:
    """Bound on |centre - exact centre| for a centre computed as numerator / denominator (then scaled by a
    power of two): the denominator within `denominator_error`, the numerator within `numerator_error` (already
    divided by the denominator), two roundings."""
    if denominator_error <= 1e-3 * denominator:
        # The exact expression below, its divisions bounded by a factor 1.003 (to first order).
        return 1.02 * ((denominator_error / denominator + 2 * UNIT_ROUNDOFF) * radius + numerator_error)
    if not denominator > 2 * denominator_error:
        return np.inf
    relative_denominator = denominator_error / (denominator - denominator_error)
    slope = (relative_denominator + 2 * UNIT_ROUNDOFF) / (1 - relative_denominator)
    if not slope < 0.5:
        return np.inf
    return 1.01 * (slope * radius + numerator_error / (1 - relative_denominator)) / (1 - slope)


@nb.njit(cache=True)
def _sphere_margin(q0, q1, q2, c0, c1, c2, radius, radius2, centre_error, radius2_error):
    """|q - c|^2 - radius2 for point q against the sphere of centre c (both relative to a vertex, q a rounded
    coordinate difference), and a bound on its error: c is within `centre_error` of the exact centre, radius2
    within `radius2_error` of the exact squared radius, and `radius` is about its square root."""
    d0, d1, d2 = q0 - c0, q1 - c1, q2 - c2
    dd = d0 * d0 + d1 * d1 + d2 * d2
    # d is within e = centre_error + u (|q| + |d|) <= centre_error + u (2 |d| + radius) of exact, so |d|^2 is
    # within (2 |d| + e) e plus its own rounding; 2 |d| x <= dd x / radius + radius x spares a square root.
    relative = centre_error / radius if radius > 0 else 0.0
    bound = ((dd + radius2) * (relative + 12 * UNIT_ROUNDOFF) + radius * centre_error + 2 * centre_error * centre_error
             + radius2_error)
    return dd - radius2, bound


@nb.njit(cache=True)
def _triangle_value(points, a, b, c, opposite, coface_value, coface_low, coface_high):
    """Alpha value of triangle abc from its (up to two) cofaces (-1 opposite vertex for none), and bounds
    (low, high) between which its exact value certainly lies."""
    smallest, low, high = np.inf, np.inf, np.inf
    for k in range(2):
        if opposite[k] >= 0:
            smallest, low, high = min(smallest, coface_value[k]), min(low, coface_low[k]), min(high, coface_high[k])
    u0, u1, u2 = points[b, 0] - points[a, 0], points[b, 1] - points[a, 1], points[b, 2] - points[a, 2]
    v0, v1, v2 = points[c, 0] - points[a, 0], points[c, 1] - points[a, 1], points[c, 2] - points[a, 2]
    w0, w1, w2 = u1 * v2 - u2 * v1, u2 * v0 - u0 * v2, u0 * v1 - u1 * v0
    area2 = w0 * w0 + w1 * w1 + w2 * w2
    uu, vv = u0 * u0 + u1 * u1 + u2 * u2, v0 * v0 + v1 * v1 + v2 * v2
    # Permanents: the same products in absolute value.
    a0, a1, a2 = abs(u1 * v2) + abs(u2 * v1), abs(u2 * v0) + abs(u0 * v2), abs(u0 * v1) + abs(u1 * v0)
    area_error = TRIANGLE_AREA_ERROR * (a0 * a0 + a1 * a1 + a2 * a2)
    if not area2 > 2 * area_error:
        # Nearly collinear: no trustworthy centre. Its value is its own radius (at least half its longest side)
        # or a coface's, and never more than a coface's.
        ww = (v0 - u0) ** 2 + (v1 - u1) ** 2 + (v2 - u2) ** 2
        longest = 0.25 * max(uu, vv, ww) * (1 - 8 * UNIT_ROUNDOFF)
        return (smallest if smallest < np.inf else longest), longest, high
    vw0, vw1, vw2 = v1 * w2 - v2 * w1, v2 * w0 - v0 * w2, v0 * w1 - v1 * w0
    wu0, wu1, wu2 = w1 * u2 - w2 * u1, w2 * u0 - w0 * u2, w0 * u1 - w1 * u0
    p0 = uu * (abs(v1) * a2 + abs(v2) * a1) + vv * (a1 * abs(u2) + a2 * abs(u1))
    p1 = uu * (abs(v2) * a0 + abs(v0) * a2) + vv * (a2 * abs(u0) + a0 * abs(u2))
    p2 = uu * (abs(v0) * a1 + abs(v1) * a0) + vv * (a0 * abs(u1) + a1 * abs(u0))
    scale = 0.5 / area2
    c0, c1, c2 = (uu * vw0 + vv * wu0) * scale, (uu * vw1 + vv * wu1) * scale, (uu * vw2 + vv * wu2) * scale
    radius2 = c0 * c0 + c1 * c1 + c2 * c2
    radius = np.sqrt(radius2)
    # (The 1-norm of the permanents bounds their Euclidean norm.)
    centre_error = _centre_error(radius, TRIANGLE_NUMERATOR_ERROR * (p0 + p1 + p2) * scale, area2, area_error)
    radius2_error = (2 * radius + centre_error) * centre_error + 3 * UNIT_ROUNDOFF * radius2
    attached, undecided = False, False
    for k in range(2):
        p = opposite[k]
        if p < 0:
            continue
        q0, q1, q2 = points[p, 0] - points[a, 0], points[p, 1] - points[a, 1], points[p, 2] - points[a, 2]
        margin, bound = _sphere_margin(q0, q1, q2, c0, c1, c2, radius, radius2, centre_error, radius2_error)
        attached |= margin < -bound
        undecided |= abs(margin) <= bound
    if attached:
        return smallest, low, high
    if undecided:  # either value may be the exact one
        return radius2, min(radius2 - radius2_error, low), max(radius2 + radius2_error, high)
    return radius2, radius2 - radius2_error, radius2 + radius2_error


@nb.njit(cache=True)
def _certified(value, low, high) -> bool:
    return high - value <= VALUE_TOLERANCE * value and value - low <= VALUE_TOLERANCE * value


@nb.njit(cache=True)
def _root(parent, node) -> int:
    while parent[node] != node:
        parent[node] = parent[parent[node]]
        node = parent[node]
    return node


@nb.njit(cache=True)
def _h1_pairs(vertex_count, edges, edge_values, triangles, triangle_edges, triangle_values, triangle_sides, cell_count):
    """(birth, death) of every dimension-1 bar with death > birth.

    Triangles that create a void (their two sides, tetrahedra or the outside, still apart in the complement) are
    found first by a union-find over the complement in reverse order, as Alexander duality allows: their
    columns would reduce to zero, the most expensive reductions, so only the others are reduced.
    """
    parent = np.arange(vertex_count)
    row_of_edge = np.full(edges.shape[0], -1)
    edge_of_row = np.empty(edges.shape[0], np.int64)
    rows = 0
    for e in np.argsort(edge_values):
        a, b = _root(parent, edges[e, 0]), _root(parent, edges[e, 1])
        if a != b:
            parent[max(a, b)] = min(a, b)
        else:
            row_of_edge[e] = rows
            edge_of_row[rows] = e
            rows += 1
    bars = np.empty((rows, 2))
    if rows == 0:
        return bars
    order = np.argsort(triangle_values)
    complement = np.arange(cell_count + 1)  # the last node is the outside
    kills_a_cycle = np.zeros(len(order), np.bool_)
    for t in order[::-1]:
        a, b = _root(complement, triangle_sides[t, 0]), _root(complement, triangle_sides[t, 1])
        kills_a_cycle[t] = a == b
        complement[max(a, b)] = min(a, b)

    # Reduced columns, sparse (row, coefficient mod 11, pivot coefficient 1), one after another in a pool.
    pool_rows = np.empty(16 * rows, np.int64)
    pool_values = np.empty(16 * rows, np.int64)
    column_start = np.empty(rows + 1, np.int64)
    column_start[0] = 0
    column_of_low = np.full(rows, -1)
    work = np.zeros(rows, np.int64)  # the column being reduced, dense over the rows it has touched
    touched = np.empty(rows, np.int64)
    is_touched = np.zeros(rows, np.bool_)
    pairs = 0
    count = 0
    for t in order:
        if not kills_a_cycle[t]:
            continue
        size = 0
        for k in range(3):
            row = row_of_edge[triangle_edges[t, k]]
            if row < 0:
                continue
            # Oriented boundary: the edge opposite the j-th smallest vertex has sign (-1)^j.
            j = 0
            for m in range(3):
                j += triangles[t, m] < triangles[t, k]
            work[row] = 1 if j % 2 == 0 else FIELD - 1
            touched[size] = row
            is_touched[row] = True
            size += 1
        while True:
            low = -1
            for i in range(size):
                if work[touched[i]] != 0 and touched[i] > low:
                    low = touched[i]
            if low < 0 or column_of_low[low] < 0:
                break
            c = column_of_low[low]
            factor = FIELD - work[low]
            for i in range(column_start[c], column_start[c + 1]):
                row = pool_rows[i]
                if not is_touched[row]:
                    is_touched[row] = True
                    touched[size] = row
                    size += 1
                work[row] = (work[row] + factor * pool_values[i]) % FIELD
        if low >= 0:
            scale = INVERSE[work[low]]
            end = column_start[pairs]
            if end + size > pool_rows.shape[0]:
                pool_rows = np.concatenate((pool_rows, np.empty(pool_rows.shape[0] + size, np.int64)))
                pool_values = np.concatenate((pool_values, np.empty(pool_values.shape[0] + size, np.int64)))
            for i in range(size):
                row = touched[i]
                if work[row] != 0:
                    pool_rows[end] = row
                    pool_values[end] = work[row] * scale % FIELD
                    end += 1
            column_start[pairs + 1] = end
            column_of_low[low] = pairs
            pairs += 1
            birth, death = edge_values[edge_of_row[low]], triangle_values[t]
            if death > birth:
                bars[count, 0] = birth
                bars[count, 1] = death
                count += 1
        for i in range(size):
            work[touched[i]] = 0
            is_touched[touched[i]] = False
    return bars[:count]


@nb.njit(cache=True)
def h1_bars_of_triangulation(points, tetrahedra, neighbors, tet_values, tet_errors):
    """Dimension-1 bars (birth, death) of the alpha filtration of a Delaunay triangulation of `points` in R^3.

    `tetrahedra` [T, 4] vertex indices, `neighbors` [T, 4] the tetrahedron across the face opposite each vertex
    (-1 on the hull), `tet_values` [T] their squared circumradii and `tet_errors` [T] bounds on those values'
    errors, as `delaunay_tetrahedra` gives them. For three points, one triangle [[0, 1, 2]] and no neighbours
    or values. Returns the bars and True, or an empty array and False where rounding could change them by more
    than VALUE_TOLERANCE (the caller then asks GUDHI).
    """
    n = points.shape[0]
    count, size = tetrahedra.shape
    if size == 4:
        triangles = np.empty((4 * count, 3), np.int64)
    else:
        triangles = tetrahedra
    triangle_values = np.empty(triangles.shape[0])
    triangle_low = np.empty(triangles.shape[0])
    triangle_high = np.empty(triangles.shape[0])
    triangle_sides = np.full((triangles.shape[0], 2), count if size == 4 else 0)
    opposite = np.full(2, -1)
    coface_value = np.full(2, np.inf)
    coface_low = np.full(2, np.inf)
    coface_high = np.full(2, np.inf)
    f = 0
    if size == 4:
        for t in range(count):
            for k in range(4):
                other = neighbors[t, k]
                if 0 <= other < t:
                    continue  # listed from the other side
                j = 0
                for m in range(4):
                    if m != k:
                        triangles[f, j] = tetrahedra[t, m]
                        j += 1
                opposite[0], coface_value[0] = tetrahedra[t, k], tet_values[t]
                coface_low[0], coface_high[0] = tet_values[t] - tet_errors[t], tet_values[t] + tet_errors[t]
                opposite[1], coface_value[1], coface_low[1], coface_high[1] = -1, np.inf, np.inf, np.inf
                triangle_sides[f, 0] = t
                if other >= 0:
                    triangle_sides[f, 1] = other
                    for m in range(4):
                        if neighbors[other, m] == t:
                            opposite[1], coface_value[1] = tetrahedra[other, m], tet_values[other]
                            coface_low[1] = tet_values[other] - tet_errors[other]
                            coface_high[1] = tet_values[other] + tet_errors[other]
                triangle_values[f], triangle_low[f], triangle_high[f] = _triangle_value(
                    points, triangles[f, 0], triangles[f, 1], triangles[f, 2], opposite, coface_value, coface_low,
                    coface_high
                )
                f += 1
    else:
        for f in range(count):
            triangle_values[f], triangle_low[f], triangle_high[f] = _triangle_value(
                points, triangles[f, 0], triangles[f, 1], triangles[f, 2], opposite, coface_value, coface_low,
                coface_high
            )
        f = count
    triangles, triangle_values, triangle_sides = triangles[:f], triangle_values[:f], triangle_sides[:f]
    triangle_low, triangle_high = triangle_low[:f], triangle_high[:f]

    # Edges: numbered on first sight through an n x n table; their alpha value from the triangles around them.
    edge_id = np.full(n * n, -1)
    edges = np.empty((3 * f, 2), np.int64)
    triangle_edges = np.empty((f, 3), np.int64)
    smallest = np.empty(3 * f)
    low = np.empty(3 * f)
    high = np.empty(3 * f)
    attached = np.zeros(3 * f, np.bool_)
    undecided = np.zeros(3 * f, np.bool_)
    edge_count = 0
    for t in range(f):
        for k in range(3):
            a, b = triangles[t, (k + 1) % 3], triangles[t, (k + 2) % 3]
            a, b = min(a, b), max(a, b)
            e = edge_id[a * n + b]
            if e < 0:
                e = edge_id[a * n + b] = edge_count
                edges[e, 0], edges[e, 1] = a, b
                smallest[e], low[e], high[e] = np.inf, np.inf, np.inf
                edge_count += 1
            triangle_edges[t, k] = e
            smallest[e] = min(smallest[e], triangle_values[t])
            low[e], high[e] = min(low[e], triangle_low[t]), min(high[e], triangle_high[t])
            p = triangles[t, k]
            h0, h1, h2 = points[b, 0] - points[a, 0], points[b, 1] - points[a, 1], points[b, 2] - points[a, 2]
            q0, q1, q2 = points[p, 0] - points[a, 0], points[p, 1] - points[a, 1], points[p, 2] - points[a, 2]
            d0, d1, d2 = q0 - 0.5 * h0, q1 - 0.5 * h1, q2 - 0.5 * h2
            dd, hh = d0 * d0 + d1 * d1 + d2 * d2, h0 * h0 + h1 * h1 + h2 * h2
            # The centre h / 2 within u |h| / 2 of exact (the difference rounded), the squared radius within 2u hh:
            # as in _sphere_margin, 14u (dd + hh) bounds the error of dd - hh / 4.
            bound = 14 * UNIT_ROUNDOFF * (dd + hh)
            attached[e] |= dd - 0.25 * hh < -bound
            undecided[e] |= abs(dd - 0.25 * hh) <= bound
    edges = edges[:edge_count]
    edge_values = np.empty(edge_count)
    edge_low = np.empty(edge_count)
    edge_high = np.empty(edge_count)
    for e in range(edge_count):
        a, b = edges[e, 0], edges[e, 1]
        h0, h1, h2 = points[b, 0] - points[a, 0], points[b, 1] - points[a, 1], points[b, 2] - points[a, 2]
        own = 0.25 * (h0 * h0 + h1 * h1 + h2 * h2)
        own_error = 8 * UNIT_ROUNDOFF * own
        if attached[e]:
            edge_values[e], edge_low[e], edge_high[e] = smallest[e], low[e], high[e]
        elif undecided[e]:  # either value may be the exact one
            edge_values[e], edge_low[e], edge_high[e] = own, min(own - own_error, low[e]), max(own + own_error, high[e])
        else:
            edge_values[e], edge_low[e], edge_high[e] = own, own - own_error, own + own_error
    # Every bar ends by the squared radius of the smallest enclosing ball (past it the union of balls, which has
    # the alpha complex's homotopy type, is star-shaped), so bounding it by `limit` lets any simplex that
    # certainly comes later keep an uncertain value: comparing both filtrations clamped at `limit`, they agree
    # to VALUE_TOLERANCE everywhere, and so do their bars (stability, in log scale), which lie below it.
    centre0 = 0.5 * (points[:, 0].min() + points[:, 0].max())
    centre1 = 0.5 * (points[:, 1].min() + points[:, 1].max())
    centre2 = 0.5 * (points[:, 2].min() + points[:, 2].max())
    limit = 0.0
    for i in range(n):
        d0, d1, d2 = points[i, 0] - centre0, points[i, 1] - centre1, points[i, 2] - centre2
        limit = max(limit, d0 * d0 + d1 * d1 + d2 * d2)
    limit *= 1 + 16 * UNIT_ROUNDOFF
    for e in range(edge_count):
        if not edge_low[e] >= limit and not _certified(edge_values[e], edge_low[e], edge_high[e]):  # NaN too
            return np.empty((0, 2)), False
    for t in range(f):
        if not triangle_low[t] >= limit and not _certified(triangle_values[t], triangle_low[t], triangle_high[t]):
            return np.empty((0, 2)), False
    bars = _h1_pairs(n, edges, edge_values, triangles, triangle_edges, triangle_values, triangle_sides,
                     count if size == 4 else 0)
    return bars, True


@nb.njit(cache=True)
def _orientation(points, a, b, c, d) -> float:
    """det[b - a, c - a, d - a]: positive when d lies on the side of plane abc that abc's normal points to."""
    u0, u1, u2 = points[b, 0] - points[a, 0], points[b, 1] - points[a, 1], points[b, 2] - points[a, 2]
    v0, v1, v2 = points[c, 0] - points[a, 0], points[c, 1] - points[a, 1], points[c, 2] - points[a, 2]
    w0, w1, w2 = points[d, 0] - points[a, 0], points[d, 1] - points[a, 1], points[d, 2] - points[a, 2]
    return u0 * (v1 * w2 - v2 * w1) + u1 * (v2 * w0 - v0 * w2) + u2 * (v0 * w1 - v1 * w0)


@nb.njit(cache=True)
def _certified_orientation(points, a, b, c, d) -> int:
    """The sign of `_orientation`, or 0 where rounding could have decided it."""
    u0, u1, u2 = points[b, 0] - points[a, 0], points[b, 1] - points[a, 1], points[b, 2] - points[a, 2]
    v0, v1, v2 = points[c, 0] - points[a, 0], points[c, 1] - points[a, 1], points[c, 2] - points[a, 2]
    w0, w1, w2 = points[d, 0] - points[a, 0], points[d, 1] - points[a, 1], points[d, 2] - points[a, 2]
    det = u0 * (v1 * w2 - v2 * w1) + u1 * (v2 * w0 - v0 * w2) + u2 * (v0 * w1 - v1 * w0)
    permanent = (abs(u0) * (abs(v1 * w2) + abs(v2 * w1)) + abs(u1) * (abs(v2 * w0) + abs(v0 * w2))
                 + abs(u2) * (abs(v0 * w1) + abs(v1 * w0)))
    if abs(det) <= ORIENTATION_ERROR * permanent:
        return 0
    return 1 if det > 0 else -1


@nb.njit(cache=True)
def _two_sum(a, b):
    s = a + b
    t = s - a
    return s, (a - (s - t)) + (b - t)


@nb.njit(cache=True)
def _fast_two_sum(a, b):
    s = a + b
    return s, b - (s - a)


@nb.njit(cache=True)
def _split(a):
    c = 134217729.0 * a  # 2^27 + 1
    high = c - (c - a)
    return high, a - high


@nb.njit(cache=True)
def _two_product(a, b):
    p = a * b
    ah, al = _split(a)
    bh, bl = _split(b)
    return p, ((ah * bh - p) + ah * bl + al * bh) + al * bl


@nb.njit(cache=True)
def _dd_add(ah, al, bh, bl):
    """Double-double sum (the accurate algorithm: relative error 3u^2)."""
    s, e = _two_sum(ah, bh)
    t, f = _two_sum(al, bl)
    s, e = _fast_two_sum(s, e + t)
    return _fast_two_sum(s, e + f)


@nb.njit(cache=True)
def _dd_mul(ah, al, bh, bl):
    """Double-double product (relative error 7u^2)."""
    p, e = _two_product(ah, bh)
    return _fast_two_sum(p, e + (ah * bl + al * bh))


@nb.njit(cache=True)
def _dd_cross(a0, a1, a2, b0, b1, b2, i):
    """Component i of the cross product of two double-double vectors (as high, low pairs)."""
    x = _dd_mul(a1[0], a1[1], b2[0], b2[1]) if i == 0 else (_dd_mul(a2[0], a2[1], b0[0], b0[1]) if i == 1
                                                            else _dd_mul(a0[0], a0[1], b1[0], b1[1]))
    y = _dd_mul(a2[0], a2[1], b1[0], b1[1]) if i == 0 else (_dd_mul(a0[0], a0[1], b2[0], b2[1]) if i == 1
                                                            else _dd_mul(a1[0], a1[1], b0[0], b0[1]))
    return _dd_add(x[0], x[1], -y[0], -y[1])


@nb.njit(cache=True)
def _store_sphere(spheres, t, det, det_error, n0, n1, n2, numerator_error) -> None:
    """Centre numerator / (2 det) and squared radius of tetrahedron t, with bounds on their errors, from the
    determinant and the numerator known to `det_error` and `numerator_error` (Euclidean)."""
    scale = 0.5 / det
    o0, o1, o2 = n0 * scale, n1 * scale, n2 * scale
    radius2 = o0 * o0 + o1 * o1 + o2 * o2
    radius = np.sqrt(radius2)
    centre_error = _centre_error(radius, numerator_error * scale, det, det_error)
    spheres[t, 0], spheres[t, 1], spheres[t, 2], spheres[t, 3] = o0, o1, o2, radius2
    spheres[t, 4] = centre_error
    spheres[t, 5] = (2 * radius + centre_error) * centre_error + 3 * UNIT_ROUNDOFF * radius2
    spheres[t, 6] = radius


@nb.njit(cache=True)
def _set_sphere(points, vertices, spheres, t, accurate) -> bool:
    """Circumsphere of finite tetrahedron t: centre relative to its first vertex, squared radius, bounds on the
    errors of both, radius. False if its orientation is not certainly positive.

    In double precision, and in double-double where that leaves the orientation uncertain or when `accurate`
    (asked for the final tetrahedra whose squared radius double precision does not certify to VALUE_TOLERANCE:
    slivers, four points nearly on one circle, as in a ring).
    """
    a, b, c, d = vertices[t, 0], vertices[t, 1], vertices[t, 2], vertices[t, 3]
    u0, u1, u2 = points[b, 0] - points[a, 0], points[b, 1] - points[a, 1], points[b, 2] - points[a, 2]
    v0, v1, v2 = points[c, 0] - points[a, 0], points[c, 1] - points[a, 1], points[c, 2] - points[a, 2]
    w0, w1, w2 = points[d, 0] - points[a, 0], points[d, 1] - points[a, 1], points[d, 2] - points[a, 2]
    vw0, vw1, vw2 = v1 * w2 - v2 * w1, v2 * w0 - v0 * w2, v0 * w1 - v1 * w0
    wu0, wu1, wu2 = w1 * u2 - w2 * u1, w2 * u0 - w0 * u2, w0 * u1 - w1 * u0
    uv0, uv1, uv2 = u1 * v2 - u2 * v1, u2 * v0 - u0 * v2, u0 * v1 - u1 * v0
    det = u0 * vw0 + u1 * vw1 + u2 * vw2
    # Permanents of the cross products, the determinant and the numerator.
    pvw0, pvw1, pvw2 = abs(v1 * w2) + abs(v2 * w1), abs(v2 * w0) + abs(v0 * w2), abs(v0 * w1) + abs(v1 * w0)
    pwu0, pwu1, pwu2 = abs(w1 * u2) + abs(w2 * u1), abs(w2 * u0) + abs(w0 * u2), abs(w0 * u1) + abs(w1 * u0)
    puv0, puv1, puv2 = abs(u1 * v2) + abs(u2 * v1), abs(u2 * v0) + abs(u0 * v2), abs(u0 * v1) + abs(u1 * v0)
    det_permanent = abs(u0) * pvw0 + abs(u1) * pvw1 + abs(u2) * pvw2
    uu, vv, ww = u0 * u0 + u1 * u1 + u2 * u2, v0 * v0 + v1 * v1 + v2 * v2, w0 * w0 + w1 * w1 + w2 * w2
    p0, p1, p2 = uu * pvw0 + vv * pwu0 + ww * puv0, uu * pvw1 + vv * pwu1 + ww * puv1, uu * pvw2 + vv * pwu2 + ww * puv2
    numerator_permanent = p0 + p1 + p2  # bounds their Euclidean norm
    det_error = ORIENTATION_ERROR * det_permanent
    if det > 2 * det_error and not accurate:
        _store_sphere(spheres, t, det, det_error, uu * vw0 + vv * wu0 + ww * uv0, uu * vw1 + vv * wu1 + ww * uv1,
                      uu * vw2 + vv * wu2 + ww * uv2, SPHERE_NUMERATOR_ERROR * numerator_permanent)
        return True

    # Double-double: the coordinate differences exactly, then the same formulas.
    u = (_two_sum(points[b, 0], -points[a, 0]), _two_sum(points[b, 1], -points[a, 1]),
         _two_sum(points[b, 2], -points[a, 2]))
    v = (_two_sum(points[c, 0], -points[a, 0]), _two_sum(points[c, 1], -points[a, 1]),
         _two_sum(points[c, 2], -points[a, 2]))
    w = (_two_sum(points[d, 0], -points[a, 0]), _two_sum(points[d, 1], -points[a, 1]),
         _two_sum(points[d, 2], -points[a, 2]))
    vw = (_dd_cross(v[0], v[1], v[2], w[0], w[1], w[2], 0), _dd_cross(v[0], v[1], v[2], w[0], w[1], w[2], 1),
          _dd_cross(v[0], v[1], v[2], w[0], w[1], w[2], 2))
    wu = (_dd_cross(w[0], w[1], w[2], u[0], u[1], u[2], 0), _dd_cross(w[0], w[1], w[2], u[0], u[1], u[2], 1),
          _dd_cross(w[0], w[1], w[2], u[0], u[1], u[2], 2))
    uv = (_dd_cross(u[0], u[1], u[2], v[0], v[1], v[2], 0), _dd_cross(u[0], u[1], u[2], v[0], v[1], v[2], 1),
          _dd_cross(u[0], u[1], u[2], v[0], v[1], v[2], 2))
    det_dd = (0.0, 0.0)
    squares = [(0.0, 0.0), (0.0, 0.0), (0.0, 0.0)]
    for i in range(3):
        x = _dd_mul(u[i][0], u[i][1], vw[i][0], vw[i][1])
        det_dd = _dd_add(det_dd[0], det_dd[1], x[0], x[1])
    for k, vector in enumerate((u, v, w)):
        total = (0.0, 0.0)
        for i in range(3):
            x = _dd_mul(vector[i][0], vector[i][1], vector[i][0], vector[i][1])
            total = _dd_add(total[0], total[1], x[0], x[1])
        squares[k] = total
    numerator = [(0.0, 0.0), (0.0, 0.0), (0.0, 0.0)]
    for i in range(3):
        x = _dd_mul(squares[0][0], squares[0][1], vw[i][0], vw[i][1])
        y = _dd_mul(squares[1][0], squares[1][1], wu[i][0], wu[i][1])
        z = _dd_mul(squares[2][0], squares[2][1], uv[i][0], uv[i][1])
        x = _dd_add(x[0], x[1], y[0], y[1])
        numerator[i] = _dd_add(x[0], x[1], z[0], z[1])
    # Rounding each to its high part adds its low part to the error.
    det_error = 1.01 * DOUBLE_DOUBLE_ERROR * det_permanent + abs(det_dd[1])
    if not det_dd[0] > 2 * det_error:
        return False
    numerator_error = 1.01 * DOUBLE_DOUBLE_ERROR * numerator_permanent + np.sqrt(
        numerator[0][1] ** 2 + numerator[1][1] ** 2 + numerator[2][1] ** 2)
    _store_sphere(spheres, t, det_dd[0], det_error, numerator[0][0], numerator[1][0], numerator[2][0],
                  numerator_error)
    return True


@nb.njit(cache=True)
def _sphere_side(points, vertices, spheres, t, p) -> int:
    """Point p against the circumsphere of finite tetrahedron t: 1 outside, -1 inside, 0 where rounding decides."""
    a = vertices[t, 0]
    margin, bound = _sphere_margin(points[p, 0] - points[a, 0], points[p, 1] - points[a, 1],
                                   points[p, 2] - points[a, 2], spheres[t, 0], spheres[t, 1], spheres[t, 2],
                                   spheres[t, 6], spheres[t, 3], spheres[t, 4], spheres[t, 5])
    return 1 if margin > bound else (-1 if margin < -bound else 0)


@nb.njit(cache=True)
def _in_conflict(points, vertices, neighbors, spheres, t, p, infinite) -> bool:
    """Whether point p destroys tetrahedron t: strictly inside its circumsphere, or, for a tetrahedron with the
    vertex at infinity, strictly beyond its hull face (seen from the finite tetrahedron on the other side).
    Where rounding could decide, not: the finished triangulation is certified afterwards anyway."""
    for k in range(4):
        if vertices[t, k] == infinite:
            inside = neighbors[t, k]
            for m in range(4):
                if neighbors[inside, m] == t:
                    # p against the hull face, in the finite tetrahedron's own orientation: beyond it if negative
                    a, b, c, d = vertices[inside, 0], vertices[inside, 1], vertices[inside, 2], vertices[inside, 3]
                    if m == 0:
                        a = p
                    elif m == 1:
                        b = p
                    elif m == 2:
                        c = p
                    else:
                        d = p
                    return _orientation(points, a, b, c, d) < 0
    side = _sphere_side(points, vertices, spheres, t, p)
    # Too close to call in double precision (a sliver's sphere): again in double-double, or a wrong cavity would
    # leave p inside a neighbour's sphere, and the certification would hand the cloud to GUDHI.
    if side == 0 and _set_sphere(points, vertices, spheres, t, True):
        side = _sphere_side(points, vertices, spheres, t, p)
    return side < 0


@nb.njit(cache=True)
def _locate(points, vertices, neighbors, spheres, t, p, infinite, steps) -> int:
    """A tetrahedron in conflict with p, found by walking from t towards it; -1 if the walk gets lost."""
    for _ in range(steps):
        if infinite in (vertices[t, 0], vertices[t, 1], vertices[t, 2], vertices[t, 3]):
            return t if _in_conflict(points, vertices, neighbors, spheres, t, p, infinite) else -1
        a, b, c, d = vertices[t, 0], vertices[t, 1], vertices[t, 2], vertices[t, 3]
        if _orientation(points, p, b, c, d) < 0:
            t = neighbors[t, 0]
        elif _orientation(points, a, p, c, d) < 0:
            t = neighbors[t, 1]
        elif _orientation(points, a, b, p, d) < 0:
            t = neighbors[t, 2]
        elif _orientation(points, a, b, c, p) < 0:
            t = neighbors[t, 3]
        else:
            return t if _in_conflict(points, vertices, neighbors, spheres, t, p, infinite) else -1
    return -1


@nb.njit(cache=True)
def delaunay_tetrahedra(points):
    """Delaunay tetrahedralisation (Bowyer-Watson, with a symbolic vertex at infinity) of a small point cloud.

    Returns (tetrahedra [T, 4], neighbors [T, 4] with -1 across the hull, squared circumradii [T], bounds on
    their errors [T], True), the neighbour opposite each vertex as scipy's `Delaunay` lists them; or empty
    arrays and False when the result cannot be certified: a flat cloud, a tetrahedron whose orientation rounding
    could decide, a broken cavity, a point neither a vertex nor an exact duplicate, a face whose opposite vertex
    is not certainly outside the other side's circumsphere (five points cospherical: not unique), a hull edge
    not certainly convex. The caller then asks GUDHI, whose predicates are exact.
    """
    n = points.shape[0]
    infinite = n
    failed = (np.empty((0, 4), np.int64), np.empty((0, 4), np.int64), np.empty(0), np.empty(0), False)
    # A first tetrahedron: point 0, then the first points off it, off their line, and off their plane.
    first = np.full(4, -1)
    first[0] = 0
    for q in range(1, n):
        d0, d1, d2 = points[q, 0] - points[0, 0], points[q, 1] - points[0, 1], points[q, 2] - points[0, 2]
        if first[1] < 0:
            if d0 * d0 + d1 * d1 + d2 * d2 > 0:
                first[1] = q
        elif first[2] < 0:
            u0, u1, u2 = (points[first[1], 0] - points[0, 0], points[first[1], 1] - points[0, 1],
                          points[first[1], 2] - points[0, 2])
            c0, c1, c2 = u1 * d2 - u2 * d1, u2 * d0 - u0 * d2, u0 * d1 - u1 * d0
            if c0 * c0 + c1 * c1 + c2 * c2 > (COLLINEAR_TOLERANCE * (u0 * u0 + u1 * u1 + u2 * u2)) ** 2:
                first[2] = q
        elif _certified_orientation(points, 0, first[1], first[2], q) != 0:
            first[3] = q
            break
    if first[3] < 0:
        return failed
    if _orientation(points, first[0], first[1], first[2], first[3]) < 0:
        first[2], first[3] = first[3], first[2]

    capacity = 16 * n + 64
    vertices = np.empty((capacity, 4), np.int64)
    neighbors = np.empty((capacity, 4), np.int64)
    spheres = np.empty((capacity, 7))
    alive = np.zeros(capacity, np.bool_)
    conflict_stamp = np.full(capacity, -1)  # the point whose cavity a tetrahedron was tested for
    in_cavity = np.zeros(capacity, np.bool_)
    edge_stamp = np.full((n + 1) * (n + 1), -1)
    edge_tet = np.empty((n + 1) * (n + 1), np.int64)
    edge_slot = np.empty((n + 1) * (n + 1), np.int64)
    free = np.empty(capacity, np.int64)
    free_count = 0
    used = 5
    vertices[0] = first
    for k in range(4):
        # The vertex at infinity lies beyond face k, on the other side from first[k]: two other vertices swap
        # places to keep the orientation positive, as every later tetrahedron's is.
        i, j = (1, 2) if k == 0 else ((0, 2) if k == 1 else (0, 1))
        swapped = np.arange(4)
        swapped[i], swapped[j] = j, i
        for m in range(4):
            vertices[k + 1, m] = infinite if m == k else first[swapped[m]]
            neighbors[k + 1, m] = 0 if m == k else swapped[m] + 1
        neighbors[0, k] = k + 1
    alive[:5] = True
    if not _set_sphere(points, vertices, spheres, 0, False):
        return failed

    inserted = np.zeros(n, np.bool_)
    duplicate = np.zeros(n, np.bool_)
    inserted[first] = True
    last = 0
    cavity = np.empty(capacity, np.int64)
    boundary_tet = np.empty(capacity, np.int64)
    boundary_slot = np.empty(capacity, np.int64)
    for p in range(n):
        if inserted[p]:
            continue
        start = _locate(points, vertices, neighbors, spheres, last, p, infinite, 4 * used)
        if start < 0:
            for t in range(used):  # the walk got lost (a duplicate point, or rounding): look everywhere
                if alive[t] and _in_conflict(points, vertices, neighbors, spheres, t, p, infinite):
                    start = t
                    break
        for k in range(4):
            # A copy of a vertex lies on the spheres around it, where rounding may find it inside.
            q = vertices[start, k] if start >= 0 else infinite
            if q != infinite and points[q, 0] == points[p, 0] and points[q, 1] == points[p, 1] \
                    and points[q, 2] == points[p, 2]:
                start = -1
        if start < 0:
            for q in range(n):  # only an exact duplicate of an inserted point may be left out
                if inserted[q] and points[q, 0] == points[p, 0] and points[q, 1] == points[p, 1] \
                        and points[q, 2] == points[p, 2]:
                    break
            else:
                return failed
            duplicate[p] = True
            continue
        # The cavity: every tetrahedron in conflict with p, grown from `start` across faces.
        size, faces = 1, 0
        cavity[0] = start
        in_cavity[start] = True
        conflict_stamp[start] = p
        head = 0
        while head < size:
            t = cavity[head]
            head += 1
            for k in range(4):
                other = neighbors[t, k]
                if in_cavity[other]:
                    continue
                if conflict_stamp[other] != p:
                    conflict_stamp[other] = p
                    if _in_conflict(points, vertices, neighbors, spheres, other, p, infinite):
                        in_cavity[other] = True
                        cavity[size] = other
                        size += 1
                        continue
                if faces == capacity:
                    return failed  # only a cavity broken by rounding has this many faces (numba checks no bounds)
                boundary_tet[faces], boundary_slot[faces] = t, k
                faces += 1
        # Each boundary face and p make a new tetrahedron (p takes the place of the cavity side's vertex).
        for f in range(faces):
            t, k = boundary_tet[f], boundary_slot[f]
            if free_count > 0:
                free_count -= 1
                new = free[free_count]
            elif used < capacity:
                new = used
                used += 1
            else:
                return failed
            outside = neighbors[t, k]
            vertices[new] = vertices[t]
            vertices[new, k] = p
            neighbors[new, k] = outside
            for m in range(4):
                if neighbors[outside, m] == t:
                    neighbors[outside, m] = new
            alive[new] = True
            conflict_stamp[new] = p
            if vertices[new, 0] != infinite and vertices[new, 1] != infinite and vertices[new, 2] != infinite \
                    and vertices[new, 3] != infinite:
                if not _set_sphere(points, vertices, spheres, new, False):
                    return failed
                last = new
            for m in range(4):
                if m == k:
                    continue
                u, v = -1, -1
                for j in range(4):
                    if j != k and j != m:
                        if u < 0:
                            u = vertices[new, j]
                        else:
                            v = vertices[new, j]
                key = min(u, v) * (n + 1) + max(u, v)
                if edge_stamp[key] != p:
                    edge_stamp[key], edge_tet[key], edge_slot[key] = p, new, m
                else:
                    neighbors[new, m] = edge_tet[key]
                    neighbors[edge_tet[key], edge_slot[key]] = new
        for c in range(size):
            t = cavity[c]
            alive[t] = in_cavity[t] = False
            free[free_count] = t
            free_count += 1
        inserted[p] = True

    # Certification, in place of exact predicates during the construction. A closed complex of tetrahedra
    # (faces shared in pairs) whose finite tetrahedra are all positively oriented, with every interior face
    # locally Delaunay and every hull edge locally convex, all decided beyond rounding, is the Delaunay
    # tetrahedralisation of its vertices (lifted to the paraboloid, a closed locally convex hypersurface
    # bounds a convex body); and every point must be one of them, or an exact duplicate of one.
    number = np.full(used, -1)
    is_vertex = np.zeros(n + 1, np.bool_)
    power_sum = np.zeros((used, 3), np.int64)
    count = 0
    for t in range(used):
        if not alive[t]:
            continue
        for k in range(4):
            is_vertex[vertices[t, k]] = True
            power_sum[t, 0] += vertices[t, k]
            power_sum[t, 1] += vertices[t, k] ** 2
            power_sum[t, 2] += vertices[t, k] ** 3
        if vertices[t, 0] != infinite and vertices[t, 1] != infinite \
                and vertices[t, 2] != infinite and vertices[t, 3] != infinite:
            number[t] = count
            count += 1
            if spheres[t, 5] > 0.5 * VALUE_TOLERANCE * spheres[t, 3] \
                    and not _set_sphere(points, vertices, spheres, t, True):
                return failed
    for p in range(n):
        if not is_vertex[p] and not duplicate[p]:
            return failed
    tetrahedra = np.empty((count, 4), np.int64)
    adjacent = np.empty((count, 4), np.int64)
    squared_radii = np.empty(count)
    radius_errors = np.empty(count)
    hull = np.empty(4, np.int64)
    for t in range(used):
        if not alive[t]:
            continue
        for k in range(4):
            other = neighbors[t, k]
            across = -1
            for m in range(4):
                if neighbors[other, m] == t:
                    across = m
            if not alive[other] or across < 0:
                return failed
            # The same face on both sides: the same three power sums of its vertex numbers (Newton's identities).
            for power in range(1, 4):
                if power_sum[t, power - 1] - vertices[t, k] ** power \
                        != power_sum[other, power - 1] - vertices[other, across] ** power:
                    return failed
            q = vertices[other, across]
            if number[t] >= 0:
                adjacent[number[t], k] = number[other]
                # Inside: not Delaunay. On the sphere, to rounding: five points cospherical, the
                # tetrahedralisation not unique; GUDHI's symbolic perturbation picks one. Once per face.
                if number[other] > number[t]:
                    side = _sphere_side(points, vertices, spheres, t, q)
                    if side == 0 and _set_sphere(points, vertices, spheres, t, True):  # again, more precisely
                        side = _sphere_side(points, vertices, spheres, t, q)
                    if side <= 0:
                        return failed
            elif vertices[t, k] != infinite and vertices[other, across] != infinite:
                # Two hull faces around a hull edge: q must lie strictly inside the plane of t's hull face, on
                # the side of the finite tetrahedron behind it (q taking the place of that one's far vertex).
                inside = t
                for m in range(4):
                    if vertices[t, m] == infinite:
                        inside = neighbors[t, m]
                for m in range(4):
                    hull[m] = vertices[inside, m]
                    if neighbors[inside, m] == t:
                        hull[m] = q
                if _certified_orientation(points, hull[0], hull[1], hull[2], hull[3]) <= 0:
                    return failed
        if number[t] >= 0:
            tetrahedra[number[t]] = vertices[t]
            squared_radii[number[t]] = spheres[t, 3]
            radius_errors[number[t]] = spheres[t, 5]
    return tetrahedra, adjacent, squared_radii, radius_errors, True


ONE_TRIANGLE = np.array([[0, 1, 2]], dtype=np.int64)
NO_NEIGHBORS = np.empty((1, 0), dtype=np.int64)
NO_VALUES = np.empty(0, dtype=np.float64)


def alpha_h1_bars_compiled(points: np.ndarray) -> np.ndarray | None:
    """[bars, 2] dimension-1 (birth, death) of the alpha complex of 3 or more points, within a relative 1e-10 of
    GUDHI 'exact''s; or None where the error bounds cannot certify that (degenerate clouds): ask GUDHI."""
    points = np.ascontiguousarray(points, dtype=np.float64)
    if len(points) == 3:
        bars, ok = h1_bars_of_triangulation(points, ONE_TRIANGLE, NO_NEIGHBORS, NO_VALUES, NO_VALUES)
    else:
        tetrahedra, neighbors, squared_radii, radius_errors, ok = delaunay_tetrahedra(points)
        if ok:
            bars, ok = h1_bars_of_triangulation(points, tetrahedra, neighbors, squared_radii, radius_errors)
    return bars if ok else None


def compile_ahead() -> None:
    """Compile (or load from numba's cache) every kernel, on a cloud that goes through all of them."""
    corners = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1], [0.9, 0.8, 0.7]], dtype=np.float64)
    alpha_h1_bars_compiled(corners)
    alpha_h1_bars_compiled(corners[:3])
