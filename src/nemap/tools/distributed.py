"""Fitting regions on a Dask cluster (dask.distributed): every region still to fit is one task.

The client (this process) plans each map, submits its regions a window at a time (so that neither the client
nor the scheduler holds every region's voxels at once), and records each result as it arrives: into the
map's resume folder, so that a client killed mid-run resumes with the same command. A worker that dies is
replaced and its tasks are re-run by Dask. A region's fit depends only on the seed and the region's index, so
the result equals a serial conversion up to floating point.

Threads: Dask starts worker processes with OMP/MKL threads set to 1; each task sets torch's threads
explicitly to the worker's share of its machine's cores (cores ÷ the Dask threads of all workers on that
host), so that workers neither idle cores nor oversubscribe them.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Hashable, Iterable, Iterator
from typing import Any

from nemap.errors import NemapError, require
from nemap.fit.fit_map import MapFit
from nemap.fit.region import RegionFit
from nemap.fit.tasks import RegionTask

log = logging.getLogger("nemap")

LOCAL = "local:"
CONNECT_TIMEOUT_S = 10.0


def worker_threads(threads_on_host: int) -> int:
    """Torch threads for one Dask thread: this machine's usable cores ÷ the Dask threads running on it."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, cores // max(1, threads_on_host))


MMAP_THRESHOLD = 32 * 2**20  # bytes: glibc's own ceiling for its dynamic mmap threshold (64-bit)


def restore_malloc() -> bool:
    """Undo, in this process, what Dask's MALLOC_TRIM_THRESHOLD_=65536 does to torch on a CPU.

    Setting that variable (Dask's nannies do, to return memory to the OS) also freezes glibc's mmap threshold at
    128 KiB, so every tensor above it is mmap'd and unmapped again: a region's fit ran 2.1× slower in a worker
    than in a plain process (measured, benchmarks/distributed.py). Setting the thresholds back to glibc's
    dynamic ceiling (mmap 32 MiB, trim 64 MiB) restores the speed. Only on glibc with the variable set; True if
    applied."""
    if "MALLOC_TRIM_THRESHOLD_" not in os.environ:
        return False
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(-3, MMAP_THRESHOLD)) and bool(libc.mallopt(-1, 2 * MMAP_THRESHOLD))  # M_MMAP/TRIM
    except (OSError, AttributeError):
        return False


def fit_on_worker(task: RegionTask, threads_by_host: dict[str, int]) -> RegionFit:
    """Runs on a Dask worker: set torch's threads (see the module docstring) and glibc's malloc thresholds
    (``restore_malloc``), fit, say where."""
    import torch
    from distributed import get_worker

    worker = get_worker()
    restore_malloc()
    threads = worker_threads(threads_by_host.get(worker.address.rsplit(":", 1)[0], worker.state.nthreads))
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    fit = task()
    fit.stats.update(worker=worker.address, torch_threads=threads)
    return fit


class Cluster:
    """A Dask client of the scheduler at ``address`` (``tcp://host:8786``), or of a local cluster of N
    single-thread worker processes (``local:N``) that it starts and stops; use as a context manager."""

    def __init__(self, address: str, timeout_s: float = CONNECT_TIMEOUT_S):
        distributed = require("distributed", "cluster", "fit on a Dask cluster")
        self.address = address
        self.local = None
        try:
            if address.startswith(LOCAL):
                self.local = distributed.LocalCluster(n_workers=_local_count(address), threads_per_worker=1,
                                                      processes=True, dashboard_address=None)
                self.client = distributed.Client(self.local, timeout=timeout_s)
            else:
                self.client = distributed.Client(address, timeout=timeout_s)
        except NemapError:
            raise
        except Exception as exc:  # noqa: BLE001  (Dask raises OSError, TimeoutError, ValueError, …)
            self.close()
            raise NemapError(f"cannot reach the Dask scheduler at {address!r}: {_first_line(exc)}",
                             code="SCHEDULER_UNREACHABLE") from exc

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        if getattr(self, "client", None) is not None:
            self.client.close()
        if self.local is not None:
            self.local.close()

    def threads_by_host(self) -> dict[str, int]:
        """Dask threads per worker host (its address without the port)."""
        return _threads_by_host(self.client.scheduler_info(n_workers=-1)["workers"])

    def describe(self) -> dict[str, Any]:
        """What a file's provenance records: the scheduler and its workers."""
        workers = self.client.scheduler_info(n_workers=-1)["workers"]
        threads = _threads_by_host(workers)
        return {"scheduler": self.address, "count": len(workers), "threads": sum(threads.values()),
                "hosts": len(threads)}

    def run(self, tasks: Iterable[tuple[Hashable, RegionTask]], on_result: Callable[[Hashable, RegionFit], None],
            on_error: Callable[[Hashable, BaseException], None] | None = None, window: int | None = None) -> None:
        """Submit ``(key, task)`` pairs, at most ``window`` in flight (default 4 per Dask thread), and call
        ``on_result(key, fit)`` as each finishes; a task that fails calls ``on_error(key, exception)``, or
        is raised when there is none (the tasks in flight are cancelled)."""
        from distributed import as_completed

        threads = self.threads_by_host()
        window = window or max(4, 4 * sum(threads.values()))
        source: Iterator[tuple[Hashable, RegionTask]] = iter(tasks)
        keys: dict[Any, Hashable] = {}
        pending = as_completed()

        def submit_more() -> None:
            while len(keys) < window:
                item = next(source, None)
                if item is None:
                    return
                future = self.client.submit(fit_on_worker, item[1], threads, pure=False)
                keys[future] = item[0]
                pending.add(future)

        submit_more()
        try:
            for future in pending:
                key = keys.pop(future)
                try:
                    fit = future.result()
                except Exception as exc:  # noqa: BLE001  (the task's own error, or KilledWorker)
                    if on_error is None:
                        raise
                    on_error(key, exc)
                else:
                    on_result(key, fit)
                future.release()
                submit_more()
        finally:
            for future in keys:
                future.cancel()


def fit_on_cluster(job: MapFit, cluster: Cluster | str, progress: Any = None) -> None:
    """Fit ``job``'s remaining regions on ``cluster`` (or the scheduler at that address, connected and closed
    here), recording each as it arrives; progress(done, total, last_stats) as in :meth:`MapFit.fit_here`."""
    if isinstance(cluster, str):
        with Cluster(cluster) as own:
            fit_on_cluster(job, own, progress)
        return
    job.workers = cluster.describe()
    log.info("fitting %d region(s) on %d Dask worker(s) (%s)", job.total - job.done, job.workers["count"],
             cluster.address)
    if progress:
        progress(job.done, job.total, None)

    def arrived(_: Hashable, fit: RegionFit) -> None:
        job.record(fit)
        if progress:
            progress(job.done, job.total, fit.stats)

    cluster.run(((task.index, task) for task in job.tasks()), arrived)


def _threads_by_host(workers: dict[str, Any]) -> dict[str, int]:
    out: dict[str, int] = {}
    for addr, info in workers.items():
        host = addr.rsplit(":", 1)[0]
        out[host] = out.get(host, 0) + int(info.get("nthreads", 1))
    return out


def _local_count(address: str) -> int:
    text = address[len(LOCAL):]
    if not text.isdigit() or int(text) < 1:
        raise NemapError(f"'{address}': a local cluster is 'local:N' with N ≥ 1 workers", code="BAD_ARGUMENT")
    return int(text)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
