"""Build the built-in default dataset: pymatgen's AFLOW prototypes plus element substitutions.

:func:`default_structures` makes the crystals and their cheap labels; :func:`build_default` adds
CHGNet energies and writes ``crystalrep/data/default``. Everything is sorted, seeded and rounded, so the same
command writes the same bytes.
"""

from __future__ import annotations

import gzip
import importlib.util
import json
import logging
from collections import Counter
from collections.abc import Callable, Sequence
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
from pymatgen.core import Lattice, Structure

from crystalrep.datasets import Dataset, DatasetError, default_dataset_dir
from crystalrep.sources import prototypes as proto
from crystalrep.sources import volumes
from crystalrep.sources.default_labels import (
    PROPERTY_INFO,
    chgnet_energies,
    composition_labels,
    formation_energies,
)
from crystalrep.structures import StructureError, validate_structure

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]
RECIPE_VERSION = 2  # 2: the lecture's BaTiO3 perovskite family is always built
MAX_ATOMS = 64
CHGNET_MAX_Z = 94  # CHGNet 0.3.0 embeds elements H..Pu
SEVENNET_UNSEEN = frozenset({"Po", "At", "Rn", "Fr", "Ra"})  # absent from SevenNet-0's training set
SOURCE = "crystalrep data build-default (pymatgen AFLOW prototypes + substitutions)"
LICENSE = (
    "Structures from pymatgen (MIT licence), whose AFLOW prototype library comes from the AFLOW "
    "Library of Crystallographic Prototypes: M. J. Mehl et al., Comput. Mater. Sci. 136, S1 (2017); "
    "D. Hicks et al., Comput. Mater. Sci. 161, S1 (2019). Substitutions and labels: crystalrep (MIT)."
)
DESCRIPTION = (
    "Every ordered AFLOW prototype shipped in pymatgen (library geometry, at most 64 atoms), plus "
    "element substitutions on common prototypes chosen from pymatgen's common oxidation states so "
    "ionic formulas are charge-balanced; the perovskites always include BaTiO3 and its A-site (Sr, Ca, Pb) and "
    "B-site (Zr, Hf, Sn) substitutions, the lecture's analogy family. Substitution volumes: RLS scaling against the family's "
    "experimental AFLOW structure (compounds); for elements that structure's volume per atom when "
    "it is the same element, else pymatgen's molar volume of the solid; DLS as fallback. Elemental "
    "fcc/bcc/hcp cells for every element and X2 molecular crystals serve as references. Energies "
    "are CHGNet 0.3.0 predictions on unrelaxed cells, not DFT. Crystals with elements beyond Pu, or "
    "with Po, At, Rn, Fr or Ra, are left out so that every built-in encoder embeds every row."
)
FAMILY_OF_AFLOW = {t.aflow: name for name, t in proto.TEMPLATES.items()} | {proto.DIMER_AFLOW: "alpha-N2"}


def aflow_library() -> list[tuple[dict[str, str], Structure]]:
    """The AFLOW prototypes shipped in pymatgen, as ``(tags, structure)`` in file order."""
    # Locate without importing: the package decodes the whole library (noisily) at import.
    spec = importlib.util.find_spec("pymatgen.analysis.prototypes")
    if spec is None or not spec.submodule_search_locations:
        raise DatasetError("pymatgen's AFLOW prototype library is not installed.")
    path = Path(list(spec.submodule_search_locations)[0]) / "aflow_prototypes.json.gz"
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        entries = json.load(fh)
    return [(e["tags"], Structure.from_dict(e["snl"])) for e in entries]


def _aflow_rows() -> dict[str, tuple[Structure, str, str]]:
    library = aflow_library()
    counts: dict[str, int] = {}
    for tags, _ in library:
        counts[tags["aflow"]] = counts.get(tags["aflow"], 0) + 1
    rows: dict[str, tuple[Structure, str, str]] = {}
    for tags, s in library:
        label = tags["aflow"]
        ident = f"aflow-{label}" if counts[label] == 1 else f"aflow-{label}-{s.composition.reduced_formula}"
        base, k = ident, 2
        while ident in rows:
            ident, k = f"{base}-{k}", k + 1
        rows[ident] = (s, FAMILY_OF_AFLOW.get(label, label), label)
    return rows


def _substitution_rows(
    references: dict[str, Structure], jobs: Sequence[tuple[str, proto.Choice]]
) -> dict[str, tuple[Structure, str, str]]:
    """Build ``(family, choice)`` jobs at predicted volume, keyed ``family-formula``."""
    decorated: dict[str, Structure] = {}
    rows: dict[str, tuple[Structure, str, str]] = {}
    for name, (formula, roles, oxidation_states) in jobs:
        label = proto.TEMPLATES[name].aflow
        if label not in decorated:
            decorated[label] = volumes.decorated(references[label])
        s = volumes.predicted_volume(
            proto.TEMPLATES[name].build(roles), reference=decorated[label], oxidation_states=oxidation_states
        )
        if s is None:
            log.info("dropped %s-%s: no volume prediction", name, formula)
            continue
        rows[f"{name}-{formula}"] = (s, name, label)
    return rows


