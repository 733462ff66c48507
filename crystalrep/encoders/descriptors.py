"""Hand-made baselines: Magpie (composition only) and SOAP (local geometry, averaged over sites)."""

from __future__ import annotations

import itertools
import logging
import warnings
from importlib.metadata import version as package_version
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from crystalrep.encoders.base import ArrayEncoder

if TYPE_CHECKING:
    from pymatgen.core import Structure

__all__ = ["MagpieEncoder", "SOAPEncoder"]

logger = logging.getLogger(__name__)

# Magpie reads compositions only: a structure's lattice and coordinates are never built.
_NO_LATTICE, _NO_COORDS = np.zeros((3, 3)), np.zeros((0, 3))


class MagpieEncoder(ArrayEncoder):
    """matminer's Magpie element-property statistics of the composition (132 numbers).

    The values are matminer's: its featurizer's element data, gathered into a table once, and
    its statistics, computed as array arithmetic over many crystals at once
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
    min_batch: ClassVar[int] = 4096  # array arithmetic: per-batch overhead, not per-crystal work, dominates

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

    def _cell(self, structure: Structure) -> Any:
        return _NO_LATTICE, np.asarray(structure.atomic_numbers), _NO_COORDS

    def _prepare(self, device: Any) -> dict[str, Any]:
        from crystalrep.encoders.magpie import magpie_table

        if self._table is None:
            self._table = magpie_table(self.featurizer())
        return {"table": self._table, "formulas": set(), "nan": np.zeros(self.dim, dtype=bool)}

    def _embed_batch(self, cells: list[Any], first: int, state: dict[str, Any]) -> np.ndarray:
        from crystalrep.encoders.magpie import magpie_features, reduced_compositions

        offsets = np.zeros(len(cells) + 1, dtype=np.int64)
        np.cumsum([len(cell[1]) for cell in cells], out=offsets[1:])
        numbers = np.fromiter(itertools.chain.from_iterable(cell[1] for cell in cells), dtype=np.int64,
                              count=int(offsets[-1]))
        elements, amounts = reduced_compositions(numbers, offsets)
        out = magpie_features(state["table"], elements, amounts, self.featurizer().stats)
        # a formula is its nonzero (element..., amount...) entries: padding is 0 in both halves
        state["formulas"].update(tuple(row[row != 0]) for row in np.unique(np.hstack([elements, amounts]), axis=0))
        missing = np.isnan(out)
        state["nan"] |= missing.any(axis=0)
        out[missing] = 0.0
        return out

    def _summary(self, state: dict[str, Any]) -> dict[str, Any]:
        nan_cols = np.flatnonzero(state["nan"])
        if nan_cols.size:
            logger.warning("Magpie: imputed 0 for missing element data in %d columns", nan_cols.size)
        labels = self.feature_labels() if nan_cols.size else []
        return {"distinct_compositions": len(state["formulas"]), "imputed_columns": [labels[c] for c in nan_cols]}


SOAP_SPECIES = tuple(range(1, 95))
SOAP_MAX_IMAGE_ATOMS = 1e6
"""Most periodic images x atoms one SOAP call may build (dscribe keeps them all: ~170 B each;
a 4-atom cell 0.01 Å thin needs 1.2e7, 9 s and 2 GB; real cells at 5 Å: <= 729 x 500)."""


class SOAPEncoder(ArrayEncoder):
    """dscribe SOAP power spectrum, averaged over sites, in two species-compressed channels.

    Args:
        r_cut: Cutoff radius in Å; the density is weighted by a polynomial that reaches 0 there.
        n_max: Radial basis functions.
        l_max: Largest spherical-harmonic degree.
        sigma: Width of the atomic Gaussians in Å.
    """

    name = "soap"
    version = "1"
    max_z: ClassVar[int | None] = SOAP_SPECIES[-1]

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

    def _prepare(self, device: Any) -> list[Any]:
        return self.descriptors()

    def _embed_batch(self, cells: list[Any], first: int, state: list[Any]) -> np.ndarray:
        from ase import Atoms

        from crystalrep.graphs.neighbors import search_problem

        for k, (lattice, numbers, _) in enumerate(cells):  # dscribe builds every periodic image in memory
            problem = search_problem(np.asarray(lattice, dtype=np.float64), len(numbers), self.r_cut,
                                     max_work=SOAP_MAX_IMAGE_ATOMS)
            if problem is not None:
                raise ValueError(f"structure {first + k}: cannot compute SOAP: {problem}.")
        atoms = [Atoms(numbers=numbers, scaled_positions=frac, cell=lattice, pbc=True) for lattice, numbers, frac in cells]
        parts = [np.asarray(s.create(atoms), dtype=np.float64).reshape(len(atoms), -1) for s in state]
        return np.concatenate(parts, axis=1)
