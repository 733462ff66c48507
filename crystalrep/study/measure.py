"""Measure this machine before planning: structures per second for each stage of the study.

Each number comes from a few timed batches after one warm-up batch, on a seeded sample of the
real inputs (corpus crystals for pretraining, evaluation crystals for fine-tuning and embedding),
on one torch thread, as the study's processes run.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from crystalrep.datasets import Dataset

if TYPE_CHECKING:
    from collections.abc import Iterator

log = logging.getLogger(__name__)

__all__ = ["measure_throughput"]

BATCH = 16
TIMED_BATCHES = 3


@contextmanager
def _threads(n: int) -> Iterator[None]:
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _chunks(n: int) -> list[np.ndarray]:
    return np.array_split(np.arange(n), TIMED_BATCHES + 1)


class _Clock:
    """Wall and CPU seconds of a block (CPU time: what this process got from its cores)."""

    def __enter__(self) -> _Clock:
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = max(time.perf_counter() - self.wall, 1e-9)
        self.cpu = max(time.process_time() - self.cpu, 1e-9)


def _rate(step: Callable[[int], None], chunks: list[np.ndarray]) -> tuple[float, float]:
    """Structures per wall and per CPU second of ``step(b)`` over batches 1.., after warm-up batch 0."""
    step(0)
    with _Clock() as clock:
        for b in range(1, len(chunks)):
            step(b)
    n = sum(len(c) for c in chunks[1:])
    return n / clock.wall, n / clock.cpu


def _task_rate(task_name: str, corpus: Any, chunks: list[np.ndarray], seed: int) -> tuple[float, float]:
    """Training structures per second of one pretext task on the sampled corpus."""
    import torch

    from crystalrep.encoders.cgcnn import build_cgcnn
    from crystalrep.pretrain import PretrainConfig
    from crystalrep.pretrain.tasks import build_task

    task = build_task(PretrainConfig(task=task_name, batch_size=BATCH, seed=seed), build_cgcnn(seed=seed))
    opt = torch.optim.AdamW(task.parameters(), lr=1e-4)
    rng, gen = np.random.default_rng(seed), torch.Generator().manual_seed(seed)

    def step(b: int) -> None:
        loss = task(task.make_batch(chunks[b], corpus, rng), gen)
        opt.zero_grad()
        loss.backward()
        opt.step()

    return _rate(step, chunks)


def _sample(dataset: Dataset, n: int, seed: int) -> Dataset:
    rows = np.sort(np.random.default_rng(seed).permutation(len(dataset))[:n])
    return dataset.subset(rows)


def measure_throughput(corpus: Dataset, evalsets: Sequence[Dataset], *, tasks: Sequence[str],
                       seed: int = 0) -> dict[str, float]:
    """Structures per second per pretext task, and of fine-tuning and embedding.

    Everything runs on one torch thread: the study runs ``workers`` single-threaded processes,
    because on a shared machine two threads in one process were up to five times slower (they
    spin on busy cores). A fine-tune is timed at two lengths, giving its per-step rate and its
    fixed cost (model copies, optimiser, scoring the test rows).

    Every rate is also given per CPU second (``<name>_cpu``, one thread): on a busy machine that is
    what the same code would do with the cores to itself, the basis of the idle-machine estimate.

    Returns:
        ``{task: rate, ..., "finetune": rate, "finetune_fixed_s": seconds, "embed": rate,
        "probe_s": seconds per probe fold}``, each also as ``<name>_cpu``.
    """
    import torch
    from torch_geometric.data import Batch

    from crystalrep.analysis.probes import probe
    from crystalrep.analysis.splits import folds
    from crystalrep.encoders.cgcnn import CGCNNConfig, build_cgcnn
    from crystalrep.graphs import GraphConfig, dataset_graphs
    from crystalrep.pretrain.tasks import Corpus
    from crystalrep.study.finetune import FinetuneConfig, finetune

    n = BATCH * (TIMED_BATCHES + 1)
    graph_config = GraphConfig(cutoff=CGCNNConfig().cutoff)
    sample = _sample(corpus, n, seed)
    pre = Corpus(arrays=[sample.arrays(i) for i in range(len(sample))], graphs=dataset_graphs(sample, config=graph_config),
                 graph_config=graph_config)
    out: dict[str, float] = {}
    chunks = _chunks(len(sample))
    with _threads(1):
        for task_name in tasks:
            out[task_name], out[f"{task_name}_cpu"] = _task_rate(task_name, pre, chunks, seed)
    per_set = -(-n // max(1, len(evalsets)))
    graphs = [g for ds in evalsets for g in dataset_graphs(_sample(ds, per_set, seed), config=graph_config)]
    model = build_cgcnn(seed=seed)
    eval_chunks = _chunks(len(graphs))
    y = np.random.default_rng(seed).normal(size=len(graphs))
    with _threads(1):
        def embed(b: int) -> None:
            with torch.inference_mode():
                model(Batch.from_data_list([graphs[i] for i in eval_chunks[b]]))

        out["embed"], out["embed_cpu"] = _rate(embed, eval_chunks)
        clocks = []
        for steps in (2, 2, 2 + 2 * TIMED_BATCHES):  # warm-up, then two lengths: per-step rate and fixed cost
            with _Clock() as clock:
                finetune(model, graphs, y, np.arange(len(graphs) - 4), np.arange(len(graphs) - 4, len(graphs)),
                         config=FinetuneConfig(max_steps=steps, batch_size=BATCH, eval_every=steps, val_fraction=0.05,
                                               max_val=2), seed=seed)
            clocks.append(clock)
    extra = 2 * TIMED_BATCHES
    for suffix, (short, long) in (("", (clocks[1].wall, clocks[2].wall)), ("_cpu", (clocks[1].cpu, clocks[2].cpu))):
        # a busy machine can make the short run the slower one: then charge everything per step
        per_step = (long - short) / extra if long > short else long / (2 + extra)
        out[f"finetune{suffix}"] = BATCH / per_step
        out[f"finetune_fixed_s{suffix}"] = max(short - 2 * per_step, 0.0)  # copies, optimiser, final scoring
    rows = max((len(ds) for ds in evalsets), default=n)
    X = np.random.default_rng(seed).normal(size=(rows, model.config.out_dim))
    y = X[:, 0] + np.random.default_rng(seed + 1).normal(size=rows)
    with _Clock() as clock:
        probe(X, y, folds(pd.DataFrame(index=range(rows)), split="random", n_splits=5, seed=seed))
    out.update(probe_s=clock.wall / 5, probe_s_cpu=clock.cpu / 5)
    log.info("throughput: %s", {k: round(v, 2) for k, v in out.items()})
    return out
