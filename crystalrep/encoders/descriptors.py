"""Hand-made baselines: Magpie (composition only) and SOAP (local geometry, averaged over sites)."""

from __future__ import annotations

import itertools
import logging
import warnings
from abc import abstractmethod
from collections.abc import Sequence
from importlib.metadata import version as package_version
from typing import TYPE_CHECKING, Any

import numpy as np

from crystalrep.encoders.base import Encoder, Progress, batch_ranges

if TYPE_CHECKING:
    from pymatgen.core import Structure

    from crystalrep.datasets import Dataset

__all__ = ["MagpieEncoder", "SOAPEncoder"]

logger = logging.getLogger(__name__)

Arrays = tuple[np.ndarray, np.ndarray, np.ndarray]


def _structure_arrays(structure: Structure) -> Arrays:
    return structure.lattice.matrix, np.asarray(structure.atomic_numbers), structure.frac_coords


class _ArrayEncoder(Encoder):
    """Encoders that work on (lattice, numbers, frac) arrays; datasets skip pymatgen objects."""

    @abstractmethod
    def _embed_arrays(self, get: Any, n: int, batch_size: int, progress: Progress | None) -> np.ndarray:
        """Embed rows ``get(0) .. get(n - 1)``, each ``(lattice, numbers, frac_coords)``."""

    def embed_structures(
        self,
        structures: Sequence[Structure],
        *,
        device: str = "auto",
        batch_size: int = 64,
        progress: Progress | None = None,
    ) -> np.ndarray:
        return self._embed_arrays(
            lambda i: _structure_arrays(structures[i]), len(structures), batch_size, progress
        )

    def embed_dataset(
        self,
        dataset: Dataset,
        *,
        device: str = "auto",
        batch_size: int = 64,
        progress: Progress | None = None,
    ) -> np.ndarray:
        return self._embed_arrays(dataset.arrays, len(dataset), batch_size, progress)


class MagpieEncoder(_ArrayEncoder):
    """matminer's Magpie element-property statistics of the composition (132 numbers).

    The values are matminer's: its featurizer's element data, gathered into a table once, and
    its statistics, computed as array arithmetic over all crystals at once
    (:mod:`crystalrep.encoders.magpie`).
    """

    name = "magpie"
    version = "1"
    description = (
        "Magpie composition features (Ward et al. 2016) from matminer's "
        "ElementProperty.from_preset('magpie'): min, max, range, mean, mean absolute deviation "
        "and mode of 22 element properties over the reduced formula (132 numbers, raw units, not "
        "standardised). Blind to structure, so trivially invariant; missing element data -> 0."
    )

    def __init__(self) -> None:
        super().__init__()
        self._featurizer: Any = None
        self._table: np.ndarray | None = None

    @property
    def dim(self) -> int:
        """22 properties x 6 statistics."""
        return 132

    @property
    def config(self) -> dict[str, Any]:
        """The matminer preset and the value imputed for missing element data."""
        return {"preset": "magpie", "impute_nan": 0.0}

    def code_versions(self) -> dict[str, str]:
        """Our version and matminer's (its element data and statistics define the numbers)."""
        return {"encoder": self.version, "matminer": package_version("matminer")}

    def featurizer(self) -> Any:
        """The matminer featurizer (built once)."""
        if self._featurizer is None:
            from matminer.featurizers.composition import ElementProperty

            self._featurizer = ElementProperty.from_preset("magpie", impute_nan=False)
        return self._featurizer

    def feature_labels(self) -> list[str]:
        """Names of the 132 columns."""
        return list(self.featurizer().feature_labels())

    def embed_structures(
        self,
        structures: Sequence[Structure],
        *,
        device: str = "auto",
        batch_size: int = 64,
        progress: Progress | None = None,
    ) -> np.ndarray:
        """Magpie rows of pymatgen structures (see :meth:`Encoder.embed_structures`)."""
        # composition only: skip building each structure's lattice and coordinate arrays
        return self._embed_arrays(
            lambda i: (None, structures[i].atomic_numbers, None), len(structures), batch_size, progress
        )

    def embed_dataset(
        self,
        dataset: Dataset,
        *,
        device: str = "auto",
        batch_size: int = 64,
        progress: Progress | None = None,
    ) -> np.ndarray:
        """Magpie rows of a dataset, straight from its concatenated atomic numbers."""
        return self._embed_numbers(dataset.numbers, dataset.offsets, batch_size, progress)

    def _embed_arrays(self, get: Any, n: int, batch_size: int, progress: Progress | None) -> np.ndarray:
        numbers: list[Any] = []
        for start, stop in batch_ranges(n, batch_size):
            numbers.extend(get(i)[1] for i in range(start, stop))
            if progress is not None:
                progress(stop, n)
        offsets = np.zeros(n + 1, dtype=np.int64)
        np.cumsum([len(z) for z in numbers], out=offsets[1:])
        flat = np.fromiter(itertools.chain.from_iterable(numbers), dtype=np.int64, count=int(offsets[-1]))
        return self._embed_numbers(flat, offsets, batch_size, None)

    def _embed_numbers(
        self, numbers: np.ndarray, offsets: np.ndarray, batch_size: int, progress: Progress | None
    ) -> np.ndarray:
        from crystalrep.encoders.magpie import dataset_features, magpie_table

        featurizer = self.featurizer()
        if self._table is None:
            self._table = magpie_table(featurizer)
        out, distinct = dataset_features(featurizer, self._table, numbers, offsets,
                                         batch_size=batch_size, progress=progress)
        nan_cols = np.flatnonzero(np.isnan(out).any(axis=0))
        if nan_cols.size:
            labels = self.feature_labels()
            logger.warning("Magpie: imputed 0 for missing element data in %d columns", nan_cols.size)
            out[:, nan_cols] = np.nan_to_num(out[:, nan_cols], nan=0.0)
        else:
            labels = []
        self.last_run_info = {
            "distinct_compositions": distinct,
            "imputed_columns": [labels[c] for c in nan_cols],
        }
        return out.astype(np.float32)


