"""Grouping of CHGNet's atom-graph edges whose messages agree in every layer."""

from __future__ import annotations

import numpy as np

from crystalrep.encoders.chgnet_graph import repeated_edges


def test_repeated_edges_groups_by_length_or_by_updated_bond() -> None:
    # bond 2 is updated by angles; the others keep features that depend on their length alone
    length = np.array([3.5, 3.5, 2.0, np.nextafter(np.float32(3.5), np.float32(4)), 2.0], dtype=np.float32)
    updated = np.array([False, False, True, False, False])
    atom_graph = np.array([[1, 0], [0, 1], [0, 1], [0, 1], [0, 0], [0, 0], [0, 1], [1, 0]])
    bond = np.array([0, 0, 1, 3, 2, 2, 4, 2])
    first, count = repeated_edges(atom_graph, bond, length, updated)
    # edges 1 and 2: same atoms, different bonds of equal length; edge 3's bond is one ulp longer;
    # edges 4 and 5: the updated bond seen twice; edge 7: the updated bond from the other end
    assert first.tolist() == [4, 6, 1, 3, 0, 7]
    assert count.tolist() == [2, 1, 2, 1, 1, 1]
    assert int(count.sum()) == len(atom_graph)
    assert np.all(np.diff(atom_graph[first, 0]) >= 0)  # sorted by centre


def test_repeated_edges_without_edges() -> None:
    first, count = repeated_edges(np.zeros((0, 2), np.int64), np.zeros(0, np.int64),
                                  np.zeros(0, np.float32), np.zeros(0, bool))
    assert len(first) == len(count) == 0
