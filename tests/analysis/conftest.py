"""Shared fixtures of the analysis tests."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="module")
def planted_blobs() -> tuple[np.ndarray, np.ndarray]:
    """3 Gaussian blobs on a 2-D plane inside 16-D (plus a little noise): 300 rows and labels."""
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 100)
    centres = np.array([[0.0, 0.0], [10.0, 0.0], [5.0, 8.0]])
    plane = np.linalg.qr(rng.normal(size=(16, 2)))[0]
    X = (centres[labels] + rng.normal(size=(300, 2))) @ plane.T + 0.05 * rng.normal(size=(300, 16))
    return X.astype(np.float32), labels
