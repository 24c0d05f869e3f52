"""Dimension-1 persistence of the alpha complex of a small 3D point cloud, compiled with numba.

The same bars as GUDHI's `AlphaComplex` (squared radii), without its simplex tree: most of GUDHI's time goes
into inserting ~1,000 simplices per cloud into that tree, not into the geometry.

- Delaunay tetrahedralisation: Bowyer-Watson with a symbolic vertex at infinity, in double precision. Anything
  rounding could decide (a flat tetrahedron, five points cospherical within a relative 1e-9, a broken cavity)
  returns "not computed", and the caller asks GUDHI, whose predicates are exact.
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
"""

from __future__ import annotations

import numba as nb
import numpy as np

# A tetrahedron or triangle flatter than this (volume or area against its longest edge) makes the circumradius
# ill-conditioned: the caller computes such a cloud with GUDHI's exact predicates instead.
DEGENERACY_TOLERANCE = 1e-9
# GUDHI's default coefficient field, which the reference used. It matters: a loop that a later complex wraps
# twice (a solid torus around it) dies over Z/2 but lives on over Z/11 (seen on a real interface, 1BD2).
FIELD = 11
INVERSE = np.array([0, 1, 6, 4, 3, 9, 2, 8, 7, 5, 10], dtype=np.int64)  # k * INVERSE[k] = 1 mod 11


