"""Frozen CHGNet 0.3.0 crystal features, read from the weights inside the chgnet wheel."""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
from collections.abc import Callable, Sequence
from importlib.metadata import version as package_version
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from typing_extensions import override

from crystalrep.encoders.base import Encoder, Progress, batch_ranges

if TYPE_CHECKING:
    from chgnet.model import CHGNet
    from pymatgen.core import Structure
    from torch import Tensor

    from crystalrep.datasets import Dataset

Arrays = tuple[np.ndarray, np.ndarray, np.ndarray]

__all__ = ["CHGNetEncoder"]

logger = logging.getLogger(__name__)

MODEL_NAME = "0.3.0"
DIM = 64
MAX_Z = 94


def weights_file(model_name: str = MODEL_NAME) -> Path:
    """The pretrained CHGNet weights shipped in the installed chgnet wheel."""
    import chgnet

    folder = Path(chgnet.__file__).parent / "pretrained" / model_name
    files = sorted(folder.glob("*.pth.tar"))
    if len(files) != 1:
        raise FileNotFoundError(f"Expected one CHGNet {model_name} weights file in {folder}.")
    return files[0]


class CHGNetEncoder(Encoder):
    """CHGNet's ``crystal_fea`` divided by the atom count (energy-only, no gradients).

    Graphs are CHGNet's (6 Å atom graph, 3 Å bond graph, built with vesin by
    :mod:`crystalrep.encoders.chgnet_graph`), so the vector is what the pretrained model sees;
    forces, stresses and magnetic moments are never computed.
    """

    name = "chgnet"
    version = "1"
    uses_torch: ClassVar[bool] = True
    description = (
        "Frozen CHGNet 0.3.0 (Deng et al. 2023; weights from the chgnet wheel, no download): the "
        "64-d crystal feature after the last atom convolution. CHGNet's crystal_fea is a SUM over "
        "atoms (a 2x2x2 supercell multiplies it by 8), so it is divided by the number of atoms "
        "here: the embedding is the mean atom feature and does not depend on the cell chosen. "
        "Energy-only forward pass under inference mode (no forces, stresses or magmoms)."
    )

    def __init__(self, *, model_name: str = MODEL_NAME) -> None:
        super().__init__()
        self.model_name = model_name
        self._model: CHGNet | None = None
        self._sha256: str | None = None

    @property
    @override
    def dim(self) -> int:
        return DIM

    @property
    @override
    def config(self) -> dict[str, Any]:
        return {"model": self.model_name, "pooling": "sum/n_atoms", "task": "e"}

    @override
    def weights_sha256(self) -> str:
        if self._sha256 is None:
            self._sha256 = hashlib.sha256(weights_file(self.model_name).read_bytes()).hexdigest()
        return self._sha256

    @override
    def code_versions(self) -> dict[str, str]:
        return {"encoder": self.version, "chgnet": package_version("chgnet")}

    def load(self, device: str = "cpu") -> CHGNet:
        """Load (once) and return the frozen model on ``device``."""
        from chgnet.model import CHGNet

        if self._model is None:
            # CHGNet prints its parameter count on construction; keep library output in logs.
            with contextlib.redirect_stdout(io.StringIO()) as captured:
                model = CHGNet.load(model_name=self.model_name, use_device="cpu", verbose=False)
            logger.info("%s", captured.getvalue().strip())
            for param in model.parameters():
                param.requires_grad_(False)
            self._model = model.eval()
        return self._model.to(device)

    @override
    def embed_structures(
        self,
        structures: Sequence[Structure],
        *,
        device: str = "auto",
        batch_size: int = 64,
        progress: Progress | None = None,
    ) -> np.ndarray:
        return self._embed(lambda i: _arrays(structures[i]), len(structures), device, batch_size, progress)

    @override
    def embed_dataset(
        self,
        dataset: Dataset,
        *,
        device: str = "auto",
        batch_size: int = 64,
        progress: Progress | None = None,
    ) -> np.ndarray:
        return self._embed(dataset.arrays, len(dataset), device, batch_size, progress)

    def _embed(
        self, get: Callable[[int], Arrays], n: int, device: str, batch_size: int, progress: Progress | None
    ) -> np.ndarray:
        import torch

        from crystalrep.device import resolve_device
        from crystalrep.encoders.chgnet_graph import build_crystal_graph

        torch_device = resolve_device(device)
        model = self.load(str(torch_device))
        out = np.empty((n, DIM), dtype=np.float32)
        for start, stop in batch_ranges(n, batch_size):
            graphs = []
            for i in range(start, stop):
                lattice, numbers, frac = get(i)
                if numbers.max(initial=0) > MAX_Z:
                    raise ValueError(f"CHGNet covers elements up to Z={MAX_Z}; structure {i} has heavier ones.")
                try:
                    graphs.append(build_crystal_graph(lattice, numbers, frac).to(str(torch_device)))
                except ValueError as exc:
                    raise ValueError(f"CHGNet cannot embed structure {i}: {exc}") from exc
            with torch.inference_mode():
                out[start:stop] = mean_atom_features(model, graphs).float().cpu().numpy()
            if progress is not None:
                progress(stop, n)
        self.last_run_info = {"device": str(torch_device)}
        return out


