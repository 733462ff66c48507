"""The lecture's control embedding: a crystal as its cell size and atom count, nothing more.

:func:`geometry_only_embedding` knows only how big the cell is and how many atoms it holds — a
map of it can look clean while a probe on it predicts chemistry at R² ≈ 0 ("pretty t-SNE, dead
downstream"). :func:`standardize` is the per-column scaling it and the analogies use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from crystalrep.store import content_key

if TYPE_CHECKING:
    from crystalrep.datasets import Dataset

__all__ = ["GEOMETRY_FEATURES", "GEOMETRY_VERSION", "geometry_key", "geometry_only_embedding", "standardize"]

GEOMETRY_FEATURES = ("log volume per atom", "log atoms per cell")
GEOMETRY_VERSION = 1


def standardize(X: np.ndarray) -> np.ndarray:
    """Columns scaled to mean 0 and standard deviation 1 (constant columns become 0), float64."""
    X = np.asarray(X, dtype=np.float64)
    std = X.std(axis=0)
    return (X - X.mean(axis=0)) / np.where(std > 0, std, 1.0)


def geometry_only_embedding(dataset: Dataset) -> np.ndarray:
    """Each crystal as standardised ``[log volume per atom, log atoms per cell]`` (float32 ``[n, 2]``).

    The cell's size and atom count, nothing about which elements sit where: the control embedding
    of "pretty t-SNE, dead downstream".
    """
    volume = np.abs(np.linalg.det(np.asarray(dataset.lattices, dtype=np.float64)))
    nsites = np.diff(np.asarray(dataset.offsets)).astype(np.float64)
    raw = np.column_stack([np.log(volume / nsites), np.log(nsites)])
    return standardize(raw).astype(np.float32)


def geometry_key(dataset: Dataset) -> str:
    """Store key of :func:`geometry_only_embedding` of this dataset (for cached maps and probes)."""
    return "geometry-" + content_key({"dataset": dataset.fingerprint, "v": GEOMETRY_VERSION})
