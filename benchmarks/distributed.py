"""Fitting on a Dask cluster: 16 regions on 1 vs 2 local workers, and the cost of a task.

    python -m benchmarks.distributed [--steps 300] [--out DIR] [--toy]

1. A synthetic map of 16 regions (small preset, no early stop: every region runs the same number of steps)
   fitted in this process (``nemap convert`` without a scheduler: torch's default threads, and 1 thread), then
   on ``local:1`` and ``local:2`` (worker processes with one Dask thread each; torch threads = cores ÷ workers):
   wall time, speed-up of 2 workers over 1, and the overhead per task: the time a worker slot spends on a task
   beyond the region's own fit, (wall × workers − Σ fit times) / regions. Cluster start-up is reported apart.
2. Scheduling overhead per region: 64 regions (8 voxels per axis) of one step each on ``local:2``, the same
   formula.
Writes OUT/distributed.json and OUT/distributed.md.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from benchmarks.common import results_dir, write_json
from fixtures.synthetic_maps import chain_map
from nemap.fit.fit_map import MapFit
from nemap.fit.options import options_for
from nemap.tools.distributed import Cluster, fit_on_cluster

SHAPE = (36, 36, 12)  # 16 regions of ≤ 12 voxels per axis (4 × 4 × 1)


def job(steps: int, region: int = 12, shape: tuple[int, int, int] = SHAPE) -> MapFit:
    grid, _ = chain_map(shape, resolution=4.0, seed=1, margin=0.0, atoms=int(shape[0] * shape[1] * shape[2] / 60))
    options = options_for("siren-tiny", device="cpu", max_steps=steps, exit_loss=1e-30, plateau_loss=1e-30,
                          max_region_size=region)  # no early stop: every region runs ``steps`` steps
    return MapFit(grid, options)


def in_process(steps: int, threads: int | None) -> dict[str, float]:
    previous = torch.get_num_threads()
    torch.set_num_threads(threads or previous)
    try:
        j = job(steps)
        t0 = time.perf_counter()
        j.fit_here()
        return {"threads": torch.get_num_threads(), "fit_s": time.perf_counter() - t0, "regions": j.total}
    finally:
        torch.set_num_threads(previous)


def on_cluster(address: str, steps: int, **shape: int) -> dict[str, float]:
    t0 = time.perf_counter()
    with Cluster(address) as cluster:
        start = time.perf_counter() - t0
        j = job(steps, **shape)
        t1 = time.perf_counter()
        fit_on_cluster(j, cluster)
        wall = time.perf_counter() - t1
    fits = [f.stats["wall_time_s"] for f in j.plan.fits.values()]
    workers = j.workers["count"]
    return {"start_s": start, "fit_s": wall, "regions": j.total, "workers": workers,
            "torch_threads": sorted({f.stats["torch_threads"] for f in j.plan.fits.values()}),
            "overhead_per_task_s": (wall * workers - sum(fits)) / j.total}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=300, help="steps per region (all regions run them all)")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--toy", action="store_true", help="CI smoke run: 5 steps per region")
    args = ap.parse_args(argv)
    steps = 5 if args.toy else args.steps
    here, here_1 = in_process(steps, None), in_process(steps, 1)
    one, two = on_cluster("local:1", steps), on_cluster("local:2", steps)
    tiny = on_cluster("local:2", 1, region=8, shape=(20, 20, 20))  # 64 regions
    result = {"regions": here["regions"], "steps": steps, "in_process": here, "in_process_1_thread": here_1,
              "local_1": one, "local_2": two, "speed_up_2_over_1": one["fit_s"] / two["fit_s"],
              "speed_up_2_over_in_process": here["fit_s"] / two["fit_s"], "scheduling": tiny}
    out = results_dir("distributed", args.out)
    write_json(out / "distributed.json", result, "distributed")
    ms = lambda r: f"{1000 * r['overhead_per_task_s']:.0f}"  # noqa: E731
    text = "\n".join([
        f"{here['regions']} regions × {steps} steps (small preset, 64×3 sine, 12³ regions):", "",
        "| where | torch threads per fit | fit (s) | overhead per task (ms) | cluster start (s) |",
        "|---|---|---|---|---|",
        f"| in process | {here['threads']} | {here['fit_s']:.2f} | — | — |",
        f"| in process | 1 | {here_1['fit_s']:.2f} | — | — |",
        f"| local:1 | {one['torch_threads']} | {one['fit_s']:.2f} | {ms(one)} | {one['start_s']:.2f} |",
        f"| local:2 | {two['torch_threads']} | {two['fit_s']:.2f} | {ms(two)} | {two['start_s']:.2f} |", "",
        f"speed-up of 2 workers over 1: {result['speed_up_2_over_1']:.2f}×; over the in-process fit: "
        f"{result['speed_up_2_over_in_process']:.2f}×; {tiny['regions']} one-step regions of 8³ on local:2: "
        f"{ms(tiny)} ms of overhead per region", ""])
    (out / "distributed.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
