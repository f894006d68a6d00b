"""A slice through a .nemap map as a PNG (matplotlib): source voxels, the map, their difference.

The slice is the voxel plane of the source map (or, without a source, of the neural map's own grid)
nearest to the requested Å coordinate; the neural map is evaluated at exactly those voxel centres,
so the difference panel is the error at voxel centres. Points (graph nodes or atoms from a PDB/mmCIF,
or ``pos`` [N, 3] Å from an .npz) within half a voxel (at least 0.5 Å; or ``within`` Å) of the plane
are overlaid.
Image axes are the two in-plane axes in Å, in (x, y, z) order.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from nemap.errors import NemapError, check_number, require
from nemap.format.geometry import Geometry, Grid

AXES = "xyz"


def parse_slice(text: str) -> tuple[int, float]:
    """'z=12.5' → (2, 12.5) (axis index, Å)."""
    name, _, value = text.partition("=")
    name = name.strip().lower()
    try:
        if name not in AXES or not value or not math.isfinite(float(value)):
            raise ValueError
        return AXES.index(name), float(value)
    except ValueError:
        raise NemapError(f"'slice' takes AXIS=Å with AXIS one of x, y, z (e.g. z=12.5), got {text!r}",
                         code="BAD_ARGUMENT") from None


def load_points(path: str | os.PathLike) -> np.ndarray:
    """Å positions [N, 3] from .npz (array ``pos``) or a PDB/mmCIF file (every atom, via gemmi)."""
    p = os.fspath(path)
    if p.endswith(".npz"):
        try:
            with np.load(p) as data:
                return np.asarray(data["pos"], dtype=np.float64).reshape(-1, 3)
        except (OSError, KeyError, ValueError) as exc:
            raise NemapError(f"not an .npz with a 'pos' array ({exc})", path=p, code="BAD_ARGUMENT") from None
    from nemap.tools.simulate import read_atoms

    return read_atoms(p)[0]


def slice_plot(nemap_path: str | os.PathLike, out: str | os.PathLike, axis: int, value: float, *,
               source: str | os.PathLike | None = None, points: str | os.PathLike | None = None,
               within: float | None = None, force: bool = False, ignore_cell_angles: bool = False) -> dict:
    """Write the PNG; returns what was drawn (plane index, Å, RMSE and max |error| on it).
    axis: 0, 1, 2 for x, y, z; value: the plane's position in Å (the nearest voxel plane is drawn);
    ignore_cell_angles: read a non-orthogonal source cell as if its angles were 90° (``read_mrc``)."""
    from nemap.files import check_output_path
    from nemap.io.mrc import read_mrc
    from nemap.map.neuralmap import open as open_nemap

    out = check_output_path(out, force)
    if within is not None:
        check_number("within", within, at_least=0, unit="Å")
    with open_nemap(nemap_path) as m:
        grid = read_mrc(source, ignore_cell_angles=ignore_cell_angles) if source is not None else None
        g = grid.geometry if grid is not None else m.geometry
        k = _plane_index(g, axis, value, nemap_path)
        neural = _neural_plane(m, g, axis, k)
        label = f"{m.representation.name} map"
    plane = float(g.origin[axis] + k * g.voxel_size[axis])
    drawn: dict[str, Any] = {"axis": AXES[axis], "index": k, "position": plane}
    panels = _panels(neural, grid, axis, k, drawn, label)
    overlay = None
    if points is not None:
        pos = load_points(points)
        near = np.abs(pos[:, axis] - plane) <= (within if within is not None else max(0.5 * g.voxel_size[axis], 0.5))
        overlay = pos[near]
        drawn["points_on_plane"] = int(near.sum())
    _draw(panels, overlay, g, axis, f"{Path(nemap_path).name}: {AXES[axis]} = {plane:.2f} Å (voxel plane {k})",
          out, force)
    return drawn


def _plane_index(g: Geometry, axis: int, value: float, path: str | os.PathLike) -> int:
    """The voxel plane nearest to ``value`` Å along ``axis``; refused outside the map."""
    k = int(round((value - g.origin[axis]) / g.voxel_size[axis]))
    if not 0 <= k < g.grid_shape[axis]:
        lo, hi = g.origin[axis], g.origin[axis] + (g.grid_shape[axis] - 1) * g.voxel_size[axis]
        raise NemapError(f"{AXES[axis]} = {value:g} Å is outside the map ({lo:.2f} … {hi:.2f} Å)",
                         path=path, code="BAD_ARGUMENT", parameter="slice")
    return k


def _neural_plane(m: Any, g: Geometry, axis: int, k: int) -> np.ndarray:
    """The neural map's density on voxel plane k of grid g (indexed [a, b], the other two axes in order)."""
    a, b = [i for i in range(3) if i != axis]
    ia, ib = np.arange(g.grid_shape[a]), np.arange(g.grid_shape[b])
    q = np.zeros((len(ia), len(ib), 3))
    q[..., a], q[..., b] = np.meshgrid(ia, ib, indexing="ij")
    q[..., axis] = k
    return m.density(g.to_physical(q.reshape(-1, 3))).reshape(len(ia), len(ib))


