"""crystalrep: crystals in, trustworthy maps and numbers out.

The public face is small; heavy dependencies (torch, chgnet, umap, ...) are imported
only inside the functions that need them, so ``import crystalrep`` stays light.
"""

from importlib.metadata import PackageNotFoundError, version

from crystalrep.datasets import Dataset, DatasetError, load_dataset
from crystalrep.structures import StructureError, read_structure, read_structures

try:
    __version__ = version("crystalrep")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0"

__all__ = [
    "Dataset",
    "DatasetError",
    "StructureError",
    "__version__",
    "load_dataset",
    "read_structure",
    "read_structures",
]
