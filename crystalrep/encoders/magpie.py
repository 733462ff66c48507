"""Magpie composition statistics for many crystals at once, as array arithmetic.

matminer's ``ElementProperty.featurize`` looks every property of every element up in Python
and computes each statistic with NumPy calls on lists of a few numbers, one composition at a
time. Here the same element-property values (read once from the featurizer's own data source,
so the numbers stay matminer's) form a ``[119, n_features]`` table; a batch of compositions is
padded to ``[n_crystals, max_elements]`` and every statistic is one reduction over the element
axis. The statistics repeat matminer's ``PropertyStats`` exactly: weights are the element
amounts, ``mean`` and ``avg_dev`` are weighted like ``np.average``, ``mode`` is the smallest
value among the elements whose amount ``np.isclose``-equals the largest, and a missing (NaN)
property value makes every statistic over it NaN.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from crystalrep.encoders.base import Progress, batch_ranges

__all__ = ["MAX_Z", "dataset_features", "magpie_features", "magpie_table", "reduced_compositions"]

MAX_Z = 118
BLOCK = 4096  # crystals per vectorised block: ~10 MB of element values at 8 elements per crystal

STATS = ("minimum", "maximum", "range", "mean", "avg_dev", "mode")


def _statistics(values: np.ndarray, amounts: np.ndarray) -> dict[str, np.ndarray]:
    """Every statistic of ``values [n, k, f]`` weighted by ``amounts [n, k, 1]`` (0 = padding)."""
    present = amounts > 0
    low = np.where(present, values, np.inf).min(axis=1)
    high = np.where(present, values, -np.inf).max(axis=1)
    # padded slots hold value 0 and weight 0, so they add exactly 0.0 to each sum
    filled = np.where(present, values, 0.0)
    total = amounts.sum(axis=1)
    mean = (filled * amounts).sum(axis=1) / total
    avg_dev = (np.abs(filled - mean[:, None]) * amounts).sum(axis=1) / total
    largest = amounts.max(axis=1, keepdims=True)
    most = (np.abs(amounts - largest) <= 1e-8 + 1e-5 * largest) & present  # np.isclose's test
    mode = np.where(most, values, np.inf).min(axis=1)
    return {"minimum": low, "maximum": high, "range": high - low, "mean": mean, "avg_dev": avg_dev, "mode": mode}


def magpie_table(featurizer: Any) -> np.ndarray:
    """Element-property table of a matminer ``ElementProperty`` featurizer.

    Args:
        featurizer: e.g. ``ElementProperty.from_preset("magpie", impute_nan=False)``.

    Returns:
        float64 array ``[MAX_Z + 1, len(featurizer.features)]``; row ``Z`` holds the data
        source's value for element ``Z`` (NaN where it has none), row 0 is NaN.

    Raises:
        ValueError: If the featurizer asks for a statistic this module does not implement.
    """
    from pymatgen.core import Element

    unknown = sorted(set(featurizer.stats) - set(STATS))
    if unknown:
        raise ValueError(f"unsupported statistics {unknown}; supported: {', '.join(STATS)}.")
    table = np.full((MAX_Z + 1, len(featurizer.features)), np.nan)
    source = featurizer.data_source
    for z in range(1, MAX_Z + 1):
        element = Element.from_Z(z)
        table[z] = [source.get_elemental_property(element, name) for name in featurizer.features]
    return table


def reduced_compositions(numbers: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Reduced formulas of many crystals, padded to a common width.

    Args:
        numbers: Atomic numbers of all crystals, concatenated.
        offsets: Crystal ``i`` owns ``numbers[offsets[i]:offsets[i + 1]]``; shape (n + 1,).

    Returns:
        ``(elements, amounts)``, both ``[n, max_elements]``: each row's distinct atomic numbers
        in increasing order and their counts divided by the counts' gcd (as float64), padded
        with element 0 and amount 0.

    Raises:
        ValueError: If an atomic number is outside 1..MAX_Z or a crystal has no atoms.
    """
    numbers, offsets = np.asarray(numbers, dtype=np.int64), np.asarray(offsets, dtype=np.int64)
    sizes = np.diff(offsets)
    if len(offsets) < 1 or offsets[0] != 0 or offsets[-1] != len(numbers) or (sizes < 0).any():
        raise ValueError("offsets must rise from 0 to len(numbers).")
    if len(sizes) == 0:
        return np.zeros((0, 0), dtype=np.int64), np.zeros((0, 0), dtype=np.float64)
    if len(numbers) and not (1 <= numbers.min() and numbers.max() <= MAX_Z):
        raise ValueError(f"atomic numbers must lie in 1..{MAX_Z}.")
    if (sizes == 0).any():
        raise ValueError(f"crystal {int(np.argmax(sizes < 1))} has no atoms.")
    crystal = np.repeat(np.arange(len(sizes)), sizes)
    keys, counts = np.unique(crystal * (MAX_Z + 1) + numbers, return_counts=True)
    owner, element = np.divmod(keys, MAX_Z + 1)
    starts = np.searchsorted(owner, np.arange(len(sizes)))
    counts = counts // np.repeat(np.gcd.reduceat(counts, starts), np.diff(np.append(starts, len(owner))))
    slot = np.arange(len(owner)) - starts[owner]
    width = int(slot.max(initial=-1)) + 1
    elements = np.zeros((len(sizes), width), dtype=np.int64)
    amounts = np.zeros((len(sizes), width), dtype=np.float64)
    elements[owner, slot], amounts[owner, slot] = element, counts
    return elements, amounts


