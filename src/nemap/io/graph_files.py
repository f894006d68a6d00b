"""Peak graphs to and from files, chosen by suffix. Positions in Å (x, y, z); density in source units.

* ``.npz`` — lossless: pos [N, 3], density [N], edge_index [2, E] int64 (both directions),
  edge_length [E], and resolution, threshold, method, box_lo, box_hi (Å), stats (JSON text).
* ``.json`` — networkx node-link data (nodes with x, y, z, density; links with length; the graph's
  resolution, threshold, method, box_lo, box_hi).
* ``.graphml`` — the same graph as GraphML (box as "x y z" text).
* ``.pdb`` / ``.cif`` — one pseudo-atom per node (HETATM, residue PEK, atom PK, element C, chains of
  up to 9,999 nodes), the density in the B-factor column; ``.pdb`` is refused above 99,999 nodes (use
  ``.cif``). PDB keeps two decimals of B: a warning says so when that loses more than 1 % of the range.
* ``.cmm`` — ChimeraX markers, with a link per edge.
"""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from nemap.errors import FormatError, NemapError, require, warn
from nemap.files import atomic_output, check_output_path
from nemap.graph import PeakGraph

SUFFIXES = (".npz", ".json", ".graphml", ".pdb", ".cif", ".cmm")
PDB_MAX_NODES = 99_999
NODES_PER_CHAIN = 9_999
_CHAINS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


def graph_format(path: str | os.PathLike) -> str:
    """The suffix of a graph file (one of SUFFIXES); anything else is refused in one line."""
    s = Path(path).suffix.lower()
    if s not in SUFFIXES:
        raise NemapError(f"unknown graph format {s or '(none)'!r}; use one of {', '.join(SUFFIXES)}",
                         path=path, code="BAD_ARGUMENT")
    return s


def _meta(graph: PeakGraph) -> dict:
    return {"resolution": graph.resolution, "threshold": graph.threshold, "method": graph.method,
            "box_lo": [float(v) for v in graph.box[0]], "box_hi": [float(v) for v in graph.box[1]]}


def write_graph(graph: PeakGraph, path: str | os.PathLike, force: bool = False) -> Path:
    """Write ``graph`` in the format of ``path``'s suffix (temporary file, then rename)."""
    suffix = graph_format(path)
    out = check_output_path(path, force)
    if suffix == ".pdb" and graph.node_count > PDB_MAX_NODES:
        raise NemapError(f"{graph.node_count} nodes do not fit a PDB file (at most {PDB_MAX_NODES}); write .cif",
                         path=out, code="BAD_ARGUMENT", parameter="path")
    with atomic_output(out, force=force) as partial:
        {".npz": _write_npz, ".json": _write_json, ".graphml": _write_graphml, ".pdb": _write_model,
         ".cif": _write_model, ".cmm": _write_cmm}[suffix](graph, partial)
    return out


def _write_npz(graph: PeakGraph, path: Path) -> None:
    m = _meta(graph)
    with open(path, "wb") as fh:
        np.savez(fh, pos=graph.pos, density=graph.density, edge_index=graph.edge_index.astype(np.int64),
                 edge_length=graph.edge_length, resolution=m["resolution"], threshold=m["threshold"],
                 method=m["method"], box_lo=m["box_lo"], box_hi=m["box_hi"], stats=json.dumps(graph.stats))


def _write_json(graph: PeakGraph, path: Path) -> None:
    nx = require("networkx", "graph", "read and write networkx graph files")

    g = graph.to_networkx()
    g.graph.update(_meta(graph))
    path.write_text(json.dumps(nx.node_link_data(g, edges="links"), indent=1))


def _write_graphml(graph: PeakGraph, path: Path) -> None:
    nx = require("networkx", "graph", "read and write networkx graph files")

    g = graph.to_networkx()
    meta = _meta(graph)
    g.graph.update(meta, box_lo=" ".join(map(repr, meta["box_lo"])), box_hi=" ".join(map(repr, meta["box_hi"])))
    nx.write_graphml(g, path)


