"""Graphs of density peaks (the paper's case study), from any map that answers density and gradient.

Seeds: the points of a 0.5 Å grid over the map's box (x, y, z, Å) whose density is at least the
threshold. Each seed climbs the density; endpoints closer than 0.2 Å are one cluster (DBSCAN with
min_samples = 1, i.e. single linkage); cluster centroids are the nodes, with their density; nodes
at most 2 × resolution apart are linked, the edge feature being the length (Å); isolated nodes are
removed.

Two ways to climb, same peaks:

* ``paper``: fixed 0.05 Å steps along the unit gradient while the density increases (the authors'
  walk), with a cap on the steps (theirs had none); every seed walks.
* ``seeded``: walkers start only at the roots of the seeds: the local maxima of the seed grid (ascent
  over face neighbours) and the ends of a gradient-steered ascent over the grid (each seed steps to the
  neighbour its gradient points at), which also finds weak peaks on a stronger one's flank; each climbs
  with Newton steps along the gradient (curvature from the slopes at both ends of the last step) to
  0.005 Å. A climb can end at a saddle point it approached along its stable direction (the paper walk
  too: 14 of its 168 nodes on EMD-21457); a node with a higher seed-grid point within 1 Å is tested by
  its Hessian, and from a saddle the seeded method climbs on both ways along the rising direction.

Positions in Å, (x, y, z); densities in the map's source units.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nemap.errors import NemapError, check_number, require, warn
from nemap.format.geometry import Geometry, grid_over_box, grid_points

log = logging.getLogger("nemap")

SEED_SPACING = 0.5  # Å
PAPER_STEP = 0.05  # Å
CLUSTER_EPS = 0.2  # Å
GRAPH_METHODS = {"paper": "dbscan", "seeded": "kdtree"}  # graph method → how its walkers' ends are clustered
HESSIAN_STEP = 0.01  # Å, central differences of the gradient at the nodes (seeded method)
SADDLE_PROBE = 1.0  # Å, seed-grid points this close to a node that are higher make it a saddle suspect
SADDLE_STEP = 0.1  # Å, how far a walker is put off a saddle point before it climbs on
EDGE_FACTOR = 2.0  # edges between nodes closer than EDGE_FACTOR × resolution
SCREEN_CHUNK = 1 << 19  # seed points per density evaluation while screening

Field = Callable[[np.ndarray, bool], tuple[np.ndarray, np.ndarray | None]]  # (xyz [N, 3], gradient?) → (ρ, ∇ρ)


@dataclass
class PeakGraph:
    """Nodes at density peaks and edges between close nodes.

    pos [N, 3] Å (x, y, z); density [N] (source units); edge_index [2, E] int64 with both
    directions of every edge (PyTorch Geometric's layout); edge_length [E] Å; box (lo, hi) Å of the
    map; stats: seeds, evaluations and timings."""

    pos: np.ndarray
    density: np.ndarray
    edge_index: np.ndarray
    edge_length: np.ndarray
    resolution: float
    threshold: float
    box: tuple[np.ndarray, np.ndarray]
    method: str
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def node_count(self) -> int:
        return int(self.pos.shape[0])

    @property
    def edge_count(self) -> int:
        """Undirected edges."""
        return int(self.edge_index.shape[1] // 2)

    def to_networkx(self):
        """A networkx Graph: node i with x, y, z (Å) and density; edges with length (Å)."""
        nx = require("networkx", "graph", "build networkx graphs")

        g = nx.Graph(resolution=self.resolution, threshold=self.threshold, method=self.method)
        for i, (p, d) in enumerate(zip(self.pos, self.density)):
            g.add_node(i, x=float(p[0]), y=float(p[1]), z=float(p[2]), density=float(d))
        half = self.edge_index[:, self.edge_index[0] < self.edge_index[1]]
        lengths = self.edge_length[self.edge_index[0] < self.edge_index[1]]
        for (a, b), length in zip(half.T, lengths):
            g.add_edge(int(a), int(b), length=float(length))
        return g


def seed_grid_shape(lo: np.ndarray, hi: np.ndarray, spacing: float = SEED_SPACING) -> tuple[int, int, int]:
    """Points of the seed grid per axis (x, y, z): lo + i·spacing ≤ hi."""
    return grid_over_box(lo, hi, spacing).grid_shape


def seed_positions(flat: np.ndarray, lo: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """Å positions [M, 3] of seed-grid points given by flat index."""
    return lo + np.stack(np.unravel_index(flat, shape), axis=1) * SEED_SPACING


def screen(field_fn: Field, lo: np.ndarray, shape: tuple[int, int, int], spacing: float = SEED_SPACING) -> np.ndarray:
    """Density on the whole seed grid from ``lo`` (Å): float32 [nx, ny, nz], x-major, NaN outside the map."""
    nx, ny, nz = shape
    grid = Geometry(shape, (spacing,) * 3, tuple(np.asarray(lo, dtype=np.float64)))
    values = np.empty(shape, dtype=np.float32)
    planes = max(1, SCREEN_CHUNK // (ny * nz))
    for i0 in range(0, nx, planes):
        x_planes = slice(i0, min(nx, i0 + planes))
        values[x_planes] = field_fn(grid_points(grid, x_planes), False)[0].reshape(-1, ny, nz)
    return values


def screen_box(field_fn: Field, box: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """``screen`` over the seed grid of ``box`` (lo, hi Å). Pass it to ``extract(screened=...)`` to build
    graphs at several thresholds from one screening."""
    lo = np.asarray(box[0], dtype=np.float64)
    return screen(field_fn, lo, seed_grid_shape(lo, box[1]))


def seeds_above(values: np.ndarray, threshold: float) -> np.ndarray:
    """Flat indices of the seed-grid points with density ≥ threshold (NaN, outside the map, never)."""
    with np.errstate(invalid="ignore"):
        return np.flatnonzero(values >= threshold)


def _unit(g: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(g, axis=1, keepdims=True)
    return np.divide(g, n, out=np.zeros_like(g), where=n > 0)


def climb_paper(field_fn: Field, start: np.ndarray, step: float = PAPER_STEP, max_steps: int = 2000
                ) -> tuple[np.ndarray, np.ndarray, int]:
    """Fixed steps along the unit gradient while the density increases. Returns (endpoints [M, 3],
    kept [M] bool: False for walkers that left the map, evaluations)."""
    x = start.copy()
    d, g = field_fn(x, True)
    evaluations = len(x)
    kept = np.isfinite(d)
    active = np.flatnonzero(kept & (np.linalg.norm(np.nan_to_num(g), axis=1) > 0))
    for _ in range(max_steps):
        if not active.size:
            break
        trial = x[active] + step * _unit(g[active])
        dt, gt = field_fn(trial, True)
        evaluations += len(active)
        left = ~np.isfinite(dt)
        kept[active[left]] = False
        up = np.isfinite(dt) & (dt > d[active])
        moved = active[up]
        x[moved], d[moved], g[moved] = trial[up], dt[up], gt[up]
        active = moved
    return x, kept, evaluations


def climb_steps(field_fn: Field, start: np.ndarray, first_step: float = 0.25, max_step: float = 0.5,
               tolerance: float = 0.005, max_iterations: int = 100,
               at_start: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray, int]:
    """Newton steps along the gradient: the curvature along the climbing direction is estimated
    from the slopes at the two ends of the last step (a secant), and the next step is the one that
    zeroes the slope (at most ``max_step`` Å); a step that does not go uphill is shortened to the
    secant's root (or halved). Stops when the next step would be below ``tolerance`` Å.
    ``at_start``: density and gradient at ``start`` when already known (not evaluated again).
    Same returns as climb_paper."""
    x = start.copy()
    if at_start is None:
        d, g = field_fn(x, True)
        evaluations = len(x)
    else:
        d, g = (np.array(a, dtype=np.float64) for a in at_start)
        evaluations = 0
    kept = np.isfinite(d)
    h = np.full(len(x), first_step)
    slope = np.linalg.norm(np.nan_to_num(g), axis=1)
    active = np.flatnonzero(kept & (slope > 0))
    for _ in range(max_iterations):
        if not active.size:
            break
        u = g[active] / slope[active, None]
        trial = x[active] + h[active, None] * u
        dt, gt = field_fn(trial, True)
        evaluations += len(active)
        # a walker that would leave the map even with a paper-sized step has its peak outside: dropped
        left = ~np.isfinite(dt) & (h[active] <= PAPER_STEP + 1e-12)
        kept[active[left]] = False
        ok = np.isfinite(dt)
        s0 = slope[active]
        s1 = np.where(ok, np.sum(np.nan_to_num(gt) * u, axis=1), 0.0)  # slope at the far end, along u
        curvature = (s1 - s0) / h[active]
        # a step is taken when it rises and does not pass the maximum along its line (the slope at
        # its far end still points forward): a long step could otherwise jump over a small peak
        # onto the flank of a higher one. Steps no longer than the paper's are taken whenever they rise.
        up = ok & (dt > d[active]) & ((s1 >= 0) | (h[active] <= PAPER_STEP + 1e-12))
        moved = active[up]
        x[moved], d[moved], g[moved] = trial[up], dt[up], gt[up]
        slope[moved] = np.linalg.norm(gt[up], axis=1)
        newton = np.where(curvature[up] < 0, slope[moved] / np.maximum(-curvature[up], 1e-12), np.inf)
        h[moved] = np.minimum(np.where(np.isfinite(newton), newton, 1.5 * h[moved]), max_step)
        failed = active[~up]
        root = np.where(ok[~up] & (s1[~up] < 0), s0[~up] / np.maximum(s0[~up] - s1[~up], 1e-12), 0.5)
        h[failed] *= np.clip(root, 0.1, 0.9)
        active = active[(h[active] >= tolerance) & ~left & (slope[active] > 0)]
    return x, kept, evaluations


def discrete_roots(values: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    """For every seed (flat index), the seed-grid maximum that steepest ascent over face neighbours
    leads to (flat index)."""
    shape = values.shape
    v = np.where(np.isfinite(values), values, -np.inf).ravel()
    idx = np.stack(np.unravel_index(seeds, shape), axis=1)
    parent = seeds.copy()
    best = v[seeds].copy()
    for axis in range(3):
        for step in (-1, 1):
            nb = idx.copy()
            nb[:, axis] += step
            ok = (nb[:, axis] >= 0) & (nb[:, axis] < shape[axis])
            flat = np.ravel_multi_index(np.where(ok[:, None], nb, idx).T, shape)
            better = ok & (v[flat] > best)
            parent[better], best[better] = flat[better], v[flat][better]
    lookup = np.full(v.size, -1, dtype=np.int64)  # parents are seeds: higher than a seed is above threshold
    lookup[seeds] = np.arange(len(seeds))
    up = lookup[parent]
    while True:  # pointer jumping to the roots
        nxt = up[up]
        if np.array_equal(nxt, up):
            return seeds[up]
        up = nxt


def steered_roots(values: np.ndarray, seeds: np.ndarray, gradients: np.ndarray) -> np.ndarray:
    """For every seed (flat index), where ascent over the seed grid ends when each seed steps to the
    neighbour (of 26) that its continuous gradient points at — taken only if that neighbour is a seed
    of higher density. A weak peak on the flank of a stronger one has no grid maximum of its own, but
    the gradients around it point at it, so it gets a root here."""
    shape = values.shape
    v = np.where(np.isfinite(values), values, -np.inf).ravel()
    idx = np.stack(np.unravel_index(seeds, shape), axis=1)
    g = np.nan_to_num(gradients)
    big = np.maximum(np.max(np.abs(g), axis=1, keepdims=True), 1e-300)
    step = (np.sign(g) * (np.abs(g) >= np.tan(np.pi / 8) * big)).astype(np.int64)  # the 45°-wide cone of each neighbour
    nb = idx + step
    ok = np.all((nb >= 0) & (nb < np.asarray(shape)), axis=1) & np.any(step != 0, axis=1)
    flat = np.ravel_multi_index(np.where(ok[:, None], nb, idx).T, shape)
    lookup = np.full(v.size, -1, dtype=np.int64)
    lookup[seeds] = np.arange(len(seeds))
    parent = lookup[flat]
    up = np.where(ok & (parent >= 0) & (v[flat] > v[seeds]), parent, np.arange(len(seeds)))
    while True:  # pointer jumping (densities strictly rise along pointers: no cycles)
        nxt = up[up]
        if np.array_equal(nxt, up):
            return seeds[up]
        up = nxt


def _climb_culled(field_fn: Field, values: np.ndarray, seeds: np.ndarray, lo: np.ndarray,
                  shape: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray, int, int]:
    """The seeded method's climb: walkers start only at the roots of the seeds — the seed-grid maxima
    (face-neighbour ascent) and the roots of the gradient-steered ascent (one gradient per seed).
    Returns (endpoints, kept, evaluations, walkers)."""
    d, g = field_fn(seed_positions(seeds, lo, shape), True)
    roots = np.unique(np.concatenate([discrete_roots(values, seeds), steered_roots(values, seeds, g)]))
    at = np.searchsorted(seeds, roots)  # seeds are sorted flat indices; roots are seeds
    ends, kept, evaluations = climb_steps(field_fn, seed_positions(roots, lo, shape), at_start=(d[at], g[at]))
    return ends, kept, evaluations + len(seeds), len(roots)


def cluster(points: np.ndarray, eps: float = CLUSTER_EPS, method: str = "kdtree") -> np.ndarray:
    """Cluster labels [M]: points chained by distances ≤ eps share a label (DBSCAN, min_samples 1).
    ``dbscan`` uses scikit-learn's DBSCAN (the paper's); ``kdtree`` a KD-tree and connected components (the
    same partition)."""
    if len(points) == 0:
        return np.zeros(0, dtype=np.int64)
    if method == "dbscan":
        cluster_module = require("sklearn.cluster", "graph", "cluster peaks by the paper's DBSCAN")

        return cluster_module.DBSCAN(eps=eps, min_samples=1).fit(points).labels_.astype(np.int64)
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    from scipy.spatial import cKDTree

    pairs = cKDTree(points).query_pairs(eps, output_type="ndarray")
    adjacency = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(len(points),) * 2)
    return connected_components(adjacency, directed=False)[1].astype(np.int64)


def centroids(points: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Mean position [K, 3] of the points of each label 0 … K − 1."""
    count = int(labels.max()) + 1 if len(labels) else 0
    pos = np.zeros((count, 3))
    np.add.at(pos, labels, points)
    return pos / np.maximum(np.bincount(labels, minlength=count), 1)[:, None]


