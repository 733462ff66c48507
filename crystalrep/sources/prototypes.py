"""Prototype templates and charge-balanced element substitutions for the default dataset.

A family is a template (space group, nominal lattice, Wyckoff sites with roles) plus a recipe
listing element choices. Ionic recipes take cations from pymatgen's common oxidation states so
that every formula is charge-balanced; the Heusler and elemental families are intermetallic.
Volumes are not set here: templates come out at a nominal size and are scaled later.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

import numpy as np
from pymatgen.core import Element, Lattice, Species, Structure

Choice = tuple[str, dict[str, str], dict[str, int]]  # (formula in the id, role -> element, element -> oxidation state)

ANIONS: dict[int, tuple[str, ...]] = {
    1: ("F", "Cl", "Br", "I"),
    2: ("O", "S", "Se", "Te"),
    3: ("N", "P", "As", "Sb"),
}
ANION_CHARGE = {x: q for q, xs in ANIONS.items() for x in xs}
KEPT_LANTHANOIDS = ("La", "Ce", "Nd", "Eu", "Gd")
EXCLUDED = ("Tc", "Pm")  # no stable isotope
SEMIMETAL_CATIONS = ("B", "Si", "Ge")
HEUSLER = (
    ("Fe", "Co", "Ni", "Cu", "Ru", "Rh", "Pd", "Ag", "Ir", "Pt", "Au"),
    ("Sc", "Ti", "V", "Cr", "Mn", "Fe", "Zr", "Nb", "Hf"),
    ("Al", "Ga", "In", "Si", "Ge", "Sn", "Sb"),
)
DIAMOND_ELEMENTS = ("C", "Si", "Ge", "Sn")
# X-X bond lengths of the gas-phase molecules (Å, CRC Handbook), for the molecular references.
DIMER_BONDS = {"H": 0.741, "N": 1.098, "O": 1.208, "F": 1.412, "Cl": 1.988, "Br": 2.281, "I": 2.666}
SAMPLE_SIZES = {"ax": 140, "perovskite": 200, "spinel": 100, "heusler": 150, "cdi2": 70}
TOLERANCE_WINDOW = (0.8, 1.06)  # Goldschmidt factor from pymatgen's (crystal) ionic radii
# The lecture's perovskites: BaTiO3 and its A-site (Sr, Ca, Pb) and B-site (Zr, Hf, Sn) substitutions, all
# 2+/4+ oxides inside the tolerance window; kept whatever the random sample draws, so that
# z(BaTiO3) − z(BaZrO3) + z(SrZrO3) ≈ z(SrTiO3) can be asked of the built-in dataset.
LECTURE_SITES = (("Ba", "Sr", "Ca", "Pb"), ("Ti", "Zr", "Hf", "Sn"))


@dataclass(frozen=True)
class Template:
    """A prototype: space group, nominal lattice parameters and Wyckoff sites with roles."""

    spacegroup: str
    lattice: tuple[float, float, float, float, float, float]  # nominal (a ~ 5 Å), rescaled later
    sites: tuple[tuple[str, tuple[float, float, float]], ...]
    aflow: str

    def build(self, roles: dict[str, str]) -> Structure:
        """The primitive cell with each role replaced by its element, at a nominal size."""
        skeleton, placeholders = _skeleton(self)
        return skeleton.copy().replace_species({placeholders[r]: roles[r] for r in placeholders})


@cache
def _skeleton(template: Template) -> tuple[Structure, dict[str, str]]:
    """Primitive cell with placeholder elements per role (pymatgen's space-group setup is slow)."""
    roles = list(dict.fromkeys(role for role, _ in template.sites))
    placeholders = {role: Element.from_Z(k + 1).symbol for k, role in enumerate(roles)}
    structure = Structure.from_spacegroup(
        template.spacegroup,
        Lattice.from_parameters(*template.lattice),
        [placeholders[role] for role, _ in template.sites],
        [list(xyz) for _, xyz in template.sites],
    )
    return structure.get_primitive_structure(), placeholders


def _hex(c_over_a: float) -> tuple[float, float, float, float, float, float]:
    return (5.0, 5.0, 5.0 * c_over_a, 90.0, 90.0, 120.0)


_CUBIC = (5.0, 5.0, 5.0, 90.0, 90.0, 90.0)
_AX = (("A", (0.0, 0.0, 0.0)), ("X", (0.5, 0.5, 0.5)))
_AX2_FLUORITE = (("A", (0.0, 0.0, 0.0)), ("X", (0.25, 0.25, 0.25)))
_A = (("A", (0.0, 0.0, 0.0)),)

TEMPLATES: dict[str, Template] = {
    "rocksalt": Template("Fm-3m", _CUBIC, _AX, "AB_cF8_225_a_b"),
    "cscl": Template("Pm-3m", _CUBIC, _AX, "AB_cP2_221_b_a"),
    "zincblende": Template("F-43m", _CUBIC, _AX2_FLUORITE, "AB_cF8_216_c_a"),
    "wurtzite": Template("P6_3mc", _hex(1.633), (("A", (1 / 3, 2 / 3, 0.0)), ("X", (1 / 3, 2 / 3, 0.375))), "AB_hP4_186_b_b"),
    "nias": Template("P6_3/mmc", _hex(1.39), (("A", (0.0, 0.0, 0.0)), ("X", (1 / 3, 2 / 3, 0.25))), "AB_hP4_194_c_a"),
    "fluorite": Template("Fm-3m", _CUBIC, _AX2_FLUORITE, "AB2_cF12_225_a_c"),
    "perovskite": Template("Pm-3m", _CUBIC, (("A", (0.0, 0.0, 0.0)), ("B", (0.5, 0.5, 0.5)), ("X", (0.0, 0.5, 0.5))), "AB3C_cP5_221_a_c_b"),
    # Fd-3m in pymatgen's default (origin choice 1) setting.
    "spinel": Template("Fd-3m", _CUBIC, (("A", (0.0, 0.0, 0.0)), ("B", (0.625, 0.625, 0.625)), ("X", (0.3875, 0.3875, 0.3875))), "A2BC4_cF56_227_d_a_e"),
    "rutile": Template("P4_2/mnm", (5.0, 5.0, 3.22, 90.0, 90.0, 90.0), (("A", (0.0, 0.0, 0.0)), ("X", (0.305, 0.305, 0.0))), "A2B_tP6_136_f_a"),
    "corundum": Template("R-3c", _hex(2.73), (("A", (0.0, 0.0, 0.3523)), ("X", (0.3064, 0.0, 0.25))), "A2B3_hR10_167_c_e"),
    "heusler": Template("Fm-3m", _CUBIC, (("X", (0.25, 0.25, 0.25)), ("Y", (0.0, 0.0, 0.0)), ("Z", (0.5, 0.5, 0.5))), "AB2C_cF16_225_a_c_b"),
    "cdi2": Template("P-3m1", _hex(1.61), (("A", (0.0, 0.0, 0.0)), ("X", (1 / 3, 2 / 3, 0.25))), "AB2_hP3_164_a_d"),
    "fcc": Template("Fm-3m", _CUBIC, _A, "A_cF4_225_a"),
    "bcc": Template("Im-3m", _CUBIC, _A, "A_cI2_229_a"),
    "hcp": Template("P6_3/mmc", _hex(1.633), (("A", (1 / 3, 2 / 3, 0.25)),), "A_hP2_194_c"),
    "diamond": Template("Fd-3m", _CUBIC, _A, "A_cF8_227_a"),
}
DIMER_AFLOW = "A_cP8_205_c"  # cubic alpha-N2, the template of the molecular references


@cache
def cations(charge: int) -> tuple[str, ...]:
    """Metals (and B, Si, Ge) up to Bi with ``charge`` among pymatgen's common oxidation states."""
    out = []
    for z in range(1, 84):
        el = Element.from_Z(z)
        if el.symbol in EXCLUDED or (el.is_lanthanoid and el.symbol not in KEPT_LANTHANOIDS):
            continue
        if (el.is_metal or el.symbol in SEMIMETAL_CATIONS) and charge in el.common_oxidation_states:
            out.append(el.symbol)
    return tuple(out)


def sample(items: list[Choice], k: int) -> list[Choice]:
    """At most ``k`` items, drawn without replacement with ``default_rng(0)``, in input order."""
    if len(items) <= k:
        return items
    keep = np.random.default_rng(0).choice(len(items), size=k, replace=False)
    return [items[i] for i in sorted(int(i) for i in keep)]


def ionic(formula: str, n_a: int, n_x: int, anions: tuple[str, ...]) -> list[Choice]:
    """Charge-balanced ``A{n_a} X{n_x}`` choices: the cation charge is fixed by the anion's."""
    out: list[Choice] = []
    for x in anions:
        charge, rest = divmod(ANION_CHARGE[x] * n_x, n_a)
        if not rest:
            out += [(formula.format(A=a, X=x), {"A": a, "X": x}, {a: charge, x: -ANION_CHARGE[x]}) for a in cations(charge) if a != x]
    return out


def _ax() -> list[Choice]:
    return sample(ionic("{A}{X}", 1, 1, sum(ANIONS.values(), ())), SAMPLE_SIZES["ax"])


def _fluorite() -> list[Choice]:
    anti = [(f"{c}2{x}", {"A": x, "X": c}, {c: 1, x: -2}) for x in ANIONS[2] for c in cations(1)]
    return ionic("{A}{X}2", 1, 2, ("O", "F", "Cl")) + anti


def _tolerance(a: str, qa: int, b: str, qb: int, x: str) -> float:
    with warnings.catch_warnings():  # pymatgen warns when it falls back to low-spin radii
        warnings.simplefilter("ignore")
        ra, rb, rx = (Species(el, q).ionic_radius for el, q in ((a, qa), (b, qb), (x, -ANION_CHARGE[x])))
    if ra is None or rb is None or rx is None:
        return math.nan
    return (float(ra) + float(rx)) / (math.sqrt(2.0) * (float(rb) + float(rx)))


def _perovskite() -> list[Choice]:
    out: list[Choice] = []
    lo, hi = TOLERANCE_WINDOW
    for qa, qb, anions in ((1, 5, ("O",)), (2, 4, ("O",)), (3, 3, ("O",)), (1, 2, ANIONS[1])):
        for a in cations(qa):
            for b in cations(qb):
                for x in anions:
                    if a != b and lo <= _tolerance(a, qa, b, qb, x) <= hi:
                        out.append((f"{a}{b}{x}3", {"A": a, "B": b, "X": x}, {a: qa, b: qb, x: -ANION_CHARGE[x]}))
    drawn = sample(out, SAMPLE_SIZES["perovskite"])
    seen = {formula for formula, *_ in drawn}
    return drawn + [c for c in lecture_perovskites() if c[0] not in seen]


def lecture_perovskites() -> list[Choice]:
    """The BaTiO3 family of the lecture: every A x B of :data:`LECTURE_SITES` as a cubic oxide perovskite."""
    a_sites, b_sites = LECTURE_SITES
    return [(f"{a}{b}O3", {"A": a, "B": b, "X": "O"}, {a: 2, b: 4, "O": -2}) for a in a_sites for b in b_sites]


def _spinel() -> list[Choice]:
    out = [(f"{a}{b}2O4", {"A": a, "B": b, "X": "O"}, {a: 2, b: 3, "O": -2}) for a in cations(2) for b in cations(3) if a != b]
    return sample(out, SAMPLE_SIZES["spinel"])


def _heusler() -> list[Choice]:
    xs, ys, zs = HEUSLER
    out: list[Choice] = [(f"{x}2{y}{z}", {"X": x, "Y": y, "Z": z}, {}) for x in xs for y in ys for z in zs if x != y]
    return sample(out, SAMPLE_SIZES["heusler"])


RECIPES: dict[str, Callable[[], list[Choice]]] = {
    "rocksalt": _ax,
    "cscl": _ax,
    "zincblende": _ax,
    "wurtzite": _ax,
    "nias": _ax,
    "fluorite": _fluorite,
    "perovskite": _perovskite,
    "spinel": _spinel,
    "rutile": lambda: ionic("{A}{X}2", 1, 2, ("O", "F")),
    "corundum": lambda: ionic("{A}2{X}3", 2, 3, ("O",)),
    "heusler": _heusler,
    "cdi2": lambda: sample(ionic("{A}{X}2", 1, 2, ("S", "Se", "Te", "Cl", "Br", "I")), SAMPLE_SIZES["cdi2"]),
    "diamond": lambda: [(el, {"A": el}, {}) for el in DIAMOND_ELEMENTS],
}
ELEMENTAL = ("fcc", "bcc", "hcp")  # built for every element present, as CHGNet references


def dimer_structure(symbol: str, *, contact_scale: float = 1.0, steps: int = 30) -> Structure:
    """An alpha-N2-type (Pa-3) molecular crystal of X2 dimers.

    The bond is the gas-phase X-X length; the cubic cell is sized so the shortest contact between
    molecules is ``contact_scale`` times twice the van der Waals radius.
    """
    bond = DIMER_BONDS[symbol]
    target = contact_scale * 2.0 * float(Element(symbol).van_der_waals_radius)
    a = 2.0 * (bond + target)
    for _ in range(steps):
        s = Structure.from_spacegroup("Pa-3", Lattice.cubic(a), [symbol], [[bond / (2 * math.sqrt(3) * a)] * 3])
        _, _, _, dist = s.get_neighbor_list(r=a)
        contact = float(dist[dist > bond + 1e-3].min())
        a *= (target / contact) ** 0.5  # damped fixed point: contacts grow ~linearly with a
    return s
