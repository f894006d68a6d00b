"""Every benchmark runs at toy size (--toy), so that none can rot; results go to a temporary folder
with their run record (commit, machine, command). The figures themselves are not checked here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
NEEDS_SHARED = {"graph_quality", "graph_speed", "interpolation", "region", "decimation", "whole_maps",
                "resolution_models", "resolution_noise", "compression"}
TOY_RUNS = {
    "fidelity": ["--toy"],
    "convert_speed": ["region", "--toy"],
    "graph_quality": ["--toy"],
    "graph_speed": ["--toy"],
    "interpolation": ["--toy"],
    "region": ["--toy"],
    "decimation": ["--toy"],
    "whole_maps": ["--toy"],
    "queries": ["--toy"],
    "resolution": ["--toy"],
    "resolution_models": ["--toy"],
    "resolution_noise": ["--toy"],
    "distributed": ["--toy"],
    "compression": ["--toy"],
}


def test_every_benchmark_has_a_toy_run() -> None:
    scripts = {p.stem for p in (REPO / "benchmarks").glob("*.py") if p.stem not in ("__init__", "common")}
    assert scripts == set(TOY_RUNS)


def test_every_stored_record_says_where_it_ran_or_that_it_is_historical() -> None:
    records = [p for p in (REPO / "benchmarks" / "results").rglob("*.json") if p.name != "run.json"]
    assert records
    for path in records:
        text = path.read_text()
        record = json.loads(text)
        ran = "run" in record or (path.parent / "run.json").exists()
        assert ran or {"note", "added_in"} <= set(record.get("historical", {})), path
        assert not any(home in text for home in ('"/work/', '"/root/', '"/home/', '"/tmp/')), path


@pytest.mark.parametrize("name", sorted(TOY_RUNS))
def test_benchmark_runs_at_toy_size(name: str, tmp_path: Path, request) -> None:
    if name in NEEDS_SHARED:
        request.getfixturevalue("shared_data")
    env = dict(os.environ, NEMAP_BENCHMARK_CACHE=str(tmp_path / "cache"))
    out = tmp_path / "out"
    r = subprocess.run([sys.executable, "-m", f"benchmarks.{name}", *TOY_RUNS[name], "--out", str(out)],
                       cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    records = {p.name: json.loads(p.read_text()) for p in out.glob("*.json")}
    runs = [rec for name_, rec in records.items() if name_ == "run.json"]
    runs += [rec["run"] for rec in records.values() if "run" in rec]
    assert runs and all(run["benchmark"] == name and run["command"].startswith(f"python -m benchmarks.{name}")
                        and run["machine"]["cores"] and "torch" in run["machine"] and "commit" in run for run in runs)
