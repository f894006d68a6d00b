"""``nemap convert IN OUT``: MRC → .nemap (the B-spline of the voxels, quantized by default, or a SIREN preset) or
.nemap → MRC (decode); the direction follows the suffixes."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from nemap.cli.common import add_cell_angles_option, floats
from nemap.errors import NemapError
from nemap.fit.options import PRESETS, RENAMED_PRESETS
from nemap.io.mrc import ORIGIN_CONVENTIONS


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("convert", parents=[common], help="MRC → .nemap (store) or .nemap → MRC (decode)",
                       description="The direction follows the suffixes: .mrc/.map/.ccp4 → .nemap stores the map as "
                                   "the quintic B-spline of its voxels, quantized within a bound (--tolerance, "
                                   "--fsc-floor) or exactly (--lossless), or fits SIREN networks (--preset); .nemap → "
                                   ".mrc/.map decodes on the native grid or --voxel-size/--box. An interrupted SIREN "
                                   "fit resumes when the same command is run again.")
    p.add_argument("input")
    p.add_argument("output")
    p.add_argument("--force", action="store_true", help="overwrite OUTPUT if it exists")
    _add_fitting(p.add_argument_group("fitting (MRC → .nemap)"))
    dec = p.add_argument_group("decoding (.nemap → MRC)")
    dec.add_argument("--voxel-size", type=floats, default=None, metavar="S", help="Å, one value or 'sx,sy,sz'")
    dec.add_argument("--box", type=floats, default=None, metavar="BOX", help="'xmin,ymin,zmin,xmax,ymax,zmax' in Å")
    dec.add_argument("--fill", type=float, default=0.0, help="value written outside the map (default 0)")
    p.set_defaults(func=run)


def _add_fitting(fit: Any) -> None:
    fit.add_argument("--preset", default="spline", choices=[*PRESETS, *RENAMED_PRESETS],
                     help="spline (default): the quintic B-spline that interpolates the voxels, nothing trained, "
                          "stored as voxels quantized within a bound (format 0.3; see --tolerance, --lossless); "
                          "paper: the published recipe, one 256×5 SIREN per region (hours per region); "
                          "paper-skip-flat: the recipe, with regions whose values span < 0.1 %% of the range stored as "
                          "constants; siren-sampled: 128×3 SIRENs fitted by mini-batches against the cubic B-spline; "
                          "siren-tiny: 64×3 SIRENs for quick looks (the SIREN presets need nemap[siren])")
    fit.add_argument("--tolerance", type=float, default=None, metavar="F",
                     help="spline preset: every voxel within F noise SDs of the source (default: invisible, 1/20 of "
                          "the noise SD and FSC ≥ 0.999 up to the resolution); larger F, smaller files")
    fit.add_argument("--fsc-floor", type=float, default=None, metavar="X",
                     help="spline preset: the smallest file whose FSC against the source stays ≥ X up to the "
                          "resolution, every voxel within --tolerance noise SDs (default 1)")
    fit.add_argument("--lossless", action="store_true",
                     help="spline preset: store the B-spline coefficients as float32 (format 0.2, exact to float32 "
                          "rounding, ≈ 1.5× the MRC's size)")
    fit.add_argument("--seed", type=int, default=None, help="random seed of the initial weights (default 0)")
    fit.add_argument("--device", default="auto", help="auto | cpu | cuda (the device used is logged)")
    fit.add_argument("--width", type=int, default=None, help="hidden features (overrides the preset)")
    fit.add_argument("--depth", dest="sine_layers", type=int, default=None, help="sine layers (overrides the preset)")
    fit.add_argument("--max-steps", type=int, default=None, help="step cap per region (overrides the preset)")
    fit.add_argument("--region-size", dest="max_region_size", type=int, default=None, metavar="N",
                     help="largest region edge in voxels, 8 to 64 (default 64, the paper's); smaller regions fit "
                          "weak, sharp detail more closely at more regions and a larger file")
    fit.add_argument("--exit-loss", type=float, default=None,
                     help="stop a region once its best MSE (on the [−1, 1] scale) is below this; the paper's 1e-5 "
                          "leaves sharp peaks several %% off, 1e-6 fits them to ≈ 2 %% (departs from the recipe; "
                          "recorded)")
    fit.add_argument("--resolution", type=float, default=None, help="map resolution in Å, stored in the header")
    fit.add_argument("--contour", type=float, default=None, help="recommended contour level (source units)")
    fit.add_argument("--origin-convention", default="auto", choices=ORIGIN_CONVENTIONS,
                     help="how to place the MRC map (default: ORIGIN if non-zero, else NSTART)")
    fit.add_argument("--half-maps", nargs=2, default=None, metavar=("H1", "H2"),
                     help="half maps on the map's grid: their FSC, local resolution (and --mask) are stored in the "
                          "file (format 0.2) and the FSC = 0.143 resolution is the map's unless --resolution is given")
    fit.add_argument("--mask", default=None, help="MRC mask stored with --half-maps (and used for their FSC)")
    fit.add_argument("--scheduler", default=None, metavar="ADDRESS",
                     help="fit the regions on a Dask cluster: a running scheduler (tcp://host:8786) or local:N "
                          "(N single-thread worker processes on this machine); needs dask.distributed")
    add_cell_angles_option(fit)


def run(args: argparse.Namespace) -> int:
    from nemap.files import is_nemap
    from nemap.io.mrc import is_mrc

    if is_mrc(args.input) and is_nemap(args.output):
        return _fit(args)
    if is_nemap(args.input) and is_mrc(args.output):
        return _decode(args)
    raise NemapError(f"cannot convert {args.input} to {args.output}: use .mrc/.map/.ccp4 → .nemap or "
                     ".nemap → .mrc/.map", code="BAD_ARGUMENT")


def options_from_args(args: argparse.Namespace) -> Any:
    """The fitting options of the --preset and its overrides."""
    from nemap.fit.options import options_for

    return options_for(args.preset, seed=args.seed, device=args.device, width=getattr(args, "width", None),
                       sine_layers=getattr(args, "sine_layers", None), max_steps=args.max_steps,
                       exit_loss=getattr(args, "exit_loss", None), max_region_size=args.max_region_size,
                       tolerance=getattr(args, "tolerance", None), fsc_floor=getattr(args, "fsc_floor", None),
                       lossless=getattr(args, "lossless", None) or None)


def _fit(args: argparse.Namespace) -> int:
    from nemap.tools import convert

    options = options_from_args(args)
    header = convert.mrc_to_nemap(args.input, args.output, options, force=args.force, resolution=args.resolution,
                                  contour=args.contour, origin_convention=args.origin_convention,
                                  ignore_cell_angles=args.ignore_cell_angles, progress=not args.quiet,
                                  command=["nemap", *sys.argv[1:]], half_maps=args.half_maps, mask=args.mask,
                                  scheduler=args.scheduler)
    print(format_fidelity(args.output, header))
    return 0


def _decode(args: argparse.Namespace) -> int:
    from nemap.tools import convert

    geometry = convert.nemap_to_mrc(args.input, args.output, voxel_size=args.voxel_size, box=args.box,
                                    fill=args.fill, force=args.force,
                                    device="cpu" if args.device == "auto" else args.device)
    print(f"{args.output}: {geometry.grid_shape[0]}×{geometry.grid_shape[1]}×{geometry.grid_shape[2]} voxels of "
          f"{'×'.join(f'{v:g}' for v in geometry.voxel_size)} Å, first voxel at "
          f"({', '.join(f'{v:g}' for v in geometry.origin)}) Å")
    return 0


def format_fidelity(path: str, header: dict[str, Any], max_regions: int = 8) -> str:
    """The fidelity report printed at the end of a conversion (all figures in source units)."""
    from nemap.tools.info import certificate_words, size_words

    if "NEMAP_quantized" in header.get("extensions_used", []):
        return "\n".join([f"{path}: {size_words(path, header)}",
                          f"  {certificate_words(header['extensions']['NEMAP_quantized'])}"])
    fid = header["provenance"]["fidelity"]
    o = fid["overall"]
    training = header["provenance"]["training"]["regions"]
    what = ("B-spline windows" if "NEMAP_feature_grid" in header.get("extensions_used", [])
            else f"{header['regions']['network_count']} networks")
    lines = [f"{path}: {header['regions']['count']} regions ({what}); "
             f"fidelity at voxel centres (source units):",
             f"  overall   RMSE {o['rmse']:.4g}   max |error| {o['max_abs_error']:.4g} "
             f"({100 * o['max_abs_error_fraction_of_range']:.2f} % of range)   correlation {o['correlation']:.6f}"]
    reasons: dict[str, int] = {}
    for t in training:
        reasons[t["stop_reason"]] = reasons.get(t["stop_reason"], 0) + 1
    lines.append("  stop reasons: " + ", ".join(f"{k} {v}" for k, v in sorted(reasons.items())))
    if "fsc" in fid:
        lines.append("  " + faithful_to(fid["fsc"]))
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


def faithful_to(f: dict[str, Any]) -> str:
    """"faithful to X Å (FSC 0.5)" from the FSC of a neural map against its source."""
    if not f["crossed_05"]:
        return f"faithful up to Nyquist ({f['nyquist']:.3g} Å): FSC against the source ≥ 0.5 at every shell"
    return f"faithful to {f['resolution_05']:.3g} Å (FSC 0.5 against the source; 0.143 at {f['resolution_0143']:.3g} Å)"
