"""Labels of the default dataset: composition/geometry columns and CHGNet 0.3.0 energies.

Every column says what it is: the energies are model predictions on unrelaxed cells, and the
formation energies use references chosen inside the dataset (see their descriptions).
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from pymatgen.core import Structure

from crystalrep.datasets import PropertyInfo

log = logging.getLogger(__name__)

CHGNET_NOTE = "CHGNet 0.3.0 model prediction on the unrelaxed structure at predicted volume, not DFT"
REFERENCE_NOTE = (
    "Elemental references: for each element, the lowest CHGNet energy per atom among the elemental "
    "structures in this dataset (fcc/bcc/hcp/diamond cells at predicted volume, alpha-N2-type X2 "
    "molecular crystals for H, N, O, F, Cl, Br, I, and the AFLOW elemental prototypes)"
)


def _info(name: str, unit: str, description: str, kind: str = "numeric") -> PropertyInfo:
    return PropertyInfo(name=name, unit=unit, description=description, kind=kind)


PROPERTY_INFO: dict[str, PropertyInfo] = {p.name: p for p in (
    _info("prototype", "", "Structure family: the substitution family (rocksalt, cscl, zincblende, "
          "wurtzite, nias, fluorite incl. antifluorite, perovskite, spinel, rutile, corundum, heusler, "
          "cdi2, fcc, bcc, hcp, diamond, alpha-N2); AFLOW library entries of these types carry the family "
          "name, the others their AFLOW prototype label.", "categorical"),
    _info("aflow_prototype", "", "AFLOW label of the library prototype: the entry itself for AFLOW rows, "
          "the parent prototype for substitutions.", "categorical"),
    _info("source_kind", "", "aflow-prototype: pymatgen's AFLOW prototype library at its library "
          "geometry; substitution: a prototype with substituted elements, scaled isotropically to a "
          "predicted volume (compounds: RLS against the family's AFLOW structure with recipe oxidation "
          "states; elements: that structure's or pymatgen's molar volume; DLS as fallback). alpha-N2 "
          "molecular cells use gas-phase bond lengths and van der Waals contacts.", "categorical"),
    _info("density", "g/cm³", "Mass density of the stored cell (pymatgen Structure.density)."),
    _info("volume_per_atom", "Å³/atom", "Cell volume divided by the number of sites, as stored."),
    _info("mean_atomic_mass", "amu", "Mean atomic mass over the sites of the cell."),
    _info("mean_electronegativity", "Pauling", "Mean Pauling electronegativity over the sites (pymatgen)."),
    _info("n_elements", "", "Number of distinct elements in the formula."),
    _info("chgnet_energy_per_atom", "eV/atom", f"Total energy per atom: {CHGNET_NOTE}; AFLOW rows are "
          "evaluated at the library geometry. NaN where CHGNet has no parameters for an element (Z > 94)."),
    _info("chgnet_formation_energy_per_atom", "eV/atom", "E - sum_el x_el * mu_el from chgnet_energy_per_atom: "
          f"{CHGNET_NOTE}. {REFERENCE_NOTE}; the references are unrelaxed too, so values are not comparable "
          "with DFT formation energies. NaN where an energy or a reference is missing."),
)}


def composition_labels(structures: Sequence[Structure]) -> dict[str, list[Any]]:
    """Density, volume per atom, mean mass and electronegativity, number of elements, rounded."""
    out: dict[str, list[Any]] = {k: [] for k in ("density", "volume_per_atom", "mean_atomic_mass", "mean_electronegativity", "n_elements")}
    with warnings.catch_warnings():  # pymatgen warns on elements without a Pauling value
        warnings.simplefilter("ignore")
        for s in structures:
            comp = s.composition
            out["density"].append(round(float(s.density), 4))
            out["volume_per_atom"].append(round(float(s.volume) / len(s), 4))
            out["mean_atomic_mass"].append(round(float(comp.weight) / comp.num_atoms, 4))
            out["mean_electronegativity"].append(round(float(comp.average_electroneg), 4))
            out["n_elements"].append(len(comp.elements))
    return out


def chgnet_energies(
    structures: Sequence[Structure],
    *,
    device: str = "cpu",
    batch_size: int = 32,
    max_z: int = 94,
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """CHGNet 0.3.0 energies per atom (eV/atom, rounded to 4 decimals) from the weights in the wheel.

    Structures with an element beyond ``max_z`` or that CHGNet cannot graph get NaN.
    """
    from chgnet.model import CHGNet

    with contextlib.redirect_stdout(io.StringIO()) as banner:  # CHGNet prints on load
        model = CHGNet.load(model_name="0.3.0", use_device=device, verbose=False)
    log.debug("chgnet: %s", banner.getvalue().strip())
    energies = np.full(len(structures), np.nan)
    todo = [k for k, s in enumerate(structures) if max(s.atomic_numbers) <= max_z]
    for start in range(0, len(todo), batch_size):
        index, graphs = [], []
        for k in todo[start : start + batch_size]:
            try:
                graphs.append(model.graph_converter(structures[k], graph_id=str(k)))
                index.append(k)
            except ValueError as exc:
                log.info("chgnet cannot graph structure %d: %s", k, exc)
        if graphs:
            with warnings.catch_warnings():  # torch warns about tensor copies inside CHGNet
                warnings.simplefilter("ignore")
                preds = model.predict_graph(graphs, task="e", batch_size=batch_size)
            for k, pred in zip(index, preds if isinstance(preds, list) else [preds], strict=True):
                energies[k] = float(pred["e"])
        if progress is not None:
            progress(min(start + batch_size, len(todo)), len(todo))
    return np.round(energies, 4)


def formation_energies(
    ids: Sequence[str], structures: Sequence[Structure], energies: np.ndarray
) -> tuple[np.ndarray, dict[str, str]]:
    """Formation energies per atom against the lowest-energy elemental row of each element.

    Returns:
        ``(formation energies rounded to 4 decimals, element -> id of its reference row)``.
    """
    best: dict[str, tuple[float, str]] = {}
    for ident, s, e in zip(ids, structures, energies, strict=True):
        if len(s.composition.elements) == 1 and np.isfinite(e):
            el = s.composition.elements[0].symbol
            if el not in best or e < best[el][0]:
                best[el] = (float(e), ident)
    out = np.full(len(ids), np.nan)
    for k, (s, e) in enumerate(zip(structures, energies, strict=True)):
        fractions = s.composition.fractional_composition.as_dict()
        if np.isfinite(e) and all(el in best for el in fractions):
            out[k] = e - sum(x * best[el][0] for el, x in fractions.items())
    return np.round(out, 4), {el: best[el][1] for el in sorted(best)}
