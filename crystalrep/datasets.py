"""Dataset: ids, parsed structures as arrays, symmetry labels and property columns with units.

Structures are stored parsed (lattice, atomic numbers, fractional coordinates), so CIF text is
parsed once at import and never again. On disk a dataset is a parquet table + ``meta.json``.

``meta.json`` is the commit record: it names its parquet file and that file's sha256, so every
read is verified (bytes against the sha256, content against the fingerprint, counts against the
table) and a reader sees one version whole, never one version's table with another's metadata.
A named dataset is saved as ``dataset-<sha>.parquet`` and then ``meta.json`` is replaced in one
step (:func:`save_dataset`); :meth:`Dataset.save` writes the plain ``dataset.parquet`` layout of
the built-in dataset, which stays readable, as do folders written before the sha256 was recorded.
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import json
import logging
import os
import re
import shutil
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pymatgen.core import Lattice, Structure

from crystalrep.store import atomic_write_bytes, atomic_write_json, crystalrep_home, inside

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
BASE_COLUMNS = ("id", "formula", "chemsys", "spacegroup", "crystal_system", "nsites")
STORAGE_COLUMNS = ("lattice", "numbers", "frac")  # parquet columns holding the structures
RESERVED_COLUMNS = BASE_COLUMNS + STORAGE_COLUMNS  # no property may take one of these names
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")  # always fullmatch: "$" lets a newline pass
DEFAULT_NAME = "default"
PARQUET = "dataset.parquet"
META = "meta.json"
_PARQUET_RE = re.compile(r"dataset(-[0-9a-f]{16})?\.parquet")
_SHA256_RE = re.compile(r"[0-9a-f]{64}")
_KINDS = ("numeric", "categorical")
_LOAD_ATTEMPTS = 5
MAX_META_BYTES = 16 * 2**20  # meta.json holds counts, units and up to 200 rejected rows: far less
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
    previous: bool = spglib.error.OLD_ERROR_HANDLING if has_switch else False  # restored only if has_switch
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


def _column(values: Sequence[Any], name: str, hint: PropertyInfo | None) -> tuple[Any, PropertyInfo]:
    """A property column and its info; the kind always follows the data, unit and text the hint."""
    raw = np.empty(len(values), dtype=object)  # numpy, not Series: ~10x less overhead per column
    for i, value in enumerate(values):
        raw[i] = value
    numeric = np.asarray(pd.to_numeric(raw, errors="coerce"), dtype=float) if len(raw) else np.zeros(0)
    is_numeric = bool(np.count_nonzero(~np.isnan(numeric)) >= max(1, int(0.9 * np.count_nonzero(~pd.isna(raw)))))
    kind = "numeric" if is_numeric else "categorical"
    if hint is not None and hint.kind != kind:
        log.info("property %r: values are %s, not %s as described; treated as %s", name, kind, hint.kind, kind)
    info = PropertyInfo(name, unit=hint.unit if hint else "", description=hint.description if hint else "", kind=kind)
    return (numeric if is_numeric else pd.array(raw, dtype="string")), info


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
        lattices = np.round(self.lattices, 6).astype("<f8")
        numbers = self.numbers.astype("<i8")
        frac = (np.round(np.mod(self.frac_coords, 1.0), 6) % 1.0).astype("<f8")
        for i, ident in enumerate(self.ids):  # rounding in bulk, hashing per row: same bytes as row by row
            a, b = int(self.offsets[i]), int(self.offsets[i + 1])
            digest.update(ident.encode() + b"\0")
            digest.update(lattices[i].tobytes())
            digest.update(numbers[a:b].tobytes())
            digest.update(frac[a:b].tobytes())
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
        properties: Mapping[str, Sequence[Any]] | None = None,
        property_info: Mapping[str, PropertyInfo] | None = None,
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
        columns: dict[str, Any] = {}  # arrays, not Series: a DataFrame of arrays is built ~3x faster
        for col, values in (properties or {}).items():
            if col in RESERVED_COLUMNS:
                raise DatasetError(f"property name {col!r} clashes with a built-in column.")
            if len(values) != len(ids):
                raise DatasetError(f"property {col!r} has {len(values)} values for {len(ids)} rows.")
            columns[col], info[col] = _column(values, col, (property_info or {}).get(col))
        if columns:  # joined at once: one insert per column is quadratic in the number of columns
            table = pd.concat([table, pd.DataFrame(columns)], axis=1)
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

    def parquet_bytes(self) -> bytes:
        """The table and the structure arrays as one zstd parquet file (deterministic bytes)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        tab = pa.Table.from_pandas(self.table, preserve_index=False)
        tab = tab.append_column("lattice", pa.FixedSizeListArray.from_arrays(pa.array(self.lattices.reshape(-1)), 9))
        tab = tab.append_column("numbers", pa.ListArray.from_arrays(pa.array(self.offsets), pa.array(self.numbers)))
        tab = tab.append_column("frac", pa.ListArray.from_arrays(pa.array(self.offsets * 3), pa.array(self.frac_coords.reshape(-1))))
        tab = tab.replace_schema_metadata(None)
        buf = io.BytesIO()
        pq.write_table(tab, buf, compression="zstd", write_statistics=False)
        return buf.getvalue()

    def save(self, directory: str | Path) -> Path:
        """Write ``dataset.parquet`` then ``meta.json`` (recording its sha256) atomically into ``directory``.

        This is the plain layout of the built-in dataset; a named dataset that others may be
        reading is saved with :func:`save_dataset`, which never rewrites a file in place.
        """
        directory = Path(directory)
        blob = self.parquet_bytes()
        atomic_write_bytes(directory / PARQUET, blob)
        atomic_write_json(directory / META, self._record(PARQUET, blob))
        return directory

    def _record(self, parquet: str, blob: bytes) -> dict[str, Any]:
        return {**self.describe(), "parquet": parquet, "parquet_sha256": hashlib.sha256(blob).hexdigest()}

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
        """Read and verify a dataset folder (either layout; see the module docstring).

        Raises:
            DatasetError: If ``meta.json`` is malformed, or the table does not match the sha256,
                fingerprint or counts it records (one sentence naming the dataset).
        """
        directory = Path(directory)
        attempt = 0
        while True:
            try:
                return _read_version(cls, directory)
            except _Replaced as exc:  # a writer committed a new version while we read: read again
                attempt += 1
                if attempt >= _LOAD_ATTEMPTS:
                    raise DatasetError(f"dataset {directory.name!r}: {exc}") from None
                time.sleep(0.02 * attempt)


