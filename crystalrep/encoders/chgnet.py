"""Frozen CHGNet 0.3.0 crystal features, read from the weights inside the chgnet wheel."""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
from collections.abc import Sequence
from importlib.metadata import version as package_version
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from typing_extensions import override

from crystalrep.encoders.base import ArrayEncoder

if TYPE_CHECKING:
    from chgnet.model import CHGNet
    from torch import Tensor

    from crystalrep.encoders.chgnet_graph import GraphBatch

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


class CHGNetEncoder(ArrayEncoder):
    """CHGNet's ``crystal_fea`` divided by the atom count (energy-only, no gradients).

    Graphs are CHGNet's (6 Å atom graph, 3 Å bond graph, built with vesin by
    :mod:`crystalrep.encoders.chgnet_graph`), so the vector is what the pretrained model sees;
    forces, stresses and magnetic moments are never computed.
    """

    name = "chgnet"
    version = "1"
    uses_torch: ClassVar[bool] = True
    max_z: ClassVar[int | None] = MAX_Z
    atoms_per_batch: ClassVar[int | None] = 64  # measured: passes of ~64 atoms beat 320 (batch 64) by 1.5x
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
    def _prepare(self, device: Any) -> dict[str, Any]:
        return {"model": self.load(str(device)), "device": device}

    @override
    def _embed_batch(self, cells: list[Any], first: int, state: dict[str, Any]) -> Tensor:
        from crystalrep.encoders.chgnet_graph import IsolatedAtomError, batch_graph
        from crystalrep.graphs.errors import CellError

        try:
            graphs = batch_graph(cells)
        except IsolatedAtomError as exc:
            raise ValueError(f"CHGNet cannot embed structure {first + exc.crystal}: {exc}") from exc
        except CellError as exc:
            raise ValueError(f"CHGNet cannot embed structure {first + exc.cell}: {exc.reason}") from exc
        except ValueError as exc:
            raise ValueError(f"CHGNet cannot embed structures {first}-{first + len(cells) - 1}: {exc}") from exc
        return mean_atom_features(state["model"], graphs, device=state["device"])


def _gated(mlp: Any, parts: Sequence[tuple[Tensor, Tensor | None]]) -> Tensor:
    """A CHGNet ``GatedMLP`` of ``cat([x[index] for x, index in parts], dim=1)``, concatenation never built.

    The first linear map of the concatenation is the sum of one map per part: each part is mapped
    where it lives (per atom, per bond) and only then gathered to the rows (edges, angles), which
    is the same function with a fraction of the multiplications.
    """
    import torch
    from torch import nn

    core, gate = list(mlp.mlp_core.layers), list(mlp.mlp_gate.layers)
    k = next(n for n, layer in enumerate(core) if isinstance(layer, nn.Linear))
    weight = torch.cat([core[k].weight, gate[k].weight])  # [2 * out, in]: core and gate in one product
    hidden, col = None, 0
    for x, index in parts:
        part = x @ weight[:, col:col + x.shape[1]].T
        part = part if index is None else part.index_select(0, index)
        hidden = part if hidden is None else hidden.add_(part)
        col += x.shape[1]
    if hidden is None or col != weight.shape[1]:
        raise RuntimeError(f"Unexpected CHGNet layer: the parts cover {col} of {weight.shape[1]} inputs.")
    hidden = hidden.add_(torch.cat([core[k].bias, gate[k].bias]))
    h_core, h_gate = hidden.split(core[k].out_features, dim=1)
    for layer in core[k + 1:]:
        h_core = layer(h_core)
    for layer in gate[k + 1:]:
        h_gate = layer(h_gate)
    if mlp.norm is not None:
        h_core, h_gate = mlp.bn1(h_core), mlp.bn2(h_gate)
    return mlp.activation(h_core) * mlp.sigmoid(h_gate)