def _panels(neural: np.ndarray, grid: Grid | None, axis: int, k: int, drawn: dict[str, Any],
            label: str = "map") -> list[tuple[str, np.ndarray]]:
    """(title, image) per panel — the map's plane titled ``label`` (its kind: "spline map", "siren map"); with a
    source grid, the source's plane and the difference too (RMSE and max |error| added to ``drawn``)."""
    if grid is None:
        return [(label, neural)]
    src = np.take(grid.values, k, axis=axis).astype(np.float64)
    diff = neural - src
    ok = np.isfinite(diff)
    drawn.update(rmse=float(np.sqrt(np.mean(diff[ok] ** 2))) if ok.any() else float("nan"),
                 max_abs_error=float(np.max(np.abs(diff[ok]))) if ok.any() else float("nan"))
    return [("source voxels", src), (label, neural), (f"{label} − source", diff)]


def _draw(panels: list[tuple[str, np.ndarray]], overlay: np.ndarray | None, g: Geometry, axis: int, title: str,
          out: Path, force: bool) -> None:
    """The panels side by side (one grey scale for source and neural, a diverging one for the difference)."""
    matplotlib = require("matplotlib", "plot", "plot")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from nemap.files import atomic_output

    a, b = [i for i in range(3) if i != axis]
    n_a, n_b = panels[0][1].shape
    extent = [g.origin[a], g.origin[a] + (n_a - 1) * g.voxel_size[a],
              g.origin[b], g.origin[b] + (n_b - 1) * g.voxel_size[b]]
    shown = np.concatenate([p[1].ravel() for p in panels[:2]])
    shown = shown[np.isfinite(shown)]
    vmin, vmax = (float(shown.min()), float(shown.max())) if shown.size else (0.0, 1.0)
    fig, axs = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 4.2), squeeze=False)
    for ax, (name, img) in zip(axs[0], panels):
        if name.startswith("neural −"):
            lim = float(np.nanmax(np.abs(img))) or 1.0
            im = ax.imshow(img.T, origin="lower", extent=extent, cmap="RdBu_r", vmin=-lim, vmax=lim)
        else:
            im = ax.imshow(img.T, origin="lower", extent=extent, cmap="gray", vmin=vmin, vmax=vmax)
        if overlay is not None and len(overlay):
            ax.scatter(overlay[:, a], overlay[:, b], s=8, c="tab:orange", edgecolors="none")
        ax.set(title=name, xlabel=f"{AXES[a]} (Å)", ylabel=f"{AXES[b]} (Å)")
        fig.colorbar(im, ax=ax, shrink=0.8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    with atomic_output(out, force=force) as partial:
        fig.savefig(partial, dpi=110, format="png")
    plt.close(fig)


def fsc_plot(curve: Any, out: str | os.PathLike, *, force: bool = False) -> None:
    """FSC against frequency (Å⁻¹; resolution in Å on the top axis), with the 0.143 and 0.5 lines; with a
    mask also the masked, phase-randomized and corrected curves."""
    matplotlib = require("matplotlib", "plot", "plot")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from nemap.files import atomic_output, check_output_path

    check_output_path(out, force)
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, values in curve.columns().items():
        if name.startswith("fsc"):
            ax.plot(curve.frequency, values, label=name.replace("_", " "))
    for t in (0.143, 0.5):
        ax.axhline(t, color="grey", lw=0.8, ls="--")
    ax.set(xlabel="spatial frequency (Å⁻¹)", ylabel="FSC", ylim=(-0.1, 1.05))
    top = ax.secondary_xaxis("top", functions=(lambda s: 1 / np.maximum(s, 1e-6), lambda r: 1 / np.maximum(r, 1e-6)))
    top.set_xlabel("resolution (Å)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_output(out, force=force) as partial:
        fig.savefig(partial, dpi=110, format="png")
    plt.close(fig)