class _Replaced(Exception):
    """The parquet file a ``meta.json`` named was gone or different when read (a concurrent writer)."""


def meta_problem(meta: object) -> str | None:
    """Why a parsed ``meta.json`` is not a dataset record (one phrase), or ``None`` when it is."""
    if not isinstance(meta, dict):
        return "meta.json is not a JSON object"
    if meta.get("format_version") != FORMAT_VERSION or isinstance(meta.get("format_version"), bool):
        return f"its format_version is {str(meta.get('format_version'))[:20]}, expected {FORMAT_VERSION}"
    for key in ("n_structures", "n_sites", "n_elements"):
        value = meta.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            return f"its {key} is not a count"
    if not isinstance(meta.get("fingerprint"), str) or not _SHA256_RE.fullmatch(meta["fingerprint"]):
        return "its fingerprint is not a sha256"
    if "parquet" in meta and not (isinstance(meta["parquet"], str) and _PARQUET_RE.fullmatch(meta["parquet"])):
        return "its parquet file name is malformed"
    sha = meta.get("parquet_sha256")
    if sha is not None and not (isinstance(sha, str) and _SHA256_RE.fullmatch(sha)):
        return "its parquet_sha256 is not a sha256"
    for key in ("name", "source", "license", "description", "format"):
        if key in meta and not isinstance(meta[key], str):
            return f"its {key} is not text"
    props = meta.get("properties", {})
    if not isinstance(props, dict):
        return "its properties are not a JSON object"
    fields = {"name", "unit", "description", "kind"}
    for name, info in props.items():
        if (not isinstance(info, dict) or not set(info) <= fields
                or not all(isinstance(v, str) for v in info.values()) or info.get("kind", "numeric") not in _KINDS):
            return f"its entry for property {str(name)[:40]!r} is malformed"
    return None


def _read_meta(directory: Path) -> tuple[bytes, dict[str, Any]]:
    """The raw bytes and the validated content of a dataset's ``meta.json``."""
    name = directory.name
    try:
        if (directory / META).stat().st_size > MAX_META_BYTES:
            raise DatasetError(f"dataset {name!r} is broken: its meta.json is larger than {MAX_META_BYTES >> 20} MB.")
        raw = (directory / META).read_bytes()
    except OSError as exc:
        raise DatasetError(f"dataset {name!r} cannot be read ({exc.strerror or exc}).") from exc
    try:
        meta = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise DatasetError(f"dataset {name!r} cannot be read (meta.json is not valid JSON).") from exc
    problem = meta_problem(meta)
    if problem is not None:
        raise DatasetError(f"dataset {name!r} is broken: {problem}.")
    return raw, meta


def _storage_columns(tab: Any, name: str) -> tuple[Any, list[int]]:
    """The three structure columns and the positions of the table columns.

    Datasets imported before property names were checked may hold a property called
    ``lattice`` beside the structure column; the structure columns are always the last three.
    """
    names = tab.schema.names
    if len(names) < 3 or names[-3:] != list(STORAGE_COLUMNS):
        raise DatasetError(f"dataset {name!r} cannot be read (its parquet file lacks the structure columns).")
    n = len(names)
    return [tab.column(n - 3 + k).combine_chunks() for k in range(3)], list(range(n - 3))


