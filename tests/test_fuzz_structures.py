"""Property fuzz of the structure reader: 1,000 seeded hostile CIFs, each refused cleanly or accepted.

Cases come from ``tests/fuzzing.py`` (mutators of tiny CifWriter crystals: truncations, bit flips,
hostile cell numbers and angles, broken loops, huge symmetry and site lists, occupancies, unknown
elements, garbage, blank-line and long-line floods, repeated blocks, magnetic operations). The
same mutators drive the long run, ``python -m benchmarks.fuzz --cases 10000``.
"""

from __future__ import annotations

import time

import pytest

from crystalrep.structures import StructureError, read_structures
from tests.fuzzing import (
    MUTATORS,
    case_label,
    make_case,
    peak_rss_mb,
    reset_peak_rss,
    rss_mb,
    seed_cifs,
)

SEED = 0
N_CASES = 1_000
MAX_CPU_SECONDS = 2.0
MAX_WALL_SECONDS = 30.0  # a hang guard: on a shared machine wall time is several times CPU time
MAX_RSS_GROWTH_MB = 500.0


def _run(k: int) -> tuple[str, str, float, float, float]:
    """``(label, outcome, cpu s, wall s, peak RSS growth MB)`` of case ``k``; foreign errors propagate."""
    label, text = make_case(SEED, k)
    name = f"case{k}.cif"
    before = rss_mb()
    reset_peak_rss()
    cpu, wall = time.process_time(), time.perf_counter()
    try:
        read_structures(name, text=text)
        outcome = "accepted"
    except StructureError as exc:
        message = str(exc)
        assert message.startswith(f"{name}: ") and len(message) <= 300 and message.isprintable(), (label, message)
        outcome = "refused"
    return label, outcome, time.process_time() - cpu, time.perf_counter() - wall, peak_rss_mb() - before


def test_cases_are_reproducible_and_cover_every_mutator():
    assert make_case(SEED, 7) == make_case(SEED, 7)
    assert make_case(SEED, 7) != make_case(SEED + 1, 7)
    assert make_case(SEED, 7)[0] == case_label(SEED, 7)
    labels = " ".join(case_label(SEED, k) for k in range(N_CASES))
    assert all(f" {name}" in labels for name in MUTATORS)
    assert len(seed_cifs()) == 10


def test_fuzzed_cifs_are_accepted_or_refused_cleanly_fast_and_small(recwarn, capsys):
    read_structures("warm-up.cif", text=seed_cifs()[0][1])  # first-call imports are not a case's cost
    outcomes, problems = {"accepted": 0, "refused": 0}, []
    for k in range(N_CASES):
        label, outcome, cpu, wall, growth = _run(k)
        outcomes[outcome] += 1
        if cpu > MAX_CPU_SECONDS or wall > MAX_WALL_SECONDS or growth > MAX_RSS_GROWTH_MB:
            problems.append(f"{label}: {cpu:.2f} s CPU, {wall:.2f} s wall, +{growth:.0f} MB")
    assert not problems, "\n".join(problems)
    assert outcomes["accepted"] >= 100 and outcomes["refused"] >= 500, outcomes  # the fuzz reaches both sides
    assert [str(w.message) for w in recwarn] == []
    assert capsys.readouterr() == ("", "")


@pytest.mark.parametrize("k", [3, 11, 42])
def test_a_single_case_replays(k):
    assert _run(k)[1] in ("accepted", "refused")
