"""Dataset: ids, parsed structures as arrays, symmetry labels and property columns with units.

Structures are stored parsed (lattice, atomic numbers, fractional coordinates), so CIF text is
parsed once at import and never again. On disk a dataset is ``dataset.parquet`` + ``meta.json``.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import re
import shutil
import tempfile
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pymatgen.core import Lattice, Structure

from crystalrep.store import atomic_write_bytes, atomic_write_json, crystalrep_home

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
BASE_COLUMNS = ("id", "formula", "chemsys", "spacegroup", "crystal_system", "nsites")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
DEFAULT_NAME = "default"
_SPGLIB_ENV = {"SPGLIB_WARNING": "OFF", "SPGLIB_OLD_ERROR_HANDLING": "0"}


class DatasetError(ValueError):
    """A dataset is missing, malformed, or cannot be built as asked."""


@dataclass(frozen=True)
class PropertyInfo:
    """What a property column holds.

    Args:
        name: Column name.
        unit: Physical unit ("" when dimensionless or categorical).
        description: What the values are, including how they were obtained.
        kind: ``"numeric"`` or ``"categorical"``.
    """

    name: str
    unit: str = ""
    description: str = ""
    kind: str = "numeric"


@contextmanager
def quiet_spglib() -> Iterator[None]:
    """Run spglib with its new error handling and without its C-level stderr lines.

    spglib 2.7-2.x warns (DeprecationWarning) on every call unless ``OLD_ERROR_HANDLING`` is
    off, in which case failures raise ``SpglibError`` instead of returning ``None``; spglib 3
    drops the switch. ``SPGLIB_WARNING=OFF`` (read by the C library on each call) stops lines
    such as "spglib: ssm_get_exact_positions failed." on stderr. Both are restored on exit.
    """
    import spglib.error

    has_switch = hasattr(spglib.error, "OLD_ERROR_HANDLING")
    previous = spglib.error.OLD_ERROR_HANDLING if has_switch else None
    env = {key: os.environ.get(key) for key in _SPGLIB_ENV}
    if has_switch:
        spglib.error.OLD_ERROR_HANDLING = False
    os.environ.update(_SPGLIB_ENV)
    try:
        yield
    finally:
        if has_switch:
            spglib.error.OLD_ERROR_HANDLING = previous
        for key, value in env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def symmetry_labels(structure: Structure, *, symprec: float = 0.1) -> tuple[int, str]:
    """Return the spglib space-group number and crystal system (0, "unknown" if spglib fails).

    Only lattice, elements and positions are analysed: oxidation states, spins and site
    properties such as magmoms would split one element into several spglib types.
    """
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer
    from spglib.error import SpglibError

    plain = Structure(structure.lattice, [site.species for site in structure], structure.frac_coords)
    plain.remove_oxidation_states()
    plain.remove_spin()
    try:
        with quiet_spglib():
            sga = SpacegroupAnalyzer(plain, symprec=symprec)
            return int(sga.get_space_group_number()), str(sga.get_crystal_system())
    except (ValueError, TypeError, RuntimeError, SpglibError) as exc:
        log.debug("spglib failed: %s", exc)
        return 0, "unknown"


def _column(values: Sequence[Any], name: str, hint: PropertyInfo | None) -> tuple[pd.Series, PropertyInfo]:
    """A property column and its info; the kind always follows the data, unit and text the hint."""
    series = pd.Series(list(values))
    numeric = pd.to_numeric(series, errors="coerce")
    is_numeric = bool(numeric.notna().sum() >= max(1, int(0.9 * series.notna().sum())))
    kind = "numeric" if is_numeric else "categorical"
    if hint is not None and hint.kind != kind:
        log.info("property %r: values are %s, not %s as described; treated as %s", name, kind, hint.kind, kind)
    info = PropertyInfo(name, unit=hint.unit if hint else "", description=hint.description if hint else "", kind=kind)
    return (numeric.astype(float) if is_numeric else series.astype("string")), info


@dataclass(eq=False)
class Dataset:
    """Crystals and their labels; see the module docstring for the storage layout."""

    name: str
    table: pd.DataFrame
    lattices: np.ndarray
    numbers: np.ndarray
    frac_coords: np.ndarray
    offsets: np.ndarray
    properties: dict[str, PropertyInfo] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.table)
        if self.lattices.shape != (n, 3, 3) or self.offsets.shape != (n + 1,):
            raise DatasetError(f"dataset {self.name!r}: table and structure arrays disagree in length.")
        if int(self.offsets[-1]) != len(self.numbers) or self.frac_coords.shape != (len(self.numbers), 3):
            raise DatasetError(f"dataset {self.name!r}: site arrays are inconsistent.")
        missing = [c for c in BASE_COLUMNS if c not in self.table.columns]
        if missing:
            raise DatasetError(f"dataset {self.name!r}: table lacks columns {missing}.")

    def __len__(self) -> int:
        return len(self.table)

    def __repr__(self) -> str:
        return f"Dataset(name={self.name!r}, n={len(self)}, properties={list(self.properties)})"

    @property
    def ids(self) -> list[str]:
        """Row ids, as strings."""
        return self.table["id"].astype(str).tolist()

    def arrays(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Lattice (3, 3), atomic numbers (k,) and fractional coordinates (k, 3) of row ``i``."""
        a, b = int(self.offsets[i]), int(self.offsets[i + 1])
        return self.lattices[i], self.numbers[a:b], self.frac_coords[a:b]

    def structure(self, i: int) -> Structure:
        """Row ``i`` as a pymatgen Structure."""
        lattice, numbers, frac = self.arrays(i)
        return Structure(Lattice(lattice), numbers.tolist(), frac)

    def structures(self) -> list[Structure]:
        """All rows as pymatgen Structures."""
        return [self.structure(i) for i in range(len(self))]

    @cached_property
    def fingerprint(self) -> str:
        """sha256 over ids and canonical structures (rounded lattice, Z, wrapped coordinates)."""
        digest = hashlib.sha256()
        for i, ident in enumerate(self.ids):
            lattice, numbers, frac = self.arrays(i)
            digest.update(ident.encode() + b"\0")
            digest.update(np.round(lattice, 6).astype("<f8").tobytes())
            digest.update(numbers.astype("<i8").tobytes())
            digest.update((np.round(np.mod(frac, 1.0), 6) % 1.0).astype("<f8").tobytes())
        return digest.hexdigest()

    def subset(self, indices: Sequence[int] | np.ndarray, *, name: str | None = None) -> Dataset:
        """A new dataset with the given rows, in the given order."""
        idx = np.asarray(indices, dtype=np.int64)
        counts = np.diff(self.offsets)[idx]
        site_idx = np.concatenate([np.arange(self.offsets[i], self.offsets[i + 1]) for i in idx]) if len(idx) else np.zeros(0, np.int64)
        return Dataset(
            name=name or self.name,
            table=self.table.iloc[idx].reset_index(drop=True),
            lattices=self.lattices[idx],
            numbers=self.numbers[site_idx],
            frac_coords=self.frac_coords[site_idx],
            offsets=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
            properties=dict(self.properties),
            meta=dict(self.meta),
        )

    def property_names(self, kind: str | None = None) -> list[str]:
        """Property columns, optionally only ``numeric`` or ``categorical`` ones."""
        return [p for p, info in self.properties.items() if kind is None or info.kind == kind]

    @classmethod
    def from_structures(
        cls,
        name: str,
        ids: Sequence[Any],
        structures: Sequence[Structure],
        *,
        properties: dict[str, Sequence[Any]] | None = None,
        property_info: dict[str, PropertyInfo] | None = None,
        meta: dict[str, Any] | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> Dataset:
        """Build a dataset, computing formula, chemical system and spglib labels per structure.

        A property's kind (numeric or categorical) is inferred from its values; ``property_info``
        supplies only units and descriptions. pymatgen and spglib warnings are logged, not shown.
        """
        ids = [str(x) for x in ids]
        if len(ids) != len(structures):
            raise DatasetError("ids and structures differ in length.")
        if len(set(ids)) != len(ids):
            dup = pd.Series(ids)[pd.Series(ids).duplicated()].iloc[0]
            raise DatasetError(f"dataset {name!r}: id {dup!r} occurs more than once.")
        rows = []
        # pymatgen warns per structure (e.g. "No Pauling electronegativity for Ne"); log, don't show.
        with warnings.catch_warnings(record=True) as caught, quiet_spglib():
            warnings.simplefilter("always")
            for k, s in enumerate(structures):
                sg, system = symmetry_labels(s)
                comp = s.composition
                rows.append((ids[k], comp.reduced_formula, comp.chemical_system, sg, system, len(s)))
                if progress is not None:
                    progress(k + 1, len(structures))
        for message in sorted({str(w.message) for w in caught}):
            log.debug("labelling warning: %s", message)
        table = pd.DataFrame(rows, columns=list(BASE_COLUMNS))
        table["spacegroup"] = table["spacegroup"].astype(np.int64)
        table["nsites"] = table["nsites"].astype(np.int64)
        info: dict[str, PropertyInfo] = {}
        for col, values in (properties or {}).items():
            if col in BASE_COLUMNS:
                raise DatasetError(f"property name {col!r} clashes with a built-in column.")
            if len(values) != len(ids):
                raise DatasetError(f"property {col!r} has {len(values)} values for {len(ids)} rows.")
            table[col], info[col] = _column(values, col, (property_info or {}).get(col))
        counts = np.array([len(s) for s in structures], dtype=np.int64)
        return cls(
            name=name,
            table=table,
            lattices=np.array([s.lattice.matrix for s in structures], dtype=np.float64).reshape(-1, 3, 3),
            numbers=np.concatenate([s.atomic_numbers for s in structures]).astype(np.int64) if structures else np.zeros(0, np.int64),
            frac_coords=np.concatenate([s.frac_coords for s in structures]).astype(np.float64) if structures else np.zeros((0, 3)),
            offsets=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
            properties=info,
            meta=dict(meta or {}),
        )

    def save(self, directory: str | Path) -> Path:
        """Write ``dataset.parquet`` then ``meta.json`` atomically into ``directory``."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        directory = Path(directory)
        tab = pa.Table.from_pandas(self.table, preserve_index=False)
        tab = tab.append_column("lattice", pa.FixedSizeListArray.from_arrays(pa.array(self.lattices.reshape(-1)), 9))
        tab = tab.append_column("numbers", pa.ListArray.from_arrays(pa.array(self.offsets), pa.array(self.numbers)))
        tab = tab.append_column("frac", pa.ListArray.from_arrays(pa.array(self.offsets * 3), pa.array(self.frac_coords.reshape(-1))))
        tab = tab.replace_schema_metadata(None)
        buf = io.BytesIO()
        pq.write_table(tab, buf, compression="zstd", write_statistics=False)
        atomic_write_bytes(directory / "dataset.parquet", buf.getvalue())
        atomic_write_json(directory / "meta.json", self.describe())
        return directory

    def describe(self) -> dict[str, Any]:
        """Metadata written to ``meta.json``: source, license, units, counts, fingerprint."""
        return {
            **self.meta,
            "name": self.name,
            "format_version": FORMAT_VERSION,
            "n_structures": len(self),
            "n_sites": int(len(self.numbers)),
            "n_elements": int(len(np.unique(self.numbers))),
            "fingerprint": self.fingerprint,
            "properties": {k: asdict(v) for k, v in self.properties.items()},
        }

    @classmethod
    def load(cls, directory: str | Path) -> Dataset:
        """Read a dataset written by :meth:`save`."""
        import pyarrow.parquet as pq

        directory = Path(directory)
        try:
            meta = json.loads((directory / "meta.json").read_text())
            tab = pq.read_table(directory / "dataset.parquet")
        except (OSError, ValueError) as exc:
            raise DatasetError(f"dataset at {directory} cannot be read ({exc}).") from exc
        if meta.get("format_version") != FORMAT_VERSION:
            raise DatasetError(f"dataset at {directory} has format {meta.get('format_version')}, expected {FORMAT_VERSION}.")
        lat = tab.column("lattice").combine_chunks()
        nums = tab.column("numbers").combine_chunks()
        frac = tab.column("frac").combine_chunks()
        table = tab.drop_columns(["lattice", "numbers", "frac"]).to_pandas()
        props = {k: PropertyInfo(**v) for k, v in meta.pop("properties", {}).items()}
        for key in ("name", "format_version", "n_structures", "n_sites", "n_elements", "fingerprint"):
            meta.pop(key, None)
        ds = cls(
            name=directory.name,
            table=table,
            lattices=lat.flatten().to_numpy().reshape(-1, 3, 3).astype(np.float64),
            numbers=nums.flatten().to_numpy().astype(np.int64),
            frac_coords=frac.flatten().to_numpy().reshape(-1, 3).astype(np.float64),
            offsets=nums.offsets.to_numpy().astype(np.int64) - int(nums.offsets[0].as_py()),
            properties=props,
            meta=meta,
        )
        return ds


def datasets_home() -> Path:
    """Folder of user datasets: ``$CRYSTALREP_HOME/datasets``."""
    return crystalrep_home() / "datasets"


def default_dataset_dir() -> Path:
    """The built-in default dataset, shipped inside the package (``crystalrep/data/default``)."""
    return Path(__file__).resolve().parent / "data" / DEFAULT_NAME


def check_name(name: str) -> str:
    """Validate a dataset name (letters, digits, ``_.-``; at most 64 characters)."""
    if not NAME_RE.match(name or ""):
        raise DatasetError(f"dataset name {name!r} is invalid; use letters, digits, '_', '.', '-' (max 64).")
    return name


def dataset_dir(name: str) -> Path:
    """Where a named dataset lives (the default one lives in the repository)."""
    check_name(name)
    return default_dataset_dir() if name == DEFAULT_NAME else datasets_home() / name


def save_dataset(ds: Dataset, *, overwrite: bool = False) -> Path:
    """Save under ``datasets_home()/<name>``; the built-in name ``default`` is reserved.

    The dataset is written into a temporary folder beside the target and then swapped in, so
    an existing dataset of that name stays readable and intact unless the new one is complete.
    """
    if check_name(ds.name) == DEFAULT_NAME:
        raise DatasetError("the name 'default' is reserved for the built-in dataset.")
    target = dataset_dir(ds.name)
    if target.exists() and not overwrite:
        raise DatasetError(f"dataset {ds.name!r} already exists; delete it first or choose another name.")
    target.parent.mkdir(parents=True, exist_ok=True)
    # Beside the target: same filesystem, so both renames are atomic; the dot keeps it unlisted.
    work = Path(tempfile.mkdtemp(prefix=f".{ds.name}.", suffix=".tmp", dir=target.parent))
    try:
        ds.save(work / "new")
        if target.exists():
            os.replace(target, work / "old")
        try:
            os.replace(work / "new", target)
        except OSError:
            if (work / "old").exists():
                os.replace(work / "old", target)
            raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


def load_dataset(name: str) -> Dataset:
    """Load a dataset by name (``default`` is the built-in one)."""
    folder = dataset_dir(name)
    if not (folder / "meta.json").is_file():
        raise DatasetError(f"no dataset named {name!r}; known: {', '.join(d['name'] for d in list_datasets()) or 'none'}.")
    ds = Dataset.load(folder)
    ds.name = name
    return ds


def list_datasets() -> list[dict[str, Any]]:
    """Summaries (name, n_structures, source, path) of the default and every user dataset."""
    folders = [default_dataset_dir()] if (default_dataset_dir() / "meta.json").is_file() else []
    if datasets_home().is_dir():
        folders += sorted(p for p in datasets_home().iterdir() if (p / "meta.json").is_file())
    out = []
    for folder in folders:
        try:
            meta = json.loads((folder / "meta.json").read_text())
        except (OSError, ValueError):
            continue
        out.append({"name": folder.name, "n_structures": meta.get("n_structures"), "source": meta.get("source", ""), "path": str(folder)})
    return out


def delete_dataset(name: str) -> None:
    """Remove a user dataset; the built-in default cannot be deleted."""
    if check_name(name) == DEFAULT_NAME:
        raise DatasetError("the built-in default dataset cannot be deleted.")
    folder = dataset_dir(name)
    if not folder.is_dir():
        raise DatasetError(f"no dataset named {name!r}.")
    shutil.rmtree(folder)
