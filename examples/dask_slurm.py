"""Convert a folder of maps on a Slurm cluster with dask-jobqueue (an example: not run by the tests).

    pip install "nemap[distributed]" dask-jobqueue
    python examples/dask_slurm.py 'maps/*.mrc' --out converted --jobs 8

Each Slurm job is one Dask worker process with one Dask thread and CORES cores: nemap sets torch's threads
to the cores each Dask thread owns (cores ÷ Dask threads on that host), so one thread per worker lets one
region's fit use all of the job's cores. For GPU nodes ask for one GPU per job (``--gres=gpu:1`` below) and
keep one Dask thread per worker: each task then fits on that GPU (``--device auto`` picks it).
Dask sets OMP_NUM_THREADS / MKL_NUM_THREADS to 1 in its workers; nemap sets torch's own count explicitly.
"""

from __future__ import annotations

import argparse

from dask_jobqueue import SLURMCluster
from distributed import Client

from nemap.fit.options import options_for
from nemap.tools.batch import convert_many
from nemap.tools.distributed import Cluster


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("inputs", nargs="+")
    ap.add_argument("--out", required=True)
    ap.add_argument("--jobs", type=int, default=4, help="Slurm jobs (workers)")
    ap.add_argument("--cores", type=int, default=8, help="cores per job")
    ap.add_argument("--preset", default="siren-sampled")
    ap.add_argument("--gpu", action="store_true", help="one GPU per job")
    args = ap.parse_args()
    slurm = SLURMCluster(cores=args.cores, processes=1, memory=f"{4 * args.cores}GB", walltime="12:00:00",
                         job_extra_directives=["--gres=gpu:1"] if args.gpu else [],
                         worker_extra_args=["--nthreads", "1"])
    slurm.scale(jobs=args.jobs)
    with Client(slurm) as client:
        client.wait_for_workers(1)
        # the scheduler's address works like `nemap convert-many ... --scheduler tcp://HOST:PORT`
        with Cluster(client.scheduler.address) as cluster:
            rows = convert_many(args.inputs, args.out, options_for(args.preset), scheduler=cluster)
    print({r["status"] for r in rows})


if __name__ == "__main__":
    main()