@nb.njit(cache=True)
def _triangle_value(points, a, b, c, opposite, coface_value) -> float:
    """Alpha value of triangle abc from its (up to two) cofaces: -1 opposite vertex for none; -1 if too flat."""
    u0, u1, u2 = points[b, 0] - points[a, 0], points[b, 1] - points[a, 1], points[b, 2] - points[a, 2]
    v0, v1, v2 = points[c, 0] - points[a, 0], points[c, 1] - points[a, 1], points[c, 2] - points[a, 2]
    w0, w1, w2 = u1 * v2 - u2 * v1, u2 * v0 - u0 * v2, u0 * v1 - u1 * v0
    area2 = w0 * w0 + w1 * w1 + w2 * w2
    uu, vv = u0 * u0 + u1 * u1 + u2 * u2, v0 * v0 + v1 * v1 + v2 * v2
    if area2 <= (DEGENERACY_TOLERANCE * max(uu, vv)) ** 2:
        return -1.0
    vw0, vw1, vw2 = v1 * w2 - v2 * w1, v2 * w0 - v0 * w2, v0 * w1 - v1 * w0
    wu0, wu1, wu2 = w1 * u2 - w2 * u1, w2 * u0 - w0 * u2, w0 * u1 - w1 * u0
    scale = 0.5 / area2
    c0, c1, c2 = (uu * vw0 + vv * wu0) * scale, (uu * vw1 + vv * wu1) * scale, (uu * vw2 + vv * wu2) * scale
    radius2 = c0 * c0 + c1 * c1 + c2 * c2
    attached = False
    smallest = np.inf
    for k in range(2):
        p = opposite[k]
        if p < 0:
            continue
        d0 = points[p, 0] - points[a, 0] - c0
        d1 = points[p, 1] - points[a, 1] - c1
        d2 = points[p, 2] - points[a, 2] - c2
        attached |= d0 * d0 + d1 * d1 + d2 * d2 < radius2
        smallest = min(smallest, coface_value[k])
    return smallest if attached else radius2


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
def h1_bars_of_triangulation(points, tetrahedra, neighbors, tet_values):
    """Dimension-1 bars (birth, death) of the alpha filtration of a Delaunay triangulation of `points` in R^3.

    `tetrahedra` [T, 4] vertex indices, `neighbors` [T, 4] the tetrahedron across the face opposite each vertex
    (-1 on the hull) and `tet_values` [T] their squared circumradii, as `delaunay_tetrahedra` gives them. For
    three points, one triangle [[0, 1, 2]] and no neighbours or values. Returns the bars and True, or an empty
    array and False where a triangle is too flat to compute reliably (the caller then asks GUDHI).
    """
    n = points.shape[0]
    count, size = tetrahedra.shape
    if size == 4:
        triangles = np.empty((4 * count, 3), np.int64)
    else:
        triangles = tetrahedra
    triangle_values = np.empty(triangles.shape[0])
    triangle_sides = np.full((triangles.shape[0], 2), count if size == 4 else 0)
    opposite = np.full(2, -1)
    coface_value = np.full(2, np.inf)
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
                opposite[1], coface_value[1] = -1, np.inf
                triangle_sides[f, 0] = t
                if other >= 0:
                    triangle_sides[f, 1] = other
                    for m in range(4):
                        if neighbors[other, m] == t:
                            opposite[1], coface_value[1] = tetrahedra[other, m], tet_values[other]
                triangle_values[f] = _triangle_value(
                    points, triangles[f, 0], triangles[f, 1], triangles[f, 2], opposite, coface_value
                )
                if triangle_values[f] < 0:
                    return np.empty((0, 2)), False
                f += 1
    else:
        for f in range(count):
            triangle_values[f] = _triangle_value(points, triangles[f, 0], triangles[f, 1], triangles[f, 2],
                                                 opposite, coface_value)
            if triangle_values[f] < 0:
                return np.empty((0, 2)), False
        f = count
    triangles, triangle_values, triangle_sides = triangles[:f], triangle_values[:f], triangle_sides[:f]

    # Edges: numbered on first sight through an n x n table; their alpha value from the triangles around them.
    edge_id = np.full(n * n, -1)
    edges = np.empty((3 * f, 2), np.int64)
    triangle_edges = np.empty((f, 3), np.int64)
    smallest = np.empty(3 * f)
    attached = np.zeros(3 * f, np.bool_)
    edge_count = 0
    for t in range(f):
        for k in range(3):
            a, b = triangles[t, (k + 1) % 3], triangles[t, (k + 2) % 3]
            a, b = min(a, b), max(a, b)
            e = edge_id[a * n + b]
            if e < 0:
                e = edge_id[a * n + b] = edge_count
                edges[e, 0], edges[e, 1] = a, b
                smallest[e] = np.inf
                edge_count += 1
            triangle_edges[t, k] = e
            smallest[e] = min(smallest[e], triangle_values[t])
            p = triangles[t, k]
            d0 = points[p, 0] - 0.5 * (points[a, 0] + points[b, 0])
            d1 = points[p, 1] - 0.5 * (points[a, 1] + points[b, 1])
            d2 = points[p, 2] - 0.5 * (points[a, 2] + points[b, 2])
            h0, h1, h2 = points[b, 0] - points[a, 0], points[b, 1] - points[a, 1], points[b, 2] - points[a, 2]
            attached[e] |= d0 * d0 + d1 * d1 + d2 * d2 < 0.25 * (h0 * h0 + h1 * h1 + h2 * h2)
    edges = edges[:edge_count]
    edge_values = np.empty(edge_count)
    for e in range(edge_count):
        a, b = edges[e, 0], edges[e, 1]
        h0, h1, h2 = points[b, 0] - points[a, 0], points[b, 1] - points[a, 1], points[b, 2] - points[a, 2]
        edge_values[e] = smallest[e] if attached[e] else 0.25 * (h0 * h0 + h1 * h1 + h2 * h2)
    bars = _h1_pairs(
        n, edges, edge_values, triangles, triangle_edges, triangle_values, triangle_sides, count if size == 4 else 0
    )
    return bars, True


