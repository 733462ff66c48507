"""A small fine-tune: the encoder plus a head, trained end to end, early-stopped on an inner split.

The training rows of one outer fold are split (seeded) into inner-train and inner-validation rows;
the target is standardised on inner-train; AdamW runs for at most ``max_steps`` optimiser steps
(a step budget, not an epoch count, so N = 50 and N = all cost the same and fit a compute plan),
the validation MAE is checked every ``eval_every`` steps, and the weights with the best validation
MAE are restored before the test rows are scored once.
"""

from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from torch import nn
    from torch_geometric.data import Data

    from crystalrep.encoders.cgcnn import CGCNN

__all__ = ["FinetuneConfig", "FinetuneResult", "finetune"]

HEADS = ("linear", "mlp")


@dataclass(frozen=True, kw_only=True)
class FinetuneConfig:
    """How one fine-tune runs (saved in the report).

    Args:
        max_steps: Optimiser steps at most.
        batch_size: Crystals per step.
        lr: AdamW learning rate of the head.
        encoder_lr: AdamW learning rate of the pretrained encoder (smaller: keep what it learnt).
        weight_decay: AdamW weight decay.
        val_fraction: Share of the training rows held out for early stopping.
        max_val: At most this many validation rows (bounds the cost at N = all).
        eval_every: Steps between validation checks.
        patience: Checks without improvement before stopping.
        head: ``"mlp"`` (one hidden SiLU layer of 64) or ``"linear"``.
    """

    max_steps: int = 200
    batch_size: int = 32
    lr: float = 1e-3
    encoder_lr: float = 3e-4
    weight_decay: float = 1e-4
    val_fraction: float = 0.2
    max_val: int = 100
    eval_every: int = 20
    patience: int = 3
    head: str = "mlp"

    def __post_init__(self) -> None:
        if self.head not in HEADS:
            raise ValueError(f"head must be one of {', '.join(HEADS)}, got {self.head!r}.")
        if min(self.max_steps, self.batch_size, self.eval_every, self.patience, self.max_val) < 1:
            raise ValueError("max_steps, batch_size, eval_every, patience and max_val must be >= 1.")
        if not 0 < self.val_fraction < 1:
            raise ValueError(f"val_fraction must lie in (0, 1), got {self.val_fraction!r}.")

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return asdict(self)


@dataclass(frozen=True)
class FinetuneResult:
    """Test scores of one fine-tune, and how it stopped."""

    r2: float
    mae: float
    steps: int
    best_step: int
    val_mae: float
    n_train: int
    n_val: int
    n_test: int
    seconds: float


def _head(dim: int, kind: str) -> nn.Module:
    from torch import nn

    return nn.Linear(dim, 1) if kind == "linear" else nn.Sequential(nn.Linear(dim, 64), nn.SiLU(), nn.Linear(64, 1))


def _predict(model: nn.Module, graphs: list[Data], rows: np.ndarray, batch_size: int) -> np.ndarray:
    import torch
    from torch_geometric.data import Batch

    model.eval()
    out = []
    with torch.no_grad():
        for start in range(0, len(rows), 4 * batch_size):
            chunk = rows[start:start + 4 * batch_size]
            out.append(model(Batch.from_data_list([graphs[i] for i in chunk])).reshape(-1).numpy())
    return np.concatenate(out) if out else np.zeros(0)


def finetune(encoder: CGCNN, graphs: list[Data], y: np.ndarray, train: np.ndarray, test: np.ndarray, *,
             config: FinetuneConfig, seed: int) -> FinetuneResult:
    """Fine-tune a copy of ``encoder`` with a fresh head on ``train`` rows; score ``test`` rows.

    Args:
        encoder: The (pretrained or random) encoder; it is copied, never changed.
        graphs: Prebuilt graphs of every row of the evaluation set.
        y: Targets of every row (finite on ``train`` and ``test``).
        train: Positions of the labelled training rows (at least 4).
        test: Positions of the test rows.
        config: Steps, rates, early stopping.
        seed: Seed of the inner split, the head and the batch order.

    Returns:
        R² and MAE on ``test`` (in the target's unit), and the stopping point.
    """
    import torch
    from sklearn.metrics import mean_absolute_error, r2_score
    from torch import nn
    from torch_geometric.data import Batch

    if len(train) < 4 or len(test) == 0:
        raise ValueError(f"a fine-tune needs >= 4 training and >= 1 test rows, got {len(train)} and {len(test)}.")
    start = time.perf_counter()
    rng = np.random.default_rng(seed)
    order = rng.permutation(np.asarray(train))
    n_val = min(config.max_val, max(2, round(config.val_fraction * len(order))))
    val, fit = order[:n_val], order[n_val:]
    mu, sd = float(y[fit].mean()), float(y[fit].std()) or 1.0
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = nn.Sequential(copy.deepcopy(encoder), _head(encoder.config.out_dim, config.head))
    optimizer = torch.optim.AdamW([{"params": model[0].parameters(), "lr": config.encoder_lr},
                                   {"params": model[1].parameters(), "lr": config.lr}], weight_decay=config.weight_decay)
    target = torch.as_tensor((y - mu) / sd, dtype=torch.float32)
    best = (float("inf"), 0, copy.deepcopy(model.state_dict()))
    bad, step, queue = 0, 0, np.zeros(0, dtype=np.int64)
    while step < config.max_steps:
        if len(queue) < min(config.batch_size, len(fit)):
            queue = np.concatenate([queue, rng.permutation(fit)])
        rows, queue = queue[:config.batch_size], queue[config.batch_size:]
        model.train()
        pred = model(Batch.from_data_list([graphs[i] for i in rows])).reshape(-1)
        loss = nn.functional.mse_loss(pred, target[rows])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        step += 1
        if step % config.eval_every == 0 or step == config.max_steps:
            val_mae = float(np.mean(np.abs(_predict(model, graphs, val, config.batch_size) * sd + mu - y[val])))
            if val_mae < best[0]:
                best, bad = (val_mae, step, copy.deepcopy(model.state_dict())), 0
            else:
                bad += 1
                if bad >= config.patience:
                    break
    model.load_state_dict(best[2])
    pred = _predict(model, graphs, np.asarray(test), config.batch_size) * sd + mu
    truth = y[np.asarray(test)]
    return FinetuneResult(
        r2=float(r2_score(truth, pred)) if len(test) > 1 else float("nan"), mae=float(mean_absolute_error(truth, pred)),
        steps=step, best_step=best[1], val_mae=best[0], n_train=len(fit), n_val=len(val), n_test=len(test),
        seconds=time.perf_counter() - start,
    )
