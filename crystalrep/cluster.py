"""Ray, the one distributed engine: join a cluster at an address, or start a local one on 127.0.0.1.

Commands that fan work out (``embed --ray``, ``data import --ray``, ``pretrain --workers``) open a
:func:`ray_session` around the work. Without an address the session starts a private Ray on this
machine (loopback only, no dashboard, no usage stats) and shuts it down afterwards; with an address
it joins that cluster and leaves it running. Workers import ``crystalrep`` themselves, so every node
of a real cluster needs the same ``requirements.txt`` installed (README, "Running on a Ray cluster").
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ClusterError", "RaySession", "ray_session"]

logger = logging.getLogger(__name__)

PACKAGE_ROOT = str(Path(__file__).resolve().parents[1])  # the folder holding the crystalrep package


class ClusterError(RuntimeError):
    """Ray could not be started or reached; the message is one sentence for the user."""


@dataclass(frozen=True)
class RaySession:
    """What the session is connected to.

    Attributes:
        address: The cluster address joined, or ``"local"`` for a private Ray started here.
        cpus: CPUs the cluster offers in total.
        gpus: GPUs the cluster offers in total (0 on a CPU-only cluster).
        nodes: Live nodes in the cluster.
        started_here: Whether this session started (and will stop) the Ray runtime.
    """

    address: str
    cpus: int
    gpus: int
    nodes: int
    started_here: bool


def _describe(address: str, started_here: bool) -> RaySession:
    import ray

    total = ray.cluster_resources()
    nodes = sum(1 for node in ray.nodes() if node.get("Alive"))
    return RaySession(address=address, cpus=int(total.get("CPU", 0)), gpus=int(total.get("GPU", 0)),
                      nodes=nodes, started_here=started_here)


def _check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """Fail in seconds on an address nobody listens at (``ray.init`` would retry for minutes)."""
    import socket

    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ClusterError(f"Ray address {address!r} is not HOST:PORT (e.g. 127.0.0.1:6379).")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout_s):
            pass
    except OSError as exc:
        raise ClusterError(f"Nothing answers at the Ray address {address} ({exc.strerror or exc}); "
                           f"start a head with `ray start --head` and pass the address it prints.") from exc


@contextmanager
def ray_session(address: str | None = None, *, num_cpus: int | None = None) -> Iterator[RaySession]:
    """Connect to Ray for the duration of a ``with`` block.

    Args:
        address: ``HOST:PORT`` of a running cluster's head (``ray start --head`` prints it), or
            ``None`` / ``""`` / ``"local"`` for a private Ray on this machine.
        num_cpus: CPUs a private local Ray may use (default: all of this machine's); ignored when
            joining a cluster, whose nodes declared their own.

    Yields:
        The session's description (CPUs, GPUs, nodes).

    Raises:
        ClusterError: If Ray cannot start or the address cannot be reached.
    """
    import ray

    if ray.is_initialized():  # an outer session (or a test) already connected: share it, do not stop it
        yield _describe("existing", started_here=False)
        return
    local = not address or address == "local"
    # workers spawned by a private Ray inherit this environment; make sure they import this checkout
    pythonpath = os.pathsep.join(p for p in (PACKAGE_ROOT, os.environ.get("PYTHONPATH")) if p)
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if not local:
        _check_reachable(str(address))
    try:
        if local:
            ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, logging_level=logging.WARNING,
                     runtime_env={"env_vars": {"PYTHONPATH": pythonpath}}, _node_ip_address="127.0.0.1")
        else:
            ray.init(address=address, include_dashboard=False, logging_level=logging.WARNING)
    except Exception as exc:  # noqa: BLE001 - ray.init raises a bare Exception when a node misses its 30 s start-up
        ray.shutdown()
        where = "a local Ray on this machine" if local else f"the Ray cluster at {address}"
        raise ClusterError(f"Could not start or reach {where}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
                           f" (start a head with `ray start --head` and pass its address).") from exc
    session = _describe("local" if local else str(address), started_here=True)
    logger.info("Ray session: %s, %d node(s), %d CPU, %d GPU", session.address, session.nodes, session.cpus, session.gpus)
    try:
        yield session
    finally:
        ray.shutdown()
