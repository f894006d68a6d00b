"""What every benchmark shares: where the real data and the results live, the map table, the neural
maps cached between runs, and the record written beside every result (commit, machine, command).

Run a benchmark from the repository root as ``python -m benchmarks.NAME``; ``--toy`` runs it at a toy
size (what CI does, so that none can rot: tests/test_benchmarks.py)."""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("NEMAP_SHARED_DATA", REPO.parent / "shared" / "data"))
RESULTS = REPO / "benchmarks" / "results"
CACHE = Path(os.environ.get("NEMAP_BENCHMARK_CACHE", REPO / "benchmarks" / ".cache"))

MAPS = {  # name: (map, model, resolution Å), paths under SHARED; None: simulated from the model
    "6272": ("emd6272_rotavirus_vp6/6272_zone4A.mrc", "emd6272_rotavirus_vp6/pdb3j9s.ent", 2.6),
    "5778": ("emd5778_trpv1_chainA/5578_ChainA.mrc", "emd5778_trpv1_chainA/pdb3j5p.pdb", 3.27),
    "0093": ("emd0093_hcn4/emd_0093_m4A_chainA_crop.mrc", "emd0093_hcn4/6gyn_in_chainA_crop.pdb", 3.4),
    "21457": ("emd21457_spike_ntd_segment/emd_21457_seg.mrc", "emd21457_spike_ntd_segment/6vyb_Ndom.pdb", 3.2),
    "6z6u": (None, "models_for_simulation/6z6u.pdb", 1.25),
}
MAP_FILES = {  # whole real maps under SHARED, for the decimation and whole-map benchmarks
    "6272": "emd6272_rotavirus_vp6/6272_zone4A.mrc",
    "5778": "emd5778_trpv1_chainA/5578_ChainA.mrc",
    "0093-crop": "emd0093_hcn4/emd_0093_m4A_chainA_crop.mrc",
    "0093": "emd0093_hcn4/MAP_m4A.mrc.gz",
    "21457": "emd21457_spike_ntd_segment/emd_21457_seg.mrc",
    "5168": "emd5168_factin_lowres/emd_5168.map",
}
FIT = {"5778": {"max_region_size": 32, "max_steps": 1000}}  # per-map fit overrides (graph_quality's docstring)
TOY_FIT = {"max_steps": 5, "width": 16, "sine_layers": 2}  # the fit of every map in --toy runs


def preset_options(preset: str, **overrides: Any) -> Any:
    """The fitting options of a preset for the interpolation benchmarks: the spline preset as the interpolant itself
    (``lossless``: float32 coefficients), not its quantized storage."""
    from nemap.fit.options import options_for

    return options_for(preset, **({"lossless": True} if preset == "spline" else {}), **overrides)


def require_shared() -> None:
    """Exit with the reason when ../shared/data is absent."""
    if not (SHARED / "INDEX.md").is_file():
        sys.exit(f"benchmark: {SHARED} not found (set NEMAP_SHARED_DATA)")


def real_map_arguments(doc: str, default_maps: list[str], argv: list[str] | None) -> Any:
    """--maps (from MAP_FILES), --preset (default spline), --out, --toy (EMD-21457 only); exits without
    ../shared/data."""
    import argparse

    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--maps", nargs="+", default=default_maps, choices=list(MAP_FILES))
    ap.add_argument("--preset", default="spline")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--toy", action="store_true", help="CI smoke run: EMD-21457 only")
    args = ap.parse_args(argv)
    if args.toy:
        args.maps = ["21457"]
    require_shared()
    return args


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict[str, Any]:
    """The machine a figure was measured on."""
    import torch

    return {"cpu": cpu_model(), "cores": os.cpu_count(), "arch": platform.machine(), "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(), "cuda": torch.cuda.get_device_name(0)
            if torch.cuda.is_available() else None, "python": platform.python_version()}