def higher_grid_point_near(values: np.ndarray, lo: np.ndarray, pos: np.ndarray, density: np.ndarray,
                           radius: float = SADDLE_PROBE) -> np.ndarray:
    """For nodes pos [N, 3] (Å) of the given densities: whether a seed-grid point within ``radius`` Å
    (values: the screened grid) is higher. A maximum has none unless a higher peak is that close; a
    saddle has some along its rising direction. Costs no evaluation."""
    shape = np.asarray(values.shape)
    span = int(np.ceil(radius / SEED_SPACING))
    offsets = np.stack(np.meshgrid(*[np.arange(-span, span + 1)] * 3, indexing="ij"), axis=-1).reshape(-1, 3)
    base = np.floor((pos - lo) / SEED_SPACING).astype(np.int64)
    idx = base[:, None, :] + offsets[None]  # [N, K, 3]
    inside = np.all((idx >= 0) & (idx < shape), axis=2)
    near = inside & (np.linalg.norm(lo + idx * SEED_SPACING - pos[:, None, :], axis=2) <= radius)
    v = values[tuple(np.clip(idx, 0, shape - 1).transpose(2, 0, 1))]
    with np.errstate(invalid="ignore"):
        return np.any(near & (v > density[:, None]), axis=1)


def saddle_points(field_fn: Field, pos: np.ndarray, step: float = HESSIAN_STEP
                  ) -> tuple[np.ndarray, np.ndarray, int]:
    """Which stationary points pos [N, 3] (Å) are not maxima: (saddle [N] bool — the Hessian, from
    central differences of the gradient over ``step`` Å, has an eigenvalue above 1e-3 of the largest
    magnitude; rising [N, 3] — its unit eigenvector of the largest eigenvalue; evaluations)."""
    hessian = np.zeros((len(pos), 3, 3))
    for axis in range(3):
        dx = np.zeros(3)
        dx[axis] = step
        hessian[:, axis] = (field_fn(pos + dx, True)[1] - field_fn(pos - dx, True)[1]) / (2 * step)
    hessian = np.nan_to_num(0.5 * (hessian + hessian.transpose(0, 2, 1)))
    w, v = np.linalg.eigh(hessian)
    saddle = w[:, -1] > 1e-3 * np.max(np.abs(w), axis=1)
    return saddle, v[:, :, -1], 6 * len(pos)


