"""Seeded mutators that turn a few valid CIFs into hostile ones (fuzz test and long fuzz run).

A case is fully determined by ``(seed, index)``: :func:`make_case` rebuilds it anywhere, so a
failing case is replayed from its number alone (``benchmarks/fuzz.py`` runs each case in a child
process that rebuilds it). Seeds are tiny crystals written by pymatgen's CifWriter, in P1 and
with their space group's operations listed; :func:`seed_cifs` adds small ../shared cif_zoo files
when asked.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

Mutator = Callable[[str, random.Random], str]

NUMBERS = ("1e308", "-1e308", "1e309", "nan", "NaN", "inf", "-inf", "1e20", "1e8", "1e6", "2000", "999",
           "0", "-0", "-1", "1e-9", "1e-300", "0.1", "0.49", "0.5", "179.999", "180", "360", "-90", "4.2(3)",
           "4.2(", "banana", "?", ".", "''", "1e", "9" * 400, "0x10", "1_000", "\u0661\u0662")
ELEMENTS = ("Xx", "Q", "D", "T", "Uuo", "H+", "Fe3+", "Fe9+", "X1", "Wat", "OH", "0", "'", "Og", "e",
            "Zz99", "Na", "Cl", "C", "H", "Cf", "Nb,Zr", "0.8Nb + 0.2Zr")
OPERATIONS = ("x,y,z", "-x,-y,-z", "y,x,z", "-y,x-y,z+1/3", "x+1/2,y+1/2,z", "z,x,y", "-x+1/2,y,-z",
              "x,y", "a,b,c", "x+1e308,y,z", "x*2,y,z", "x+1,y,z", "-x,-y,z+1/2", "")


def _structures() -> dict[str, object]:
    from pymatgen.core import Lattice, Structure

    return {
        "NaCl": Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]),
        "Fe": Structure(Lattice.cubic(2.87), ["Fe", "Fe"], [[0, 0, 0], [0.5, 0.5, 0.5]]),
        "ZnO": Structure(Lattice.hexagonal(3.25, 5.2), ["Zn", "Zn", "O", "O"],
                         [[1 / 3, 2 / 3, 0], [2 / 3, 1 / 3, 0.5], [1 / 3, 2 / 3, 0.38], [2 / 3, 1 / 3, 0.88]]),
        "SrTiO3": Structure(Lattice.cubic(3.9), ["Sr", "Ti", "O", "O", "O"],
                            [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]),
        "triclinic": Structure(Lattice.from_parameters(3.1, 3.7, 4.3, 81, 97, 104), ["Si", "O", "O", "Mg"],
                               [[0, 0, 0], [0.5, 0, 0], [0, 0.5, 0.5], [0.5, 0.5, 0.25]]),
    }


@lru_cache(maxsize=2)
def seed_cifs(zoo: Path | None = None) -> tuple[tuple[str, str], ...]:
    """``(name, text)`` seeds: each tiny crystal in P1 and symmetrised, plus small zoo files."""
    from pymatgen.io.cif import CifWriter

    from crystalrep.datasets import quiet_spglib

    seeds = []
    with quiet_spglib():
        for name, structure in _structures().items():
            seeds.append((f"{name}-P1", str(CifWriter(structure))))
            seeds.append((f"{name}-sym", str(CifWriter(structure, symprec=0.1))))
    if zoo is not None and zoo.is_dir():
        for path in sorted(zoo.rglob("*.cif")):
            if path.stat().st_size < 20_000:
                seeds.append((f"zoo:{path.name}", path.read_text(errors="replace")))
    return tuple(seeds)


def _lines_matching(text: str, pattern: str) -> list[int]:
    lines = text.split("\n")
    return [i for i, line in enumerate(lines) if re.match(pattern, line.strip())]


def _replace_line(text: str, index: int, new: str) -> str:
    lines = text.split("\n")
    lines[index] = new
    return "\n".join(lines)


def _site_rows(text: str) -> list[int]:
    """Line numbers of atom-site rows (lines after the loop header with 5+ tokens and a digit)."""
    lines = text.split("\n")
    return [i for i, line in enumerate(lines) if len(line.split()) >= 5 and not line.strip().startswith("_")
            and "'" not in line and any(ch.isdigit() for ch in line)]


def truncate(text: str, rng: random.Random) -> str:
    return text[: rng.randrange(len(text) + 1)]


def bit_flip(text: str, rng: random.Random) -> str:
    raw = bytearray(text.encode())
    for _ in range(rng.randint(1, 8)):
        if raw:
            raw[rng.randrange(len(raw))] ^= 1 << rng.randrange(8)
    return raw.decode("utf-8", errors="replace")


def cell_numbers(text: str, rng: random.Random) -> str:
    rows = _lines_matching(text, r"_cell_(length|angle)_")
    for i in rng.sample(rows, k=min(len(rows), rng.randint(1, 3))):
        key = text.split("\n")[i].split()[0]
        text = _replace_line(text, i, f"{key}   {rng.choice(NUMBERS)}")
    return text


def degenerate_angles(text: str, rng: random.Random) -> str:
    angles = rng.choice([("120", "120", "120"), ("0.001", "90", "90"), ("60", "60", "179"), ("90", "90", "179.999"),
                         ("30", "30", "60"), ("1", "1", "1")])
    for name, value in zip(("alpha", "beta", "gamma"), angles, strict=True):
        text = re.sub(rf"_cell_angle_{name}\s+\S+", f"_cell_angle_{name}   {value}", text)
    return text


def site_values(text: str, rng: random.Random) -> str:
    """Hostile coordinates, occupancies or element symbols in the atom-site rows."""
    rows = _site_rows(text)
    if not rows:
        return text
    i = rng.choice(rows)
    tokens = text.split("\n")[i].split()
    column = rng.randrange(len(tokens))
    tokens[column] = rng.choice(ELEMENTS) if column == 0 else rng.choice(NUMBERS)
    return _replace_line(text, i, "  " + "  ".join(tokens))


def break_loop(text: str, rng: random.Random) -> str:
    lines = text.split("\n")
    i = rng.randrange(len(lines))
    action = rng.randrange(5)
    if action == 0:
        del lines[i]
    elif action == 1:
        lines.insert(i, "loop_")
    elif action == 2:
        lines[i] = lines[i] + " extra"
    elif action == 3:
        lines.insert(i, lines[i])
    else:
        lines = [line for line in lines if line.strip() != "loop_"]
    return "\n".join(lines)


def drop_key(text: str, rng: random.Random) -> str:
    rows = _lines_matching(text, r"_(cell|atom_site|symmetry|space_group)")
    return _replace_line(text, rng.choice(rows), "") if rows else text


def many_symops(text: str, rng: random.Random) -> str:
    n = rng.choice([2, 24, 48, 191, 192, 193, 384, 1000, 10_000])
    ops = [f"  {k + 1}  '{rng.choice(OPERATIONS)}'" for k in range(n)]
    block = "\n".join(["loop_", " _symmetry_equiv_pos_site_id", " _symmetry_equiv_pos_as_xyz", *ops])
    cleaned = re.sub(r"loop_\n _symmetry_equiv_pos_site_id\n _symmetry_equiv_pos_as_xyz\n(  \d+  '[^\n]*'\n?)+", "", text)
    return cleaned.replace("loop_\n _atom_site", block + "\nloop_\n _atom_site", 1)


def many_sites(text: str, rng: random.Random) -> str:
    n = rng.choice([10, 100, 250, 499, 501, 2000, 10_000, 50_000])
    same = rng.random() < 0.3  # every new site on one spot, or spread at random
    rows = [f"  {rng.choice(('Si', 'O', 'Xx'))}  X{k}  1  {0.1 if same else rng.random():.5f}  "
            f"{0.2 if same else rng.random():.5f}  {0.3 if same else rng.random():.5f}  1" for k in range(n)]
    return text.rstrip("\n") + "\n" + "\n".join(rows) + "\n"


def garbage(text: str, rng: random.Random) -> str:
    alphabet = "abcxyz_0123456789.-+()'\";#\t \n\x00\x07\x1b\u00e9\u2028\ufeff\U0001f600loop_data_"
    junk = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 400)))
    if rng.random() < 0.2:
        return junk * rng.randint(1, 50)
    i = rng.randrange(len(text) + 1)
    return text[:i] + junk + text[i:]


def blank_lines(text: str, rng: random.Random) -> str:
    i = text.find("\n", rng.randrange(len(text) + 1))
    return text[: max(i, 0)] + rng.choice(["\n", " \n", "\t\r\n"]) * rng.randint(1_000, 300_000) + text[max(i, 0):]


def long_lines(text: str, rng: random.Random) -> str:
    line = rng.choice(["\"'", "'", "x", " '", "_a "]) * rng.randint(500, 3_000)
    return text + "\n" + "\n".join([line + "x"] * rng.randint(1, 5)) + "\n"


def repeat_blocks(text: str, rng: random.Random) -> str:
    return "\n".join(text.replace("data_", f"data_copy{k}_", 1) for k in range(rng.randint(2, 6)))


def magnetic(text: str, rng: random.Random) -> str:
    ops = [f" {rng.choice(OPERATIONS)},{rng.choice(('+1', '-1'))}" for _ in range(rng.choice([1, 4, 48, 200]))]
    centring = [f" {rng.choice(OPERATIONS)},+1" for _ in range(rng.choice([1, 2, 8]))]
    return text + "\n".join(["", "loop_", "_space_group_symop_magn_operation.xyz", *ops,
                             "loop_", "_space_group_symop_magn_centering.xyz", *centring, ""])


def shuffle_lines(text: str, rng: random.Random) -> str:
    lines = text.split("\n")
    i = rng.randrange(len(lines))
    j = rng.randrange(len(lines))
    lines[i], lines[j] = lines[j], lines[i]
    return "\n".join(lines)


MUTATORS: dict[str, Mutator] = {f.__name__: f for f in (
    truncate, bit_flip, cell_numbers, degenerate_angles, site_values, break_loop, drop_key, many_symops,
    many_sites, garbage, blank_lines, long_lines, repeat_blocks, magnetic, shuffle_lines)}


def _plan(seed: int, index: int, zoo: Path | None) -> tuple[random.Random, str, str, list[str]]:
    rng = random.Random(f"{seed}:{index}")
    seed_name, text = rng.choice(seed_cifs(zoo))
    return rng, seed_name, text, [rng.choice(sorted(MUTATORS)) for _ in range(rng.choice((1, 1, 1, 2, 2, 3)))]


def case_label(seed: int, index: int, *, zoo: Path | None = None) -> str:
    """What case ``index`` of run ``seed`` is made of, without building it."""
    _, seed_name, _, names = _plan(seed, index, zoo)
    return f"case {index}: {seed_name} + {' + '.join(names)}"


def make_case(seed: int, index: int, *, zoo: Path | None = None) -> tuple[str, str]:
    """Case ``index`` of run ``seed``: ``(label, CIF text)``, the same on every call."""
    rng, _, text, names = _plan(seed, index, zoo)
    for name in names:
        text = MUTATORS[name](text, rng)
    return case_label(seed, index, zoo=zoo), text


def reset_peak_rss() -> bool:
    """Reset this process's peak RSS (Linux ``clear_refs``); False where that is not possible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def peak_rss_mb() -> float:
    """Peak RSS of this process in MB since the last :func:`reset_peak_rss` (or since start)."""
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mb() -> float:
    """Current RSS of this process in MB."""
    import psutil

    return psutil.Process().memory_info().rss / 2**20
