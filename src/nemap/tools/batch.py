"""Many maps at once: the work behind ``nemap convert-many INPUTS... --out DIR``.

Each input (an MRC file, a glob, or a list file of one path per line) becomes DIR/STEM.nemap. Without a
scheduler the maps are converted one after another in this process; with one, the regions of all maps form
one stream of tasks, interleaved across a few maps at a time (so that the workers stay busy while the
client holds only those maps), and each map is written as soon as its last region arrives. A map that
cannot be converted (unreadable, too large, a failed task) is reported and skipped; the others go on.
DIR/summary.json (map, output, status, regions, seconds, fidelity, error) is written at the start and
rewritten as each map finishes. Running the same command again skips the maps already written and resumes
the others from their resume folders.
"""

from __future__ import annotations

import glob
import json
import logging
import os
import sys
import time
from collections import deque
from collections.abc import Hashable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nemap.errors import ArgumentError, NemapError
from nemap.files import replace_atomically
from nemap.fit.options import FitOptions
from nemap.fit.region import RegionFit
from nemap.fit.tasks import RegionTask
from nemap.io.mrc import map_stem
from nemap.tools.convert import Conversion, finish_conversion, start_conversion

log = logging.getLogger("nemap")

LIST_SUFFIXES = (".txt", ".lst", ".list")
BREADTH = 3  # maps whose regions are interleaved at a time


def expand_inputs(inputs: Sequence[str | os.PathLike]) -> list[Path]:
    """Files, globs (expanded here, sorted) and list files (one path per line, relative to the list file,
    blank lines and lines starting with # ignored), in order, without repeats."""
    out = [p for item in map(str, inputs) for p in _expand(item)]
    seen: set[Path] = set()
    return [p for p in out if not (p in seen or seen.add(p))]


def _expand(item: str) -> list[Path]:
    path = Path(item)
    if path.suffix.lower() in LIST_SUFFIXES and path.is_file():
        lines = [ln.strip() for ln in path.read_text().splitlines()]
        return [path.parent / ln for ln in lines if ln and not ln.startswith("#")]
    if any(c in item for c in "*?[") and not path.exists():
        matches = sorted(glob.glob(item))
        if not matches:
            raise ArgumentError(f"{item!r} matches no file", parameter="inputs")
        return [Path(m) for m in matches]
    return [path]


def output_paths(inputs: list[Path], out_dir: Path) -> list[Path]:
    """DIR/STEM.nemap for every input; ArgumentError when two inputs would write the same file."""
    outputs = [out_dir / (map_stem(p) + ".nemap") for p in inputs]
    first: dict[Path, Path] = {}
    for src, dst in zip(inputs, outputs):
        if dst in first:
            raise ArgumentError(f"{first[dst]} and {src} would both be written to {dst}; rename one",
                                parameter="inputs")
        first[dst] = src
    return outputs


@dataclass
class Batch:
    """The maps of a batch and their rows of the summary, written to ``summary`` as they change."""

    summary: Path
    rows: list[dict[str, Any]]
    started: dict[int, float] = field(default_factory=dict)

    def write(self) -> None:
        counts: dict[str, int] = {}
        for row in self.rows:
            counts[row["status"]] = counts.get(row["status"], 0) + 1
        text = json.dumps({"maps": self.rows, "counts": counts}, indent=1)
        replace_atomically(self.summary, lambda tmp: tmp.write_text(text))

    def set(self, m: int, **values: Any) -> None:
        self.rows[m].update(values)
        if values.get("status") in ("done", "failed") and m in self.started:
            self.rows[m]["seconds"] = round(time.perf_counter() - self.started[m], 2)
        self.write()
        if values.get("status") == "done":
            log.info("%s → %s: %d regions, %.1f s", self.rows[m]["map"], self.rows[m]["output"],
                     self.rows[m]["regions"], self.rows[m].get("seconds", 0.0))
        elif values.get("status") == "failed":
            log.error("%s (skipped)", self.rows[m]["error"])