def link(pos: np.ndarray, max_length: float, limit: Callable[[np.ndarray], np.ndarray] | None = None
         ) -> tuple[np.ndarray, np.ndarray]:
    """Edges between nodes at most ``max_length`` Å apart: edge_index [2, E] (both directions), lengths.
    ``limit``: the largest length (Å) at each candidate pair's midpoint [M, 3] instead (none above max_length)."""
    from scipy.spatial import cKDTree

    if len(pos) < 2:
        return np.zeros((2, 0), dtype=np.int64), np.zeros(0)
    pairs = cKDTree(pos).query_pairs(max_length, output_type="ndarray").astype(np.int64)  # distances ≤ max_length
    lengths = np.linalg.norm(pos[pairs[:, 0]] - pos[pairs[:, 1]], axis=1)
    if limit is not None and len(pairs):
        keep = lengths <= limit(0.5 * (pos[pairs[:, 0]] + pos[pairs[:, 1]]))
        pairs, lengths = pairs[keep], lengths[keep]
    order = np.lexsort((pairs[:, 1], pairs[:, 0]))
    pairs, lengths = pairs[order], lengths[order]
    edge_index = np.concatenate([pairs.T, pairs.T[::-1]], axis=1)
    return edge_index, np.concatenate([lengths, lengths])


