"""Peak graphs: extraction on analytic fields with known peaks, exports, evaluation, command line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import gemmi
import networkx as nx
import numpy as np
import pytest
from scipy.spatial import cKDTree

from fixtures.synthetic_maps import random_chain
from nemap.errors import NemapError
from nemap.graph import (
    PeakGraph,
    climb_steps,
    cluster,
    discrete_roots,
    extract,
    screen,
    screen_box,
    seed_grid_shape,
    seed_positions,
    seeds_above,
    threshold_for,
)
from nemap.graph.score import match_one_to_one, score
from nemap.io.graph_files import read_graph, write_graph

SIGMA = 0.225 * 1.5  # Å: a 1.5 Å map
BOX = (np.zeros(3), np.full(3, 20.0))


@pytest.fixture(scope="module")
def atoms() -> np.ndarray:
    return random_chain(60, (2, 2, 2), (18, 18, 18), step=1.5, seed=1)


def gaussian_field(atoms: np.ndarray, box=BOX, sigma: float = SIGMA):
    """Σ exp(−r²/2σ²) and its gradient; NaN outside ``box`` (as a map outside its grid)."""
    calls = {"points": 0}

    def field(x: np.ndarray, gradient: bool):
        calls["points"] += len(x)
        d = x[:, None, :] - atoms[None]
        e = np.exp(-np.sum(d * d, axis=2) / (2 * sigma ** 2))
        inside = np.all((x >= box[0]) & (x <= box[1]), axis=1)
        rho = np.where(inside, e.sum(1), np.nan)
        g = np.where(inside[:, None], -(e[:, :, None] * d).sum(1) / sigma ** 2, np.nan) if gradient else None
        return rho, g

    return field, calls


@pytest.mark.parametrize("method", ["paper", "seeded"])
def test_nodes_are_the_peaks(atoms, method) -> None:
    field, _ = gaussian_field(atoms)
    g = extract(field, BOX, resolution=1.5, threshold=0.2, method=method)
    d_node, _ = cKDTree(atoms).query(g.pos)
    d_atom, _ = cKDTree(g.pos).query(atoms)
    assert g.node_count == len(atoms) and d_node.max() < 0.05 and d_atom.max() < 0.05  # one node per atom
    assert np.allclose(g.density, field(g.pos, False)[0])
    # edges: both directions, every pair ≤ 2R, and no pair ≤ 2R missing
    assert g.edge_index.shape[1] == 2 * g.edge_count and g.edge_index.dtype == np.int64
    fwd = {tuple(e) for e in g.edge_index.T}
    assert all((b, a) in fwd for a, b in fwd)
    want = {tuple(p) for p in cKDTree(g.pos).query_pairs(3.0)}
    assert {(a, b) for a, b in fwd if a < b} == want
    assert np.allclose(g.edge_length, np.linalg.norm(g.pos[g.edge_index[0]] - g.pos[g.edge_index[1]], axis=1))


def test_fast_finds_the_paper_nodes_with_far_fewer_evaluations(atoms) -> None:
    field, calls = gaussian_field(atoms)
    paper = extract(field, BOX, 1.5, 0.05, method="paper")
    fast = extract(field, BOX, 1.5, 0.05, method="seeded")
    d, _ = cKDTree(fast.pos).query(paper.pos)
    assert np.mean(d < 0.1) >= 0.99
    assert paper.stats["climb_evaluations"] >= 10 * fast.stats["climb_evaluations"]
    assert paper.stats["screening_evaluations"] == fast.stats["screening_evaluations"]


def test_one_screening_serves_several_thresholds(atoms) -> None:
    field, calls = gaussian_field(atoms)
    screened = screen_box(field, BOX)
    assert screened.shape == seed_grid_shape(*BOX) and calls["points"] == screened.size
    for threshold in (0.05, 0.5):
        fresh = extract(field, BOX, 1.5, threshold)
        calls["points"] = 0
        reused = extract(field, BOX, 1.5, threshold, screened=screened)
        assert calls["points"] < screened.size and reused.stats["screening_evaluations"] == 0
        assert np.array_equal(reused.pos, fresh.pos) and reused.stats["seeds"] == fresh.stats["seeds"]
    with pytest.raises(NemapError, match="seed grid"):
        extract(field, BOX, 1.5, 0.05, screened=screened[1:])


def test_isolated_nodes_and_seeds_leaving_the_map_are_dropped() -> None:
    pts = np.array([[5.0, 5.0, 5.0], [6.4, 5.0, 5.0], [15.0, 15.0, 15.0],  # a pair and a loner
                    [10.0, 10.0, 20.3]])  # a peak just outside the box: its seeds climb out
    field, _ = gaussian_field(pts)
    for method in ("paper", "seeded"):
        g = extract(field, BOX, resolution=1.0, threshold=0.3, method=method)
        assert g.node_count == 2 and g.stats["isolated_removed"] == 1, method
        assert g.stats["left_map"] > 0, method
        assert np.all(g.pos[:, 2] < 6), method


def test_empty_graph_when_no_seed() -> None:
    field, _ = gaussian_field(np.array([[5.0, 5.0, 5.0]]))
    g = extract(field, BOX, 2.0, threshold=10.0)
    assert g.node_count == 0 and g.stats["seeds"] == 0 and g.edge_index.shape == (2, 0)


def test_clustering_is_single_linkage_like_dbscan() -> None:
    rng = np.random.default_rng(0)
    pts = np.concatenate([rng.normal(c, 0.05, (20, 3)) for c in ([0, 0, 0], [1, 0, 0], [1.15, 0, 0])])
    a, b = cluster(pts, method="dbscan"), cluster(pts, method="kdtree")
    assert len(set(a)) == len(set(b))
    assert all(len(set(b[a == k])) == 1 for k in set(a))  # the same partition


def test_threshold_rules() -> None:
    class N:
        value_min, value_max, normalized_mean, normalized_std = -1.0, 3.0, 0.25, 0.05

    assert threshold_for(N()) == pytest.approx(-1.0 + (0.25 + 0.15) * 4.0)
    assert threshold_for(N(), sigma=1.0) == pytest.approx(-1.0 + 0.30 * 4.0)
    assert threshold_for(N(), threshold=0.7) == 0.7 and threshold_for(N(), contour=1.5) == 1.5
    N.normalized_std = None
    with pytest.raises(NemapError, match="no normalized mean"):
        threshold_for(N())


@pytest.fixture(scope="module")
def graph(atoms) -> PeakGraph:
    field, _ = gaussian_field(atoms)
    return extract(field, BOX, resolution=1.5, threshold=0.2, method="seeded")


@pytest.mark.parametrize("suffix", [".npz", ".json", ".graphml", ".pdb", ".cif", ".cmm"])
def test_exports_read_back(graph, tmp_path, suffix) -> None:
    path = tmp_path / f"g{suffix}"
    write_graph(graph, path)
    back = read_graph(path)
    assert np.allclose(back.pos, graph.pos, atol=1e-3)
    tol = 0.006 if suffix == ".pdb" else 1e-5  # PDB keeps two decimals of B
    assert np.allclose(back.density, graph.density, atol=tol, rtol=1e-5)
    if suffix in (".npz", ".json", ".graphml", ".cmm"):
        assert back.edge_count == graph.edge_count
        assert np.allclose(np.sort(back.edge_length), np.sort(graph.edge_length), atol=1e-3)
    if suffix in (".npz", ".json", ".graphml"):
        assert np.allclose(back.box[1], graph.box[1]) and back.resolution == 1.5
    if suffix == ".npz":
        assert np.array_equal(back.pos, graph.pos) and np.array_equal(back.edge_index, graph.edge_index)
    if suffix in (".pdb", ".cif"):  # its consumer reads it
        st = gemmi.read_structure(str(path))
        assert st[0].count_atom_sites() == graph.node_count
    if suffix == ".json":
        g = nx.node_link_graph(json.loads(path.read_text()), edges="links")
        assert g.number_of_nodes() == graph.node_count and g.graph["resolution"] == 1.5
    if suffix == ".graphml":
        assert nx.read_graphml(path).number_of_edges() == graph.edge_count
    with pytest.raises(NemapError, match="exists"):
        write_graph(graph, path)


def test_networkx_and_arrays_agree(graph) -> None:
    g = graph.to_networkx()
    assert g.number_of_nodes() == graph.node_count and g.number_of_edges() == graph.edge_count
    assert all(g.degree[i] > 0 for i in g.nodes)
    a, b = graph.edge_index[:, 0]
    assert g.edges[int(a), int(b)]["length"] == pytest.approx(graph.edge_length[0])


def test_one_to_one_matching_and_scores() -> None:
    atoms = np.array([[0.0, 0, 0], [1.5, 0, 0], [3.0, 0, 0], [30.0, 0, 0]])
    nodes = np.array([[0.1, 0, 0], [0.2, 0, 0], [3.0, 0.5, 0]])  # two nodes compete for atom 0
    ni, ai, d = match_one_to_one(nodes, atoms, 1.0)
    assert sorted(zip(ni.tolist(), ai.tolist())) == [(0, 0), (2, 2)]
    is_ca = np.array([True, False, True, True])
    s = score(nodes, atoms, is_ca, box=(np.full(3, -5.0), np.full(3, 10.0)))  # atom 3 is outside the box
    assert s["atoms_in_box"] == 3 and s["atom_sensitivity"] == pytest.approx(2 / 3)
    assert s["atom_specificity"] == pytest.approx(2 / 3)
    assert s["atom_rmsd"] == pytest.approx(np.sqrt((0.1 ** 2 + 0.5 ** 2) / 2))
    assert s["ca_coverage"] == 1.0 and s["node_precision"] == 1.0


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nemap", *args], capture_output=True, text=True)


def test_graph_and_evaluate_from_the_command_line(tmp_path) -> None:
    from nemap.fit.options import options_for
    from nemap.tools.convert import mrc_to_nemap

    example = Path(__file__).resolve().parents[2] / "fixtures" / "maps" / "chain_32.mrc"
    nm = tmp_path / "c.nemap"
    mrc_to_nemap(example, nm, options_for("siren-tiny", width=48, sine_layers=2, max_steps=250, device="cpu"),
                 progress=False)
    out = tmp_path / "g.npz"
    r = _run("graph", str(nm), "-o", str(out))
    assert r.returncode == 1 and "no resolution" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    r = _run("graph", str(nm), "-o", str(out), "--resolution", "3", "--sigma", "2")
    assert r.returncode == 0, r.stderr
    assert "nodes" in r.stdout and "seeds" in r.stderr  # result on stdout, progress on stderr
    g = read_graph(out)
    assert g.node_count > 0 and g.resolution == 3.0
    empty = tmp_path / "e.json"
    r = _run("graph", str(nm), "-o", str(empty), "--resolution", "3", "--threshold", "1e9")
    assert r.returncode == 0 and "empty" in r.stdout and read_graph(empty).node_count == 0
    r = _run("graph", str(nm), "-o", str(tmp_path / "g.txt"), "--resolution", "3")
    assert r.returncode == 1 and "unknown graph format" in r.stderr
    r = _run("graph", str(nm), "-o", str(tmp_path / "c.pdb"), "--resolution", "3", "--contour")
    assert r.returncode == 1 and "no contour level" in r.stderr
    r = _run("graph", str(nm), "-o", str(tmp_path / "z.npz"), "--resolution", "0")
    assert r.returncode == 1 and "--resolution must be a finite number > 0" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1

    model = tmp_path / "m.pdb"
    st = gemmi.Structure()
    mdl, ch = gemmi.Model("1"), gemmi.Chain("A")
    for i, p in enumerate(g.pos[:5]):
        res = gemmi.Residue()
        res.name, res.seqid = "ALA", gemmi.SeqId(i + 1, " ")
        atom = gemmi.Atom()
        atom.name, atom.element, atom.pos = "CA", gemmi.Element("C"), gemmi.Position(*map(float, p))
        res.add_atom(atom)
        ch.add_residue(res)
    mdl.add_chain(ch)
    st.add_model(mdl)
    st.write_pdb(str(model))
    r = _run("evaluate", str(out), str(model), "--json")
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)
    assert result["ca_in_box"] == 5 and result["ca_coverage"] == 1.0 and result["atom_sensitivity"] == 1.0
    pdb_graph = tmp_path / "g.pdb"
    write_graph(g, pdb_graph)
    r = _run("evaluate", str(pdb_graph), str(model))
    assert r.returncode == 1 and "--map" in r.stderr
    r = _run("evaluate", str(pdb_graph), str(model), "--map", str(nm))
    assert r.returncode == 0 and "coverage 100.0 %" in r.stdout
    junk = tmp_path / "junk.cif"
    junk.write_text("this is not a model\n")
    r = _run("evaluate", str(out), str(junk))
    assert r.returncode == 1 and str(junk) in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_fast_finds_weak_peaks_beside_strong_ones() -> None:
    """Weak peaks 1.0–1.4 Å from strong ones, often without a seed-grid maximum of their own: the
    fast method's gradient-steered roots must still find every peak the paper walk finds."""
    rng = np.random.default_rng(4)
    strong = rng.uniform(4, 16, (12, 3))
    strong = strong[np.all(np.linalg.norm(strong[:, None] - strong[None], axis=2) + 10 * np.eye(12) > 4.0, axis=1)]
    direction = rng.normal(size=strong.shape)
    weak = strong + (rng.uniform(1.0, 1.4, len(strong))[:,
                                                        None] * direction / np.linalg.norm(direction, axis=1)[:, None])
    centres = np.concatenate([strong, weak])
    amplitude = np.concatenate([np.full(len(strong), 6.0), np.full(len(weak), 1.0)])

    def field(x: np.ndarray, gradient: bool):
        d = x[:, None, :] - centres[None]
        e = amplitude * np.exp(-np.sum(d * d, axis=2) / (2 * SIGMA ** 2))
        g = -(e[:, :, None] * d).sum(1) / SIGMA ** 2 if gradient else None
        return e.sum(1), g

    paper = extract(field, BOX, 3.0, 0.3, method="paper")
    fast = extract(field, BOX, 3.0, 0.3, method="seeded")
    d, _ = cKDTree(fast.pos).query(paper.pos)
    assert paper.node_count > len(strong)  # some weak peaks are real, separate maxima
    assert np.all(d < 0.1)
    # and the grid maxima alone would not have: the steered roots are what finds them
    lo = np.asarray(BOX[0], float)
    shape = seed_grid_shape(lo, BOX[1])
    values = screen(field, lo, shape)
    seeds = seeds_above(values, 0.3)
    ends, _, _ = climb_steps(field, seed_positions(np.unique(discrete_roots(values, seeds)), lo, shape))
    d_grid, _ = cKDTree(ends).query(paper.pos)
    assert np.any(d_grid > 0.1)


