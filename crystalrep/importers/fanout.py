"""Run a function over a stream of tasks in this process, in forked processes, or on Ray, in order.

At most ``window`` tasks are in flight (submitted and not yet handed back), so a long stream of
tasks is never held in memory at once; results come back in task order whatever order the
workers finish in. Processes are forked, and only from a process without other threads (spawn
would re-run an unguarded ``__main__``; forking a threaded parent can deadlock); elsewhere the
tasks run here. Ray tasks go to the cluster a :func:`crystalrep.cluster.ray_session` joins.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator
from typing import Any, TypeVar

from crystalrep.datasets import DatasetError
from crystalrep.device import cores

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")
LOCAL = "local"  # the ``ray`` value that starts a private Ray on this machine


FORK_SAFE_THREADS = ("crystalrep-time-budget",)  # crystalrep.limits resets its watchdog in a forked child


def can_fork() -> bool:
    """Whether worker processes may be forked from this process now (no thread but fork-safe ones)."""
    others = [t for t in threading.enumerate() if t is not threading.main_thread() and t.name not in FORK_SAFE_THREADS]
    return os.name == "posix" and threading.current_thread() is threading.main_thread() and not others


def default_workers() -> int:
    """Worker processes when none are asked for: every core of this machine."""
    return cores()


def fan_out(fn: Callable[[T], R], tasks: Iterable[T], *, workers: int = 1, ray: str | None = None,
            window: int | None = None) -> Generator[R, None, None]:
    """Yield ``fn(task)`` for each task, in order.

    Args:
        fn: A module-level function (workers import it by name).
        tasks: Consumed lazily, at most ``window`` ahead of the results handed back.
        workers: Processes on this machine (1: run here). Ignored with ``ray``.
        ray: ``None`` for no Ray, ``"local"`` for a private Ray here, else a cluster address.
        window: Tasks in flight; default twice the workers (or the cluster's CPUs).

    Raises:
        DatasetError: If a worker process or Ray task died (one sentence).
    """
    if ray is not None:
        yield from _on_ray(fn, tasks, None if ray == LOCAL else ray, window)
    elif workers > 1 and can_fork():
        yield from _in_processes(fn, tasks, workers, window or 2 * workers)
    else:
        if workers > 1:
            log.info("this process runs threads; the chunks are processed here, not in %d processes", workers)
        yield from map(fn, tasks)


def die_with_parent(parent: int) -> None:
    """Worker initializer: a ``kill -9`` of the importer takes its workers with it (Linux ``PR_SET_PDEATHSIG``).

    Orphaned workers would otherwise wait on their queue for ever, holding the parent's output pipes open.
    """
    import ctypes
    import signal

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: the parent check below still ends a worker born orphaned
        pass
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def _in_processes(fn: Callable[[T], R], tasks: Iterable[T], workers: int, window: int) -> Iterator[R]:
    import multiprocessing
    from concurrent.futures import Future, ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    pending: deque[Future[R]] = deque()
    try:
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"),
                                 initializer=die_with_parent, initargs=(os.getpid(),)) as pool:
            for task in tasks:
                pending.append(pool.submit(fn, task))
                while len(pending) >= window:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
    except BrokenProcessPool as exc:
        raise DatasetError(f"a worker process died ({exc or 'killed, perhaps out of memory'}); nothing was saved.") from None
    finally:
        for future in pending:
            future.cancel()


def _on_ray(fn: Callable[[T], R], tasks: Iterable[T], address: str | None, window: int | None) -> Iterator[R]:
    import ray
    from ray.exceptions import RayError

    from crystalrep.cluster import ClusterError, ray_session

    try:
        with ray_session(address) as session:
            remote: Any = ray.remote(num_cpus=1)(fn)
            size = window or 2 * max(1, session.cpus)
            pending: deque[Any] = deque()
            log.info("fanning out to Ray (%s, %d CPU), %d tasks in flight", session.address, session.cpus, size)
            for task in tasks:
                pending.append(remote.remote(task))
                while len(pending) >= size:
                    yield ray.get(pending.popleft())
            while pending:
                yield ray.get(pending.popleft())
    except ClusterError as exc:
        raise DatasetError(str(exc)) from None
    except RayError as exc:
        first = next((line for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
        raise DatasetError(f"a Ray task failed ({first[:200]}); nothing was saved.") from None