def extract(field_fn: Field, box: tuple[np.ndarray, np.ndarray], resolution: float, threshold: float,
            method: str = "seeded", progress: Callable[[str], None] | None = None,
            screened: np.ndarray | None = None,
            local_resolution: tuple[Callable[[np.ndarray], np.ndarray], float] | None = None) -> PeakGraph:
    """The peak graph of a density field over ``box`` (lo, hi Å). ``threshold`` in source units.
    ``screened``: the seed-grid densities of ``screen_box`` for this field and box, if already known.
    ``local_resolution``: (Å at positions [M, 3], NaN where unknown; the largest value it returns): nodes are
    then linked when closer than 2 × the local resolution at their midpoint (``resolution`` where unknown),
    else 2 × ``resolution``."""
    if method == "fast":
        warn("graph method 'fast' is now called 'seeded'; the old name goes in the next release")
        method = "seeded"
    if method not in GRAPH_METHODS:
        raise NemapError(f"unknown graph method {method!r}; choose paper or seeded", code="BAD_ARGUMENT")
    check_number("resolution", resolution, above=0, unit="Å")
    say = progress or (lambda text: log.info("%s", text))
    counts = {"method": method}
    t0 = time.perf_counter()
    lo = np.asarray(box[0], dtype=np.float64)
    shape = seed_grid_shape(lo, box[1])
    if screened is not None and tuple(screened.shape) != shape:
        raise NemapError(f"screened grid {screened.shape} is not this box's seed grid {shape}", code="BAD_ARGUMENT")
    values = screen(field_fn, lo, shape) if screened is None else screened
    seeds = seeds_above(values, threshold)
    counts.update(seed_grid=list(shape), screening_evaluations=0 if screened is not None else int(np.prod(shape)),
                  seeds=int(len(seeds)))
    say(f"{len(seeds)} seeds of {int(np.prod(shape))} grid points (0.5 Å) at density ≥ {threshold:.4g}")
    t1 = time.perf_counter()
    if method == "seeded":
        ends, kept, evaluations, walkers = _climb_culled(field_fn, values, seeds, lo, shape)
    else:
        walkers = len(seeds)
        ends, kept, evaluations = climb_paper(field_fn, seed_positions(seeds, lo, shape))
    ends = ends[kept]
    say(f"{walkers} walkers climbed with {evaluations} evaluations; {int((~kept).sum())} left the map")
    labels = cluster(ends, method=GRAPH_METHODS[method])
    pos = centroids(ends, labels)
    density = field_fn(pos, False)[0] if len(pos) else np.zeros(0)
    node_evaluations = len(pos)
    saddles_left = 0
    if method == "seeded" and len(pos):
        # a climb that reached a saddle point along its stable direction stops there (so does the paper
        # walk): step off it both ways along the direction in which the density rises, and climb on
        suspect = np.flatnonzero(higher_grid_point_near(values, lo, pos, density))
        saddle = np.zeros(len(pos), bool)
        rising = np.zeros((len(pos), 3))
        if suspect.size:
            saddle[suspect], rising[suspect], hessian_evaluations = saddle_points(field_fn, pos[suspect])
            evaluations += hessian_evaluations
        if saddle.any():
            off = SADDLE_STEP * rising[saddle]
            more, more_kept, more_evaluations = climb_steps(field_fn, np.concatenate([pos[saddle] + off,
                                                                                      pos[saddle] - off]))
            evaluations += more_evaluations
            ends = np.concatenate([ends[~saddle[labels]], more[more_kept]])
            labels = cluster(ends, method=GRAPH_METHODS[method])
            pos = centroids(ends, labels)
            density = field_fn(pos, False)[0]
            node_evaluations += len(pos)
            saddles_left = int(saddle.sum())
    count = len(pos)
    edge_index, edge_length, counts["edge_rule"] = _edges(pos, resolution, local_resolution)
    linked = np.unique(edge_index[0])
    isolated = count - len(linked)
    remap = np.full(count, -1, dtype=np.int64)
    remap[linked] = np.arange(len(linked))
    pos, density, edge_index = pos[linked], density[linked], remap[edge_index]
    counts.update(walkers=int(walkers), climb_evaluations=int(evaluations), left_map=int((~kept).sum()),
                  saddles_left=saddles_left,
                  clusters=count, isolated_removed=int(isolated), node_evaluations=node_evaluations,
                  evaluations_per_seed=float(evaluations / max(1, len(seeds))),
                  screening_s=round(t1 - t0, 3), climb_s=round(time.perf_counter() - t1, 3))
    return PeakGraph(pos, density, edge_index, edge_length, float(resolution), float(threshold),
                     (np.asarray(box[0], float), np.asarray(box[1], float)), method, counts)