@nb.njit(cache=True)
def _orientation(points, a, b, c, d) -> float:
    """det[b - a, c - a, d - a]: positive when d lies on the side of plane abc that abc's normal points to."""
    u0, u1, u2 = points[b, 0] - points[a, 0], points[b, 1] - points[a, 1], points[b, 2] - points[a, 2]
    v0, v1, v2 = points[c, 0] - points[a, 0], points[c, 1] - points[a, 1], points[c, 2] - points[a, 2]
    w0, w1, w2 = points[d, 0] - points[a, 0], points[d, 1] - points[a, 1], points[d, 2] - points[a, 2]
    return u0 * (v1 * w2 - v2 * w1) + u1 * (v2 * w0 - v0 * w2) + u2 * (v0 * w1 - v1 * w0)


@nb.njit(cache=True)
def _set_sphere(points, vertices, spheres, t) -> bool:
    """Circumsphere (centre, squared radius) of finite tetrahedron t; False if it is flat or inverted."""
    a, b, c, d = vertices[t, 0], vertices[t, 1], vertices[t, 2], vertices[t, 3]
    u0, u1, u2 = points[b, 0] - points[a, 0], points[b, 1] - points[a, 1], points[b, 2] - points[a, 2]
    v0, v1, v2 = points[c, 0] - points[a, 0], points[c, 1] - points[a, 1], points[c, 2] - points[a, 2]
    w0, w1, w2 = points[d, 0] - points[a, 0], points[d, 1] - points[a, 1], points[d, 2] - points[a, 2]
    vw0, vw1, vw2 = v1 * w2 - v2 * w1, v2 * w0 - v0 * w2, v0 * w1 - v1 * w0
    wu0, wu1, wu2 = w1 * u2 - w2 * u1, w2 * u0 - w0 * u2, w0 * u1 - w1 * u0
    uv0, uv1, uv2 = u1 * v2 - u2 * v1, u2 * v0 - u0 * v2, u0 * v1 - u1 * v0
    det = u0 * vw0 + u1 * vw1 + u2 * vw2
    uu, vv, ww = u0 * u0 + u1 * u1 + u2 * u2, v0 * v0 + v1 * v1 + v2 * v2, w0 * w0 + w1 * w1 + w2 * w2
    longest = max(uu, vv, ww)
    if det <= DEGENERACY_TOLERANCE * longest * np.sqrt(longest):
        return False
    scale = 0.5 / det
    o0 = (uu * vw0 + vv * wu0 + ww * uv0) * scale
    o1 = (uu * vw1 + vv * wu1 + ww * uv1) * scale
    o2 = (uu * vw2 + vv * wu2 + ww * uv2) * scale
    spheres[t, 0], spheres[t, 1], spheres[t, 2] = points[a, 0] + o0, points[a, 1] + o1, points[a, 2] + o2
    spheres[t, 3] = o0 * o0 + o1 * o1 + o2 * o2
    return True


