"""The CGCNN model as an :class:`~crystalrep.encoders.base.Encoder`: random-init or a checkpoint."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from typing_extensions import override

from crystalrep.encoders.base import ArrayEncoder, Progress, state_dict_sha256

if TYPE_CHECKING:
    from torch import Tensor
    from torch_geometric.data import Data

    from crystalrep.encoders.cgcnn import CGCNN

__all__ = ["CHECKPOINT_KIND", "CGCNNEncoder"]

CHECKPOINT_KIND = "cgcnn"

_RANDOM_DESCRIPTION = (
    "CGCNN-style gated graph convolution (Xie & Grossman 2018), randomly initialised with seed "
    "{seed} and never trained: the random-init baseline. Element embedding, Gaussian distance "
    "expansion under a cosine cutoff at {cutoff} Å (all neighbours, no cap), {layers} gated "
    "convolutions with residuals and LayerNorm, {pooling} over atoms, {dim}-d linear head."
)
_CKPT_DESCRIPTION = (
    "CGCNN-style encoder loaded from checkpoint {ckpt} (kind 'cgcnn'); {meta}. Same architecture "
    "as cgcnn-random: cosine cutoff at {cutoff} Å, {layers} gated convolutions, {pooling}, "
    "{dim}-d output."
)
_POOLING = {"mean": "mean pooling", "set2set": "a Set2Set readout (softmax attention, 3 steps)"}


class CGCNNEncoder(ArrayEncoder):
    """Embeds crystals with a :class:`~crystalrep.encoders.cgcnn.CGCNN` model.

    Args:
        model: The network (its ``config`` sets the graph cutoff).
        name: Registry id, e.g. ``"cgcnn-random"`` or ``"cgcnn@<checkpoint-id>"``.
        description: Text shown to users.
        weights_sha256: Hash of the weights' source (checkpoint file); computed from the
            state dict when ``None``.
    """

    version = "1"
    uses_torch: ClassVar[bool] = True
    atoms_per_batch: ClassVar[int | None] = 64

    def __init__(
        self, model: CGCNN, *, name: str, description: str, weights_sha256: str | None = None
    ) -> None:
        super().__init__()
        self.model = model.eval()
        self.name = name
        self.description = description
        self._weights_sha256 = weights_sha256
        self.seed: int | None = None
        self.checkpoint_meta: dict[str, Any] = {}

    @classmethod
    def random(cls, *, seed: int = 0, **config: Any) -> CGCNNEncoder:
        """The untrained model at a fixed seed (``cgcnn-random``), optionally with config overrides."""
        from crystalrep.encoders.cgcnn import CGCNNConfig, build_cgcnn

        cfg = CGCNNConfig(**config)
        name = "cgcnn-random" if seed == 0 and not config else f"cgcnn-random-s{seed}"
        if cfg.readout != "mean":
            name = f"cgcnn-{cfg.readout}-random-s{seed}"
        text = _RANDOM_DESCRIPTION.format(
            seed=seed, cutoff=cfg.cutoff, layers=cfg.n_layers, dim=cfg.out_dim, pooling=_POOLING[cfg.readout]
        )
        encoder = cls(build_cgcnn(cfg, seed=seed), name=name, description=text)
        encoder.seed = seed
        return encoder

    @classmethod
    def from_checkpoint(cls, path: str | Path) -> CGCNNEncoder:
        """Load a ``kind="cgcnn"`` checkpoint strictly (missing or extra weights raise).

        Raises:
            CheckpointError: If the file is not a readable CGCNN checkpoint.
        """
        from crystalrep.checkpoint import CheckpointError, load_checkpoint
        from crystalrep.encoders.cgcnn import CGCNN, config_from_dict

        ckpt = load_checkpoint(path, kind=CHECKPOINT_KIND)
        try:
            model = CGCNN(config_from_dict(ckpt.config))
            model.load_state_dict(ckpt.state_dict, strict=True)
        except (ValueError, TypeError, RuntimeError) as exc:
            raise CheckpointError(f"Checkpoint {path} does not fit the CGCNN model: {exc}") from exc
        meta = ", ".join(f"{k}={ckpt.meta[k]}" for k in ("task", "epochs", "dataset") if k in ckpt.meta)
        cfg = model.config
        text = _CKPT_DESCRIPTION.format(
            ckpt=ckpt.id, meta=meta or "no training metadata", cutoff=cfg.cutoff,
            layers=cfg.n_layers, dim=cfg.out_dim, pooling=_POOLING[cfg.readout],
        )
        encoder = cls(model, name=f"cgcnn@{ckpt.id}", description=text, weights_sha256=ckpt.sha256)
        encoder.checkpoint_meta = ckpt.meta
        return encoder

    @property
    @override
    def dim(self) -> int:
        return int(self.model.config.out_dim)

    @property
    @override
    def config(self) -> dict[str, Any]:
        from dataclasses import asdict

        model = asdict(self.model.config)
        if model["readout"] == "mean":  # absent for mean pooling: keys made before the option stay valid
            del model["readout"]
        return {"model": model, "graph": {"cutoff": self.model.config.cutoff, "max_neighbors": None}}

    @override
    def weights_sha256(self) -> str:
        if self._weights_sha256 is None:
            self._weights_sha256 = state_dict_sha256(self.model.state_dict())
        return self._weights_sha256

    @override
    def code_versions(self) -> dict[str, str]:
        return {"encoder": self.version, "graphs": "1"}

    def graph_config(self) -> Any:
        """The :class:`crystalrep.graphs.GraphConfig` this model expects (no neighbour cap)."""
        from crystalrep.graphs import GraphConfig

        return GraphConfig(cutoff=self.model.config.cutoff, max_neighbors=None)

    def embed_graphs(
        self,
        graphs: Sequence[Data] | Callable[[int], Data],
        n: int | None = None,
        *,
        device: str = "auto",
        batch_size: int = 64,
        progress: Progress | None = None,
    ) -> np.ndarray:
        """Embed prebuilt graphs, or graphs built on the fly by ``graphs(i)`` for ``i < n``.

        Returns:
            float32 array ``[n, dim]``.
        """
        if callable(graphs):
            if n is None:
                raise TypeError("embed_graphs needs n when graphs is a callable.")
            sizes: Any = np.zeros(n, dtype=np.int64)  # unknown until built: batches of batch_size
            get = graphs
        else:
            sizes, get = [g.num_nodes for g in graphs[:n]], graphs.__getitem__
        return self.embed_arrays(get, sizes, device=device, batch_size=batch_size, progress=progress)

    @override
    def _prepare(self, device: Any) -> Any:
        self.model.to(device)
        return device

    @override
    def _embed_batch(self, cells: list[Any], first: int, state: Any) -> Tensor:
        """One pass of :func:`~crystalrep.encoders.cgcnn_inference.embed_compact` over the batch's graph."""
        import torch
        from torch_geometric.data import Batch, Data

        from crystalrep.encoders.cgcnn_inference import embed_compact
        from crystalrep.graphs import batch_edges
        from crystalrep.graphs.errors import CellError

        if isinstance(cells[0], Data):
            batch = Batch.from_data_list(cells)
            z, edge_index, distance, index = batch.z, batch.edge_index, batch.distance, batch.batch
        else:  # the arrays arrays_to_batch would wrap, without the fields the model never reads
            try:
                eb = batch_edges(cells, config=self.graph_config())
            except CellError as exc:
                raise ValueError(f"structure {first + exc.cell}: {exc.reason}") from exc
            z, edge_index = torch.from_numpy(eb.z), torch.from_numpy(eb.index)
            distance = torch.from_numpy(eb.dist.astype(np.float32))
            index = torch.from_numpy(np.repeat(np.arange(len(cells)), eb.atoms))
        return embed_compact(self.model, z.to(state), edge_index.to(state), distance.to(state), index.to(state),
                             len(cells))
