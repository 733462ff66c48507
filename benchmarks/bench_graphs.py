"""Periodic graph building (CIFs parsed once, outside the timed region).

`graph 6 Å` and `graph 8 Å` (1,000 perov_5 crystals; `, carbon_24`: 1,000 carbon_24 crystals):
our `arrays_to_graph` (arrays → torch_geometric `Data` with edge vectors and distances, all
neighbours) against pymatgen's `get_neighbor_list` and against vesin's Python API
(`NeighborList.compute`, what ours called before it called vesin's C function directly); the
floor is that bare C call (`vesin_neighbors`, arguments prepared, outputs left in vesin's
buffers), positions precomputed. `graph 8 Å, 12 nbrs` (perov_5): ours with `max_neighbors=12`
against a re-implementation of the CGCNN featuriser (Xie & Grossman, cgcnn/data.py):
`get_all_neighbors(8 Å)`, sort each atom's neighbours, keep 12, Gaussian-expand distances
(0–8 Å, step 0.2), build feature arrays and tensors; its atom table is a fixed random 92-dim
vector per element standing in for atom_init.json. The floor there is a full 8 Å C call; ours
first searches the radius that should hold 12 neighbours and widens only where needed, so it
can beat that floor. `batched edges …` and `collated graph …`: the batched API, one call per
block of 50 cells — `batch_edges` (index, shift, distance and vector arrays of all cells, atoms
numbered through the block) against pymatgen per cell, and `arrays_to_batch` (one collated
torch_geometric `Batch`) against per-cell graphs collated by `Batch.from_data_list`. Implementations of a stage are timed in turn on blocks of 50 crystals,
best of the repeats per block, summed over the blocks (robust to bursts of load)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from benchmarks import best_of_each, read_cifs, row

DATASET = "perov_5"
CGCNN_RADIUS, CGCNN_MAX_NBR, CGCNN_STEP = 8.0, 12, 0.2
BLOCK = 50  # crystals per timed block (see best_of_blocks)


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


def best_of_blocks(makers: dict[str, Callable[[slice], Callable[[], Any]]], n: int, repeat: int) -> dict[str, float]:
    """Each implementation's time for ``n`` crystals: the sum over blocks of ``BLOCK`` crystals
    of its best time on that block, the implementations timed in turn on each block.

    Timing short blocks in turn means a burst of load on a shared machine lands on every
    implementation alike, and the best of the repeats per block is the uncontended time.
    """
    total = dict.fromkeys(makers, 0.0)
    for start in range(0, n, BLOCK):
        block = slice(start, min(start + BLOCK, n))
        for name, seconds in best_of_each({k: make(block) for k, make in makers.items()}, repeat).items():
            total[name] += seconds
    return total


def run(quick: bool) -> list[dict[str, Any]]:
    """Time graph building at 6 Å and 8 Å and CGCNN-style featurisation at 8 Å."""
    n, repeat = (200, 1) if quick else (1000, 3)
    return [*_dataset_rows(DATASET, n, repeat), *_dataset_rows("carbon_24", n, repeat)]


def _dataset_rows(dataset: str, n: int, repeat: int) -> list[dict[str, Any]]:
    """The rows of one dataset (and, for perov_5, the CGCNN stage)."""
    import vesin
    from torch_geometric.data import Batch

    from crystalrep.graphs import (
        GraphConfig,
        _neighbor_list,
        arrays_to_batch,
        arrays_to_graph,
        batch_edges,
    )

    structures, arrays = _load(dataset, n)
    positions = [(frac @ lat, np.ascontiguousarray(lat)) for lat, _, frac in arrays]
    Maker = Callable[[slice], Callable[[], Any]]

    def ours(config: GraphConfig) -> Maker:
        return lambda b: lambda: [arrays_to_graph(lat, z, frac, config=config) for lat, z, frac in arrays[b]]

    def floor(cutoff: float) -> Maker:
        nl = _neighbor_list(cutoff)
        return lambda b: lambda: [nl.compute(pos, lat) for pos, lat in positions[b]]

    def vesin_python(cutoff: float) -> Maker:
        nl = vesin.NeighborList(cutoff=cutoff, full_list=True, sorted=True, n_threads=1)
        return lambda b: lambda: [nl.compute(pos, lat, periodic=True, quantities="ijSdD", copy=False)
                                  for pos, lat in positions[b]]

    def pymatgen_nl(cutoff: float) -> Maker:
        return lambda b: lambda: [s.get_neighbor_list(r=cutoff) for s in structures[b]]

    ours(GraphConfig())(slice(0, n))()  # warm-up: first calls pay lazy set-up
    sites, rows = sum(len(z) for _, z, _ in arrays), []
    for cutoff in (6.0, 8.0):
        config = GraphConfig(cutoff=cutoff)
        edges = sum(arrays_to_graph(*a, config=config).num_edges for a in arrays)
        stage = f"graph {cutoff:.0f} Å" + ("" if dataset == DATASET else f", {dataset}")
        t = best_of_blocks({"ours": ours(config), "floor": floor(cutoff), "vesin": vesin_python(cutoff),
                            "peer": pymatgen_nl(cutoff)}, n, repeat)
        rows += [
            row(stage, "crystalrep arrays_to_graph", "ours", n, t["ours"], f"{sites} sites, {edges} edges"),
            row(stage, "vesin C call (vesin_neighbors)", "floor", n, t["floor"],
                "the call ours makes, positions precomputed"),
            row(stage, "pymatgen get_neighbor_list", "peer", n, t["peer"], "index/shift/distance arrays only"),
            row(stage, "vesin NeighborList.compute", "peer", n, t["vesin"],
                "vesin's Python API, positions precomputed, no copies"),
        ]
        t = best_of_blocks({
            "edges": lambda b, c=config: lambda: batch_edges(arrays[b], config=c),
            "batch": lambda b, c=config: lambda: arrays_to_batch(arrays[b], config=c),
            "collate": lambda b, c=config: lambda: Batch.from_data_list(
                [arrays_to_graph(*a, config=c) for a in arrays[b]]),
            "floor": floor(cutoff), "peer": pymatgen_nl(cutoff)}, n, repeat)
        edges_stage, batch_stage = stage.replace("graph", "batched edges"), stage.replace("graph", "collated graph")
        rows += [
            row(edges_stage, "crystalrep batch_edges", "ours", n, t["edges"], f"one call per {BLOCK} cells"),
            row(edges_stage, "vesin C call (vesin_neighbors)", "floor", n, t["floor"], "per cell, positions precomputed"),
            row(edges_stage, "pymatgen get_neighbor_list", "peer", n, t["peer"], "per cell"),
            row(batch_stage, "crystalrep arrays_to_batch", "ours", n, t["batch"],
                f"one collated Batch per {BLOCK} cells"),
            row(batch_stage, "arrays_to_graph per cell + Batch.from_data_list", "peer", n, t["collate"],
                "the path the cgcnn encoder took before"),
        ]
    if dataset != DATASET:
        return rows
    atom_table = np.random.default_rng(0).random((119, 92))
    centres = np.arange(0.0, CGCNN_RADIUS + CGCNN_STEP, CGCNN_STEP)
    t = best_of_blocks({
        "ours": ours(GraphConfig(cutoff=8.0, max_neighbors=12)), "floor": floor(8.0),
        "peer": lambda b: lambda: [_cgcnn_featurise(s, atom_table, centres) for s in structures[b]],
    }, n, repeat)
    g8 = "graph 8 Å, 12 nbrs"
    return rows + [
        row(g8, "crystalrep arrays_to_graph", "ours", n, t["ours"], "searches a smaller radius first"),
        row(g8, "vesin C call (vesin_neighbors)", "floor", n, t["floor"], "full 8 Å search, positions precomputed"),
        row(g8, "CGCNN featuriser (re-impl.)", "peer", n, t["peer"], "get_all_neighbors + sort + Gaussian"),
    ]


def summary(rows: list[dict[str, Any]]) -> list[str]:
    """Check the issue's targets: at least pymatgen's speed, within 1.3× of raw vesin, ≥ 20× CGCNN."""
    t = {(r["stage"], r["impl"]): r["seconds"] for r in rows}
    ours_key, pmg, c_call, py_api = ("crystalrep arrays_to_graph", "pymatgen get_neighbor_list",
                                     "vesin C call (vesin_neighbors)", "vesin NeighborList.compute")

    def verdict(ok: bool) -> str:
        return "met" if ok else "MISSED"

    lines = []
    for stage in sorted({r["stage"] for r in rows if (r["stage"], pmg) in t and r["stage"].startswith("graph")}):
        ours = t[(stage, ours_key)]
        vs_peer, vs_c, vs_py = t[(stage, pmg)] / ours, ours / t[(stage, c_call)], ours / t[(stage, py_api)]
        lines.append(f"{stage}: ours {vs_peer:.2f}× pymatgen's speed (target ≥ 1: {verdict(vs_peer >= 1)}); "
                     f"{vs_c:.2f}× the bare vesin C call (target ≤ 1.3: {verdict(vs_c <= 1.3)}), "
                     f"{vs_py:.2f}× vesin's Python `compute`.")
    for stage in sorted({r["stage"] for r in rows if r["stage"].startswith("batched edges")}):
        ratio = t[(stage, pmg)] / t[(stage, "crystalrep batch_edges")]
        lines.append(f"{stage}: ours {ratio:.2f}× pymatgen's speed (target ≥ 1: {verdict(ratio >= 1)}); "
                     f"{t[(stage, 'crystalrep batch_edges')] / t[(stage, c_call)]:.2f}× the bare vesin C call.")
    for stage in sorted({r["stage"] for r in rows if r["stage"].startswith("collated graph")}):
        ratio = t[(stage, "arrays_to_graph per cell + Batch.from_data_list")] / t[(stage, "crystalrep arrays_to_batch")]
        lines.append(f"{stage}: one collated batch is {ratio:.2f}× faster than per-cell graphs + from_data_list.")
    ours8, cgcnn = t[("graph 8 Å, 12 nbrs", ours_key)], t[("graph 8 Å, 12 nbrs", "CGCNN featuriser (re-impl.)")]
    lines.append(f"Target ≥ 20× CGCNN featuriser: like-for-like (8 Å, 12 nbrs) ours is {cgcnn / ours8:.1f}× "
                 f"faster — {verdict(cgcnn / ours8 >= 20)}.")
    return lines
