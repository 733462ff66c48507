"""Pretraining throughput (structures/s) per pretext task on perov_5 crystals, CPU.

Stages: `pretrain <task>` — one training epoch of `crystalrep.pretrain.trainer.pretrain` (batch 32,
default cgcnn: 128 wide, 3 layers, 6 Å, all neighbours), timed by the trainer itself (optimiser
steps only: batching, views, noise, masks, forward, backward, clipping, AdamW; best epoch;
validation and checkpoint writing excluded) — against the floor, the bare encoder's forward and
backward on prebuilt batches (no task head, no views; twice per crystal for `contrastive`, which
encodes two views). CIFs are parsed and graphs built outside the timed region.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from benchmarks import best_of, read_cifs, row

DATASET = "perov_5"
BATCH = 32


def _floor(graphs: list[Any], passes: int) -> float:
    """Seconds for one epoch of encoder-only forward + backward + AdamW on prebuilt batches."""
    import torch
    from torch_geometric.data import Batch

    from crystalrep.encoders.cgcnn import build_cgcnn

    model = build_cgcnn(seed=0).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    batches = [Batch.from_data_list(graphs[k:k + BATCH]) for k in range(0, len(graphs), BATCH)]

    def epoch() -> None:
        for batch in batches:
            for _ in range(passes):
                loss = model.encode_nodes(batch).pow(2).mean()
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()

    epoch()  # warm-up
    return best_of(epoch, 2)


def run(quick: bool) -> list[dict[str, Any]]:
    """Time each pretext task's training loop against the encoder-only floor."""
    import torch
    from pymatgen.core import Structure

    from crystalrep.datasets import Dataset
    from crystalrep.graphs import dataset_graphs
    from crystalrep.pretrain import TASK_NAMES, PretrainConfig
    from crystalrep.pretrain.trainer import pretrain

    # quick: 1 torch thread, since OpenMP threads spin badly on an oversubscribed shared machine
    n, epochs, threads = (160, 2, 1) if quick else (1000, 3, None)
    structures = [Structure.from_str(cif, fmt="cif") for cif in read_cifs(DATASET, n)]
    dataset = Dataset.from_structures("perov5-bench", [str(k) for k in range(n)], structures)
    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        graphs = dataset_graphs(dataset)
        edges = sum(g.num_edges for g in graphs)
        note = f"{sum(len(s) for s in structures)} sites, {edges} edges; torch threads {torch.get_num_threads()}"
        rows: list[dict[str, Any]] = []
        with tempfile.TemporaryDirectory() as tmp:
            for task in TASK_NAMES:
                config = PretrainConfig(task=task, epochs=epochs, batch_size=BATCH, val_fraction=0.0,
                                        device="cpu", threads=threads)
                history = pretrain(dataset, config, out_dir=Path(tmp) / task)
                best = max(r["structures_per_s"] for r in history)
                rows.append(row(f"pretrain {task}", f"crystalrep pretrain --task {task}", "ours", n, n / best,
                                f"best of {epochs} epochs; {note}"))
                passes = 2 if task == "contrastive" else 1
                rows.append(row(f"pretrain {task}", "encoder forward+backward only", "floor", n,
                                _floor(graphs, passes), f"prebuilt batches, {passes} pass(es) per crystal"))
        return rows
    finally:
        torch.set_num_threads(previous)


def summary(rows: list[dict[str, Any]]) -> list[str]:
    """Throughput per task and the share of time spent outside the encoder."""
    out = []
    for r in rows:
        if r["kind"] != "ours":
            continue
        floor = next(f for f in rows if f["stage"] == r["stage"] and f["kind"] == "floor")
        out.append(f"{r['stage']}: {r['n'] / r['seconds']:.0f} structures/s; the encoder alone would take "
                   f"{floor['seconds'] / r['seconds']:.0%} of that time.")
    return out
