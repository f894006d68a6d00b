"""The learned resolution estimators on held-out simulated maps, real maps, and against FSC-based local
resolution.

    python -m benchmarks.resolution_models [--count 400] [--models local] [--maps 6272 5778 0093 21457] [--out DIR]
                                           [--toy]

1. Held-out simulated maps: ``training.resolution_data`` test split (atomic models never used in training,
   seed 1): class accuracy, global RMSE (Å), local RMSE over 2–8 Å (Å), mask IoU, per model; and the same
   models simulated as the seed paper did (2.5, 7.5 or 12.5 Å everywhere, noise-free, unmasked).
2. Real maps (../shared/data): the class and the global estimate beside the deposited resolution (INDEX.md),
   with |estimate − deposited|, and the time per map.
3. Synthetic half maps whose halves are at 2.5 Å and 6 Å in two zones (fixtures.half_maps): the estimator's
   local resolution on their average against ``nemap locres`` of the halves (median per zone).
4. Time for a 256³ map (a smoothed random field).
Writes OUT/resolution_models.json and OUT/resolution_models.md.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from scipy import ndimage

from benchmarks.common import MAP_FILES, SHARED, results_dir, write_json
from fixtures.half_maps import zoned_half_maps
from nemap.format.geometry import Geometry, Grid
from nemap.io.mrc import read_mrc
from nemap.resolution import models
from nemap.resolution.estimate import estimate
from nemap.resolution.locres import local_resolution
from training import resolution_data
from training.train_resolution import evaluate

DEPOSITED = {"6272": 2.6, "5778": 3.27, "0093": 3.4, "21457": 3.2}  # Å, INDEX.md


def simulated(names: list[str], count: int, seed_protocol: bool = False) -> dict:
    data = resolution_data.build(count, 1, "test", seed_protocol=seed_protocol)
    return {name: evaluate(models.load(name)[0], data, models.KINDS[name]) for name in names}


def real(names: list[str], maps: list[str]) -> list[dict]:
    if not (SHARED / "INDEX.md").is_file():
        print(f"resolution_models: {SHARED} not found, real maps skipped", file=sys.stderr)
        return []
    rows = []
    for model in names:
        for key in maps:
            deposited = DEPOSITED[key]
            grid = read_mrc(SHARED / MAP_FILES[key])
            t0 = time.perf_counter()
            e = estimate(grid, model=model)
            rows.append({"model": model, "map": key, "deposited": deposited, "estimate": e.global_resolution,
                         "class": e.global_class,
                         "deposited_class": models.CLASSES[int(models.resolution_class(deposited))],
                         "error": abs(e.global_resolution - deposited), "seconds": time.perf_counter() - t0})
            print(rows[-1], file=sys.stderr, flush=True)
    return rows


def against_locres(names: list[str]) -> list[dict]:
    h1, h2, zone = zoned_half_maps((64, 40, 40), noise=0.5, seed=9)
    fsc_local = local_resolution(h1, h2).grid.values
    average = Grid(((h1.values + h2.values) / 2).astype(np.float32), h1.geometry)
    rows = []
    for name in (n for n in names if models.KINDS.get(n) != "class"):  # classifiers give no local map
        learned = estimate(average, model=name).local.values
        rows.append({"model": name, **{f"zone{z}_{what}": float(np.median(v[zone == z])) for z in (0, 1)
                                       for what, v in (("learned", learned), ("fsc", fsc_local))}})
    return rows


def timing(names: list[str], edge: int) -> list[dict]:
    rng = np.random.default_rng(0)
    grid = Grid(ndimage.gaussian_filter(rng.standard_normal((edge,) * 3), 1.5).astype(np.float32),
                Geometry((edge,) * 3, (1.0,) * 3))
    out = []
    for name in names:
        t0 = time.perf_counter()
        estimate(grid, model=name)
        out.append({"model": name, "edge": edge, "seconds": time.perf_counter() - t0})
    return out


def num(value, spec: str) -> str:
    """``value`` formatted, or — when the model does not predict it."""
    return "—" if value is None else format(value, spec)


def render(result: dict) -> str:
    rows = ["| model | class accuracy | global RMSE (Å) | local RMSE 2–8 Å (Å) | mask IoU | maps |",
            "|---|---|---|---|---|---|"]
    rows += [f"| {m} | {num(r['class_accuracy'], '.3f')} | {num(r['global_rmse'], '.2f')} | "
             f"{num(r['local_rmse_2_8'], '.2f')} | "
             f"{num(r['mask_iou'], '.2f')} | {r['maps']} |" for m, r in result["simulated"].items()]
    rows += ["", "The seed paper's protocol (002): held-out models at 2.5, 7.5 or 12.5 Å everywhere, noise-free, no "
             "mask (its CNN: 99.75 %, its DNN: 92.7 %):", "",
             "| model | class accuracy | global RMSE (Å) | maps |", "|---|---|---|---|"]
    rows += [f"| {m} | {num(r['class_accuracy'], '.3f')} | {num(r['global_rmse'], '.2f')} | {r['maps']} |"
             for m, r in result.get("seed_protocol", {}).items()]
    rows += ["", "| model | map | deposited (Å) | estimate (Å) | class / deposited class | seconds |",
             "|---|---|---|---|---|---|"]
    rows += [f"| {r['model']} | {r['map']} | {r['deposited']} | {r['estimate']:.2f} | {r['class']} / "
             f"{r['deposited_class']} | {r['seconds']:.1f} |" for r in result["real"]]
    rows += ["", "| model | zone at 2.5 Å: learned / FSC | zone at 6 Å: learned / FSC |", "|---|---|---|"]
    rows += [f"| {r['model']} | {r['zone0_learned']:.2f} / {r['zone0_fsc']:.2f} | {r['zone1_learned']:.2f} / "
             f"{r['zone1_fsc']:.2f} |" for r in result["against_locres"]]
    rows += ["", "| model | map | seconds |", "|---|---|---|"]
    rows += [f"| {t['model']} | {t['edge']}³ | {t['seconds']:.1f} |" for t in result["timing"]]
    return "\n".join(rows) + "\n"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, default=400)
    ap.add_argument("--models", nargs="+", default=models.available())
    ap.add_argument("--edge", type=int, default=256)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--maps", nargs="+", default=list(DEPOSITED), choices=list(DEPOSITED))
    ap.add_argument("--toy", action="store_true", help="CI smoke run: 16 simulated maps, EMD-21457, a 48³ timing")
    args = ap.parse_args(argv)
    if args.toy:
        args.count, args.edge, args.maps = 16, 48, ["21457"]
    result = {"simulated": simulated(args.models, args.count),
              "seed_protocol": simulated(args.models, args.count, seed_protocol=True),
              "real": real(args.models, args.maps),
              "against_locres": against_locres(args.models), "timing": timing(args.models, args.edge)}
    out = results_dir("resolution_models", args.out)
    write_json(out / "resolution_models.json", result, "resolution_models")
    text = render(result)
    (out / "resolution_models.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
