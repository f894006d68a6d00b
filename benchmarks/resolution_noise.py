"""How the default resolution estimate holds as noise grows: whole simulated maps at three noise strengths, and the
held-out simulated patches by their signal-to-noise ratio.

    python -m benchmarks.resolution_noise [--count 400] [--out DIR] [--toy]

1. Whole maps (``training.whole_maps``: the held-out molecule in a 64 Å box, 1 Å voxels) at 3–16 Å, white or
   coloured noise (correlated over 1 Å) of SD LEVELS × the density's peak, no mask or a 3 Å zone; seeds apart from
   ``resolution_models``'s. Each map's signal-to-noise ratio is the SD of the noise-free density inside the
   molecule over the noise's SD (EMD-5168, the unmasked real map: noise SD 3.1 % of its peak, SD of the density
   outside its solvent 4.1× the solvent's). Scored against the nominal resolution and, for unmasked maps, beside
   what the FSC of simulated half maps reads inside the molecule's soft envelope (``resolution_models.masked_fsc``),
   and whether the estimate warned that the noise dominates the band it read (``estimate.noise_dominates``).
2. The held-out patches of ``resolution_models`` (``training.resolution_data`` test split, seed 1) read by the
   default model's network, grouped by noise kind and SNR (the recipe's: signal SD inside the molecule over noise
   SD, log-uniform in 0.3–20; post-processed and clean patches apart).
Writes OUT/resolution_noise.json and OUT/resolution_noise.md.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np

from benchmarks.common import markdown_table, num, require_shared, write_results
from benchmarks.resolution_models import masked_fsc
from nemap.resolution import models
from nemap.resolution.classes import classify, resolution_class
from nemap.resolution.estimate import DEFAULT_MODEL, estimate
from training import resolution_data, whole_maps
from training.train_resolution import per_sample

LEVELS = (0.03, 0.1, 0.3)  # noise SD over the density's peak
RESOLUTIONS = (3.0, 4.5, 6.0, 8.0, 12.0, 16.0)  # Å
SEED = 1000  # whole maps: seed SEED + case number
SNR_BANDS = ((0.0, 1.0), (1.0, 3.0), (3.0, 10.0), (10.0, np.inf))


def whole_cases(toy: bool) -> list[whole_maps.Case]:
    """Every noise level × colour × mask × resolution (toy: 8 Å, unmasked, one level)."""
    levels, masks, bands = ((0.1,), ("none",), (8.0,)) if toy else (LEVELS, ("none", "zone"), RESOLUTIONS)
    return [whole_maps.Case(r, kind, mask, level=level) for level in levels for kind in ("white", "coloured")
            for mask in masks for r in bands]


def whole(toy: bool) -> list[dict]:
    """The default estimate of every whole-map case."""
    atoms = whole_maps.molecule()
    rows = []
    for i, case in enumerate(whole_cases(toy)):
        grid, near, halves = whole_maps.simulate(case, seed=SEED + i, atoms=atoms, halves=case.mask == "none")
        clean, _, _ = whole_maps.simulate(whole_maps.Case(case.resolution, "clean"), atoms=atoms)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            e = estimate(grid)
        rows.append({"resolution": case.resolution, "noise": case.noise, "mask": case.mask, "level": case.level,
                     "snr": float(clean.values[near].std() / (case.level * clean.values.max())),
                     "global": e.global_resolution, "local_median": float(np.median(e.local.values[near])),
                     "class_right": e.global_class == classify(case.resolution), "answered_by": e.model,
                     "noise_dominated": any(n.startswith("noise-dominated") for n in e.notes),
                     "fsc_halves": masked_fsc(halves, atoms[0]) if halves is not None else None})
        print(f"whole maps: {i + 1} {case.label}, level {case.level:g}", file=sys.stderr, flush=True)
    return rows


def _rmse(values: list[float]) -> float | None:
    return float(np.sqrt(np.mean(np.square(values)))) if values else None


def whole_summary(rows: list[dict]) -> list[dict]:
    """Per noise level, colour and mask: median SNR, global and local RMSE (Å), class accuracy, and the global RMSE
    against the half maps' FSC."""
    out = []
    for key in dict.fromkeys((r["level"], r["noise"], r["mask"]) for r in rows):
        rs = [r for r in rows if (r["level"], r["noise"], r["mask"]) == key]
        out.append({"level": key[0], "noise": key[1], "mask": key[2], "maps": len(rs),
                    "snr": float(np.median([r["snr"] for r in rs])),
                    "global_rmse": _rmse([r["global"] - r["resolution"] for r in rs]),
                    "local_rmse": _rmse([r["local_median"] - r["resolution"] for r in rs]),
                    "class_accuracy": float(np.mean([r["class_right"] for r in rs])),
                    "warned": sum(r["noise_dominated"] for r in rs),
                    "fsc_rmse": _rmse([r["global"] - r["fsc_halves"] for r in rs if r["fsc_halves"]])})
    return out