def test_fast_nodes_are_maxima_not_saddles() -> None:
    """Two equal peaks mirrored in the seed-grid plane x = 10 Å: seeds on that plane have no gradient
    across it, so their climbs (the paper walk's and the fast method's) stop at the saddle between the
    peaks. The fast method tests the Hessian at its nodes and climbs on from the saddle."""
    centres = np.array([[9.0, 10.2, 9.9], [11.0, 10.2, 9.9]])

    def field(x: np.ndarray, gradient: bool):
        d = x[:, None, :] - centres[None]
        e = np.exp(-np.sum(d * d, axis=2) / (2 * 0.6 ** 2))
        return e.sum(1), (-(e[:, :, None] * d).sum(1) / 0.6 ** 2 if gradient else None)

    saddle = np.array([10.0, 10.2, 9.9])
    paper = extract(field, BOX, 3.0, 0.3, method="paper")
    assert np.min(np.linalg.norm(paper.pos - saddle, axis=1)) < 0.1  # the walk stalls there
    fast = extract(field, BOX, 3.0, 0.3, method="seeded")
    assert fast.node_count == 2 and fast.stats["saddles_left"] == 1
    d, _ = cKDTree(fast.pos).query(centres)
    assert d.max() < 0.01


def test_every_pair_closer_than_the_limit_is_linked_and_no_other() -> None:
    """link() against all pairs by brute force: close pairs are linked (both directions), far ones are not, the
    lengths are the distances, and a limit at the midpoint removes exactly the pairs longer than it there."""
    from nemap.graph import link

    rng = np.random.default_rng(4)
    pos = rng.uniform(0, 20, (60, 3))
    distance = np.linalg.norm(pos[:, None] - pos[None], axis=2)
    edges, lengths = link(pos, 5.0)
    got = {(int(a), int(b)) for a, b in edges.T}
    want = {(i, j) for i in range(60) for j in range(60) if i != j and distance[i, j] <= 5.0}
    assert got == want and len(edges.T) == len(want)
    np.testing.assert_allclose(lengths, distance[edges[0], edges[1]])
    limited, _ = link(pos, 5.0, limit=lambda mid: np.where(mid[:, 0] < 10.0, 3.0, 5.0))
    kept = {(int(a), int(b)) for a, b in limited.T}
    mids = (pos[:, None] + pos[None]) / 2
    want_limited = {(i, j) for i, j in want if distance[i, j] <= (3.0 if mids[i, j, 0] < 10.0 else 5.0)}
    assert kept == want_limited
