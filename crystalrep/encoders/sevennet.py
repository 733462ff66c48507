"""Frozen SevenNet-0 atom features, read from the checkpoint inside the sevenn wheel."""

from __future__ import annotations

import base64
import hashlib
import logging
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from typing_extensions import override

from crystalrep.encoders.base import ArrayEncoder

if TYPE_CHECKING:
    from sevenn.nn.sequential import AtomGraphSequential
    from torch import Tensor

Graph = tuple[np.ndarray, np.ndarray, np.ndarray]  # atomic numbers, edge_index (2, E), edge_vec (E, 3)

__all__ = ["SevenNetEncoder", "checkpoint_file", "mean_node_features", "neighbour_graph"]

logger = logging.getLogger(__name__)

MODEL_NAME = "SevenNet-0 (11Jul2024)"
DIM = 128
READOUT = "reduce_input_to_hidden"  # the first module after the last interaction block
# Not in SevenNet-0's training set (MPtrj): read as the group-mate one period up; rows are reported.
STAND_INS = {84: 52, 85: 53, 86: 54, 87: 55, 88: 56}
# ~13 kB per edge in a convolution: bounded passes keep the peak at a few hundred MB, and run faster.
EDGES_PER_PASS = 8192


def checkpoint_file() -> Path:
    """The SevenNet-0 checkpoint shipped in the installed sevenn wheel (never downloaded).

    Raises:
        FileNotFoundError: If the file is missing or differs from the sha256 the wheel records.
    """
    from sevenn import _const

    path = Path(_const.SEVENNET_0_11Jul2024)
    if not path.is_file():
        raise FileNotFoundError(f"The SevenNet-0 checkpoint is not in the sevenn wheel: {path}.")
    recorded = {str(p.locate()): p.hash.value for p in metadata.files("sevenn") or [] if p.hash is not None}
    expected = recorded.get(str(path))
    actual = base64.urlsafe_b64encode(hashlib.sha256(path.read_bytes()).digest()).rstrip(b"=").decode()
    # sevenn unpickles its checkpoints with weights_only=False: only a file that is byte-for-byte the
    # wheel's own (whose code we run anyway) may reach it.
    if expected != actual:
        raise FileNotFoundError(f"{path} does not match the sha256 recorded by the sevenn wheel.")
    return path


class SevenNetEncoder(ArrayEncoder):
    """SevenNet-0's node features after the last interaction block, averaged over atoms.

    The model runs its own modules in order (edge embedding, five NequIP-style interaction
    blocks) and stops before the energy readout, so no energy, forces or stress are computed.
    Graphs are built with vesin at the model's 5 Å cutoff, with SevenNet's edge convention.

    Args:
        stand_ins: Read Po, At, Rn, Fr and Ra (absent from SevenNet-0's training set) as Te, I,
            Xe, Cs and Ba, and list the affected rows in ``last_run_info``. Off by default: such a
            vector would describe another element, so those crystals are refused unless asked for.
    """

    name = "sevennet"
    version = "1"
    uses_torch: ClassVar[bool] = True
    description = (
        "Frozen SevenNet-0 (11Jul2024; Park et al. 2024; checkpoint from the sevenn wheel, no "
        "download): the 128 invariant (0e) node features after the fifth and last interaction "
        "block, before the energy readout, averaged over the atoms of the cell, so a supercell "
        "embeds like its primitive cell. Graph: every neighbour within 5 Å (SevenNet's cutoff). "
        "Forward pass under inference mode, no energy, forces or stress. SevenNet-0 knows 89 "
        "elements: crystals with Po, At, Rn, Fr or Ra are refused (stand_ins=True reads them as Te, I, "
        "Xe, Cs and Ba and lists the rows in the run metadata); elements beyond Pu are refused."
    )

    def __init__(self, *, stand_ins: bool = False) -> None:
        super().__init__()
        self.stand_ins = stand_ins
        self._model: AtomGraphSequential | None = None
        self._sha256: str | None = None

    @property
    @override
    def dim(self) -> int:
        return DIM

    @property
    @override
    def config(self) -> dict[str, Any]:
        stand_ins = {str(k): v for k, v in STAND_INS.items()} if self.stand_ins else {}
        return {"model": MODEL_NAME, "cutoff": 5.0, "layer": f"before {READOUT}", "pooling": "mean",
                "stand_ins": stand_ins}

    @override
    def weights_sha256(self) -> str:
        if self._sha256 is None:
            self._sha256 = hashlib.sha256(checkpoint_file().read_bytes()).hexdigest()
        return self._sha256

    @override
    def code_versions(self) -> dict[str, str]:
        return {"encoder": self.version, "sevenn": metadata.version("sevenn"), "e3nn": metadata.version("e3nn")}

    def load(self, device: str = "cpu") -> AtomGraphSequential:
        """Load (once) and return the frozen model on ``device``."""
        from sevenn.util import load_checkpoint

        if self._model is None:
            path = checkpoint_file()
            model = load_checkpoint(str(path)).build_model()
            if READOUT not in model._modules or model.cutoff != self.config["cutoff"]:
                raise RuntimeError(f"Unexpected SevenNet-0 layout in sevenn {metadata.version('sevenn')}.")
            for param in model.parameters():
                param.requires_grad_(False)
            self._model = model.eval()
            logger.info("Loaded SevenNet-0 from %s", path)
        return self._model.to(device)

    @override
    def _prepare(self, device: Any) -> dict[str, Any]:
        model = self.load(str(device))
        stand_ins = STAND_INS if self.stand_ins else {}
        if model.type_map is None:  # SevenNet-0 always maps its elements; load() built it
            raise RuntimeError(f"Unexpected SevenNet-0 layout in sevenn {metadata.version('sevenn')}.")
        allowed = set(model.type_map) | set(stand_ins)
        lookup = np.arange(max(allowed) + 1)
        lookup[list(stand_ins)] = list(stand_ins.values())
        return {"model": model, "device": device, "allowed": allowed, "lookup": lookup, "replaced": []}

    @override
    def _embed_batch(self, cells: list[Any], first: int, state: dict[str, Any]) -> np.ndarray:
        from crystalrep.structures import StructureError

        model, lookup = state["model"], state["lookup"]
        graphs = []
        for i, (lattice, numbers, frac) in enumerate(cells, start=first):
            unknown = sorted(set(numbers.tolist()) - state["allowed"])
            if unknown:
                raise StructureError(f"SevenNet-0 was not trained on Z={unknown} (structure {i}).")
            mapped = lookup[numbers]
            if not np.array_equal(mapped, numbers):
                state["replaced"].append(i)
            graphs.append(neighbour_graph(lattice, mapped, frac, cutoff=float(model.cutoff)))
        out = np.empty((len(cells), DIM), dtype=np.float32)
        for a, b in _passes([g[1].shape[1] for g in graphs], EDGES_PER_PASS):
            out[a:b] = mean_node_features(model, graphs[a:b], device=state["device"]).float().cpu().numpy()
        return out

    @override
    def _summary(self, state: dict[str, Any]) -> dict[str, Any]:
        if state["replaced"]:
            logger.warning("SevenNet: %d crystal(s) contain Po/At/Rn/Fr/Ra, read as Te/I/Xe/Cs/Ba", len(state["replaced"]))
        return {"stand_in_rows": state["replaced"]}


