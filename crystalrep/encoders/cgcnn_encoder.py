"""The CGCNN model as an :class:`~crystalrep.encoders.base.Encoder`: random-init or a checkpoint."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from typing_extensions import override

from crystalrep.encoders.base import Encoder, Progress, batch_ranges, state_dict_sha256

if TYPE_CHECKING:
    from pymatgen.core import Structure
    from torch_geometric.data import Data

    from crystalrep.datasets import Dataset
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


class CGCNNEncoder(Encoder):
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
        import torch
        from torch_geometric.data import Batch

        from crystalrep.device import resolve_device

        get = graphs if callable(graphs) else graphs.__getitem__
        if n is not None:
            total = n
        elif callable(graphs):
            raise TypeError("embed_graphs needs n when graphs is a callable.")
        else:
            total = len(graphs)
        torch_device = resolve_device(device)
        self.model.to(torch_device)
        out = np.empty((total, self.dim), dtype=np.float32)
        with torch.inference_mode():
            for start, stop in batch_ranges(total, batch_size):
                batch = Batch.from_data_list([get(i) for i in range(start, stop)]).to(torch_device)
                out[start:stop] = self.model(batch).float().cpu().numpy()
                if progress is not None:
                    progress(stop, total)
        self.last_run_info = {"device": str(torch_device)}
        return out

    @override
    def embed_structures(
        self,
        structures: Sequence[Structure],
        *,
        device: str = "auto",
        batch_size: int = 64,
        progress: Progress | None = None,
    ) -> np.ndarray:
        from crystalrep.graphs import structure_to_graph

        cfg = self.graph_config()
        return self.embed_graphs(
            lambda i: structure_to_graph(structures[i], config=cfg), len(structures),
            device=device, batch_size=batch_size, progress=progress,
        )

    @override
    def embed_dataset(
        self,
        dataset: Dataset,
        *,
        device: str = "auto",
        batch_size: int = 64,
        progress: Progress | None = None,
    ) -> np.ndarray:
        from crystalrep.graphs import arrays_to_graph

        cfg = self.graph_config()
        return self.embed_graphs(
            lambda i: arrays_to_graph(*dataset.arrays(i), config=cfg), len(dataset),
            device=device, batch_size=batch_size, progress=progress,
        )
