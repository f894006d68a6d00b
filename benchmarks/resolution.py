"""Resolution tools: FSC and local-resolution time, and how faithful each preset's neural map is.

    python -m benchmarks.resolution [--edges 128 256] [--maps 6272 5778 0093-crop 21457]
                                    [--siren-maps 21457] [--siren-presets small quick] [--out DIR] [--toy]

Timing: a pair of edge³ half maps (a smoothed random field, 1 Å voxels, plus independent noise per half): the
FSC (two real FFTs and the shell sums, ``nemap.resolution.fsc.fsc``), the FSC with a spherical mask (plus
phase randomization: three more FFT pairs), and the local resolution with the default window (20 voxels) and
step (5 voxels), each timed in this process on this machine's cores. Fidelity: each shared real map converted
with the default ``spline`` preset, and the ``--siren-maps`` (default EMD-21457, one region) with the SIREN
presets (``small``, ``quick``; ``paper`` and ``fast`` fit for hours per region on two cores and are not run);
the FSC of the neural map (sampled at the voxel centres) against its source, read at 0.5
(``nemap.fit.fidelity.fsc_fidelity``, part of every conversion's fidelity report): "this preset keeps the map
faithful to X Å", with the map's Nyquist limit (2 × voxel size) beside it.
Writes OUT/resolution.json and OUT/resolution.md.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from scipy import ndimage

from benchmarks.common import MAP_FILES, SHARED, results_dir, write_json
from nemap.fit.fit_map import fit_map
from nemap.fit.options import options_for
from nemap.format.geometry import Geometry, Grid
from nemap.io.mrc import read_mrc
from nemap.resolution.fsc import fsc
from nemap.resolution.locres import local_resolution


def synthetic_halves(edge: int, seed: int = 0) -> tuple[Grid, Grid, Grid]:
    """Two half maps (smoothed random field + independent white noise) and a spherical mask, edge³ voxels."""
    rng = np.random.default_rng(seed)
    g = Geometry((edge,) * 3, (1.0,) * 3)
    signal = ndimage.gaussian_filter(rng.standard_normal(g.grid_shape, dtype=np.float32), 1.2)
    signal /= signal.std()
    halves = [Grid((signal + rng.standard_normal(g.grid_shape, dtype=np.float32)).astype(np.float32), g)
              for _ in range(2)]
    r = np.linalg.norm(np.indices(g.grid_shape, dtype=np.float32) - (edge - 1) / 2, axis=0)
    return halves[0], halves[1], Grid((r < 0.4 * edge).astype(np.float32), g)


def timings(edge: int) -> dict:
    h1, h2, mask = synthetic_halves(edge)
    out: dict = {"edge": edge}
    t0 = time.perf_counter()
    curve = fsc(h1, h2)
    out["fsc_s"] = time.perf_counter() - t0
    out["resolution_0143"] = curve.resolution(0.143)[0]
    t0 = time.perf_counter()
    fsc(h1, h2, mask)
    out["masked_fsc_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    result = local_resolution(h1, h2)
    out["locres_s"] = time.perf_counter() - t0
    out["locres_windows"] = int(np.isfinite(result.coarse).sum())
    out["locres_median"] = float(np.median(result.grid.values))
    print(f"{edge}³: {out}", file=sys.stderr, flush=True)
    return out


def fidelity(runs: list[tuple[str, str]]) -> list[dict]:
    """(map, preset) pairs → the FSC of each conversion against its source."""
    if not (SHARED / "INDEX.md").is_file():
        print(f"resolution: {SHARED} not found, fidelity skipped", file=sys.stderr)
        return []
    rows = []
    for name in dict.fromkeys(n for n, _ in runs):
        grid = read_mrc(SHARED / MAP_FILES[name])
        for preset in [p for n, p in runs if n == name]:
            t0 = time.perf_counter()
            content = fit_map(grid, options_for(preset, device="cpu"))  # its fidelity report holds the FSC
            f = content.provenance["fidelity"].get("fsc")
            rows.append({"map": name, "preset": preset, "fit_s": time.perf_counter() - t0, **(f or {})})
            print(f"{name} {preset}: {rows[-1]}", file=sys.stderr, flush=True)
    return rows


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--edges", type=int, nargs="+", default=[128, 256])
    ap.add_argument("--maps", nargs="+", default=["6272", "5778", "0093-crop", "21457"], choices=list(MAP_FILES))
    ap.add_argument("--siren-maps", nargs="*", default=["21457"], choices=list(MAP_FILES))
    ap.add_argument("--siren-presets", nargs="*", default=["siren-tiny", "siren-sampled"])
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--toy", action="store_true", help="CI smoke run: 32³ timings, EMD-21457 with the spline preset")
    args = ap.parse_args(argv)
    if args.toy:
        args.edges, args.maps, args.siren_maps = [32], ["21457"], []
    times = [timings(edge) for edge in args.edges]
    faithful = fidelity([(m, "spline") for m in args.maps] + [(m, p) for m in args.siren_maps
                                                             for p in args.siren_presets])
    out = results_dir("resolution", args.out)
    write_json(out / "resolution.json", {"timings": times, "fidelity": faithful}, "resolution")
    rows = ["| half maps | FSC (s) | masked FSC (s) | local resolution (s) | windows | FSC 0.143 (Å) |",
            "|---|---|---|---|---|---|"]
    rows += [f"| {t['edge']}³ | {t['fsc_s']:.2f} | {t['masked_fsc_s']:.2f} | {t['locres_s']:.1f} | "
             f"{t['locres_windows']:,} | {t['resolution_0143']:.2f} |" for t in times]
    rows += ["", "| map | preset | faithful to (FSC 0.5, Å) | FSC 0.143 (Å) | Nyquist (Å) | fit (s) |",
             "|---|---|---|---|---|---|"]
    for f in faithful:
        if "resolution_05" not in f:
            continue
        at = f"{f['resolution_05']:.2f}" if f["crossed_05"] else f"Nyquist ({f['nyquist']:.2f})"
        at143 = f"{f['resolution_0143']:.2f}" if f["crossed_0143"] else "Nyquist"
        rows.append(f"| {f['map']} | {f['preset']} | {at} | {at143} | {f['nyquist']:.2f} | {f['fit_s']:.1f} |")
    text = "\n".join(rows) + "\n"
    (out / "resolution.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
