"""End-to-end `nemap convert` of whole real maps: wall time, peak memory, regions stored as B-splines or
networks vs constants, file size.

    python -m benchmarks.whole_maps [--maps 6272 5778 0093] [--preset spline] [--out DIR] [--toy]

Each conversion runs as its own process (`nemap convert IN OUT --preset P --force`, through a two-line
wrapper that reports the process's own peak resident memory, ru_maxrss). The MRC → .nemap time includes reading,
fitting, the fidelity
check at every voxel centre and writing. Writes OUT/whole_maps.json and OUT/whole_maps.md.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nemap
from benchmarks.common import MAP_FILES, SHARED, real_map_arguments, results_dir, write_json

WRAPPER = ("import resource, sys\nfrom nemap.cli import main\nrc = main(sys.argv[1:])\n"
           "print('peak_kib', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\nsys.exit(rc)")


def convert(name: str, preset: str, work: Path) -> dict:
    src, dst = SHARED / MAP_FILES[name], work / f"{name}.nemap"
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-c", WRAPPER, "convert", str(src), str(dst), "--preset", preset, "--force",
                        "-q"], capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        raise SystemExit(f"whole_maps: converting {src} failed: {r.stderr.strip()[-500:]}")
    peak_kib = int(r.stderr.strip().splitlines()[-1].split()[-1])
    with nemap.open(dst) as m:
        regions = m.regions
        fidelity = m.provenance.get("fidelity", {}).get("overall", {})
        return {"map": name, "grid": list(m.geometry.grid_shape), "preset": preset, "wall_s": round(wall, 1),
                "peak_rss_mib": round(peak_kib / 1024, 1),
                "regions": regions.count, "regions_stored": regions.network_count,
                "regions_constant": regions.count - regions.network_count,
                "file_mib": round(dst.stat().st_size / 2**20, 1), "source_mib": round(src.stat().st_size / 2**20, 1),
                "max_error_fraction_of_range": fidelity.get("max_abs_error_fraction_of_range")}


def main(argv: list[str] | None = None) -> None:
    args = real_map_arguments(__doc__, ["6272", "5778", "0093"], argv)
    cases = []
    with tempfile.TemporaryDirectory(prefix="nemap-whole-maps-") as work:
        for name in args.maps:
            cases.append(convert(name, args.preset, Path(work)))
            print(f"{name}: {cases[-1]}", file=sys.stderr, flush=True)
    out = results_dir("whole_maps", args.out)
    write_json(out / "whole_maps.json", {"cases": cases}, "whole_maps")
    rows = ["| map | grid | preset | wall (s) | peak memory (MiB) | regions: stored / constant | file (MiB) | "
            "source (MiB) | max error at voxels (of range) |", "|---|---|---|---|---|---|---|---|---|"]
    for c in cases:
        rows.append(f"| {c['map']} | {'×'.join(map(str, c['grid']))} | {c['preset']} | {c['wall_s']} | "
                    f"{c['peak_rss_mib']} | "
                    f"{c['regions_stored']} / {c['regions_constant']} | {c['file_mib']} | {c['source_mib']} | "
                    f"{c['max_error_fraction_of_range']:.2e} |")
    text = "\n".join(rows) + "\n\nPeak memory: the converting process's maximum resident set (ru_maxrss).\n"
    (out / "whole_maps.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
