"""Making SIREN regions: one sine-activated network per region, fitted to its voxels by the paper's full-batch
recipe (``paper``) or by mini-batches between voxel centres (``sampled``). The training loops are
``nemap.fit.full_batch`` and ``nemap.fit.sampled`` (torch); this module plans, stacks and describes them."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from nemap.fit.kinds.base import RegionMaker
from nemap.fit.plan import plan_regions
from nemap.format.content import NeuralMapContent


def stacked_content(job: Any, tiling: str) -> NeuralMapContent:
    """The content of the fitted map: networks stacked in region order, constants elsewhere (a constant map:
    every region holds −1, the normalized value of its one density)."""
    grid, normalization, plan, options, constant = job.grid, job.normalization, job.plan, job.options, job.constant
    layers = options.layers()
    slots = [r for r in range(plan.total) if r in plan.fits]
    weights = [np.stack([plan.fits[r].weights[i] for r in slots]) if slots else
               np.zeros((0, lay.out_features, lay.in_features), np.float32) for i, lay in enumerate(layers)]
    biases = [np.stack([plan.fits[r].biases[i] for r in slots]) if slots else
              np.zeros((0, lay.out_features), np.float32) for i, lay in enumerate(layers)]
    regions = plan_regions(plan, slots, options, tiling, -1.0 if constant else 0.0)
    return NeuralMapContent(grid.geometry, normalization, regions, layers, weights, biases)


class SirenMaker(RegionMaker):
    """SIREN regions fitted by ``method`` ("paper": full batch at the voxel centres; "sampled": mini-batches of
    points between them supervised by the cubic B-spline of the voxels)."""

    tiling = "paper-eq3"
    trains = True

    def __init__(self, method: str):
        self.method = method

    def start_message(self, options: Any, regions: int, where: str) -> str:
        return (f"fitting {regions} region(s) of ≤ {options.max_region_size} voxels per axis on {where} "
                f"({options.preset} preset, {options.width}×{options.sine_layers} sine, ω0 = {options.omega:g})")

    def assemble(self, job: Any) -> NeuralMapContent:
        return stacked_content(job, self.tiling)

    def record(self, options: Any, plan: Any, device: Any) -> dict[str, Any]:
        import torch

        return {
            "options": self.recorded_options(options),
            "initialization": "SIREN (first layer U(±1/in), later U(±√(6/in)/ω), biases U(±1/√in))",
            "optimizer": {"name": "Adam", "betas": [0.9, 0.999], "eps": 1e-8, "learning_rate": options.learning_rate},
            **self.recipe(options),
            "device": str(device),
            "precision": "float32 (no TF32)",
            "torch": torch.__version__,
            "regions": [dict(plan.fits[r].stats, region=r) if r in plan.fits else
                        {"region": r,
                         "stop_reason": "flat" if r in plan.flat else "constant"} for r in range(plan.total)],
        }

    def recipe(self, options: Any) -> dict[str, Any]:
        """The loss and stop rule of a fit, as recorded in the provenance."""
        if self.method == "sampled":
            return {"loss": (f"MSE on the [−1, 1] scale over mini-batches of {options.points_per_step} points drawn "
                             f"from the voxel centres and {options.pool_factor:g} random points per voxel between "
                             "them; targets between voxel centres are the cubic B-spline interpolant of the voxels"),
                    "learning_rate_schedule": {"name": "cosine", "from": options.learning_rate,
                                               "to": options.final_learning_rate, "steps": options.max_steps},
                    "stop_rule": {"heldout_points": options.heldout_points, "eval_every": options.eval_every,
                                  "patience": options.patience, "max_steps": options.max_steps,
                                  "flat_tolerance": options.flat_tolerance, "keeps": "best held-out weights"}}
        return {"loss": "MSE over all voxels of the region (full batch), on the [−1, 1] scale",
                "stop_rule": {"exit_loss": options.exit_loss, "plateau_loss": options.plateau_loss,
                              "patience": options.patience, "max_steps": options.max_steps,
                              "flat_tolerance": options.flat_tolerance, "keeps": "best weights"}}

    def recorded_options(self, options: Any) -> dict[str, Any]:
        d = dataclasses.asdict(options)
        for machine_only in ("device", "batch_regions", "chunk_voxels", "spline_order", "tolerance", "fsc_floor",
                             "lossless"):
            d.pop(machine_only)
        unused = (("points_per_step", "pool_factor", "heldout_points", "eval_every", "final_learning_rate")
                  if self.method == "paper" else ("exit_loss", "plateau_loss"))
        for name in unused:
            d.pop(name)
        return d

    def memory_bytes(self, grid_shape: tuple[int, int, int], options: Any, batch: int = 1) -> int:
        """The grid (values, targets, decoded copy) plus the training activations of one batch of regions."""
        voxels = int(np.prod(grid_shape))
        region = min(options.chunk_voxels, int(np.prod([min(n, options.max_region_size) for n in grid_shape])))
        activations = batch * region * options.width * 4 * (3 * options.sine_layers + 2)
        return 4 * voxels * 4 + activations + 64 * 2**20
