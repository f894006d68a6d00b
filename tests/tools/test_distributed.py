"""Conversion on a Dask cluster (nemap.tools.distributed) and batches of maps (nemap.tools.batch), with a
LocalCluster of two single-thread worker processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import nemap
from nemap.errors import ArgumentError
from nemap.tools.convert import mrc_to_nemap
from tests.conftest import REPO, quick

distributed = pytest.importorskip("distributed",
                                  reason="dask.distributed is not installed (pip install 'nemap[distributed]')")

from nemap.tools.batch import convert_many, expand_inputs, interleave, output_paths  # noqa: E402
from nemap.tools.distributed import Cluster  # noqa: E402

OPTIONS = dict(max_region_size=12, max_steps=40)  # the small map: 8 regions of 12 voxels


@pytest.fixture(scope="module")
def cluster():
    with Cluster("local:2") as c:
        yield c


@pytest.fixture(scope="module")
def serial(small_map, tmp_path_factory) -> dict[str, Path]:
    """The small map converted in this process, with the network presets the cluster tests use."""
    out = {}
    for preset in ("small", "quick"):
        path = tmp_path_factory.mktemp("serial") / f"{preset}.nemap"
        mrc_to_nemap(small_map, path, quick(**OPTIONS) if preset == "small" else _quick_sampled(), progress=False)
        out[preset] = path
    return out


def _quick_sampled():
    from nemap.fit.options import options_for

    return options_for("siren-sampled", device="cpu", width=32, sine_layers=2, **OPTIONS)


def _same_map(a: Path, b: Path) -> None:
    with nemap.open(a) as x, nemap.open(b) as y:
        np.testing.assert_allclose(y.engine().sample(y.geometry).values, x.engine().sample(x.geometry).values,
                                   atol=1e-5)
        rx, ry = x.provenance["training"]["regions"], y.provenance["training"]["regions"]
        assert [(r["steps"], r["stop_reason"]) for r in rx] == [(r["steps"], r["stop_reason"]) for r in ry]


@pytest.mark.parametrize("preset", ["small", "quick"])
def test_distributed_and_serial_files_agree(preset, small_map, serial, cluster, tmp_path) -> None:
    out = tmp_path / "d.nemap"
    options = quick(**OPTIONS) if preset == "small" else _quick_sampled()
    mrc_to_nemap(small_map, out, options, progress=False, scheduler=cluster)
    _same_map(serial[preset], out)
    with nemap.open(out) as m:
        training = m.provenance["training"]
        assert training["workers"] == {"scheduler": "local:2", "count": 2, "threads": 2, "hosts": 1}
        assert {r["torch_threads"] for r in training["regions"]} == {max(1, len(os.sched_getaffinity(0)) // 2)}
        assert len({r["worker"] for r in training["regions"]}) >= 1
    assert not (tmp_path / "d.nemap.resume").exists()


def test_a_killed_worker_loses_nothing(small_map, serial, cluster, tmp_path) -> None:
    pids = cluster.client.run(os.getpid)
    killed = []

    def progress(done, total, stats):
        if stats is not None and not killed:  # the first region is in: kill a worker with tasks in flight
            victim = next(pid for addr, pid in pids.items() if addr != stats["worker"])
            os.kill(victim, signal.SIGKILL)
            killed.append(victim)

    from nemap.fit.fit_map import MapFit
    from nemap.io.mrc import read_mrc
    from nemap.tools.distributed import fit_on_cluster

    job = MapFit(read_mrc(small_map), quick(**OPTIONS))
    fit_on_cluster(job, cluster, progress)
    assert killed and job.done == job.total == 8
    out = tmp_path / "k.nemap"
    nemap.write(out, job.content())
    _same_map(serial["small"], out)
    cluster.client.wait_for_workers(2, timeout=60)  # the nanny restarted it


def test_a_killed_client_resumes_with_the_same_command(small_map, serial, cluster, tmp_path) -> None:
    out = tmp_path / "c.nemap"
    seen = []

    def interrupt(done, total, stats):  # the client is stopped once three regions are in
        if stats is not None:
            seen.append(stats)
            if len(seen) == 3:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _run_with_progress(small_map, out, cluster, interrupt)
    kept = sorted((tmp_path / "c.nemap.resume").glob("region_*.npz"))
    assert len(kept) == 3 and not out.exists()
    fitted = []
    _run_with_progress(small_map, out, cluster, lambda d, t, s: fitted.append(s) if s else None)
    assert len(fitted) == 5  # only the regions the first run did not finish
    _same_map(serial["small"], out)


def _run_with_progress(src, dst, cluster, progress) -> None:
    """mrc_to_nemap on the cluster with a progress callback of the test's own."""
    from nemap.tools.convert import finish_conversion, start_conversion
    from nemap.tools.distributed import fit_on_cluster

    conv = start_conversion(src, dst, quick(**OPTIONS))
    fit_on_cluster(conv.job, cluster, progress)
    finish_conversion(conv)


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nemap", *map(str, args)], capture_output=True, text=True, cwd=REPO,
                          timeout=300)