def patches(count: int) -> list[dict]:
    """The default model's network on the held-out patches, by noise kind and SNR band."""
    net, recipe = models.load(DEFAULT_MODEL)
    data = resolution_data.build(count, 1, "test", voxel=models.model_voxel(recipe),
                                 resolution_range=models.training_range(recipe))
    p = per_sample(net, data, models.kind_of(net))
    truth, snr = data["global"], data["snr"]
    kinds = [resolution_data.NOISE_KINDS[k] for k in data["noise_kind"]]
    groups = {}
    for kind in resolution_data.NOISE_KINDS:
        mine = np.array([k == kind for k in kinds])
        if kind in ("clean", "postprocessed"):
            groups[kind, "—"] = mine
            continue
        for lo, hi in SNR_BANDS:
            label = f"< {hi:g}" if lo == 0 else f"≥ {lo:g}" if np.isinf(hi) else f"{lo:g}–{hi:g}"
            groups[kind, label] = mine & (snr >= lo) & (snr < hi)
    out = []
    for (kind, band), pick in groups.items():
        if not pick.any():
            continue
        n = p["n"][pick].sum()
        out.append({"noise": kind, "snr": band, "patches": int(pick.sum()),
                    "global_rmse": float(np.sqrt(np.mean((p["global"][pick] - truth[pick]) ** 2))),
                    "class_accuracy": float(np.mean(resolution_class(p["global"][pick])
                                                    == resolution_class(truth[pick]))),
                    "local_rmse_2_8": float(np.sqrt(p["sq"][pick].sum() / n)) if n else None})
    return out


def render(result: dict) -> str:
    rows = ["Whole maps (the held-out molecule in a 64 Å box, 1 Å voxels, 3–16 Å) by noise SD over the density's "
            "peak; SNR: the noise-free density's SD inside the molecule over the noise SD (median of the group); "
            "error against the nominal resolution, and the global error against the half maps' FSC (unmasked):", ""]
    rows += markdown_table(["noise SD / peak", "noise", "mask", "SNR", "maps", "global RMSE (Å)", "local RMSE (Å)",
                            "class accuracy", "global RMSE vs half maps' FSC (Å)", "warned noise-dominated"],
                           [[f"{r['level']:g}", r["noise"], r["mask"], f"{r['snr']:.2f}", r["maps"],
                             num(r["global_rmse"], ".2f"), num(r["local_rmse"], ".2f"), f"{r['class_accuracy']:.2f}",
                             num(r["fsc_rmse"], ".2f"), r["warned"]] for r in result["whole_summary"]])
    rows += ["", "Every whole map (Å):", ""]
    rows += markdown_table(["noise SD / peak", "noise", "mask", "nominal", "SNR", "estimate", "answered by",
                            "half maps' FSC", "warned"],
                           [[f"{r['level']:g}", r["noise"], r["mask"], f"{r['resolution']:g}", f"{r['snr']:.2f}",
                             f"{r['global']:.2f}", r["answered_by"], num(r["fsc_halves"], ".2f"),
                             "yes" if r["noise_dominated"] else ""] for r in result["whole"]])
    rows += ["", "Held-out patches (32 Å; the default model's network), by noise kind and SNR:", ""]
    rows += markdown_table(["noise", "SNR", "patches", "global RMSE (Å)", "class accuracy", "local RMSE 2–8 Å (Å)"],
                           [[r["noise"], r["snr"], r["patches"], f"{r['global_rmse']:.2f}",
                             f"{r['class_accuracy']:.3f}", num(r["local_rmse_2_8"], ".2f")] for r in result["patches"]])
    return "\n".join(rows) + "\n"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, default=400, help="held-out patches (default 400)")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--toy", action="store_true", help="CI smoke run: two whole maps, 16 patches")
    args = ap.parse_args(argv)
    require_shared()
    rows = whole(args.toy)
    result = {"whole": rows, "whole_summary": whole_summary(rows), "patches": patches(16 if args.toy else args.count)}
    write_results(args.out, "resolution_noise", result, render(result))


if __name__ == "__main__":
    main()