def commit() -> str | None:
    """The repository's commit, with '-dirty' when the work tree differs from it."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                               capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return head.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def run_record(name: str) -> dict[str, Any]:
    """Commit, machine, command and date of this run of benchmark ``name``."""
    return {"benchmark": name, "commit": commit(), "machine": machine(),
            "command": " ".join([f"python -m benchmarks.{name}", *sys.argv[1:]]),
            "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}


def results_dir(name: str, out: Path | None) -> Path:
    """benchmarks/results/<name>/ (or ``out``), created."""
    folder = out or RESULTS / name
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def write_json(path: Path, result: dict[str, Any], name: str) -> None:
    """``result`` with its run record, as JSON."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"run": run_record(name), **result}, indent=1))


def num(value: Any, spec: str) -> str:
    """``value`` formatted, or — when there is none (a model that does not predict it)."""
    return "—" if value is None else format(value, spec)


def markdown_table(header: list[str], rows: list[list]) -> list[str]:
    """A Markdown table's lines."""
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + ["| " + " | ".join(map(str, r)) + " |"
                                                                            for r in rows]


def write_results(out: Path | None, name: str, result: dict[str, Any], text: str) -> None:
    """``result`` as OUT/NAME.json (with its run record) and ``text`` as OUT/NAME.md (OUT: ``results_dir``), the
    text printed."""
    folder = results_dir(name, out)
    write_json(folder / f"{name}.json", result, name)
    (folder / f"{name}.md").write_text(text)
    print(text)


def write_record(folder: Path, name: str) -> None:
    """run.json beside results that are not JSON themselves (tables, figures)."""
    (folder / "run.json").write_text(json.dumps(run_record(name), indent=1))


def simulated_map(resolution: float, edge: int = 64) -> Path:
    """6Z6U simulated at ``resolution`` (molmap, grid R/3) on an edge³ box around the first chain's middle atom."""
    path = CACHE / f"6z6u_sim_{resolution:g}_{edge}.mrc"
    if not path.exists():
        import numpy as np

        from nemap.format.geometry import Geometry
        from nemap.io.models import read_model
        from nemap.io.mrc import write_mrc
        from nemap.tools.simulate import simulate

        CACHE.mkdir(parents=True, exist_ok=True)
        atoms = read_model(SHARED / MAPS["6z6u"][1])
        step = resolution / 3
        # apoferritin is a hollow shell: centre the box on the first chain's middle atom, not the cavity
        first = atoms.xyz[:1000]
        centre = first[np.argmin(np.linalg.norm(first - np.median(first, axis=0), axis=1))]
        geometry = Geometry((edge,) * 3, (step,) * 3, tuple(centre - step * (edge - 1) / 2))
        grid = simulate(atoms.xyz, atoms.atomic_number, resolution, geometry=geometry)
        write_mrc(path, grid.values, grid.geometry, label="6Z6U molmap 1.25 A crop (nemap benchmark)")
    return path


def fit_label(overrides: dict) -> str:
    """Cache-name suffix and label of the overrides: '_r32_s1000' for regions ≤ 32³, 1,000 steps."""
    return (f"_r{overrides['max_region_size']}" if "max_region_size" in overrides else "") + \
           (f"_s{overrides['max_steps']}" if "max_steps" in overrides else "")


def cached_neural_map(name: str, preset: str, overrides: dict, device: str = "cpu",
                      edge: int = 64) -> tuple[Path, float | None]:
    """The neural map of ``name`` in CACHE, converted with ``preset`` and ``overrides`` if missing:
    (path, seconds the conversion took, or None when it was cached)."""
    from nemap.fit.options import options_for
    from nemap.tools.convert import mrc_to_nemap

    mrc_rel, _, resolution = MAPS[name]
    nm = CACHE / f"{name}_{preset}{fit_label(overrides)}{'' if edge == 64 else f'_edge{edge}'}.nemap"
    if nm.exists():
        return nm, None
    CACHE.mkdir(parents=True, exist_ok=True)
    mrc = simulated_map(resolution, edge) if mrc_rel is None else SHARED / mrc_rel
    t0 = time.perf_counter()
    mrc_to_nemap(mrc, nm, options_for(preset, device=device, **overrides), progress=False, resolution=resolution)
    return nm, round(time.perf_counter() - t0, 1)
