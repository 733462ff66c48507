"""Periodic graph building (CIFs parsed once, outside the timed region).

`graph 6 Å` (1,000 perov_5 crystals) and `graph 6 Å, carbon_24` (1,000 carbon_24 crystals):
our `arrays_to_graph` (arrays → torch_geometric `Data` with edge vectors and distances)
against pymatgen's `get_neighbor_list`, with the bare vesin call that ours wraps as the floor.
`graph 8 Å, 12 nbrs` (perov_5): ours with `max_neighbors=12` against a re-implementation of
the CGCNN featuriser (Xie & Grossman, cgcnn/data.py): `get_all_neighbors(8 Å)`, sort each
atom's neighbours, keep 12, Gaussian-expand distances (0–8 Å, step 0.2), build feature
arrays and tensors; its atom table is a fixed random 92-dim vector per element standing in for
atom_init.json. The floor there is a full 8 Å vesin search; ours first searches the radius
that should hold 12 neighbours and widens only where needed, so it can beat that floor.
Implementations of a stage are timed in turn, best of the repeats."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from benchmarks import best_of_each, read_cifs, row

DATASET = "perov_5"
CGCNN_RADIUS, CGCNN_MAX_NBR, CGCNN_STEP = 8.0, 12, 0.2


def _cgcnn_featurise(structure: Any, atom_table: np.ndarray, centres: np.ndarray) -> tuple:
    """One crystal as CGCNN's data loader builds it: atom features, Gaussian edges, indices."""
    import torch

    atom_fea = np.vstack([atom_table[site.specie.Z] for site in structure])
    all_nbrs = structure.get_all_neighbors(CGCNN_RADIUS, include_index=True)
    all_nbrs = [sorted(nbrs, key=lambda nb: nb.nn_distance) for nbrs in all_nbrs]
    nbr_idx, nbr_dist = [], []
    for nbrs in all_nbrs:
        kept = nbrs[:CGCNN_MAX_NBR]
        pad = CGCNN_MAX_NBR - len(kept)  # CGCNN pads short lists with index 0 at radius + 1
        nbr_idx.append([nb.index for nb in kept] + [0] * pad)
        nbr_dist.append([nb.nn_distance for nb in kept] + [CGCNN_RADIUS + 1.0] * pad)
    dist = np.array(nbr_dist)
    nbr_fea = np.exp(-((dist[..., np.newaxis] - centres) ** 2) / CGCNN_STEP**2)
    return torch.Tensor(atom_fea), torch.Tensor(nbr_fea), torch.LongTensor(np.array(nbr_idx))


def _load(dataset: str, n: int) -> tuple[list[Any], list[tuple[np.ndarray, ...]]]:
    """Parsed structures and their (lattice, numbers, frac) arrays, as a Dataset holds them."""
    from pymatgen.core import Structure

    structures = [Structure.from_str(cif, fmt="cif") for cif in read_cifs(dataset, n)]
    arrays = [(s.lattice.matrix.copy(), np.array(s.atomic_numbers, dtype=np.int64), s.frac_coords.copy())
              for s in structures]
    return structures, arrays


def run(quick: bool) -> list[dict[str, Any]]:
    """Time graph building at 6 Å and CGCNN-style featurisation at 8 Å."""
    import vesin

    from crystalrep.graphs import GraphConfig, arrays_to_graph

    n, repeat = (200, 1) if quick else (1000, 5)
    atom_table = np.random.default_rng(0).random((119, 92))
    centres = np.arange(0.0, CGCNN_RADIUS + CGCNN_STEP, CGCNN_STEP)

    def ours(arrays: list, config: GraphConfig) -> Callable[[], None]:
        return lambda: [arrays_to_graph(lat, z, frac, config=config) for lat, z, frac in arrays]

    def floor(arrays: list, cutoff: float) -> Callable[[], None]:
        nl = vesin.NeighborList(cutoff=cutoff, full_list=True, sorted=True, n_threads=1)
        positions = [(frac @ lat, lat) for lat, _, frac in arrays]
        return lambda: [nl.compute(pos, lat, periodic=True, quantities="ijSdD", copy=False) for pos, lat in positions]

    def pymatgen_nl(structures: list, cutoff: float) -> Callable[[], None]:
        return lambda: [s.get_neighbor_list(r=cutoff) for s in structures]

    def cgcnn(structures: list) -> Callable[[], None]:
        return lambda: [_cgcnn_featurise(s, atom_table, centres) for s in structures]

    rows = []
    for dataset in (DATASET, "carbon_24"):
        structures, arrays = _load(dataset, n)
        ours(arrays, GraphConfig())()  # warm-up: first calls pay lazy set-up
        sites = sum(len(z) for _, z, _ in arrays)
        edges = sum(g.num_edges for g in [arrays_to_graph(*a) for a in arrays])
        stage = "graph 6 Å" + ("" if dataset == DATASET else f", {dataset}")
        t = best_of_each({"ours": ours(arrays, GraphConfig()), "floor": floor(arrays, 6.0),
                          "peer": pymatgen_nl(structures, 6.0)}, repeat)
        rows += [
            row(stage, "crystalrep arrays_to_graph", "ours", n, t["ours"], f"{sites} sites, {edges} edges"),
            row(stage, "vesin NeighborList.compute", "floor", n, t["floor"], "the call ours makes, positions precomputed"),
            row(stage, "pymatgen get_neighbor_list", "peer", n, t["peer"], "index/shift/distance arrays only"),
        ]
        if dataset != DATASET:
            continue
        t = best_of_each({"ours": ours(arrays, GraphConfig(cutoff=8.0, max_neighbors=12)),
                          "floor": floor(arrays, 8.0), "peer": cgcnn(structures)}, repeat)
        g8 = "graph 8 Å, 12 nbrs"
        rows += [
            row(g8, "crystalrep arrays_to_graph", "ours", n, t["ours"], "searches a smaller radius first"),
            row(g8, "vesin NeighborList.compute", "floor", n, t["floor"], "full 8 Å search, positions precomputed"),
            row(g8, "CGCNN featuriser (re-impl.)", "peer", n, t["peer"], "get_all_neighbors + sort + Gaussian"),
        ]
    return rows


def summary(rows: list[dict[str, Any]]) -> list[str]:
    """Check the issue's targets: ≥ 20× the CGCNN featuriser, within 2× of raw vesin."""
    t = {(r["stage"], r["kind"]): r["seconds"] for r in rows}
    ours6, floor6 = t[("graph 6 Å", "ours")], t[("graph 6 Å", "floor")]
    ours8, cgcnn = t[("graph 8 Å, 12 nbrs", "ours")], t[("graph 8 Å, 12 nbrs", "peer")]

    def verdict(ok: bool) -> str:
        return "met" if ok else "MISSED"

    return [
        f"Target ≥ 20× CGCNN featuriser: ours at 6 Å is {cgcnn / ours6:.1f}× faster, like-for-like "
        f"(8 Å, 12 nbrs) {cgcnn / ours8:.1f}× faster — {verdict(cgcnn / ours8 >= 20)}.",
        f"Target within 2× of raw vesin at 6 Å: ours takes {ours6 / floor6:.2f}× the floor — "
        f"{verdict(ours6 / floor6 <= 2)}.",
    ]
