"""Identical rows indexed and searched once, answers given in rows with the same tie order.

Composition-only descriptors repeat: Magpie gives every polymorph and every cell of one formula
the same vector, so a 200,000-row set of real cells and element substitutions holds only 33,701
distinct Magpie vectors. Searched row by row, each copy ties at distance 0 with all the others and
the tie-broken search (:func:`~crystalrep.analysis.retrieval.backends.tie_broken`) widens until the
whole tie is fetched: the novelty score of that set took over 12 minutes. Here the index holds
one vector per group of identical rows; :func:`grouped_tie_broken` searches the groups and expands
each into its rows (lowest rows first), so the result is row for row what ``tie_broken`` over
every row returns: the same distances, on the same grid, ties in row-index order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from crystalrep.analysis.retrieval.backends import Search, exact_grid_distances, fetch_settled

__all__ = ["RowGroups", "grouped_tie_broken", "groups_from_labels", "row_groups"]

_BLOCK = 256  # queries expanded at once: bounded memory (queries x candidates x k)
_BLOCK_ROWS = 8192  # rows hashed or compared at once


@dataclass(frozen=True)
class RowGroups:
    """Rows of a matrix grouped by identical (bitwise) vectors.

    Attributes:
        first: ``(u,)`` lowest row of each group, ascending (group ``g`` is represented by row ``first[g]``).
        group: ``(n,)`` group of each row.
        offsets: ``(u + 1,)`` group ``g``'s rows are ``members[offsets[g]:offsets[g + 1]]``.
        members: ``(n,)`` rows ordered by group, ascending within each group.
    """

    first: np.ndarray
    group: np.ndarray
    offsets: np.ndarray
    members: np.ndarray

    @property
    def sizes(self) -> np.ndarray:
        """Rows in each group."""
        return np.diff(self.offsets)


def _words(X: np.ndarray) -> np.ndarray:
    """The bytes of each row as 32-bit words ``(n, w)`` (a view; rows zero-padded to whole words if needed)."""
    raw = X.reshape(len(X), -1).view(np.uint8)
    if raw.shape[1] % 4:
        raw = np.pad(raw, ((0, 0), (0, 4 - raw.shape[1] % 4)))
    return raw.view(np.uint32)


def _row_hashes(words: np.ndarray) -> np.ndarray:
    """A 64-bit hash of each row's words (a random linear form mod 2**64, then mixed), ``_BLOCK_ROWS`` rows at a time."""
    weights = np.random.default_rng(0x5EED).integers(1, 2**63, size=words.shape[1], dtype=np.uint64) | np.uint64(1)
    out = np.empty(len(words), dtype=np.uint64)
    for start in range(0, len(words), _BLOCK_ROWS):
        part = words[start:start + _BLOCK_ROWS].astype(np.uint64)
        part *= weights  # wraps mod 2**64
        out[start:start + _BLOCK_ROWS] = part.sum(axis=1, dtype=np.uint64)
    out ^= out >> np.uint64(31)
    return out