def _finish(layer: Any, new: Tensor, old: Tensor, norm: Any) -> Tensor:
    """A conv layer's tail: output MLP, residual, normalisation (whichever the layer has)."""
    if getattr(layer, "use_mlp_out", False):
        new = layer.mlp_out(new)
    if layer.resnet:
        new = new + old
    return norm(new) if norm is not None else new


def _keeps_idle_bonds(layer: Any, bond_feas: Tensor) -> bool:
    """Whether a bond conv leaves a bond that no angle updates unchanged (residual, no norm, zero kept zero)."""
    if not layer.resnet or layer.bond_norm is not None:
        return False
    zero = bond_feas.new_zeros(1, bond_feas.shape[1])
    return not getattr(layer, "use_mlp_out", False) or not bool(layer.mlp_out(zero).any())


def _sum_rows(rows: Tensor, owner: Tensor, n: int) -> Tensor:
    return rows.new_zeros(n, rows.shape[1]).index_add_(0, owner, rows)


def mean_atom_features(model: CHGNet, g: GraphBatch, *, device: Any = "cpu") -> Tensor:
    """``crystal_fea / n_atoms`` of every crystal in ``g``: CHGNet's energy pass up to the pooled atoms.

    Mirrors ``CHGNet._compute`` (chgnet 0.3/0.4) on the whole batch at once, minus the work a
    crystal feature never uses (energy MLP, composition model, the angle update after the last
    bond update), with each layer's gated MLP evaluated by :func:`_gated`. Atom-graph edges whose
    messages agree in every layer (:func:`~crystalrep.encoders.chgnet_graph.repeated_edges`) are
    computed once and weighted by their number; bonds that no angle updates are left as they are.
    """
    import torch

    from crystalrep.encoders.chgnet_graph import repeated_edges

    def t(a: np.ndarray, dtype: torch.dtype) -> Tensor:
        return torch.from_numpy(np.ascontiguousarray(a)).to(device=device, dtype=dtype)

    atom_graph, d2u = t(g.atom_graph, torch.long), t(g.directed2undirected, torch.long)
    angles = t(g.bond_graph, torch.long)
    centre, nbr, bond_i, bond_j = atom_graph[:, 0], atom_graph[:, 1], angles[:, 1], angles[:, 3]
    # positions and bond vectors in float32 from fractional coordinates, as CHGNet computes them
    # (vesin's float64 vectors would be more exact, and move the features by ~1e-5)
    lattices = t(g.lattices, torch.float32)
    atom_owner = t(np.repeat(np.arange(len(g.atoms)), g.atoms), torch.long)
    cart = torch.bmm(t(g.frac, torch.float32)[:, None, :], lattices.index_select(0, atom_owner)).squeeze(1)
    offsets = torch.bmm(t(g.image, torch.float32)[:, None, :], lattices.index_select(0, atom_owner.index_select(0, centre)))
    vectors = cart.index_select(0, centre) - (cart.index_select(0, nbr) + offsets.squeeze(1))
    lengths = torch.norm(vectors, dim=1)
    unit = vectors / lengths[:, None]
    bond_lengths = lengths.index_select(0, t(g.undirected2directed, torch.long))
    expansion = model.bond_basis_expansion
    bases_ag, bases_bg = expansion.rbf_expansion_ag(bond_lengths), expansion.rbf_expansion_bg(bond_lengths)
    n_atoms, n_bonds = len(g.numbers), len(bond_lengths)
    # angles join bonds up to the bond cutoff only: their features are projected, not all bonds'
    short, pairs = np.unique(g.bond_graph[:, [1, 3]], return_inverse=True)
    short_t, pairs_t = t(short, torch.long), t(pairs.reshape(-1, 2), torch.long)
    # each group of edges with identical messages is computed once, weighted by its size
    updated = np.zeros(n_bonds, dtype=bool)
    updated[short] = True
    lengths_np = bond_lengths.cpu().numpy()
    first, count = repeated_edges(g.atom_graph, g.directed2undirected, lengths_np, updated)
    first_t = t(first, torch.long)
    centre, nbr, bond = centre.index_select(0, first_t), nbr.index_select(0, first_t), d2u.index_select(0, first_t)
    # bonds no angle updates are alike when their lengths are: project one bond per length
    same = np.unique(np.where(updated, -1 - np.arange(n_bonds), lengths_np.view(np.int32)), return_index=True,
                     return_inverse=True)
    projected, bond_row = np.unique(same[1][same[2].reshape(-1)][g.directed2undirected[first]], return_inverse=True)
    projected_t, bond_row_t = t(projected, torch.long), t(bond_row.reshape(-1), torch.long)

    atom_feas = model.atom_embedding(t(g.numbers, torch.long) - 1)  # row 0 is hydrogen
    bond_feas = model.bond_embedding(bases_ag)
    weights_ag = model.bond_weights_ag(bases_ag).index_select(0, bond).mul_(t(count, torch.float32)[:, None])
    weights_bg = model.bond_weights_bg(bases_bg)
    weights_angle = weights_bg.index_select(0, bond_i) * weights_bg.index_select(0, bond_j)
    has_angles = len(angles) != 0
    angle_feas = model.angle_embedding(model.angle_basis_expansion(
        unit.index_select(0, angles[:, 2]), unit.index_select(0, angles[:, 4]))) if has_angles else None

    def atom_conv(layer: Any, atom_feas: Tensor, bond_feas: Tensor) -> Tensor:
        bonds = bond_feas.index_select(0, projected_t)
        messages = _gated(layer.twoBody_atom, [(atom_feas, centre), (bonds, bond_row_t), (atom_feas, nbr)])
        new = _sum_rows(messages * weights_ag, centre, n_atoms)
        return _finish(layer, new, atom_feas, layer.atom_norm)

    def angle_parts(atom_feas: Tensor, bond_feas: Tensor, angle_feas: Tensor) -> list:
        bonds = bond_feas.index_select(0, short_t)
        return [(bonds, pairs_t[:, 0]), (bonds, pairs_t[:, 1]), (angle_feas, None), (atom_feas, angles[:, 0])]

    layers = list(zip(model.atom_conv_layers[:-1], model.bond_conv_layers, model.angle_layers, strict=False))
    for idx, (atom_layer, bond_layer, angle_layer) in enumerate(layers):
        atom_feas = atom_conv(atom_layer, atom_feas, bond_feas)
        if angle_feas is not None and bond_layer is not None:
            update = _gated(bond_layer.twoBody_bond, angle_parts(atom_feas, bond_feas, angle_feas))
            if _keeps_idle_bonds(bond_layer, bond_feas):
                new_bonds = _sum_rows(update * weights_angle, pairs_t[:, 0], len(short))
                bond_feas = bond_feas.index_copy(0, short_t, _finish(
                    bond_layer, new_bonds, bond_feas.index_select(0, short_t), None))
            else:
                new_bonds = _sum_rows(update * weights_angle, bond_i, n_bonds)
                bond_feas = _finish(bond_layer, new_bonds, bond_feas, bond_layer.bond_norm)
            if angle_layer is not None and idx < len(layers) - 1:
                new_angles = _gated(angle_layer.twoBody_bond, angle_parts(atom_feas, bond_feas, angle_feas))
                angle_feas = _finish(angle_layer, new_angles, angle_feas, angle_layer.angle_norm)
    atom_feas = atom_conv(model.atom_conv_layers[-1], atom_feas, bond_feas)
    if model.readout_norm is not None:
        atom_feas = model.readout_norm(atom_feas)
    summed = _sum_rows(atom_feas, atom_owner, len(g.atoms))  # CHGNet's crystal_fea: a sum over atoms
    return summed / t(g.atoms, summed.dtype)[:, None]