def _passes(edges: Sequence[int], budget: int) -> list[tuple[int, int]]:
    """Consecutive ``(start, stop)`` groups of at most ``budget`` edges (a larger graph goes alone)."""
    groups, start, total = [], 0, 0
    for k, e in enumerate(edges):
        if k > start and total + e > budget:
            groups.append((start, k))
            start, total = k, 0
        total += e
    return groups + [(start, len(edges))] * bool(len(edges))


def neighbour_graph(lattice: np.ndarray, numbers: np.ndarray, frac_coords: np.ndarray, *, cutoff: float) -> Graph:
    """SevenNet's graph of one crystal, built with vesin.

    Edges follow ``sevenn.train.dataload``: ``edge_index[0]`` is the centre ``i``,
    ``edge_index[1]`` the neighbour ``j`` and ``edge_vec = r_j - r_i + S @ cell`` (ASE's ``D``),
    every pair closer than the cutoff, periodic images of an atom included.

    Returns:
        ``(atomic numbers, edge_index (2, E), edge_vec (E, 3))``.
    """
    import vesin

    lattice = np.asarray(lattice, dtype=np.float64)
    nl = vesin.NeighborList(cutoff=cutoff, full_list=True)
    i, j, d = nl.compute(np.asarray(frac_coords, dtype=np.float64) @ lattice, lattice, periodic=True, quantities="ijD")
    return np.asarray(numbers, dtype=np.int64), np.stack([i, j]).astype(np.int64), d


def mean_node_features(model: AtomGraphSequential, graphs: Sequence[Graph], *, device: Any = "cpu") -> Tensor:
    """Mean node feature per crystal: SevenNet's modules run on one batched graph up to the readout.

    Args:
        model: A SevenNet ``AtomGraphSequential`` (with its ``type_map``).
        graphs: One :func:`neighbour_graph` per crystal, every element in ``model.type_map``.
        device: Where to run.

    Returns:
        Tensor ``(len(graphs), feature dim)``.
    """
    import torch
    from sevenn import _keys as KEY

    sizes = np.array([len(g[0]) for g in graphs])
    offsets = np.cumsum(sizes) - sizes
    owner = torch.from_numpy(np.repeat(np.arange(len(graphs)), sizes)).to(device)
    z_all = torch.from_numpy(np.concatenate([g[0] for g in graphs])).to(device)
    edges = np.concatenate([g[1] + off for g, off in zip(graphs, offsets, strict=True)], axis=1)
    data = {
        KEY.EDGE_IDX: torch.from_numpy(edges).to(device),
        KEY.EDGE_VEC: torch.from_numpy(np.concatenate([g[2] for g in graphs]).astype(np.float32)).to(device),
        KEY.NODE_FEATURE: model.z_to_onehot_tensor.to(device)[z_all],  # what model._preprocess does
        KEY.BATCH: owner,
    }
    for name, module in model._modules.items():
        if name == READOUT:
            break
        data = module(data)
    x = data[KEY.NODE_FEATURE]
    summed = torch.zeros(len(graphs), x.shape[1], dtype=x.dtype, device=x.device).index_add_(0, owner, x)
    return summed / torch.bincount(owner, minlength=len(graphs))[:, None].to(x.dtype)
