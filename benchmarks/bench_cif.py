"""Loading crystals: pymatgen CIF parsing versus reading a saved crystalrep dataset.

1,000 perov_5 CIFs (../shared/data/perov_5/val.csv; the CSV is read outside the timed region).
Stage `crystals → arrays`: `Dataset.load` (parquet) against parsing every CIF with
`Structure.from_str`, with `np.load` of the same arrays stacked in an uncompressed .npz as the
floor. Stage `crystals → Structures`: `Dataset.load` followed by `.structures()` against the
same CIF parse, for callers who need pymatgen objects back.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import best_of, read_cifs, row

DATASET = "perov_5"


def run(quick: bool) -> list[dict[str, Any]]:
    """Time CIF parsing, Dataset.load and np.load on the same crystals."""
    from pymatgen.core import Structure

    from crystalrep.datasets import Dataset

    n, repeat = (200, 1) if quick else (1000, 5)
    cifs = read_cifs(DATASET, n)
    structures = [Structure.from_str(cif, fmt="cif") for cif in cifs]
    ds = Dataset.from_structures(f"{DATASET}_bench", [str(k) for k in range(n)], structures)

    def parse() -> None:
        for cif in cifs:
            Structure.from_str(cif, fmt="cif")

    with tempfile.TemporaryDirectory() as tmp:
        folder = ds.save(Path(tmp) / ds.name)
        npz = Path(tmp) / "arrays.npz"
        np.savez(npz, lattices=ds.lattices, numbers=ds.numbers, frac_coords=ds.frac_coords, offsets=ds.offsets)

        def np_load() -> None:
            with np.load(npz) as f:
                {k: f[k] for k in f.files}

        Dataset.load(folder)  # warm-up: the first call imports pyarrow
        t_parse = best_of(parse, repeat)
        size = sum(p.stat().st_size for p in folder.iterdir())
        rows = [
            row("crystals → arrays", "crystalrep Dataset.load", "ours", n,
                best_of(lambda: Dataset.load(folder), repeat), f"parquet + meta.json, {size / 1e3:.0f} kB"),
            row("crystals → arrays", "np.load stacked arrays", "floor", n, best_of(np_load, repeat),
                f"uncompressed .npz, {npz.stat().st_size / 1e3:.0f} kB"),
            row("crystals → arrays", "pymatgen Structure.from_str(cif)", "peer", n, t_parse),
            row("crystals → Structures", "Dataset.load + .structures()", "ours", n,
                best_of(lambda: Dataset.load(folder).structures(), repeat)),
            row("crystals → Structures", "pymatgen Structure.from_str(cif)", "peer", n, t_parse),
        ]
    return rows
