"""Pretext tasks: each wraps a :class:`~crystalrep.encoders.cgcnn.CGCNN` and returns a scalar loss.

Like PyG's ``DeepGraphInfomax``, a task owns the encoder plus its own small heads; after
pretraining only ``task.encoder`` is kept. A task turns crystal indices into a batch
(:meth:`PretextTask.make_batch`) and that batch into a loss (``forward``); all randomness comes
from the generators passed in, so a resumed run sees the same noise as an uninterrupted one.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F  # noqa: N812
from torch_geometric.data import Batch, Data
from torch_geometric.utils import scatter
from typing_extensions import override

from crystalrep.encoders.cgcnn import CGCNN, MASK_TOKEN
from crystalrep.graphs import GraphConfig, arrays_to_graph
from crystalrep.pretrain import TASK_NAMES, PretrainConfig
from crystalrep.transforms import Arrays, AugmentConfig, random_view


@dataclass
class Corpus:
    """The crystals a task draws batches from: raw arrays, and their graphs when prebuilt."""

    arrays: list[Arrays]
    graphs: list[Data] | None
    graph_config: GraphConfig


def _mlp(dim_in: int, hidden: int, dim_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(dim_in, hidden), nn.SiLU(), nn.Linear(hidden, dim_out))


class PretextTask(nn.Module):
    """Base class: ``task.encoder`` plus heads; ``forward(batch, generator) -> scalar loss``."""

    name: ClassVar[str] = ""
    needs_graphs: ClassVar[bool] = True  # False when every batch builds fresh graphs (views)

    def __init__(self, encoder: CGCNN) -> None:
        super().__init__()
        self.encoder = encoder

    @property
    def params(self) -> dict[str, Any]:
        """Hyperparameters of the task (recorded in checkpoint metadata)."""
        return {}

    def make_batch(self, indices: Sequence[int] | np.ndarray, corpus: Corpus, rng: np.random.Generator) -> Any:
        """Collate the prebuilt graphs of ``indices`` (subclasses may build views instead)."""
        if corpus.graphs is None:
            raise ValueError(f"task {self.name!r} needs prebuilt graphs.")
        return Batch.from_data_list([corpus.graphs[i] for i in indices])

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v}" for k, v in self.params.items())
        return f"{type(self).__name__}({self.encoder!r}, {args})"


def _noise(shape: torch.Size, generator: torch.Generator | None, like: Tensor) -> Tensor:
    return torch.randn(shape, generator=generator).to(device=like.device, dtype=like.dtype)


class DenoiseTask(PretextTask):
    """Denoising in the spirit of CDSSL (New et al. 2024) and Zaidi et al. (2022).

    Every atom is displaced by Gaussian noise of ``sigma`` Å; from the noisy graph, predict the
    displacement field that restores the clean crystal (``-noise / sigma``).

    The prediction is equivariant by construction, ``v_i = mean_j w_ij * unit(vec_ij)`` with an
    invariant edge weight ``w_ij = MLP(h_i + h_j, h_i * h_j, rbf(d_ij), d_ij)``. The edge list stays
    that of the clean crystal; the noise is centred per crystal (a rigid shift is unobservable).
    """

    name = "denoise"

    def __init__(self, encoder: CGCNN, *, sigma: float = 0.1) -> None:
        super().__init__(encoder)
        self.sigma = float(sigma)
        width = min(64, encoder.config.hidden)  # the head runs per edge: keep it narrow
        self.node_proj = nn.Linear(encoder.config.hidden, width)
        self.edge_head = _mlp(2 * width + encoder.config.n_rbf + 1, width, 1)

    @property
    @override
    def params(self) -> dict[str, Any]:
        return {"sigma": self.sigma, "target": "displacement"}

    def forward(self, batch: Batch, generator: torch.Generator | None = None) -> Tensor:
        """Mean squared error of the predicted restoring displacements, in units of ``sigma``."""
        i, j = batch.edge_index
        noise = _noise(batch.pos.shape, generator, batch.pos) * self.sigma
        graph_of = batch.batch if getattr(batch, "batch", None) is not None else torch.zeros_like(batch.z)
        noise = noise - scatter(noise, graph_of, dim=0, reduce="mean")[graph_of]
        vec = batch.edge_vec + noise[j] - noise[i]  # same cell shifts, moved atoms
        d = vec.norm(dim=-1)
        noisy = copy.copy(batch)
        noisy.pos, noisy.edge_vec, noisy.distance = batch.pos + noise, vec, d
        h = self.node_proj(self.encoder.encode_nodes(noisy))
        features = torch.cat([h[i] + h[j], h[i] * h[j], self.encoder.rbf(d), (d / self.encoder.config.cutoff)[:, None]], dim=-1)
        weight = self.edge_head(features)
        pred = scatter(weight * vec / d[:, None], i, dim=0, dim_size=batch.num_nodes, reduce="mean")
        return F.mse_loss(pred, -noise / self.sigma)


class ContrastiveTask(PretextTask):
    """SimCLR for crystals: two physical views per crystal, a projection head and InfoNCE.

    Views come from ``augment.random_view``; the loss is NT-Xent at temperature ``tau`` against the
    other 2B - 2 in-batch views.
    """

    name = "contrastive"
    needs_graphs = False

    def __init__(self, encoder: CGCNN, *, tau: float = 0.1, sigma: float = 0.05, proj_dim: int = 64) -> None:
        super().__init__(encoder)
        self.tau = float(tau)
        # rotation, origin shift and supercells leave a distance-only, mean-pooled encoder's output
        # unchanged; they stay as cheap checks, supercells rarely since they multiply the edges
        self.augment = AugmentConfig(sigma=float(sigma), supercell_prob=0.1)
        self.proj_dim = int(proj_dim)
        self.projector = _mlp(encoder.config.out_dim, encoder.config.hidden, self.proj_dim)

    @property
    @override
    def params(self) -> dict[str, Any]:
        return {"tau": self.tau, "view_sigma": self.augment.sigma, "proj_dim": self.proj_dim,
                "supercell_prob": self.augment.supercell_prob, "max_factor": self.augment.max_factor}

    def make_batch(self, indices: Sequence[int] | np.ndarray, corpus: Corpus, rng: np.random.Generator) -> tuple[Batch, Batch]:
        """Two independently augmented views of the same crystals."""
        views = []
        for _ in range(2):
            graphs = [arrays_to_graph(*random_view(corpus.arrays[i], config=self.augment, seed=rng),
                                      config=corpus.graph_config) for i in indices]
            views.append(Batch.from_data_list(graphs))
        return views[0], views[1]

    def forward(self, batch: tuple[Batch, Batch], generator: torch.Generator | None = None) -> Tensor:
        """NT-Xent loss; the positive of view ``k`` is the other view of the same crystal."""
        first, second = batch
        z = F.normalize(self.projector(torch.cat([self.encoder(first), self.encoder(second)])), dim=-1)
        n = first.num_graphs
        sim = (z @ z.T) / self.tau
        sim = sim.masked_fill(torch.eye(2 * n, dtype=torch.bool, device=z.device), float("-inf"))
        target = torch.cat([torch.arange(n, 2 * n), torch.arange(n)]).to(z.device)
        return F.cross_entropy(sim, target)


class MaskingTask(PretextTask):
    """Hide the element of about ``mask_rate`` of the atoms (mask token 0); predict it (cross-entropy)."""

    name = "masking"

    def __init__(self, encoder: CGCNN, *, mask_rate: float = 0.15) -> None:
        super().__init__(encoder)
        self.mask_rate = float(mask_rate)
        self.element_head = _mlp(encoder.config.hidden, encoder.config.hidden, encoder.config.max_z + 1)

    @property
    @override
    def params(self) -> dict[str, Any]:
        return {"mask_rate": self.mask_rate}

    def forward(self, batch: Batch, generator: torch.Generator | None = None) -> Tensor:
        """Cross-entropy of the hidden elements (at least one atom per batch is hidden)."""
        draw = torch.rand(batch.z.shape, generator=generator)
        mask = draw < self.mask_rate
        if not mask.any():
            mask[int(draw.argmin())] = True
        mask = mask.to(batch.z.device)
        masked = copy.copy(batch)
        masked.z = batch.z.masked_fill(mask, MASK_TOKEN)
        logits = self.element_head(self.encoder.encode_nodes(masked)[mask])
        return F.cross_entropy(logits, batch.z[mask].long())


TASKS: dict[str, type[PretextTask]] = {"denoise": DenoiseTask, "contrastive": ContrastiveTask, "masking": MaskingTask}
if tuple(TASKS) != TASK_NAMES:  # the light package face lists the same names for the CLI
    raise RuntimeError("crystalrep.pretrain.TASK_NAMES is out of sync with the task table.")


def build_task(config: PretrainConfig, encoder: CGCNN) -> PretextTask:
    """The task named in ``config``, wrapping ``encoder``; unknown names raise ``ValueError``."""
    if config.task not in TASKS:
        raise ValueError(f"unknown pretext task {config.task!r}; valid: {', '.join(TASKS)}.")
    options = {"denoise": {"sigma": config.sigma}, "contrastive": {"tau": config.tau, "sigma": config.sigma},
               "masking": {"mask_rate": config.mask_rate}}[config.task]
    return TASKS[config.task](encoder, **options)
