"""The table of crystals: a :class:`Dataset` in memory, named datasets on disk, read lazily from shards.

Modules, one job each: :mod:`~crystalrep.datasets.schema` (names, errors, the ``meta.json``
record), :mod:`~crystalrep.datasets.labels` (spglib labels, property kinds),
:mod:`~crystalrep.datasets.table` (the :class:`Dataset`), :mod:`~crystalrep.datasets.parquet`
(bytes on disk), :mod:`~crystalrep.datasets.storage` (verified reading),
:mod:`~crystalrep.datasets.sharded` (lazy shards), :mod:`~crystalrep.datasets.columns` (a lazy
single table, its fingerprint remembered), :mod:`~crystalrep.datasets.registry` (named
datasets) and :mod:`~crystalrep.datasets.writer` (a dataset written shard by shard).

To walk a big dataset without holding it, use ``for offset, block in ds.iter_shards()``: each
``block`` is a :class:`Dataset` of rows ``offset .. offset + len(block)`` (``ds.shard_bounds()``
lists them up front); for a dataset stored in shards these are the shards on disk.
"""

from crystalrep.datasets.labels import quiet_spglib, symmetry_labels
from crystalrep.datasets.registry import (
    check_name,
    dataset_dir,
    dataset_exists,
    datasets_home,
    default_dataset_dir,
    delete_dataset,
    is_reserved,
    list_datasets,
    load_dataset,
    save_dataset,
)
from crystalrep.datasets.schema import (
    BASE_COLUMNS,
    DEFAULT_NAME,
    FORMAT_VERSION,
    META,
    PARQUET,
    RESERVED_COLUMNS,
    STORAGE_COLUMNS,
    DatasetError,
    PropertyInfo,
    meta_problem,
)
from crystalrep.datasets.table import Dataset
from crystalrep.datasets.writer import ShardWriter, save_in_shards

__all__ = [
    "BASE_COLUMNS", "DEFAULT_NAME", "FORMAT_VERSION", "META", "PARQUET", "RESERVED_COLUMNS", "STORAGE_COLUMNS",
    "Dataset", "DatasetError", "PropertyInfo", "ShardWriter", "check_name", "dataset_dir",
    "dataset_exists", "datasets_home", "default_dataset_dir", "delete_dataset", "is_reserved", "list_datasets",
    "load_dataset", "meta_problem", "quiet_spglib", "save_dataset", "save_in_shards", "symmetry_labels",
]
