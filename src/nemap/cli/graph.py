"""``nemap graph MAP.nemap -o GRAPH``: a graph of density peaks, and ``nemap evaluate``: its score
against an atomic model."""

from __future__ import annotations

import argparse
import json
from typing import Any

from nemap.errors import NemapError


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("graph", parents=[common], help="a graph of density peaks (nodes, edges) from a .nemap file",
                       description="Seeds on a 0.5 Å grid at density ≥ the threshold climb the density; endpoints "
                                   "within 0.2 Å are one node; nodes at most 2 × resolution apart are linked (2 × "
                                   "the local resolution at their midpoint when "
                                   "the file carries a local-resolution grid). The "
                                   "output format follows the suffix: .npz .json .graphml .pdb .cif .cmm")
    p.add_argument("file", help=".nemap file")
    p.add_argument("-o", "--output", required=True, help="graph file (.npz, .json, .graphml, .pdb, .cif, .cmm)")
    p.add_argument("--resolution", type=float, default=None, help="Å (default: the file's)")
    level = p.add_mutually_exclusive_group()
    level.add_argument("--threshold", type=float, default=None, help="seed threshold in source density units")
    level.add_argument("--sigma", type=float, default=None, help="threshold μ + Kσ of the normalized map (default 3)")
    level.add_argument("--contour", action="store_true", help="the file's recommended contour level as threshold")
    p.add_argument("--method", default="seeded", choices=["seeded", "paper", "fast"],
                   help="seeded (default): walkers from the roots of the seed-grid maxima, Newton climb; paper: "
                        "every seed, "
                        "0.05 Å steps ('fast' is the old name of seeded)")
    p.add_argument("--device", default="cpu", help="cpu | cuda | auto")
    p.add_argument("--force", action="store_true", help="overwrite OUTPUT if it exists")
    p.set_defaults(func=run)

    ev = sub.add_parser("evaluate", parents=[common], help="score a graph's nodes against an atomic model",
                        description="All-atom sensitivity/specificity at 1 Å (one-to-one) with RMSD; Cα coverage, "
                                    "node precision and RMSD at 3 Å. Only model atoms inside the map box count.")
    ev.add_argument("graph", help="graph file (.npz, .json, .graphml, .pdb, .cif, .cmm)")
    ev.add_argument("model", help="PDB or mmCIF model")
    ev.add_argument("--map", default=None, help=".nemap or MRC file giving the box (when the graph file has none)")
    ev.add_argument("--json", action="store_true", help="JSON on stdout")
    ev.set_defaults(func=run_evaluate)


def run(args: argparse.Namespace) -> int:
    from nemap.files import check_output_path
    from nemap.io import graph_files
    from nemap.map.neuralmap import open as open_nemap

    graph_files.graph_format(args.output)  # an unknown format is refused before any work
    check_output_path(args.output, args.force)
    with open_nemap(args.file) as m:
        g = m.graph(args.resolution, threshold=args.threshold, sigma=args.sigma, contour=args.contour,
                    method=args.method, device=args.device)
    graph_files.write_graph(g, args.output, force=args.force)
    st = g.stats
    if not st["seeds"]:
        print(f"{args.output}: no seed has density ≥ {g.threshold:.4g}: the graph is empty")
        return 0
    print(f"{args.output}: {g.node_count} nodes, {g.edge_count} edges ({args.method} method, threshold "
          f"{g.threshold:.4g}, edges: {st['edge_rule']}); {st['seeds']} seeds, {st['walkers']} climbed, "
          f"{st['climb_evaluations']} evaluations ({st['evaluations_per_seed']:.2f} per seed), "
          f"{st['isolated_removed']} isolated nodes removed")
    return 0


def _map_box(path: str) -> Any:
    """(lo, hi) Å of a .nemap or MRC map's box of voxel centres."""
    from nemap.files import is_nemap

    if is_nemap(path):
        from nemap.map.neuralmap import open as open_nemap

        with open_nemap(path) as m:
            return m.geometry.extent
    from nemap.io.mrc import read_mrc_header

    return read_mrc_header(path).extent


def run_evaluate(args: argparse.Namespace) -> int:
    import numpy as np

    from nemap.graph.score import score
    from nemap.io import graph_files
    from nemap.io.models import read_model

    g = graph_files.read_graph(args.graph)
    box = g.box if args.map is None else _map_box(args.map)
    if not (np.all(np.isfinite(box[0])) and np.all(np.isfinite(box[1]))):
        raise NemapError("the graph file carries no map box; give the map with --map", path=args.graph,
                         code="NO_BOX")
    atoms = read_model(args.model)
    result = score(g.pos, atoms.xyz, atoms.is_ca, atoms.is_hydrogen, box)
    result.update(graph=args.graph, model=args.model)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"{args.graph} against {args.model}: {result['nodes']} nodes, {result['atoms_in_box']} atoms and "
          f"{result['ca_in_box']} Cα in the box")
    print(f"  all atoms (1 Å, one-to-one): sensitivity {100 * result['atom_sensitivity']:.1f} %, "
          f"specificity {100 * result['atom_specificity']:.1f} %, RMSD {result['atom_rmsd']:.2f} Å")
    print(f"  Cα (3 Å): coverage {100 * result['ca_coverage']:.1f} %, node precision "
          f"{100 * result['node_precision']:.1f} %, RMSD {result['ca_rmsd']:.2f} Å")
    return 0