@nb.njit(cache=True)
def _in_conflict(points, vertices, neighbors, spheres, t, p, infinite) -> bool:
    """Whether point p destroys tetrahedron t: strictly inside its circumsphere, or, for a tetrahedron with the
    vertex at infinity, strictly beyond its hull face (seen from the finite tetrahedron on the other side)."""
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
    d0, d1, d2 = points[p, 0] - spheres[t, 0], points[p, 1] - spheres[t, 1], points[p, 2] - spheres[t, 2]
    return d0 * d0 + d1 * d1 + d2 * d2 < spheres[t, 3]


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

    Returns (tetrahedra [T, 4], neighbors [T, 4] with -1 across the hull, squared circumradii [T], True), the
    neighbour opposite each vertex as scipy's `Delaunay` lists them; or empty arrays and False when the cloud
    is flat or degenerate, or when floating point could not be trusted: an inverted or flat tetrahedron, a
    point neither inserted nor a duplicate, a face whose opposite vertex is not clearly outside the other
    side's circumsphere (within a relative 1e-9: five points cospherical, the tetrahedralisation is not
    unique). The caller then asks GUDHI, whose predicates are exact.
    """
    n = points.shape[0]
    infinite = n
    failed = (np.empty((0, 4), np.int64), np.empty((0, 4), np.int64), np.empty(0), False)
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
            if c0 * c0 + c1 * c1 + c2 * c2 > (DEGENERACY_TOLERANCE * (u0 * u0 + u1 * u1 + u2 * u2)) ** 2:
                first[2] = q
        elif abs(_orientation(points, 0, first[1], first[2], q)) > 0:
            first[3] = q
            break
    if first[3] < 0:
        return failed
    if _orientation(points, first[0], first[1], first[2], first[3]) < 0:
        first[2], first[3] = first[3], first[2]

    capacity = 16 * n + 64
    vertices = np.empty((capacity, 4), np.int64)
    neighbors = np.empty((capacity, 4), np.int64)
    spheres = np.empty((capacity, 4))
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
    if not _set_sphere(points, vertices, spheres, 0):
        return failed

    inserted = np.zeros(n, np.bool_)
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
        if start < 0:
            for q in range(n):  # only an exact duplicate of an inserted point may be left out
                if inserted[q] and points[q, 0] == points[p, 0] and points[q, 1] == points[p, 1] \
                        and points[q, 2] == points[p, 2]:
                    break
            else:
                return failed
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
                if not _set_sphere(points, vertices, spheres, new):
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

    # The finite tetrahedra, renumbered; their local empty-sphere property checked face by face.
    number = np.full(used, -1)
    count = 0
    for t in range(used):
        if alive[t] and vertices[t, 0] != infinite and vertices[t, 1] != infinite \
                and vertices[t, 2] != infinite and vertices[t, 3] != infinite:
            number[t] = count
            count += 1
    tetrahedra = np.empty((count, 4), np.int64)
    adjacent = np.empty((count, 4), np.int64)
    squared_radii = np.empty(count)
    for t in range(used):
        if number[t] < 0:
            continue
        tetrahedra[number[t]] = vertices[t]
        squared_radii[number[t]] = spheres[t, 3]
        for k in range(4):
            other = neighbors[t, k]
            adjacent[number[t], k] = number[other]
            if number[other] >= 0:
                for m in range(4):
                    if neighbors[other, m] == t:
                        q = vertices[other, m]
                d0, d1, d2 = points[q, 0] - spheres[t, 0], points[q, 1] - spheres[t, 1], points[q, 2] - spheres[t, 2]
                # Inside: not Delaunay. On the sphere (five points cospherical, to rounding): the tetrahedralisation
                # is not unique, nor, then, are the bars (GUDHI's own modes disagree on such clouds).
                if d0 * d0 + d1 * d1 + d2 * d2 <= spheres[t, 3] * (1 + DEGENERACY_TOLERANCE):
                    return failed
    return tetrahedra, adjacent, squared_radii, True


ONE_TRIANGLE = np.array([[0, 1, 2]], dtype=np.int64)
NO_NEIGHBORS = np.empty((1, 0), dtype=np.int64)
NO_VALUES = np.empty(0, dtype=np.float64)


def alpha_h1_bars_compiled(points: np.ndarray) -> np.ndarray | None:
    """[bars, 2] dimension-1 (birth, death) of the alpha complex of 3 or more points, or None where floating
    point cannot be trusted (flat clouds, near-degenerate simplices): those need GUDHI's exact predicates."""
    points = np.ascontiguousarray(points, dtype=np.float64)
    if len(points) == 3:
        bars, ok = h1_bars_of_triangulation(points, ONE_TRIANGLE, NO_NEIGHBORS, NO_VALUES)
    else:
        tetrahedra, neighbors, squared_radii, ok = delaunay_tetrahedra(points)
        if ok:
            bars, ok = h1_bars_of_triangulation(points, tetrahedra, neighbors, squared_radii)
    return bars if ok else None


def compile_ahead() -> None:
    """Compile (or load from numba's cache) every kernel, on a cloud that goes through all of them."""
    corners = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1], [0.9, 0.8, 0.7]], dtype=np.float64)
    alpha_h1_bars_compiled(corners)
    alpha_h1_bars_compiled(corners[:3])