def _arrays(structure: Structure) -> Arrays:
    return structure.lattice.matrix, np.asarray(structure.atomic_numbers), structure.frac_coords


def mean_atom_features(model: CHGNet, graphs: Sequence[Any]) -> Tensor:
    """``crystal_fea / n_atoms``: CHGNet's energy pass up to the pooled atom features.

    Mirrors ``CHGNet._compute`` (chgnet 0.3/0.4) minus the work a crystal feature never uses:
    the energy MLP, the composition model and the angle update after the last bond update.
    """
    import torch
    from chgnet.model.model import BatchedGraph

    g = BatchedGraph.from_graphs(
        graphs, bond_basis_expansion=model.bond_basis_expansion,
        angle_basis_expansion=model.angle_basis_expansion, compute_stress=False,
    )
    atom_feas = model.atom_embedding(g.atomic_numbers - 1)  # row 0 is hydrogen
    bond_feas = model.bond_embedding(g.bond_bases_ag)
    weights_ag = model.bond_weights_ag(g.bond_bases_ag)
    weights_bg = model.bond_weights_bg(g.bond_bases_bg)
    has_angles = len(g.angle_bases) != 0
    angle_feas = model.angle_embedding(g.angle_bases) if has_angles else None
    atom_kw = {"atom_graph": g.batched_atom_graph, "directed2undirected": g.directed2undirected}
    layers = list(zip(model.atom_conv_layers[:-1], model.bond_conv_layers, model.angle_layers, strict=False))
    for idx, (atom_layer, bond_layer, angle_layer) in enumerate(layers):
        atom_feas = atom_layer(atom_feas=atom_feas, bond_feas=bond_feas, bond_weights=weights_ag, **atom_kw)
        if has_angles and bond_layer is not None:
            bond_feas = bond_layer(atom_feas=atom_feas, bond_feas=bond_feas, bond_weights=weights_bg,
                                   angle_feas=angle_feas, bond_graph=g.batched_bond_graph)
            if angle_layer is not None and idx < len(layers) - 1:
                angle_feas = angle_layer(atom_feas=atom_feas, bond_feas=bond_feas, angle_feas=angle_feas,
                                         bond_graph=g.batched_bond_graph)
    atom_feas = model.atom_conv_layers[-1](atom_feas=atom_feas, bond_feas=bond_feas, bond_weights=weights_ag, **atom_kw)
    if model.readout_norm is not None:
        atom_feas = model.readout_norm(atom_feas)
    summed = model.pooling(atom_feas, g.atom_owners)  # CHGNet's crystal_fea: a sum over atoms
    return summed / torch.bincount(g.atom_owners)[:, None].to(summed.dtype)