def _renamed_clashes(table: pd.DataFrame, props: dict[str, PropertyInfo]) -> tuple[pd.DataFrame, dict[str, PropertyInfo]]:
    """Give old properties that took a reserved name (``lattice``) a ``source_`` name."""
    clashes = [c for c in props if c in STORAGE_COLUMNS and c in table.columns]
    if not clashes:
        return table, props
    columns = list(table.columns)
    mapping = {}
    for old in clashes:
        new = f"source_{old}"
        while new in columns or new in props:
            new = f"source_{new}"
        mapping[old] = new
        columns[columns.index(old)] = new
    table.columns = columns
    props = {mapping.get(k, k): (PropertyInfo(mapping[k], info.unit, info.description, info.kind) if k in mapping else info)
             for k, info in props.items()}
    return table, props


def _read_version(cls: type[Dataset], directory: Path) -> Dataset:
    import pyarrow as pa
    import pyarrow.parquet as pq

    name = directory.name
    raw, meta = _read_meta(directory)
    parquet = meta.get("parquet", PARQUET)
    try:
        blob = (directory / parquet).read_bytes()
    except FileNotFoundError:
        if (directory / META).is_file() and _changed(directory, raw):
            raise _Replaced("it was replaced while being read; try again.") from None
        raise DatasetError(f"dataset {name!r} is broken: its table {parquet} is missing.") from None
    except OSError as exc:
        raise DatasetError(f"dataset {name!r} cannot be read ({exc.strerror or exc}).") from exc
    sha = meta.get("parquet_sha256")
    if sha is not None and hashlib.sha256(blob).hexdigest() != sha:
        if _changed(directory, raw):
            raise _Replaced("it was replaced while being read; try again.")
        raise DatasetError(f"dataset {name!r} is broken: {parquet} does not match the sha256 in meta.json.")
    try:
        tab = pq.ParquetFile(pa.BufferReader(blob)).read()  # read_table refuses duplicate column names
        (lat, nums, frac), keep = _storage_columns(tab, name)
        table = tab.select(keep).to_pandas()
        lattices = lat.flatten().to_numpy().reshape(-1, 3, 3).astype(np.float64)
        numbers = nums.flatten().to_numpy().astype(np.int64)
        frac_coords = frac.flatten().to_numpy().reshape(-1, 3).astype(np.float64)
        offsets = nums.offsets.to_numpy().astype(np.int64) - int(nums.offsets[0].as_py())
    except (pa.ArrowException, OSError, ValueError, TypeError, IndexError) as exc:
        raise DatasetError(f"dataset {name!r} cannot be read (its table is damaged: {str(exc).splitlines()[0][:120]}).") from exc
    props = {k: PropertyInfo(**{**v, "name": k}) for k, v in meta.get("properties", {}).items()}
    table, props = _renamed_clashes(table, props)
    extra = {k: v for k, v in meta.items() if k not in (
        "properties", "name", "format_version", "n_structures", "n_sites", "n_elements", "fingerprint",
        "parquet", "parquet_sha256")}
    ds = cls(name=name, table=table, lattices=lattices, numbers=numbers, frac_coords=frac_coords,
             offsets=offsets, properties=props, meta=extra)
    if len(ds) != meta["n_structures"] or len(ds.numbers) != meta["n_sites"] or ds.fingerprint != meta["fingerprint"]:
        raise DatasetError(f"dataset {name!r} is broken: its table does not match the counts and fingerprint in meta.json.")
    missing = [p for p in props if p not in table.columns]
    if missing:
        raise DatasetError(f"dataset {name!r} is broken: meta.json lists properties without columns ({', '.join(missing[:5])}).")
    return ds


def _changed(directory: Path, raw: bytes) -> bool:
    """Whether ``meta.json`` now differs from ``raw`` (read again now and after a moment)."""
    for pause in (0.0, 0.02):
        time.sleep(pause)
        try:
            if (directory / META).read_bytes() != raw:
                return True
        except OSError:
            return True
    return False


def datasets_home() -> Path:
    """Folder of user datasets: ``$CRYSTALREP_HOME/datasets``."""
    return crystalrep_home() / "datasets"


def default_dataset_dir() -> Path:
    """The built-in default dataset, shipped inside the package (``crystalrep/data/default``)."""
    return Path(__file__).resolve().parent / "data" / DEFAULT_NAME


def check_name(name: str) -> str:
    """Validate a dataset name (letters, digits, ``_.-``; at most 64 characters; the whole string)."""
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise DatasetError(f"dataset name {str(name)[:70]!r} is invalid; use letters, digits, '_', '.', '-' (max 64).")
    return name


