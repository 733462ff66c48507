"""CGCNN-style gated graph convolution (Xie & Grossman 2018) in torch-geometric.

Element embedding -> Gaussian RBF of distances under a smooth cosine cutoff -> gated convolutions
with residuals and LayerNorm (per atom, so a batch never changes a crystal's vector) -> a readout
over atoms -> linear head. The readout is mean pooling (the default: a 2x2x2 supercell embeds like
its cell) or Set2Set (Vinyals et al. 2016, as in MEGNet and CDSSL): attention weights are a softmax
over the crystal's atoms, so a readout vector is a weighted mean and replicating every atom of the
cell the same number of times leaves it unchanged too.
"""

from __future__ import annotations

import math
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import cast

import torch
from torch import Tensor, nn
from torch.nn import functional as F  # noqa: N812
from torch_geometric.nn import MessagePassing, global_mean_pool
from torch_geometric.nn.aggr import Set2Set
from typing_extensions import override

__all__ = [
    "CGCNN",
    "MASK_TOKEN",
    "READOUTS",
    "SET2SET_STEPS",
    "CGCNNConfig",
    "GatedConv",
    "RadialBasis",
    "build_cgcnn",
    "config_from_dict",
]

MASK_TOKEN = 0  # row 0 of the element table is never a real element: pretext tasks mask with it
READOUTS: tuple[str, ...] = ("mean", "set2set")
SET2SET_STEPS = 3  # LSTM processing steps of the Set2Set readout (MEGNet's choice)


@dataclass(frozen=True)
class CGCNNConfig:
    """Architecture of :class:`CGCNN`; stored in every checkpoint.

    Attributes:
        hidden: Width of atom features.
        out_dim: Length of the crystal embedding.
        n_layers: Number of gated convolutions.
        n_rbf: Gaussians in the distance expansion.
        cutoff: Neighbour cutoff in Å (graphs are built with it, no neighbour cap).
        max_z: Largest atomic number in the element table.
        avg_neighbors: Constant that divides summed messages (keeps scales O(1), size-invariant).
        readout: How atom features become one crystal vector, one of :data:`READOUTS`.
    """

    hidden: int = 128
    out_dim: int = 128
    n_layers: int = 3
    n_rbf: int = 40
    cutoff: float = 6.0
    max_z: int = 100
    avg_neighbors: float = 32.0
    readout: str = "mean"

    def __post_init__(self) -> None:
        for name in ("hidden", "out_dim", "n_layers", "n_rbf", "max_z"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"CGCNNConfig.{name} must be a positive integer, got {value!r}.")
        if not self.cutoff > 0 or not self.avg_neighbors > 0:
            raise ValueError("CGCNNConfig.cutoff and avg_neighbors must be positive.")
        if self.readout not in READOUTS:
            raise ValueError(f"CGCNNConfig.readout must be one of {', '.join(READOUTS)}, got {self.readout!r}.")


class RadialBasis(nn.Module):
    """Gaussians on [0, cutoff] times a cosine envelope that reaches 0 (with zero slope) at cutoff."""

    centers: Tensor  # a registered buffer

    def __init__(self, *, n_rbf: int, cutoff: float) -> None:
        super().__init__()
        self.cutoff = float(cutoff)
        centers = torch.linspace(0.0, self.cutoff, n_rbf)
        self.register_buffer("centers", centers, persistent=False)
        self.gamma = 1.0 / float(centers[1] - centers[0]) ** 2 if n_rbf > 1 else 1.0

    def envelope(self, distance: Tensor) -> Tensor:
        """Smooth cutoff weight in [0, 1]."""
        inside = (distance < self.cutoff).to(distance.dtype)
        return 0.5 * (torch.cos(distance * (math.pi / self.cutoff)) + 1.0) * inside

    def forward(self, distance: Tensor) -> Tensor:
        """Expand ``distance [E]`` into ``[E, n_rbf]``."""
        return torch.exp(-self.gamma * (distance[:, None] - self.centers) ** 2)


