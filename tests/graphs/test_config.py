"""Graph configuration checks."""

from __future__ import annotations

import pytest

from crystalrep.graphs import GraphConfig
from crystalrep.graphs.config import DEFAULT


@pytest.mark.parametrize("kwargs", [{"cutoff": 0.0}, {"cutoff": -1.0}, {"max_neighbors": 0}])
def test_invalid_config_raises(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        GraphConfig(**kwargs)



def test_default_is_six_angstrom_every_neighbour() -> None:
    assert DEFAULT == GraphConfig() == GraphConfig(cutoff=6.0, max_neighbors=None)
