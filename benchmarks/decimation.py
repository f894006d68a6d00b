"""Interpolation on real maps, with no simulation: keep every second voxel, rebuild the removed ones.

    python -m benchmarks.decimation [--maps 6272 5778 0093-crop 0093 21457] [--preset spline] [--out DIR] [--toy]

For each shared map: the decimated map keeps voxels (2i, 2j, 2k) (voxel size doubled, same origin); it is
converted with the preset (nemap.fit.fit_map, then the query engine) and, for comparison, interpolated by a
cubic B-spline (SciPy, mirror boundary) and trilinearly. Each is scored at every removed voxel inside the
decimated grid's box whose real value is above the map's contour (mean + 1σ of its non-zero voxels): MAE as
a fraction of the map's range (max − min). Writes OUT/decimation.json and OUT/decimation.md.
"""

from __future__ import annotations

import sys
import time

import numpy as np
from scipy import ndimage

from benchmarks.common import MAP_FILES, SHARED, preset_options, real_map_arguments, results_dir, write_json
from nemap.engine.query import Engine
from nemap.fit.fit_map import fit_map
from nemap.format.geometry import Geometry, Grid
from nemap.io.mrc import read_mrc


def removed_voxels(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Indices [K, 3] of the voxels inside the decimated box that decimation removed, and their values."""
    top = [2 * ((n - 1) // 2) + 1 for n in values.shape]
    idx = np.indices(top).reshape(3, -1).T
    idx = idx[np.any(idx % 2 == 1, axis=1)]
    return idx, values[tuple(idx.T)]


def one_map(name: str, preset: str) -> dict:
    source = read_mrc(SHARED / MAP_FILES[name])
    values = np.asarray(source.values, dtype=np.float64)
    nonzero = values[values != 0]
    contour = float(nonzero.mean() + nonzero.std())
    span = float(values.max() - values.min())
    g = source.geometry
    decimated = Grid(np.ascontiguousarray(source.values[::2, ::2, ::2]),
                     Geometry(tuple(-(-n // 2) for n in g.grid_shape), tuple(2 * v for v in g.voxel_size), g.origin))
    idx, truth = removed_voxels(values)
    keep = truth > contour
    idx, truth = idx[keep], truth[keep]
    q = idx / 2.0                                                       # index of the decimated grid
    small = decimated.values.astype(np.float64)
    results = {"trilinear": ndimage.map_coordinates(small, q.T, order=1),
               "cubic B-spline": ndimage.map_coordinates(ndimage.spline_filter(small, 3, mode="mirror"), q.T,
                                                         order=3, mode="mirror", prefilter=False)}
    t0 = time.perf_counter()
    content = fit_map(decimated, preset_options(preset, device="cpu"))
    wall = time.perf_counter() - t0
    results[preset] = Engine.from_content(content).evaluate(np.asarray(g.origin) + idx * np.asarray(g.voxel_size),
                                                            gradient=False)[0]
    mae = {label: float(np.mean(np.abs(v - truth)) / span) for label, v in results.items()}
    return {"map": name, "grid": list(g.grid_shape), "voxel": list(g.voxel_size), "contour": contour,
            "scored_voxels": int(len(truth)), "mae_fraction_of_range": mae, "convert_s": round(wall, 2)}


def main(argv: list[str] | None = None) -> None:
    args = real_map_arguments(__doc__, [k for k in MAP_FILES if k != "5168"], argv)
    cases = []
    for name in args.maps:
        cases.append(one_map(name, args.preset))
        print(f"{name}: {cases[-1]['mae_fraction_of_range']}", file=sys.stderr, flush=True)
    wins = sum(c["mae_fraction_of_range"][args.preset] <= c["mae_fraction_of_range"]["cubic B-spline"] for c in cases)
    out = results_dir("decimation", args.out)
    write_json(out / "decimation.json", {"preset": args.preset, "cases": cases,
                                         "preset_at_or_below_cubic": f"{wins} of {len(cases)}"}, "decimation")
    labels = list(cases[0]["mae_fraction_of_range"])
    rows = ["| map | scored voxels | " + " | ".join(labels) + f" | {args.preset} ÷ cubic |",
            "|---|---|" + "---|" * (len(labels) + 1)]
    for c in cases:
        m = c["mae_fraction_of_range"]
        rows.append(f"| {c['map']} | {c['scored_voxels']} | " + " | ".join(f"{m[k]:.4f}" for k in labels)
                    + f" | {m[args.preset] / m['cubic B-spline']:.3f} |")
    text = "\n".join(rows) + (f"\n\nMAE at the removed voxels above the contour, as a fraction of the map's range; "
                              f"{args.preset} at or below the cubic B-spline on {wins} of {len(cases)} maps.\n")
    (out / "decimation.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