def test_a_wrong_scheduler_is_a_one_line_error(small_map, tmp_path) -> None:
    r = _cli("-q", "convert", small_map, tmp_path / "x.nemap", "--preset", "siren-tiny", "--scheduler", "tcp://127.0.0.1:9")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr.strip().count("\n") == 0 and "cannot reach the Dask scheduler at 'tcp://127.0.0.1:9'" in r.stderr
    r = _cli("-q", "convert", small_map, tmp_path / "x.nemap", "--preset", "siren-tiny", "--scheduler", "local:0")
    assert r.returncode == 1 and "local:N" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "x.nemap").exists()


def test_a_batch_with_a_corrupt_map_completes_the_others(small_map, serial, cluster, tmp_path) -> None:
    maps = tmp_path / "maps"
    maps.mkdir()
    for name in ("a.mrc", "c.mrc"):
        (maps / name).write_bytes(small_map.read_bytes())
    (maps / "b.mrc").write_bytes(small_map.read_bytes()[:600])  # cut inside its header
    rows = convert_many([str(maps / "*.mrc")], tmp_path / "out", quick(**OPTIONS), scheduler=cluster, progress=False)
    assert [r["status"] for r in rows] == ["done", "failed", "done"]
    assert "b.mrc" in rows[1]["error"] and "MRC" in rows[1]["error"]
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["counts"] == {"done": 2, "failed": 1}
    done = [r for r in summary["maps"] if r["status"] == "done"]
    assert all(r["regions"] == 8 and r["fidelity"]["correlation"] > 0.5 for r in done)
    for name in ("a", "c"):
        _same_map(serial["small"], tmp_path / "out" / f"{name}.nemap")
    again = convert_many([str(maps / "*.mrc")], tmp_path / "out", quick(**OPTIONS), scheduler=cluster, progress=False)
    assert [r["status"] for r in again] == ["exists", "failed", "exists"]


def test_a_batch_on_this_machine_and_its_command(small_map, tmp_path) -> None:
    (tmp_path / "a.mrc").write_bytes(small_map.read_bytes())
    (tmp_path / "bad.mrc").write_bytes(b"not a map")
    (tmp_path / "list.txt").write_text("# maps\na.mrc\n\nbad.mrc\n")
    r = _cli("-q", "convert-many", tmp_path / "list.txt", "--out", tmp_path / "out", "--preset", "siren-tiny",
             "--max-steps", "10", "--region-size", "12", "--device", "cpu")
    assert r.returncode == 1 and "1 of 2 map(s) failed" in r.stderr and "Traceback" not in r.stderr
    assert r.stdout.splitlines()[0].startswith("done") and r.stdout.splitlines()[1].startswith("failed")
    assert (tmp_path / "out" / "a.nemap").is_file() and not (tmp_path / "out" / "bad.nemap").exists()


def test_interleave_takes_one_region_of_each_open_map_in_turn() -> None:
    class T:
        def __init__(self, i):
            self.index = i

    maps = iter([(0, iter([T(0), T(1), T(2)])), (1, iter([T(0)])), (2, iter([T(0), T(1)]))])
    order = [key for key, _ in interleave(maps, breadth=2)]
    assert order == [(0, 0), (1, 0), (0, 1), (0, 2), (2, 0), (2, 1)]  # map 2 opens when map 1 runs out


def test_inputs_globs_list_files_and_colliding_outputs(tmp_path) -> None:
    for name in ("x.mrc", "y.map", "z.txt"):
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "l.lst").write_text("x.mrc\n# comment\ny.map\n")
    got = expand_inputs([str(tmp_path / "*.m*"), str(tmp_path / "l.lst")])
    assert got == [tmp_path / "x.mrc", tmp_path / "y.map"]  # globbed, then listed again: no repeats
    with pytest.raises(ArgumentError, match="matches no file"):
        expand_inputs([str(tmp_path / "*.ccp4")])
    (tmp_path / "d").mkdir()
    with pytest.raises(ArgumentError, match="both be written"):
        output_paths([tmp_path / "x.mrc", tmp_path / "d" / "x.map"], tmp_path / "out")


def test_dask_s_malloc_setting_is_undone_only_where_dask_set_it(monkeypatch) -> None:
    from nemap.tools.distributed import restore_malloc

    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)
    assert restore_malloc() is False
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "65536")
    import platform

    assert restore_malloc() is (platform.libc_ver()[0] == "glibc")