def _edges(pos: np.ndarray, resolution: float, local: tuple[Callable[[np.ndarray], np.ndarray], float] | None
           ) -> tuple[np.ndarray, np.ndarray, str]:
    """Edges by the global resolution, or by the local resolution at each pair's midpoint; and the rule."""
    if local is None:
        return (*link(pos, EDGE_FACTOR * resolution), f"length ≤ {EDGE_FACTOR:g} × global resolution {resolution:g} Å")
    at, largest = local

    def limit(mid: np.ndarray) -> np.ndarray:
        r = at(mid)
        return EDGE_FACTOR * np.where(np.isfinite(r) & (r > 0), r, resolution)

    edge_index, edge_length = link(pos, EDGE_FACTOR * max(resolution, largest), limit)
    return edge_index, edge_length, (f"length ≤ {EDGE_FACTOR:g} × local resolution at the midpoint (the file's "
                                     f"local-resolution grid; {resolution:g} Å where it has none)")


def threshold_for(normalization: Any, *, threshold: float | None = None, sigma: float | None = None,
                  contour: float | None = None, path: str | None = None) -> float:
    """The seed threshold in source units: an explicit ``threshold``, a ``contour`` level, or
    μ + sigma·σ of the normalized densities (the paper's T = μ + 3σ; μ, σ from the file, on the
    [0, 1] scale) mapped back to source units."""
    for name, value in (("threshold", threshold), ("contour", contour), ("sigma", sigma)):
        if value is not None:
            check_number(name, value)
    if threshold is not None:
        return float(threshold)
    if contour is not None:
        return float(contour)
    mu, sd = getattr(normalization, "normalized_mean", None), getattr(normalization, "normalized_std", None)
    if mu is None or sd is None or not np.isfinite(mu) or not np.isfinite(sd):
        raise NemapError("the file has no normalized mean/σ for the μ + kσ threshold; give 'threshold' or 'contour'",
                         path=path, code="NO_THRESHOLD")
    k = 3.0 if sigma is None else float(sigma)
    span = normalization.value_max - normalization.value_min
    return float(normalization.value_min + (mu + k * sd) * span)
