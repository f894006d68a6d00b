"""The ``nemap`` command: a thin layer that parses arguments and calls the library.

Results go to stdout, logs and progress to stderr. Errors are one line (``nemap: error: FILE:
problem``) with exit status 1, and a traceback only with ``-v``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any, Sequence

from . import __version__, container
from .errors import NemapError

log = logging.getLogger("nemap")

def nemap_info(path: str, with_provenance: bool = False) -> dict[str, Any]:
    """What ``nemap info`` prints for a .nemap file; with_provenance adds the whole provenance
    (per-region fit and fidelity), as ``--json`` does."""
    from .neuralmap import open as open_nemap

    with open_nemap(path) as m:
        g = m.geometry
        params = sum(layer.out_features * (layer.in_features + 1) for layer in m.layers)
        return {
            "format": "nemap",
            "path": path,
            "nemap_version": m.version,
            "grid_shape": list(g.grid_shape),
            "voxel_size": list(g.voxel_size),
            "origin": list(g.origin),
            "axis_order": list(g.source.get("axis_order", [1, 2, 3])),
            "origin_convention": g.source.get("origin_convention"),
            "resolution": m.header.get("resolution"),
            "contour_level": m.header.get("contour_level"),
            "normalization": m.header["normalization"],
            "regions": m.regions.count,
            "networks": m.regions.network_count,
            "constant_regions": m.regions.count - m.regions.network_count,
            "layers": [layer.to_json() for layer in m.layers],
            "parameters_per_network": params,
            "blend": m.header["regions"]["blend"],
            "extensions_used": m.header.get("extensions_used", []),
            "generator": m.provenance.get("generator"),
            "source": m.provenance.get("source", {}).get("filename"),
            "fidelity": m.provenance.get("fidelity", {}).get("overall"),
            "notices": [i.message for i in m.notices],
            **({"provenance": m.provenance} if with_provenance else {}),
        }


def _format_info(info: dict[str, Any]) -> str:
    lines = [f"{info['path']}:"]
    for key, value in info.items():
        if key == "path" or value in (None, [], {}):
            continue
        if key == "layers":
            value = " → ".join(f"{d['out_features']}" + (f" sin(ω={d['omega']:g})" if d["activation"] == "sine" else "")
                               for d in value)
            value = f"3 → {value}"
        elif isinstance(value, dict):
            value = json.dumps(value)
        lines.append(f"  {key:28s} {value}")
    return "\n".join(lines)


def cmd_info(args: argparse.Namespace) -> int:
    from .converters.convert import is_mrc

    if is_mrc(args.file):
        from .converters.mrc import mrc_info

        info = mrc_info(args.file, origin_convention=args.origin_convention)
        info.setdefault("path", args.file)
    else:
        info = nemap_info(args.file, with_provenance=args.json)
    print(json.dumps(info, indent=2) if args.json else _format_info(info))
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from .validate import validate

    worst = 0
    reports = [validate(path) for path in args.files]
    if args.json:
        out: Any = [r.to_json() for r in reports]
        print(json.dumps(out[0] if len(out) == 1 else out, indent=2))
    else:
        for r in reports:
            print(r.to_text())
    for r in reports:
        worst = max(worst, r.exit_code)
    return worst


def cmd_conformance(args: argparse.Namespace) -> int:
    from .conformance import harness

    suite = Path(args.suite) if args.suite else harness.default_suite()
    if not (suite / "valid").is_dir():
        raise NemapError("not a conformance suite (no valid/ folder); pass --suite "
                         f"fixtures/conformance/{harness.SUITE_VERSION} of the nemap source tree", path=suite)
    readers = [(args.reader, None)] if args.reader else [("engine", "engine"), ("numpy", "numpy")]
    summary, all_passed = [], True

    def show(result: "harness.Result") -> None:
        if not args.json and (args.verbose or not result.passed or not args.quiet):
            print(harness.text_line(result), flush=True)

    for label, builtin in readers:
        reader = harness.builtin_reader(builtin) if builtin else harness.ProcessReader(label)
        try:
            hello, results = harness.run_suite(reader, suite, progress=show)
        finally:
            if not builtin:
                reader.close()
        passed = sum(r.passed for r in results)
        all_passed &= passed == len(results)
        worst = {k: max((getattr(r, k) or 0.0 for r in results), default=0.0) for k in ("density_error", "gradient_error")}
        summary.append({"reader": hello.get("name", label), "command": None if builtin else label, "ops": hello.get("ops"),
                        "passed": passed, "cases": len(results), "worst_density_error_over_tolerance": worst["density_error"],
                        "worst_gradient_error_over_tolerance": worst["gradient_error"],
                        "results": [r.to_json() for r in results]})
        if not args.json:
            print(f"{hello.get('name', label)}: {passed}/{len(results)} cases pass ({', '.join(hello.get('ops', []))}); "
                  f"worst error {worst['density_error']:.2g} (density) and {worst['gradient_error']:.2g} (gradient) "
                  f"of the tolerance", flush=True)
    if args.json:
        print(json.dumps({"suite": str(suite), "readers": summary}, indent=2))
    return 0 if all_passed else 1


def cmd_convert(args: argparse.Namespace) -> int:
    from .converters import convert

    src, dst = args.input, args.output
    if convert.is_mrc(src) and convert.is_nemap(dst):
        from .encode import options_for

        options = options_for(args.preset, seed=args.seed, device=args.device, width=args.width,
                              sine_layers=args.depth, max_steps=args.max_steps, exit_loss=args.exit_loss,
                              max_region_size=args.region_size)
        header = convert.mrc_to_nemap(src, dst, options, force=args.force, resolution=args.resolution,
                                      contour=args.contour, origin_convention=args.origin_convention,
                                      ignore_cell_angles=args.ignore_cell_angles, progress=not args.quiet,
                                      command=["nemap", *sys.argv[1:]])
        print(_format_fidelity(dst, header))
    elif convert.is_nemap(src) and convert.is_mrc(dst):
        geometry = convert.nemap_to_mrc(src, dst, voxel_size=args.voxel_size, box=args.box, fill=args.fill,
                                        force=args.force, device="cpu" if args.device == "auto" else args.device)
        print(f"{dst}: {geometry.grid_shape[0]}×{geometry.grid_shape[1]}×{geometry.grid_shape[2]} voxels of "
              f"{'×'.join(f'{v:g}' for v in geometry.voxel_size)} Å, first voxel at "
              f"({', '.join(f'{v:g}' for v in geometry.origin)}) Å")
    else:
        raise NemapError(f"cannot convert {src} to {dst}: use .mrc/.map/.ccp4 → .nemap or .nemap → .mrc/.map",
                         code="BAD_ARGUMENT")
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    from .converters import simulate

    grid = simulate.simulate_file(args.model, args.output, args.resolution, voxel_size=args.voxel_size,
                                  sigma_factor=args.sigma_factor or simulate.SIGMA_FACTOR, force=args.force)
    g = grid.geometry
    print(f"{args.output}: {g.grid_shape[0]}×{g.grid_shape[1]}×{g.grid_shape[2]} voxels of {g.voxel_size[0]:g} Å, "
          f"first voxel at ({', '.join(f'{v:.3f}' for v in g.origin)}) Å, max {float(grid.values.max()):.4g}")
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    from .converters import plot

    axis, value = plot.parse_slice(args.slice)
    import importlib.util

    if importlib.util.find_spec("matplotlib") is None:
        raise NemapError("nemap plot needs matplotlib: pip install matplotlib", code="MISSING_DEPENDENCY")
    drawn = plot.slice_plot(args.file, args.output, axis, value, source=args.source, points=args.points,
                            within=args.within, force=args.force)
    extra = (f"; on this plane RMSE {drawn['rmse']:.4g}, max |error| {drawn['max_abs_error']:.4g} (source units)"
             if "rmse" in drawn else "")
    print(f"{args.output}: {drawn['axis']} = {drawn['position']:.2f} Å (voxel plane {drawn['index']}){extra}")
    return 0


def cmd_graph(args: argparse.Namespace) -> int:
    from .converters import graph_io
    from .neuralmap import open as open_nemap

    graph_io.graph_format(args.output)  # an unknown format is refused before any work
    container.check_output_path(args.output, args.force)
    with open_nemap(args.file) as m:
        g = m.graph(args.resolution, threshold=args.threshold, sigma=args.sigma, contour=args.contour,
                    method=args.method, device=args.device)
    graph_io.write_graph(g, args.output, force=args.force)
    st = g.stats
    if not st["seeds"]:
        print(f"{args.output}: no seed has density ≥ {g.threshold:.4g}: the graph is empty")
        return 0
    print(f"{args.output}: {g.node_count} nodes, {g.edge_count} edges ({args.method} method, threshold "
          f"{g.threshold:.4g}, edges ≤ {2 * g.resolution:g} Å); {st['seeds']} seeds, {st['walkers']} climbed, "
          f"{st['climb_evaluations']} evaluations ({st['evaluations_per_seed']:.2f} per seed), "
          f"{st['isolated_removed']} isolated nodes removed")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    import numpy as np

    from .converters import graph_io
    from .converters.models import read_model
    from .graph_score import score

    g = graph_io.read_graph(args.graph)
    box = g.box
    if args.map is not None:
        from .converters.convert import is_nemap

        if is_nemap(args.map):
            from .neuralmap import open as open_nemap

            with open_nemap(args.map) as m:
                box = m.geometry.extent
        else:
            from .converters.mrc import read_mrc_header

            box = read_mrc_header(args.map).extent
    if not (np.all(np.isfinite(box[0])) and np.all(np.isfinite(box[1]))):
        raise NemapError("the graph file carries no map box; give the map with --map", path=args.graph,
                         code="NO_BOX")
    atoms = read_model(args.model)
    result = score(g.pos, atoms.xyz, atoms.is_ca, atoms.is_hydrogen, box)
    result.update(graph=args.graph, model=args.model)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{args.graph} against {args.model}: {result['nodes']} nodes, {result['atoms_in_box']} atoms and "
              f"{result['ca_in_box']} Cα in the box")
        print(f"  all atoms (1 Å, one-to-one): sensitivity {100 * result['atom_sensitivity']:.1f} %, "
              f"specificity {100 * result['atom_specificity']:.1f} %, RMSD {result['atom_rmsd']:.2f} Å")
        print(f"  Cα (3 Å): coverage {100 * result['ca_coverage']:.1f} %, node precision "
              f"{100 * result['node_precision']:.1f} %, RMSD {result['ca_rmsd']:.2f} Å")
    return 0


def _format_fidelity(path: str, header: dict[str, Any], max_regions: int = 8) -> str:
    """The fidelity report printed at the end of a conversion (all figures in source units)."""
    fid = header["provenance"]["fidelity"]
    o = fid["overall"]
    training = header["provenance"]["training"]["regions"]
    lines = [f"{path}: {header['regions']['count']} regions ({header['regions']['network_count']} networks); "
             f"fidelity at voxel centres (source units):",
             f"  overall   RMSE {o['rmse']:.4g}   max |error| {o['max_abs_error']:.4g} "
             f"({100 * o['max_abs_error_fraction_of_range']:.2f} % of range)   correlation {o['correlation']:.6f}"]
    reasons: dict[str, int] = {}
    for t in training:
        reasons[t["stop_reason"]] = reasons.get(t["stop_reason"], 0) + 1
    lines.append("  stop reasons: " + ", ".join(f"{k} {v}" for k, v in sorted(reasons.items())))
    order = list(range(len(fid["regions"])))
    if len(order) > max_regions:  # a big map: the worst regions only; all of them are in the file
        order = sorted(order, key=lambda i: -fid["regions"][i]["max_abs_error"])[:max_regions]
        lines.append(f"  the {max_regions} regions with the largest max |error| "
                     f"(all {len(fid['regions'])} are in the file: nemap info --json):")
    for i in order:
        r, t = fid["regions"][i], training[i]
        steps = f"{t['steps']} steps, {t['stop_reason']}" if "steps" in t else t["stop_reason"]
        lines.append(f"  region {i:<4d} RMSE {r['rmse']:.4g}   max |error| {r['max_abs_error']:.4g}   "
                     f"correlation {r['correlation']:.6f}   ({steps})")
    return "\n".join(lines)


def _floats(text: str) -> list[float]:
    try:
        return [float(v) for v in text.replace(",", " ").split()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers, got {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-v", "--verbose", action="store_true", help="debug logging and tracebacks")
    common.add_argument("-q", "--quiet", action="store_true", help="errors only on stderr")

    p = argparse.ArgumentParser(prog="nemap", parents=[common],
                                description="Neural cryo-EM maps: convert, inspect and validate .nemap files.")
    p.add_argument("-V", "--version", action="version",
                   version=f"nemap {__version__} (format {container.VERSION_STRING})")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    info = sub.add_parser("info", parents=[common], help="print the geometry and contents of a .nemap or MRC file")
    info.add_argument("file", help=".nemap or .mrc/.map/.ccp4 file")
    info.add_argument("--json", action="store_true", help="machine-readable JSON on stdout")
    info.add_argument("--origin-convention", default="auto", choices=["auto", "origin", "nstart", "sum", "zero"],
                      help="MRC only: how to place the map (default auto: ORIGIN if non-zero, else NSTART)")
    info.set_defaults(func=cmd_info)

    conv = sub.add_parser("convert", parents=[common], help="MRC → .nemap (fit networks) or .nemap → MRC (decode)",
                          description="The direction follows the suffixes: .mrc/.map/.ccp4 → .nemap fits one SIREN "
                                      "per region; .nemap → .mrc/.map decodes on the native grid or --voxel-size/--box. "
                                      "An interrupted fit resumes when the same command is run again.")
    conv.add_argument("input")
    conv.add_argument("output")
    conv.add_argument("--force", action="store_true", help="overwrite OUTPUT if it exists")
    fit = conv.add_argument_group("fitting (MRC → .nemap)")
    fit.add_argument("--preset", default="fast", choices=["fast", "paper", "quick", "small"],
                     help="fast (default): the published recipe, but regions whose values span < 0.1 %% of the "
                          "range (solvent) are stored as constants; paper: the published recipe for every region "
                          "(256×5 sine, full batch, Adam 1e-4, natural-fit stop); quick: 128×3 fitted in 1,500 "
                          "mini-batch steps against the cubic B-spline (minutes per region on a CPU, below the "
                          "paper's fidelity); small: 64×3 for quick looks")
    fit.add_argument("--seed", type=int, default=None, help="random seed of the initial weights (default 0)")
    fit.add_argument("--device", default="auto", help="auto | cpu | cuda (the device used is logged)")
    fit.add_argument("--width", type=int, default=None, help="hidden features (overrides the preset)")
    fit.add_argument("--depth", type=int, default=None, help="sine layers (overrides the preset)")
    fit.add_argument("--max-steps", type=int, default=None, help="step cap per region (overrides the preset)")
    fit.add_argument("--region-size", type=int, default=None, metavar="N",
                     help="largest region edge in voxels, 8 to 64 (default 64, the paper's); smaller regions fit "
                          "weak, sharp detail more closely at more regions and a larger file")
    fit.add_argument("--exit-loss", type=float, default=None,
                     help="stop a region once its best MSE (on the [−1, 1] scale) is below this; the paper's 1e-5 "
                          "leaves sharp peaks several %% off, 1e-6 fits them to ≈ 2 %% (departs from the recipe; recorded)")
    fit.add_argument("--resolution", type=float, default=None, help="map resolution in Å, stored in the header")
    fit.add_argument("--contour", type=float, default=None, help="recommended contour level (source units)")
    fit.add_argument("--origin-convention", default="auto", choices=["auto", "origin", "nstart", "sum", "zero"],
                     help="how to place the MRC map (default: ORIGIN if non-zero, else NSTART)")
    fit.add_argument("--ignore-cell-angles", action="store_true",
                     help="read a non-orthogonal (crystallographic) cell as if its angles were 90°")
    dec = conv.add_argument_group("decoding (.nemap → MRC)")
    dec.add_argument("--voxel-size", type=_floats, default=None, metavar="S", help="Å, one value or 'sx,sy,sz'")
    dec.add_argument("--box", type=_floats, default=None, metavar="BOX", help="'xmin,ymin,zmin,xmax,ymax,zmax' in Å")
    dec.add_argument("--fill", type=float, default=0.0, help="value written outside the map (default 0)")
    conv.set_defaults(func=cmd_convert)

    sim = sub.add_parser("simulate", parents=[common], help="a molmap-equivalent map of an atomic model (PDB/mmCIF → MRC)",
                         description="Chimera/ChimeraX molmap: a Gaussian per atom weighted by Z, σ = 0.225 R, "
                                     "5σ cube cutoff, grid R/3 Å, padding 3R, each atom integrating to Z.")
    sim.add_argument("model", help="PDB or mmCIF file (.gz or .bz2 too)")
    sim.add_argument("output", help="MRC file to write")
    sim.add_argument("--resolution", type=float, required=True, help="R in Å")
    sim.add_argument("--voxel-size", type=float, default=None, help="grid spacing in Å (default R/3, as molmap)")
    sim.add_argument("--sigma-factor", type=float, default=None,
                     help="σ/R (default 1/(π√2) ≈ 0.225, molmap's; 0.425 makes the FWHM equal R)")
    sim.add_argument("--force", action="store_true", help="overwrite OUTPUT if it exists")
    sim.set_defaults(func=cmd_simulate)

    plot = sub.add_parser("plot", parents=[common], help="a slice through a neural map as a PNG (matplotlib)",
                          description="Source voxels, neural map and their difference on the voxel plane nearest "
                                      "to --slice, side by side; points (graph nodes, atoms) near the plane overlaid.")
    plot.add_argument("file", help=".nemap file")
    plot.add_argument("--slice", required=True, metavar="AXIS=Å", help="e.g. z=12.5 (Å)")
    plot.add_argument("-o", "--output", required=True, help="PNG file to write")
    plot.add_argument("--source", default=None, help="the MRC map it was made from (adds the source and difference panels)")
    plot.add_argument("--points", default=None, help="graph nodes or atoms to overlay: .npz (pos), .pdb or .cif")
    plot.add_argument("--within", type=float, default=None, metavar="Å",
                      help="overlay points this close to the plane (default half a voxel, at least 0.5 Å)")
    plot.add_argument("--force", action="store_true", help="overwrite OUTPUT if it exists")
    plot.set_defaults(func=cmd_plot)

    gr = sub.add_parser("graph", parents=[common], help="a graph of density peaks (nodes, edges) from a .nemap file",
                        description="Seeds on a 0.5 Å grid at density ≥ the threshold climb the density; endpoints "
                                    "within 0.2 Å are one node; nodes at most 2 × resolution apart are linked. The "
                                    "output format follows the suffix: .npz .json .graphml .pdb .cif .cmm")
    gr.add_argument("file", help=".nemap file")
    gr.add_argument("-o", "--output", required=True, help="graph file (.npz, .json, .graphml, .pdb, .cif, .cmm)")
    gr.add_argument("--resolution", type=float, default=None, help="Å (default: the file's)")
    level = gr.add_mutually_exclusive_group()
    level.add_argument("--threshold", type=float, default=None, help="seed threshold in source density units")
    level.add_argument("--sigma", type=float, default=None, help="threshold μ + Kσ of the normalized map (default 3)")
    level.add_argument("--contour", action="store_true", help="the file's recommended contour level as threshold")
    gr.add_argument("--method", default="fast", choices=["fast", "paper"],
                    help="fast (default): culled seeds, Newton climb; paper: every seed, 0.05 Å steps")
    gr.add_argument("--device", default="cpu", help="cpu | cuda | auto")
    gr.add_argument("--force", action="store_true", help="overwrite OUTPUT if it exists")
    gr.set_defaults(func=cmd_graph)

    ev = sub.add_parser("evaluate", parents=[common], help="score a graph's nodes against an atomic model",
                        description="All-atom sensitivity/specificity at 1 Å (one-to-one) with RMSD; Cα coverage, "
                                    "node precision and RMSD at 3 Å. Only model atoms inside the map box count.")
    ev.add_argument("graph", help="graph file (.npz, .json, .graphml, .pdb, .cif, .cmm)")
    ev.add_argument("model", help="PDB or mmCIF model")
    ev.add_argument("--map", default=None, help=".nemap or MRC file giving the box (when the graph file has none)")
    ev.add_argument("--json", action="store_true", help="JSON on stdout")
    ev.set_defaults(func=cmd_evaluate)

    val = sub.add_parser("validate", parents=[common],
                         help="check .nemap files against the spec (exit 0 valid, 1 invalid, 2 unreadable)")
    val.add_argument("files", nargs="+", metavar="FILE")
    val.add_argument("--json", action="store_true", help="JSON report on stdout")
    val.set_defaults(func=cmd_validate)

    conf = sub.add_parser("conformance", parents=[common], help="run the conformance suite against a reader (exit 0 only if all pass)",
                          description="Runs every case of the conformance suite (spec/0.1/conformance.md) through a reader: "
                                      "by default nemap's engine and the independent NumPy reader, or any program that "
                                      "speaks the suite's stdin/stdout protocol.")
    conf.add_argument("--reader", metavar="COMMAND", default=None,
                      help='a reader program, e.g. "python conformance/numpy_reader.py" or "./myreader --serve"')
    conf.add_argument("--suite", default=None, help="the suite folder (default: fixtures/conformance/0.1 of this source tree)")
    conf.add_argument("--json", action="store_true", help="a JSON report on stdout")
    conf.set_defaults(func=cmd_conformance)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    level = logging.DEBUG if args.verbose else (logging.ERROR if args.quiet else logging.INFO)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("nemap: %(levelname)s: %(message)s" if args.verbose else "nemap: %(message)s"))
    saved = (log.handlers[:], log.level, log.propagate)
    log.handlers[:] = [handler]
    log.setLevel(level)
    log.propagate = False
    try:
        return int(args.func(args) or 0)
    except NemapError as exc:
        if args.verbose:
            raise
        print(f"nemap: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("nemap: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug, not a bad input: say so in one line, details with -v
        if args.verbose:
            raise
        print(f"nemap: internal error: {type(exc).__name__}: {exc} (run with -v for the traceback)", file=sys.stderr)
        return 1
    finally:
        log.handlers[:], log.level, log.propagate = saved


if __name__ == "__main__":
    sys.exit(main())