def _write_model(graph: PeakGraph, path: Path) -> None:
    gemmi = require("gemmi", "models", "write graphs as atomic models")

    st = gemmi.Structure()
    st.name = "nemap_graph"
    model = gemmi.Model("1")
    for c0 in range(0, graph.node_count, NODES_PER_CHAIN):
        chain = gemmi.Chain(_CHAINS[(c0 // NODES_PER_CHAIN) % len(_CHAINS)])
        for i in range(c0, min(graph.node_count, c0 + NODES_PER_CHAIN)):
            res = gemmi.Residue()
            res.name, res.seqid, res.het_flag = "PEK", gemmi.SeqId(i - c0 + 1, " "), "H"
            atom = gemmi.Atom()
            atom.name, atom.element, atom.occ = "PK", gemmi.Element("C"), 1.0
            atom.pos = gemmi.Position(*map(float, graph.pos[i]))
            atom.b_iso = float(graph.density[i])
            res.add_atom(atom)
            chain.add_residue(res)
        model.add_chain(chain)
    st.add_model(model)
    st.setup_entities()
    if path.name.endswith(".pdb"):
        span = float(np.ptp(graph.density)) if graph.node_count else 0.0
        if 0 < span < 0.5:  # rounding to 0.01 moves a density by more than 1 % of their range
            warn(f"the PDB B-factor column keeps 2 decimals, too few for densities spanning {span:.3g}; "
                 "write .cif or .npz for full precision")
        st.write_pdb(str(path))
    else:
        st.make_mmcif_document().write_file(str(path))


def _write_cmm(graph: PeakGraph, path: Path) -> None:
    root = ET.Element("marker_set", name="nemap peak graph")
    d = graph.density
    lo, hi = (float(d.min()), float(d.max())) if graph.node_count else (0.0, 1.0)
    for i, (p, v) in enumerate(zip(graph.pos, d)):
        t = (float(v) - lo) / (hi - lo) if hi > lo else 1.0
        ET.SubElement(root, "marker", id=str(i + 1), x=f"{p[0]:.4f}", y=f"{p[1]:.4f}", z=f"{p[2]:.4f}",
                      r=f"{t:.3f}", g=f"{0.3 * (1 - t):.3f}", b=f"{1 - t:.3f}", radius="0.3",
                      note=f"density {float(v):.6g}")
    ei = graph.edge_index
    for a, b in ei[:, ei[0] < ei[1]].T:
        ET.SubElement(root, "link", id1=str(int(a) + 1), id2=str(int(b) + 1), r="0.7", g="0.7", b="0.7",
                      radius="0.08")
    ET.indent(root)
    ET.ElementTree(root).write(path, encoding="unicode", xml_declaration=False)


def read_graph(path: str | os.PathLike) -> PeakGraph:
    """Read a graph written by ``write_graph`` (every suffix; .pdb/.cif/.cmm carry no box or threshold:
    NaN there)."""
    suffix = graph_format(path)
    p = Path(path)
    if not p.is_file():
        raise FormatError("no such file", path=p, code="FILE_NOT_FOUND")
    try:
        return {".npz": _read_npz, ".json": _read_json, ".graphml": _read_graphml, ".pdb": _read_model,
                ".cif": _read_model, ".cmm": _read_cmm}[suffix](p)
    except (FormatError, NemapError):
        raise
    except Exception as exc:  # any parser's complaint is a bad file, said in one line
        raise FormatError(f"not a readable {suffix} graph ({type(exc).__name__}: {exc})", path=p,
                          code="BAD_GRAPH") from None


def _graph_from_arrays(pos, density, pairs, meta: dict) -> PeakGraph:
    pos = np.asarray(pos, dtype=np.float64).reshape(-1, 3)
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    lengths = np.linalg.norm(pos[pairs[:, 0]] - pos[pairs[:, 1]], axis=1) if len(pairs) else np.zeros(0)
    edge_index = np.concatenate([pairs.T, pairs.T[::-1]], axis=1)
    nan3 = np.full(3, np.nan)
    box = (np.asarray(meta.get("box_lo", nan3), float), np.asarray(meta.get("box_hi", nan3), float))
    return PeakGraph(pos, np.asarray(density, dtype=np.float64), edge_index, np.concatenate([lengths, lengths]),
                     float(meta.get("resolution", np.nan)), float(meta.get("threshold", np.nan)), box,
                     str(meta.get("method", "unknown")))


def _read_npz(path: Path) -> PeakGraph:
    with np.load(path, allow_pickle=False) as z:
        stats = json.loads(str(z["stats"])) if "stats" in z else {}
        return PeakGraph(z["pos"], z["density"], z["edge_index"].astype(np.int64), z["edge_length"],
                         float(z["resolution"]), float(z["threshold"]), (z["box_lo"], z["box_hi"]),
                         str(z["method"]), stats)


def _from_networkx(g, meta: dict) -> PeakGraph:
    nodes = sorted(g.nodes, key=lambda n: int(n))
    index = {n: i for i, n in enumerate(nodes)}
    pos = [[g.nodes[n]["x"], g.nodes[n]["y"], g.nodes[n]["z"]] for n in nodes]
    density = [g.nodes[n]["density"] for n in nodes]
    pairs = sorted((min(index[a], index[b]), max(index[a], index[b])) for a, b in g.edges)
    return _graph_from_arrays(pos, density, pairs, meta)


def _read_json(path: Path) -> PeakGraph:
    nx = require("networkx", "graph", "read and write networkx graph files")

    data = json.loads(path.read_text())
    g = nx.node_link_graph(data, edges="links")
    return _from_networkx(g, data.get("graph", {}))


def _read_graphml(path: Path) -> PeakGraph:
    nx = require("networkx", "graph", "read and write networkx graph files")

    g = nx.read_graphml(path)
    meta = dict(g.graph)
    for key in ("box_lo", "box_hi"):
        if key in meta:
            meta[key] = [float(v) for v in str(meta[key]).split()]
    return _from_networkx(g, meta)


def _read_model(path: Path) -> PeakGraph:
    from nemap.io.models import read_model

    atoms = read_model(path, allow_empty=True)
    return _graph_from_arrays(atoms.xyz, atoms.b_iso, [], {})


def _read_cmm(path: Path) -> PeakGraph:
    root = ET.parse(path).getroot()
    ids, pos, density = {}, [], []
    for i, m in enumerate(root.iter("marker")):
        ids[m.get("id")] = i
        pos.append([float(m.get(k)) for k in "xyz"])
        note = m.get("note", "")
        density.append(float(note.split()[-1]) if note.startswith("density") else np.nan)
    pairs = sorted((min(ids[ln.get("id1")], ids[ln.get("id2")]), max(ids[ln.get("id1")], ids[ln.get("id2")]))
                   for ln in root.iter("link"))
    return _graph_from_arrays(pos, density, pairs, {})
