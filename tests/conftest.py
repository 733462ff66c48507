"""Shared fixtures: a temporary store for every test, real data when ../shared/data exists."""

from __future__ import annotations

import os

# One OpenMP/MKL thread, set before numpy or torch is imported (they read it once, at import):
# test tensors are tiny, so a thread pool costs more than it saves. An explicit setting wins.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import pytest  # noqa: E402
from pymatgen.core import Lattice, Structure  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path | None:
    """``$CRYSTALREP_SHARED_DATA`` or ``../shared/data`` beside the project, if present."""
    env = os.environ.get("CRYSTALREP_SHARED_DATA")
    path = Path(env) if env else ROOT.parent / "shared" / "data"
    return path if path.is_dir() else None


@pytest.fixture(autouse=True)
def _crystalrep_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path_factory.mktemp("crystalrep_home")
    monkeypatch.setenv("CRYSTALREP_HOME", str(home))
    return home


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path to ../shared/data; skips the test where it is absent (a user's fresh clone)."""
    path = shared_data_dir()
    if path is None:
        pytest.skip("../shared/data is absent (real-data tests need it)")
    return path


@pytest.fixture(scope="session")
def tiny_structures() -> list[Structure]:
    """A handful of 1–8 atom crystals covering cubic, hexagonal and triclinic cells."""
    tri = Lattice.from_parameters(3.1, 3.7, 4.3, 81, 97, 104)
    return [
        Structure(Lattice.cubic(4.2), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]),
        Structure(Lattice.cubic(3.0), ["Fe"], [[0, 0, 0]]),
        Structure(Lattice.hexagonal(3.2, 5.2), ["Zn", "Zn", "O", "O"],
                  [[1 / 3, 2 / 3, 0], [2 / 3, 1 / 3, 0.5], [1 / 3, 2 / 3, 0.38], [2 / 3, 1 / 3, 0.88]]),
        Structure(Lattice.cubic(3.9), ["Sr", "Ti", "O", "O", "O"],
                  [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]),
        Structure(tri, ["Si", "O", "O", "Mg"], [[0, 0, 0], [0.5, 0, 0], [0, 0.5, 0.5], [0.5, 0.5, 0.25]]),
    ]


def with_californium(rows: list[int], name: str) -> Any:
    """Default-dataset rows plus one fcc Cf crystal (Z = 98, beyond CHGNet's and SOAP's species), saved."""
    from crystalrep.datasets import Dataset, load_dataset, save_dataset

    ds = load_dataset("default").subset(rows)
    cf = Structure(Lattice.cubic(5.0), ["Cf"] * 4, [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])
    props = {p: [*ds.table[p].tolist(), float("nan") if info.kind == "numeric" else "fcc"]
             for p, info in ds.properties.items()}
    out = Dataset.from_structures(name, [*ds.table["id"].astype(str), "Cf-fcc"], [*ds.structures(), cf],
                                  properties=props, property_info=dict(ds.properties), meta=dict(ds.meta))
    save_dataset(out)
    return out