def _drop_generated_source(cls: type) -> None:
    """Delete the ``<module>_<Class>_propagate_*.py`` file torch-geometric wrote for ``cls``.

    PyG renders its ``propagate`` template into the system temp folder with ``delete=False`` and
    imports it once per process (``torch_geometric.template.module_from_template``); the loaded
    module no longer needs the file, which would otherwise stay behind after every process.
    """
    for suffix in ("_propagate", "_edge_updater"):
        source = getattr(sys.modules.get(f"{cls.__module__}_{cls.__name__}{suffix}"), "__file__", None)
        if source and Path(source).parent == Path(tempfile.gettempdir()):
            Path(source).unlink(missing_ok=True)


class GatedConv(MessagePassing):
    """``x_i <- LayerNorm(x_i + sum_j w(d_ij) sigmoid(W_f z_ij) * softplus(W_s z_ij) / k)``.

    ``z_ij = [x_i, x_j, rbf(d_ij)]``, ``w`` the cosine envelope, ``k`` a constant. The linear
    map of the concatenation is split into centre, neighbour and edge parts (same function,
    the atom parts computed once per atom instead of once per edge: ~5x fewer FLOPs).
    Edges follow crystalrep.graphs: row 0 is the centre ``i``, row 1 the neighbour ``j``.
    """

    def __init__(self, *, channels: int, edge_dim: int, avg_neighbors: float) -> None:
        super().__init__(aggr="add", flow="target_to_source")
        _drop_generated_source(type(self))
        self.channels = channels
        self.edge_dim = edge_dim
        self.scale = 1.0 / float(avg_neighbors)
        self.lin_centre = nn.Linear(channels, 2 * channels)
        self.lin_neighbor = nn.Linear(channels, 2 * channels, bias=False)
        self.lin_edge = nn.Linear(edge_dim, 2 * channels, bias=False)
        self.norm = nn.LayerNorm(channels)

    def reset_parameters(self) -> None:
        """Re-initialise weights."""
        for module in (self.lin_centre, self.lin_neighbor, self.lin_edge, self.norm):
            module.reset_parameters()

    def forward(self, x: Tensor, edge_index: Tensor, edge_attr: Tensor, weight: Tensor) -> Tensor:
        """Update atom features ``x [N, channels]``."""
        if torch.is_inference_mode_enabled():
            return self.norm(x + self.scale * self._summed_messages(x, edge_index, edge_attr, weight))
        summed = self.propagate(
            edge_index, centre=self.lin_centre(x), neighbor=self.lin_neighbor(x),
            edge=self.lin_edge(edge_attr), weight=weight, size=(x.shape[0], x.shape[0]),
        )
        return self.norm(x + self.scale * summed)

    @override
    def message(self, centre_i: Tensor, neighbor_j: Tensor, edge: Tensor, weight: Tensor) -> Tensor:
        gate, core = (centre_i + neighbor_j + edge).chunk(2, dim=-1)
        return weight[:, None] * torch.sigmoid(gate) * F.softplus(core)

    def _summed_messages(self, x: Tensor, edge_index: Tensor, edge_attr: Tensor, weight: Tensor) -> Tensor:
        """``propagate``'s sum for inference: the same operations in the same order, in place.

        Per-edge tensors are written over instead of allocated anew (half the memory traffic of
        the message step, which dominates embedding); autograd forbids this, so training keeps
        ``propagate``. A test checks the two agree to the bit.
        """
        centre, neighbor = edge_index
        hidden = self.lin_centre(x).index_select(0, centre).add_(self.lin_neighbor(x).index_select(0, neighbor))
        gate, core = hidden.add_(self.lin_edge(edge_attr)).chunk(2, dim=-1)
        messages = torch.sigmoid(gate).mul_(weight[:, None]).mul_(F.softplus(core))
        return messages.new_zeros(x.shape[0], self.channels).index_add_(0, centre, messages)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.channels}, edge_dim={self.edge_dim})"


