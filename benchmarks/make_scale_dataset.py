"""A synthetic dataset of any size for the scaling benchmarks, built from real cells.

**Synthetic, said so in its metadata.** The first rows are real crystals from ``../shared/data``
(MP-20 mini, perov_5, carbon_24: ~4,500 cells, parsed and labelled by spglib as any import is);
every further row is one of them with one element replaced by another of the same chemical
family (Ti -> Zr, O -> S, Na -> K, ...) on every site it occupies and the cell strained
isotropically by up to ±4 %. Such a substitution keeps the site symmetry, so the space group
and crystal system of the real parent are kept (no spglib call per row: 200k rows build in about a
minute). Properties: ``volume_per_atom`` (of each row's own cell), ``band_gap`` (the real value on
MP-20 parents only; NaN on every synthetic row), ``family`` (source set) and ``substituted``.

Usage: ``python -m benchmarks.make_scale_dataset --n 200000 [--name scale200k] [--embed magpie]``
(``CRYSTALREP_HOME`` chooses the store).
"""

from __future__ import annotations

import argparse
import logging
import time
import warnings
from typing import Any

import numpy as np
import pandas as pd

from benchmarks import Skipped, shared_data_dir

log = logging.getLogger(__name__)

FAMILIES = (("Li", "Na", "K", "Rb", "Cs"), ("Be", "Mg", "Ca", "Sr", "Ba"), ("Sc", "Y", "La"),
            ("Ti", "Zr", "Hf"), ("V", "Nb", "Ta"), ("Cr", "Mo", "W"), ("Mn", "Tc", "Re"), ("Fe", "Ru", "Os"),
            ("Co", "Rh", "Ir"), ("Ni", "Pd", "Pt"), ("Cu", "Ag", "Au"), ("Zn", "Cd", "Hg"), ("B", "Al", "Ga", "In"),
            ("C", "Si", "Ge", "Sn"), ("N", "P", "As", "Sb", "Bi"), ("O", "S", "Se", "Te"), ("F", "Cl", "Br", "I"))
SOURCES = {"mp_20": ("mp_20_mini_slices/raw_mp20_dataset_mini.csv", None), "perov_5": ("perov_5/val.csv", 1500),
           "carbon_24": ("carbon_24/val.csv", 500)}
STRAIN = 0.04
PARENTS = "scale_parents"
DESCRIPTION = ("SYNTHETIC scaling dataset: real MP-20/perov_5/carbon_24 cells (first rows) plus element "
               "substitutions within a chemical family and ±4 % isotropic strain; space groups are the parents'.")


def _parents() -> tuple[Any, pd.DataFrame]:
    """The real crystals (a Dataset labelled by spglib, saved once as ``scale_parents``) and their family / band gap."""
    from pymatgen.core import Structure

    from crystalrep.datasets import Dataset, dataset_exists, load_dataset, save_dataset

    if dataset_exists(PARENTS):
        ds = load_dataset(PARENTS)
        return ds, ds.table[["family", "band_gap"]]
    root = shared_data_dir()
    ids, structures, family, gap = [], [], [], []
    for name, (path, limit) in SOURCES.items():
        if not (root / path).is_file():
            raise Skipped(f"{root / path} is missing")
        table = pd.read_csv(root / path, nrows=limit)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pymatgen's "fractional coordinates rounded" notes
            for k, row in enumerate(table.itertuples()):
                structures.append(Structure.from_str(row.cif, fmt="cif"))
                ids.append(f"{name}-{k:05d}")
                family.append(name)
                gap.append(float(row.band_gap) if name == "mp_20" else float("nan"))
    ds = Dataset.from_structures(PARENTS, ids, structures, properties={"family": family, "band_gap": gap})
    save_dataset(ds, overwrite=True)
    return ds, ds.table[["family", "band_gap"]]


def _substitutes() -> dict[int, np.ndarray]:
    from pymatgen.core.periodic_table import Element

    out = {}
    for fam in FAMILIES:
        zs = np.array([Element(s).Z for s in fam], dtype=np.int64)
        for z in zs:
            out[int(z)] = zs[zs != z]
    return out


