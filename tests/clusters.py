"""A Dask cluster a test starts and stops: worker processes on the loopback interface only."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def local_cluster(n_workers: int = 2, *, work_stealing: bool = False) -> Iterator[Any]:
    """``n_workers`` worker processes on 127.0.0.1, one thread each, as ``--dask local:N`` starts
    them (no work stealing by default: a task runs where its partition is), with the scheduler's
    HTTP server on a free loopback port (another cluster on this machine may hold 8787)."""
    import dask
    from distributed import LocalCluster

    with dask.config.set({"distributed.scheduler.work-stealing": work_stealing}):
        cluster = LocalCluster(
            n_workers=n_workers,
            processes=True,
            threads_per_worker=1,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",
        )
    with cluster:
        yield cluster