def convert_many(inputs: Sequence[str | os.PathLike], out_dir: str | os.PathLike, options: FitOptions, *,
                 scheduler: Any = None, force: bool = False, progress: bool = True,
                 command: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Convert every input map into ``out_dir`` (see the module docstring); returns the summary's rows."""
    out_dir = Path(out_dir)
    sources = expand_inputs(inputs)
    if not sources:
        raise ArgumentError("no input maps", parameter="inputs")
    outputs = output_paths(sources, out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    batch = Batch(out_dir / "summary.json", [{"map": str(s), "output": str(d), "status": "pending"}
                                             for s, d in zip(sources, outputs)])
    for m, dst in enumerate(outputs):
        if dst.exists() and not force:
            batch.rows[m]["status"] = "exists"
    batch.write()
    todo = [m for m, row in enumerate(batch.rows) if row["status"] == "pending"]
    bar = _Bar(progress, len(todo))
    try:
        if scheduler is None:
            _serial(batch, todo, sources, outputs, options, force, command, bar)
        else:
            _on_cluster(batch, todo, sources, outputs, options, force, command, scheduler, bar)
    finally:
        bar.close()
    return batch.rows


def _serial(batch: Batch, todo: list[int], sources: list[Path], outputs: list[Path], options: FitOptions,
            force: bool, command: Sequence[str] | None, bar: _Bar) -> None:
    for m in todo:
        batch.started[m] = time.perf_counter()
        try:
            conv = start_conversion(sources[m], outputs[m], options, force=force, command=command)
            batch.set(m, status="running", regions=conv.job.total)
            bar.add(conv.job.total, conv.job.done)
            conv.job.fit_here(lambda done, total, stats: bar.region_done() if stats else None)
            header = finish_conversion(conv)
        except NemapError as exc:
            batch.set(m, status="failed", error=str(exc.with_path(sources[m])))
        else:
            batch.set(m, status="done", **_result(header))
        bar.map_done()


def _on_cluster(batch: Batch, todo: list[int], sources: list[Path], outputs: list[Path], options: FitOptions,
                force: bool, command: Sequence[str] | None, scheduler: Any, bar: _Bar) -> None:
    from nemap.tools.distributed import Cluster

    own = isinstance(scheduler, str)
    cluster = Cluster(scheduler) if own else scheduler
    open_maps: dict[int, Conversion] = {}

    def finish(m: int) -> None:
        conv = open_maps.pop(m)
        try:
            header = finish_conversion(conv)
        except NemapError as exc:
            batch.set(m, status="failed", error=str(exc.with_path(conv.src)))
        else:
            batch.set(m, status="done", **_result(header))
        bar.map_done()

    def opened() -> Iterator[tuple[int, Iterator[RegionTask]]]:
        for m in todo:
            batch.started[m] = time.perf_counter()
            try:
                conv = start_conversion(sources[m], outputs[m], options, force=force, command=command,
                                        elsewhere=True)
            except NemapError as exc:
                batch.set(m, status="failed", error=str(exc.with_path(sources[m])))
                bar.map_done()
                continue
            conv.job.workers = workers
            open_maps[m] = conv
            batch.set(m, status="running", regions=conv.job.total)
            bar.add(conv.job.total, conv.job.done)
            if conv.job.done == conv.job.total:
                finish(m)
                continue
            yield m, conv.job.tasks()

    def arrived(key: Hashable, fit: RegionFit) -> None:
        m = key[0]  # type: ignore[index]
        if m not in open_maps:  # the map failed meanwhile
            return
        open_maps[m].job.record(fit)
        bar.region_done()
        if open_maps[m].job.done == open_maps[m].job.total:
            finish(m)

    def failed(key: Hashable, exc: BaseException) -> None:
        m = key[0]  # type: ignore[index]
        if open_maps.pop(m, None) is not None:
            batch.set(m, status="failed", error=f"{sources[m]}: region {key[1]} failed: {exc}")  # type: ignore[index]
            bar.map_done()

    try:
        workers = cluster.describe()
        log.info("%d map(s) on %d Dask worker(s) (%s)", len(todo), workers["count"], cluster.address)
        cluster.run(interleave(opened()), arrived, failed)
    finally:
        if own:
            cluster.close()


def interleave(maps: Iterator[tuple[int, Iterator[RegionTask]]], breadth: int = BREADTH
               ) -> Iterator[tuple[tuple[int, int], RegionTask]]:
    """((map, region), task) taking one task from each of ``breadth`` maps in turn; the next map opens when
    one runs out."""
    active: deque[tuple[int, Iterator[RegionTask]]] = deque()
    more = True
    while True:
        while more and len(active) < breadth:
            nxt = next(maps, None)
            if nxt is None:
                more = False
            else:
                active.append(nxt)
        if not active:
            return
        m, tasks = active.popleft()
        task = next(tasks, None)
        if task is not None:
            active.append((m, tasks))
            yield (m, task.index), task


def _result(header: dict[str, Any]) -> dict[str, Any]:
    """The summary's figures of a written map."""
    fid = header["provenance"]["fidelity"]
    out = {"regions": header["regions"]["count"], "error": None,
           "fidelity": {k: fid["overall"][k] for k in ("rmse", "max_abs_error_fraction_of_range", "correlation")}}
    if "fsc" in fid:
        out["fidelity"]["fsc_resolution_05"] = fid["fsc"]["resolution_05"] if fid["fsc"]["crossed_05"] else None
    return out


class _Bar:
    """Overall progress on stderr: regions fitted and maps finished (tqdm); silent when not wanted."""

    def __init__(self, enabled: bool, maps: int):
        self.bar = None
        self.maps, self.finished = maps, 0
        if enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=0, unit="region", desc=f"maps 0/{maps}", file=sys.stderr, dynamic_ncols=True,
                            mininterval=0.5)

    def add(self, total: int, done: int) -> None:
        if self.bar is not None:
            self.bar.total += total
            self.bar.update(done)

    def region_done(self) -> None:
        if self.bar is not None:
            self.bar.update(1)

    def map_done(self) -> None:
        self.finished += 1
        if self.bar is not None:
            self.bar.set_description(f"maps {self.finished}/{self.maps}")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