def is_reserved(name: str) -> bool:
    """Whether ``name`` is the built-in dataset's, in any letter case (``DEFAULT`` would shadow it)."""
    return name.lower() == DEFAULT_NAME


def dataset_dir(name: str) -> Path:
    """Where a named dataset lives (the default one lives in the package).

    Raises:
        DatasetError: If the name is invalid, or its folder leads out of ``datasets_home()``.
    """
    check_name(name)
    if name == DEFAULT_NAME:
        return default_dataset_dir()
    try:
        return inside(datasets_home(), datasets_home() / name)
    except ValueError as exc:
        raise DatasetError(f"dataset {name!r}: {exc}") from None


def dataset_exists(name: str) -> bool:
    """Whether a dataset of that name has been committed (its ``meta.json`` exists)."""
    return (dataset_dir(name) / META).is_file()


@contextmanager
def _writing(name: str) -> Iterator[None]:
    """Hold the exclusive writer lock of dataset ``name`` (readers never wait for it)."""
    datasets_home().mkdir(parents=True, exist_ok=True)
    with open(datasets_home() / f".{name}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _collect(folder: Path, keep: str) -> None:
    """Remove older parquet versions and dead writers' temp files (called under the writer lock)."""
    for path in folder.iterdir():
        old = _PARQUET_RE.fullmatch(path.name) and path.name != keep
        if old or (path.name.startswith(".") and path.name.endswith(".tmp")):
            path.unlink(missing_ok=True)


def save_dataset(ds: Dataset, *, overwrite: bool = False) -> Path:
    """Save under ``datasets_home()/<name>``; the built-in name ``default`` is reserved (any case).

    The table is written as a new ``dataset-<sha>.parquet`` beside the current one, then
    ``meta.json`` naming it replaces the old one in a single rename: a reader, or a process killed
    at any instant, sees the old version or the new one, whole. Writers of one name take turns.
    """
    if is_reserved(check_name(ds.name)):
        raise DatasetError("the name 'default' is reserved for the built-in dataset.")
    target = dataset_dir(ds.name)
    blob = ds.parquet_bytes()
    parquet = f"dataset-{hashlib.sha256(blob).hexdigest()[:16]}.parquet"
    with _writing(ds.name):
        if dataset_exists(ds.name) and not overwrite:
            raise DatasetError(f"dataset {ds.name!r} already exists; delete it first or choose another name.")
        created = not target.exists()
        target.mkdir(parents=True, exist_ok=True)
        try:
            atomic_write_bytes(target / parquet, blob)
            atomic_write_json(target / META, ds._record(parquet, blob))  # the commit
        except BaseException:
            if created:
                shutil.rmtree(target, ignore_errors=True)
            raise
        _collect(target, parquet)
    return target


def load_dataset(name: str) -> Dataset:
    """Load and verify a dataset by name (``default`` is the built-in one)."""
    folder = dataset_dir(name)
    if not (folder / META).is_file():
        known = ", ".join(d["name"] for d in list_datasets()) or "none"
        raise DatasetError(f"no dataset named {name!r}; known: {known[:200]}.")
    ds = Dataset.load(folder)
    ds.name = name
    return ds


def list_datasets() -> list[dict[str, Any]]:
    """Summaries (name, n_structures, source, path) of the default and every user dataset.

    A dataset whose ``meta.json`` is unreadable or malformed is still listed, with
    ``n_structures`` None and an ``error`` sentence, so one broken folder never hides the others.
    """
    folders = [default_dataset_dir()] if (default_dataset_dir() / META).is_file() else []
    if datasets_home().is_dir():
        home = datasets_home().resolve()
        folders += sorted(p for p in datasets_home().iterdir()
                          if NAME_RE.fullmatch(p.name) and p.resolve().is_relative_to(home) and (p / META).is_file())
    out = []
    for folder in folders:
        row: dict[str, Any] = {"name": folder.name, "n_structures": None, "source": "", "path": str(folder)}
        try:
            meta = _read_meta(folder)[1]
        except DatasetError as exc:
            row["error"] = str(exc)
        else:
            row.update(n_structures=meta["n_structures"], source=meta.get("source", ""))
        out.append(row)
    return out


def delete_dataset(name: str) -> None:
    """Remove a user dataset; the built-in default cannot be deleted."""
    if is_reserved(check_name(name)):
        raise DatasetError("the built-in default dataset cannot be deleted.")
    folder = dataset_dir(name)
    if not folder.is_dir():
        raise DatasetError(f"no dataset named {name!r}.")
    with _writing(name):
        (folder / META).unlink(missing_ok=True)  # first: from here on nobody lists or reads it
        shutil.rmtree(folder, ignore_errors=True)