SOAP_SPECIES = tuple(range(1, 95))


class SOAPEncoder(_ArrayEncoder):
    """dscribe SOAP power spectrum, averaged over sites, in two species-compressed channels.

    Args:
        r_cut: Cutoff radius in Å; the density is weighted by a polynomial that reaches 0 there.
        n_max: Radial basis functions.
        l_max: Largest spherical-harmonic degree.
        sigma: Width of the atomic Gaussians in Å.
    """

    name = "soap"
    version = "1"

    def __init__(self, *, r_cut: float = 5.0, n_max: int = 6, l_max: int = 4, sigma: float = 0.5) -> None:
        super().__init__()
        self.r_cut, self.n_max, self.l_max, self.sigma = float(r_cut), int(n_max), int(l_max), float(sigma)
        self._soaps: list[Any] | None = None
        self.description = (
            f"SOAP (dscribe; r_cut={self.r_cut} Å, n_max={self.n_max}, l_max={self.l_max}, "
            f"sigma={self.sigma} Å, GTO radial basis, periodic) with a smooth polynomial cutoff "
            "weight (Caro 2019, reaches 0 at r_cut) and the element-agnostic 'mu2' compression "
            "(Darby et al. 2022). Two channels, concatenated: every atom weighted 1 (pure geometry), "
            "then every atom weighted by its Pauling electronegativity (chemistry; He, Ne, Ar -> 0). "
            "Power spectra are averaged over sites ('outer': the average-kernel of De et al. 2016, "
            f"so a supercell embeds like its cell). Elements Z=1-94; {self.dim} numbers."
        )

    @property
    def dim(self) -> int:
        """Two channels of n_max (n_max + 1) / 2 radial pairs times l_max + 1 degrees."""
        return 2 * (self.n_max * (self.n_max + 1) // 2) * (self.l_max + 1)

    @property
    def config(self) -> dict[str, Any]:
        """Every dscribe setting that changes the vector."""
        return {
            "r_cut": self.r_cut, "n_max": self.n_max, "l_max": self.l_max, "sigma": self.sigma,
            "rbf": "gto", "weighting": "poly(c=1,m=1,r0=r_cut)", "average": "outer",
            "compression": "mu2", "channels": ["unweighted", "pauling_electronegativity"],
            "species": f"Z=1..{SOAP_SPECIES[-1]}",
        }

    def code_versions(self) -> dict[str, str]:
        """Our version and dscribe's."""
        return {"encoder": self.version, "dscribe": package_version("dscribe")}

    def descriptors(self) -> list[Any]:
        """The two dscribe SOAP objects (built once)."""
        if self._soaps is None:
            from dscribe.descriptors import SOAP
            from pymatgen.core import Element

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # pymatgen warns for elements without a value
                chi = {z: Element.from_Z(z).X for z in SOAP_SPECIES}
            chi = {z: 0.0 if not np.isfinite(x) else float(x) for z, x in chi.items()}
            common = {
                "species": list(SOAP_SPECIES), "r_cut": self.r_cut, "n_max": self.n_max,
                "l_max": self.l_max, "sigma": self.sigma, "periodic": True, "average": "outer",
                "weighting": {"function": "poly", "r0": self.r_cut, "c": 1, "m": 1},
            }
            self._soaps = [
                SOAP(**common, compression={"mode": "mu2", "species_weighting": weights})
                for weights in (None, chi)
            ]
        return self._soaps

    def _embed_arrays(self, get: Any, n: int, batch_size: int, progress: Progress | None) -> np.ndarray:
        from ase import Atoms

        soaps = self.descriptors()
        out = np.empty((n, self.dim), dtype=np.float32)
        for start, stop in batch_ranges(n, batch_size):
            atoms = []
            for i in range(start, stop):
                lattice, numbers, frac = get(i)
                if numbers.max(initial=0) > SOAP_SPECIES[-1]:
                    raise ValueError(f"SOAP covers elements up to Z={SOAP_SPECIES[-1]}; structure {i} has more.")
                atoms.append(Atoms(numbers=numbers, scaled_positions=frac, cell=lattice, pbc=True))
            parts = [np.asarray(s.create(atoms), dtype=np.float64).reshape(len(atoms), -1) for s in soaps]
            out[start:stop] = np.concatenate(parts, axis=1)
            if progress is not None:
                progress(stop, n)
        self.last_run_info = {}
        return out