class CGCNN(nn.Module):
    """Crystal graph encoder: ``forward(batch) -> Tensor[n_crystals, out_dim]``.

    Args:
        config: Architecture; see :class:`CGCNNConfig`.
    """

    def __init__(self, config: CGCNNConfig | None = None) -> None:
        super().__init__()
        self.config = config or CGCNNConfig()
        cfg = self.config
        self.embedding = nn.Embedding(cfg.max_z + 1, cfg.hidden)
        self.rbf = RadialBasis(n_rbf=cfg.n_rbf, cutoff=cfg.cutoff)
        self.convs = nn.ModuleList(
            GatedConv(channels=cfg.hidden, edge_dim=cfg.n_rbf, avg_neighbors=cfg.avg_neighbors)
            for _ in range(cfg.n_layers)
        )
        # built after the convolutions, so a seed gives the same convolution weights for every readout
        self.set2set = Set2Set(cfg.hidden, SET2SET_STEPS) if cfg.readout == "set2set" else None
        self.head = nn.Linear(2 * cfg.hidden if self.set2set is not None else cfg.hidden, cfg.out_dim)

    def reset_parameters(self) -> None:
        """Re-initialise every weight (uses torch's global RNG; seed it first)."""
        self.embedding.reset_parameters()
        for conv in self.convs:
            cast(GatedConv, conv).reset_parameters()
        if self.set2set is not None:
            self.set2set.reset_parameters()
        self.head.reset_parameters()

    def encode_nodes(self, batch) -> Tensor:  # noqa: ANN001 - torch_geometric Batch or Data
        """Per-atom features ``[n_atoms, hidden]`` after the last convolution."""
        z = batch.z.long()
        if z.numel() and int(z.max()) > self.config.max_z:
            raise ValueError(f"Atomic numbers above {self.config.max_z} are not supported.")
        distance = batch.distance.to(self.embedding.weight.dtype)
        edge_attr = self.rbf(distance)
        weight = self.rbf.envelope(distance)
        x = self.embedding(z)
        for conv in self.convs:
            x = conv(x, batch.edge_index, edge_attr, weight)
        return x

    def forward(self, batch) -> Tensor:  # noqa: ANN001 - torch_geometric Batch or Data
        """Crystal embeddings ``[n_crystals, out_dim]`` (the readout over atoms, then the head)."""
        x = self.encode_nodes(batch)
        index = getattr(batch, "batch", None)
        if index is None:
            index = torch.zeros(x.shape[0], dtype=torch.long, device=x.device)
        n_crystals = int(getattr(batch, "num_graphs", 0) or (int(index.max()) + 1 if index.numel() else 0))
        return self.readout(x, index, n_crystals)

    def readout(self, x: Tensor, index: Tensor, n_crystals: int) -> Tensor:
        """Crystal embeddings from atom features ``x`` whose crystal is ``index`` (pooling, then the head)."""
        if self.set2set is None:
            return self.head(global_mean_pool(x, index, size=n_crystals))
        return self.head(self.set2set(x, index, dim_size=n_crystals))

    def __repr__(self) -> str:
        cfg = self.config
        return (
            f"{type(self).__name__}(hidden={cfg.hidden}, out_dim={cfg.out_dim}, "
            f"layers={cfg.n_layers}, rbf={cfg.n_rbf}, cutoff={cfg.cutoff}, readout={cfg.readout})"
        )


def build_cgcnn(config: CGCNNConfig | None = None, *, seed: int | None = 0) -> CGCNN:
    """Build a CGCNN whose initial weights depend only on ``seed`` (global RNG left untouched).

    Args:
        config: Architecture.
        seed: Initialisation seed; ``None`` draws from torch's global RNG.

    Returns:
        The model in eval mode, on CPU.
    """
    if seed is None:
        return CGCNN(config).eval()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = CGCNN(config)
    return model.eval()


def config_from_dict(data: dict) -> CGCNNConfig:
    """Rebuild a config saved with a checkpoint (unknown keys raise ValueError)."""
    known = set(asdict(CGCNNConfig()))
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"Unknown CGCNN config keys {unknown}; expected a subset of {sorted(known)}.")
    return CGCNNConfig(**data)
