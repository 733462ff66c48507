"""Encoder registry: a name -> builder table; models and heavy packages load on first use.

Names: ``cgcnn-random``, ``chgnet``, ``sevennet``, ``magpie``, ``soap`` and ``cgcnn@<checkpoint>`` where
``<checkpoint>`` is a checkpoint id (or unique prefix) under ``$CRYSTALREP_HOME/checkpoints``,
a path to a checkpoint file, or a pretraining job: ``<job-id>`` (its last epoch) or
``<job-id>:<epoch>``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from crystalrep.encoders.base import Encoder

__all__ = ["CHECKPOINT_PREFIX", "Encoder", "available_encoders", "encoder_descriptions", "get_encoder",
           "resolve_checkpoint"]

CHECKPOINT_PREFIX = "cgcnn@"


def _cgcnn_random(**kwargs: Any) -> Encoder:
    from crystalrep.encoders.cgcnn_encoder import CGCNNEncoder

    return CGCNNEncoder.random(**kwargs)


def _chgnet(**kwargs: Any) -> Encoder:
    from crystalrep.encoders.chgnet import CHGNetEncoder

    return CHGNetEncoder(**kwargs)


def _magpie(**kwargs: Any) -> Encoder:
    from crystalrep.encoders.descriptors import MagpieEncoder

    return MagpieEncoder(**kwargs)


def _sevennet(**kwargs: Any) -> Encoder:
    from crystalrep.encoders.sevennet import SevenNetEncoder

    return SevenNetEncoder(**kwargs)


def _soap(**kwargs: Any) -> Encoder:
    from crystalrep.encoders.descriptors import SOAPEncoder

    return SOAPEncoder(**kwargs)


_BUILDERS: dict[str, Callable[..., Encoder]] = {
    "cgcnn-random": _cgcnn_random,
    "chgnet": _chgnet,
    "magpie": _magpie,
    "sevennet": _sevennet,
    "soap": _soap,
}

_SHORT = {
    "cgcnn-random": "CGCNN-style graph network, random weights (seed 0), 128-d",
    "chgnet": "frozen CHGNet 0.3.0 mean atom feature, 64-d",
    "magpie": "Magpie composition statistics (matminer), 132-d",
    "sevennet": "frozen SevenNet-0 mean node feature after the last interaction block, 128-d",
    "soap": "SOAP averaged over sites, mu2-compressed, 210-d",
}


def available_encoders(*, include_checkpoints: bool = False) -> list[str]:
    """Registered encoder names, optionally followed by ``cgcnn@<id>`` for stored checkpoints.

    A pretraining job is listed once, as ``cgcnn@<job-id>``: the checkpoint it published into the
    store (whose meta names the job) is left out while the job's folder exists.
    """
    names = list(_BUILDERS)
    if include_checkpoints:
        from crystalrep.checkpoint import list_checkpoints
        from crystalrep.encoders.cgcnn_encoder import CHECKPOINT_KIND
        from crystalrep.runs import jobs_with_checkpoints

        jobs = jobs_with_checkpoints()
        names += [f"{CHECKPOINT_PREFIX}{row['id']}" for row in list_checkpoints(kind=CHECKPOINT_KIND)
                  if (row.get("meta") or {}).get("job_id") not in jobs]
        names += [f"{CHECKPOINT_PREFIX}{job_id}" for job_id in jobs]
    return names


def resolve_checkpoint(ref: str) -> Path:
    """A checkpoint file from a path, a checkpoint id, or ``<job-id>[:<epoch>]``."""
    from crystalrep.checkpoint import CheckpointError, find_checkpoint
    from crystalrep.runs import job_checkpoint

    try:
        return find_checkpoint(ref)
    except CheckpointError as first:
        try:
            return job_checkpoint(ref)
        except ValueError:
            raise first from None


def encoder_descriptions() -> dict[str, str]:
    """One line per built-in encoder, for dropdowns and ``--help`` text."""
    return dict(_SHORT)


def get_encoder(name: str, **kwargs: Any) -> Encoder:
    """Build an encoder by name (cheap: weights load on first embedding).

    Args:
        name: A registered name or ``cgcnn@<checkpoint-id-or-path>``.
        **kwargs: Passed to the builder (e.g. ``seed=1`` for ``cgcnn-random``).

    Returns:
        The encoder.

    Raises:
        ValueError: If the name is unknown (the message lists the valid names).
        CheckpointError: If a ``cgcnn@`` checkpoint cannot be found or read.
    """
    key = str(name).strip(" ")
    valid = ", ".join([*_BUILDERS, f"{CHECKPOINT_PREFIX}<checkpoint-id>"])
    if not key or not key.isprintable():  # a trailing newline or other control character never names one
        raise ValueError(f"Unknown encoder {str(name)[:80]!r}; valid encoders are: {valid}.")
    if key.lower().startswith(CHECKPOINT_PREFIX):
        from crystalrep.encoders.cgcnn_encoder import CGCNNEncoder

        return CGCNNEncoder.from_checkpoint(resolve_checkpoint(key[len(CHECKPOINT_PREFIX):]))
    builder = _BUILDERS.get(key.lower())
    if builder is None:
        raise ValueError(f"Unknown encoder {str(name)[:80]!r}; valid encoders are: {valid}.")
    return builder(**kwargs)