def magpie_features(
    table: np.ndarray, elements: np.ndarray, amounts: np.ndarray, stats: Sequence[str]
) -> np.ndarray:
    """Statistics of each property over each composition, in matminer's column order.

    Args:
        table: From :func:`magpie_table`.
        elements: Atomic numbers ``[n, k]``, padded with 0 where ``amounts`` is 0.
        amounts: Element amounts ``[n, k]`` (any positive numbers; fractional allowed).
        stats: Statistic names, e.g. the featurizer's ``stats``.

    Returns:
        float64 ``[n, n_features * len(stats)]``: property-major, statistic-minor, like
        ``ElementProperty.featurize``; NaN where a property is missing for an element present.
    """
    amounts = np.asarray(amounts, dtype=np.float64)[:, :, None]
    computed = _statistics(table[np.asarray(elements)], amounts)
    return np.stack([computed[name] for name in stats], axis=2).reshape(len(amounts), -1)


def dataset_features(
    featurizer: Any,
    table: np.ndarray,
    numbers: np.ndarray,
    offsets: np.ndarray,
    *,
    batch_size: int = 64,
    progress: Progress | None = None,
) -> tuple[np.ndarray, int]:
    """Magpie rows of many crystals, each over its reduced formula.

    Args:
        featurizer: The matminer featurizer ``table`` came from (gives the statistics).
        table: From :func:`magpie_table`.
        numbers: Atomic numbers of all crystals, concatenated.
        offsets: Crystal ``i`` owns ``numbers[offsets[i]:offsets[i + 1]]``.
        batch_size: Crystals per ``progress`` call; the arithmetic runs on blocks of at least
            ``BLOCK`` crystals.
        progress: Called as ``progress(done, total)`` after each batch.

    Returns:
        float64 rows (NaN where element data is missing) and the number of distinct formulas.
    """
    elements, amounts = reduced_compositions(numbers, offsets)
    n = len(elements)
    out = np.empty((n, table.shape[1] * len(featurizer.stats)), dtype=np.float64)
    done = 0
    for start, stop in batch_ranges(n, batch_size):
        if stop > done:
            done = min(max(stop, start + BLOCK), n)
            out[start:done] = magpie_features(table, elements[start:done], amounts[start:done], featurizer.stats)
        if progress is not None:
            progress(stop, n)
    return out, len(np.unique(np.hstack([elements, amounts]), axis=0))