def _canonical(s: Structure) -> Structure:
    """Round the lattice (Å) and fractional coordinates so the stored bytes are stable."""
    frac = np.round(np.mod(np.round(s.frac_coords, 8), 1.0), 8)
    return Structure(Lattice(np.round(s.lattice.matrix, 6)), [site.specie for site in s], frac)


def _all_rows() -> dict[str, tuple[Structure, str, str, str]]:
    aflow = _aflow_rows()
    references = {label: s for s, _, label in aflow.values()}
    subs = _substitution_rows(references, [(name, c) for name, recipe in proto.RECIPES.items() for c in recipe()])
    subs |= {f"alpha-N2-{el}2": (proto.dimer_structure(el), "alpha-N2", proto.DIMER_AFLOW) for el in proto.DIMER_BONDS}
    # Elemental cells for every element present, so each CHGNet formation energy has a reference.
    present = {el.Z: el.symbol for s, *_ in [*aflow.values(), *subs.values()] for el in s.composition}
    elements = [present[z] for z in sorted(present) if z <= CHGNET_MAX_Z and present[z] not in SEVENNET_UNSEEN]
    subs |= _substitution_rows(references, [(n, (el, {"A": el}, {})) for el in elements for n in proto.ELEMENTAL])
    rows = {k: (s, fam, lab, "aflow-prototype") for k, (s, fam, lab) in aflow.items()}
    rows |= {k: (s, fam, lab, "substitution") for k, (s, fam, lab) in subs.items()}
    # Every built-in encoder must embed the default set: CHGNet and SOAP's species list stop at Pu,
    # and SevenNet-0 never saw Po, At, Rn, Fr or Ra.
    return {k: v for k, v in rows.items() if max(el.Z for el in v[0].composition) <= CHGNET_MAX_Z
            and not {el.symbol for el in v[0].composition} & SEVENNET_UNSEEN}


def default_structures() -> tuple[list[str], list[Structure], dict[str, list[Any]]]:
    """The default crystals without CHGNet: sorted ids, structures and cheap labels.

    Returns:
        ``(ids, structures, labels)``; labels hold ``prototype``, ``aflow_prototype``,
        ``source_kind`` and the composition labels of :func:`composition_labels`.
    """
    ids: list[str] = []
    structures: list[Structure] = []
    labels: dict[str, list[Any]] = {"prototype": [], "aflow_prototype": [], "source_kind": []}
    rows = _all_rows()
    for ident in sorted(rows):
        s, *tags = rows[ident]
        s = _canonical(s)
        try:
            validate_structure(s, source=ident, max_atoms=MAX_ATOMS)
        except StructureError as exc:
            log.info("dropped %s", exc)
            continue
        ids.append(ident)
        structures.append(s)
        for key, value in zip(labels, tags, strict=True):
            labels[key].append(value)
    return ids, structures, labels | composition_labels(structures)


def build_default(out_dir: Path | None = None, *, progress: Progress | None = None, device: str = "cpu") -> Dataset:
    """Build the default dataset and write ``dataset.parquet`` + ``meta.json``.

    Args:
        out_dir: Target folder; defaults to the package's ``crystalrep/data/default``.
        progress: Called with ``(done, total)`` over the three stages (total is 100).
        device: Torch device for CHGNet.

    Returns:
        The saved dataset.
    """
    def stage(lo: int, hi: int) -> Progress | None:
        if progress is None:
            return None
        return lambda done, total: progress(lo + (hi - lo) * done // max(total, 1), 100)

    ids, structures, labels = default_structures()
    log.info("built %d structures", len(structures))
    if progress is not None:
        progress(20, 100)
    energies = chgnet_energies(structures, device=device, progress=stage(20, 90), max_z=CHGNET_MAX_Z)
    formation, refs = formation_energies(ids, structures, energies)
    labels |= {"chgnet_energy_per_atom": energies.tolist(), "chgnet_formation_energy_per_atom": formation.tolist()}
    meta = {
        "source": SOURCE,
        "license": LICENSE,
        "description": DESCRIPTION,
        "recipe_version": RECIPE_VERSION,
        "versions": {"pymatgen": version("pymatgen"), "chgnet": version("chgnet"), "chgnet_model": "0.3.0"},
        "families": {k: v for k, v in sorted(Counter(labels["prototype"]).items()) if k in FAMILY_OF_AFLOW.values()},
        "chgnet_elemental_references": refs,
    }
    ds = Dataset.from_structures(
        "default", ids, structures, properties=labels, property_info=PROPERTY_INFO, meta=meta, progress=stage(90, 100)
    )
    ds.save(out_dir if out_dir is not None else default_dataset_dir())
    return ds