def _grouped_by_bytes(words: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(first row of each group, group of each row)``: rows hashed, then every row checked against its group's first.

    A hash collision (two different rows, one hash) is caught by the check; the rows are then
    grouped by sorting their bytes instead, which is exact but copies and sorts every row.
    """
    _, first, group = np.unique(_row_hashes(words), return_index=True, return_inverse=True)
    group = group.reshape(-1)
    for start in range(0, len(words), _BLOCK_ROWS):
        part = slice(start, start + _BLOCK_ROWS)
        if not np.array_equal(words[part], words[first[group[part]]]):
            keys = np.ascontiguousarray(words).view(np.dtype((np.void, 4 * words.shape[1]))).ravel()
            _, first, group = np.unique(keys, return_index=True, return_inverse=True)
            return first, group.reshape(-1)
    return first, group


def row_groups(X: np.ndarray) -> RowGroups | None:
    """Group the identical rows of ``X`` (2-D); ``None`` when every row is distinct.

    Rows are compared as bytes, so ``0.0`` and ``-0.0`` land in different groups: that only
    searches one more vector, it never merges rows that differ. Rows are hashed and the hash groups
    checked row by row, in blocks: at 200k x 132 float32 this takes no full-size copy of ``X``.
    """
    X = np.ascontiguousarray(X)
    n = len(X)
    if n < 2 or X.shape[1] == 0:
        return None
    first, group = _grouped_by_bytes(_words(X))
    if len(first) == n:
        return None
    by_first = np.argsort(first)  # number the groups in the order their first rows come
    rank = np.empty_like(by_first)
    rank[by_first] = np.arange(len(by_first))
    return groups_from_labels(rank[group].astype(np.int64))


def groups_from_labels(group: np.ndarray) -> RowGroups:
    """The :class:`RowGroups` of each row's group number (groups numbered in the order their first rows come).

    Raises:
        ValueError: If the numbers are not that (a stored state that does not fit).
    """
    group = np.ascontiguousarray(group, dtype=np.int64)
    _, first = np.unique(group, return_index=True)
    if len(group) and (group.min() < 0 or group.max() != len(first) - 1 or np.any(np.diff(first) <= 0)):
        raise ValueError("row groups must be numbered 0, 1, ... in the order their first rows come.")
    members = np.argsort(group, kind="stable").astype(np.int64)
    offsets = np.zeros(len(first) + 1, dtype=np.int64)
    np.cumsum(np.bincount(group, minlength=len(first)), out=offsets[1:])
    return RowGroups(first=first.astype(np.int64), group=group, offsets=offsets, members=members)


def grouped_tie_broken(search: Search, groups: RowGroups, U: np.ndarray, metric: str, *, unit: float,
                       max_fetch: int | None = None) -> Search:
    """Wrap a search over the groups' vectors ``U`` (``U[g]`` is group ``g``) into one over rows.

    Groups are fetched until the group holding the ``k``-th row is clearly nearer than the last
    group fetched (at most ``max_fetch`` groups when given); their distances are recomputed in
    float64 and rounded to ``unit``; each group stands for its first ``k`` rows, and rows are
    ordered by distance, then row index. A group the backend did not find (index -1, approximate
    search only) sorts last, as row ``n`` at distance infinity.
    """
    sizes, n = groups.sizes, len(groups.group)
    cap = len(U) if max_fetch is None else min(len(U), max_fetch)

    def rows_reached(gidx: np.ndarray) -> np.ndarray:
        return np.where(gidx >= 0, sizes[np.maximum(gidx, 0)], 0).cumsum(axis=1)

    def search_sorted(Q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        def kth_group(gidx: np.ndarray, fetched: int) -> np.ndarray:  # the group holding each query's k-th row
            return np.minimum((rows_reached(gidx) < k).sum(axis=1), fetched - 1)

        dist, gidx = fetch_settled(search, Q, k, cap, kth_at=kth_group)
        per_group = min(k, int(sizes.max()))
        step = np.arange(per_group)
        out_d = np.empty((len(Q), k), dtype=np.float32)
        out_i = np.empty((len(Q), k), dtype=np.int64)
        for start in range(0, len(Q), _BLOCK):
            part = slice(start, start + _BLOCK)
            g = gidx[part]
            found = g >= 0
            g = np.maximum(g, 0)
            d = np.where(found, exact_grid_distances(U, g, Q[part], metric, unit), np.inf)
            take = np.where(found, np.minimum(sizes[g], per_group), 0)[..., None]
            pos = np.minimum(groups.offsets[g][..., None] + step, n - 1)
            valid = step < take
            rows = np.where(valid, groups.members[pos], n).reshape(len(g), -1)
            rd = np.where(valid, d[..., None], np.inf).reshape(len(g), -1)
            order = np.lexsort((rows, rd), axis=1)[:, :k]
            out_d[part] = np.take_along_axis(rd, order, axis=1)
            out_i[part] = np.take_along_axis(rows, order, axis=1)
        return out_d, out_i

    return search_sorted