def build(n: int, name: str, *, seed: int = 0) -> Any:
    """The ``n``-row dataset (not saved); see the module docstring."""
    from pymatgen.core import Composition, Element

    from crystalrep.datasets import Dataset

    parents, extra = _parents()
    p = len(parents)
    rng = np.random.default_rng(seed)
    base = np.concatenate([np.arange(min(n, p)), rng.integers(0, p, size=max(0, n - p))])
    sizes = np.diff(parents.offsets)[base]
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    site = np.concatenate([np.arange(parents.offsets[b], parents.offsets[b + 1]) for b in base])
    numbers = parents.numbers[site].copy()
    subs, src = _substitutes(), np.zeros(n, dtype=np.int64)
    dst = np.zeros(n, dtype=np.int64)
    for i in range(p, n):  # pick a substitutable element of the parent and a family member for it
        zs = [z for z in np.unique(numbers[offsets[i]:offsets[i + 1]]) if int(z) in subs]
        if zs:
            src[i] = zs[rng.integers(len(zs))]
            dst[i] = rng.choice(subs[int(src[i])])
    row_of_site = np.repeat(np.arange(n), sizes)
    hit = numbers == src[row_of_site]
    numbers[hit] = dst[row_of_site][hit]
    strain = np.where(np.arange(n) < p, 1.0, 1.0 + rng.uniform(-STRAIN, STRAIN, size=n))
    lattices = parents.lattices[base] * strain[:, None, None]
    group = pd.DataFrame({"b": base, "s": src, "d": dst}).groupby(["b", "s", "d"], sort=False).ngroup().to_numpy()
    _, first = np.unique(group, return_index=True)  # one row of each (parent, substitution): its formula
    names = []
    for i in first:
        elems, counts = np.unique(numbers[offsets[i]:offsets[i + 1]], return_counts=True)
        comp = Composition.from_dict({Element.from_Z(int(z)).symbol: int(c) for z, c in zip(elems, counts, strict=True)})
        names.append((comp.reduced_formula, comp.chemical_system))
    formula = np.array([f for f, _ in names], dtype=object)[group]
    chemsys = np.array([c for _, c in names], dtype=object)[group]
    parent_table = parents.table.iloc[base].reset_index(drop=True)
    table = pd.DataFrame({
        "id": [f"{name}-{i:07d}" if i >= p else parents.ids[i] for i in range(n)],
        "formula": formula, "chemsys": chemsys,
        "spacegroup": parent_table["spacegroup"].to_numpy(), "crystal_system": parent_table["crystal_system"].to_numpy(),
        "nsites": sizes.astype(np.int64),
        "volume_per_atom": np.abs(np.linalg.det(lattices)) / sizes,
        "band_gap": np.where(np.arange(n) < p, extra["band_gap"].to_numpy()[base], np.nan),
        "family": extra["family"].to_numpy()[base], "substituted": np.where(np.arange(n) < p, "no", "yes")})
    from crystalrep.datasets import PropertyInfo

    props = {"volume_per_atom": PropertyInfo("volume_per_atom", unit="Å³/atom"),
             "band_gap": PropertyInfo("band_gap", unit="eV", description="MP-20 parents only"),
             "family": PropertyInfo("family", kind="categorical"),
             "substituted": PropertyInfo("substituted", kind="categorical")}
    return Dataset(name=name, table=table, lattices=lattices, numbers=numbers,
                   frac_coords=parents.frac_coords[site], offsets=offsets, properties=props,
                   meta={"source": "synthetic (benchmarks/make_scale_dataset.py)", "description": DESCRIPTION,
                         "license": "derived from MP-20 (CC-BY-4.0), perov_5 and carbon_24 (MIT)"})


def ensure(n: int, *, name: str | None = None, encoders: tuple[str, ...] = ("magpie",), seed: int = 0) -> str:
    """Build, save and embed the ``n``-row dataset unless the store (``CRYSTALREP_HOME``) has it; its name."""
    from crystalrep.datasets import dataset_exists, save_dataset

    name = name or f"scale{n // 1000}k"
    if not dataset_exists(name):
        start = time.perf_counter()
        save_dataset(build(n, name, seed=seed), overwrite=True)
        log.info("built %s (%d rows) in %.1f s", name, n, time.perf_counter() - start)
    for encoder in encoders:
        _embed(name, encoder)
    return name


def _embed(name: str, encoder: str) -> None:
    from crystalrep.cli.main import main

    if main(["embed", "--dataset", name, "--encoder", encoder, "--quiet"]) != 0:
        raise RuntimeError(f"embedding {name} with {encoder} failed")


def cli(argv: list[str] | None = None) -> int:
    """``python -m benchmarks.make_scale_dataset``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, required=True)
    parser.add_argument("--name")
    parser.add_argument("--embed", default="magpie", help="comma-separated encoders ('' for none)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    print(ensure(args.n, name=args.name, encoders=tuple(e for e in args.embed.split(",") if e), seed=args.seed))
    return 0


if __name__ == "__main__":
    raise SystemExit(cli())
