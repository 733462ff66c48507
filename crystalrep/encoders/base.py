"""The encoder interface: structures in, one float32 row per crystal out."""

from __future__ import annotations

import contextlib
import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

if TYPE_CHECKING:
    from pymatgen.core import Structure
    from torch import Tensor

    from crystalrep.datasets import Dataset

__all__ = ["ArrayEncoder", "Arrays", "Encoder", "Progress", "atom_batches", "batch_ranges", "state_dict_sha256",
           "structure_arrays"]

Progress = Callable[[int, int], None]
Arrays = tuple[np.ndarray, np.ndarray, np.ndarray]  # lattice (3, 3), atomic numbers (k,), fractional coords (k, 3)


def _check_batch_size(batch_size: object) -> None:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"Batch size must be a positive integer, got {batch_size!r}.")


def batch_ranges(n: int, batch_size: int) -> Iterator[tuple[int, int]]:
    """Yield ``(start, stop)`` pairs covering ``range(n)`` in chunks of ``batch_size``.

    Raises:
        ValueError: If ``batch_size`` is not a positive integer.
    """
    _check_batch_size(batch_size)
    for start in range(0, n, batch_size):
        yield start, min(start + batch_size, n)


def atom_batches(sizes: Sequence[int] | np.ndarray, batch_size: int, max_atoms: int | None = None) -> list[tuple[int, int]]:
    """Consecutive ``(start, stop)`` batches of at most ``batch_size`` crystals and ``max_atoms`` atoms.

    A crystal larger than ``max_atoms`` forms a batch of its own; ``max_atoms=None`` batches by
    crystal count alone.

    Raises:
        ValueError: If ``batch_size`` is not a positive integer.
    """
    ranges = list(batch_ranges(len(sizes), batch_size))
    if max_atoms is None:
        return ranges
    out = []
    for start, stop in ranges:
        total = 0
        for k in range(start, stop):
            if k > start and total + sizes[k] > max_atoms:
                out.append((start, k))
                start, total = k, 0
            total += int(sizes[k])
        out.append((start, stop))
    return out


def structure_arrays(structure: Structure) -> Arrays:
    """``(lattice, atomic numbers, fractional coordinates)`` of a pymatgen structure.

    Raises:
        StructureError: If the structure has partially occupied (disordered) sites.
    """
    if not structure.is_ordered:
        from crystalrep.structures import StructureError

        raise StructureError("cannot build a graph of a disordered structure; order it first.")
    return structure.lattice.matrix, np.asarray(structure.atomic_numbers), structure.frac_coords


def state_dict_sha256(state_dict: Any) -> str:
    """Hash a model's weights (names, dtypes, shapes and bytes) independently of the file format."""
    digest = hashlib.sha256()
    for name in sorted(state_dict):
        tensor = state_dict[name].detach().cpu().contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.numpy().tobytes())
    return digest.hexdigest()


class Encoder(ABC):
    """Turns crystals into fixed-length float32 embeddings.

    Subclasses set ``name``, ``version``, ``description`` and implement ``dim``, ``config``
    and ``embed_structures``; trained encoders also override ``weights_sha256``.
    Constructors do no heavy work: models load on first use.

    Attributes:
        name: Registry id, e.g. ``"cgcnn-random"`` or ``"cgcnn@1a2b3c4d5e6f"``.
        version: Code version; bump it whenever the same inputs would give other numbers.
        description: One paragraph for users: what the vector is and how it was pooled.
        uses_torch: Whether ``device`` matters (descriptor encoders always run on CPU).
        last_run_info: Facts about the last embedding call (e.g. imputed columns), for metadata.
    """

    name: str = ""
    version: str = "1"
    description: str = ""
    uses_torch: ClassVar[bool] = False

    def __init__(self) -> None:
        self.last_run_info: dict[str, Any] = {}

    @property
    @abstractmethod
    def dim(self) -> int:
        """Length of one embedding row."""

    @property
    @abstractmethod
    def config(self) -> dict[str, Any]:
        """Plain-JSON settings that change the output."""

    def weights_sha256(self) -> str | None:
        """sha256 of the weights, or ``None`` for weight-free descriptors."""
        return None

    def code_versions(self) -> dict[str, str]:
        """Versions of the code that computes the vector (ours plus the packages it wraps)."""
        return {"encoder": self.version}

    @property
    def fingerprint(self) -> str:
        """sha256 over name, code versions, weights sha256 and config; used in store keys."""
        cached = getattr(self, "_fingerprint", None)
        if cached is None:
            blob = {
                "name": self.name,
                "code": self.code_versions(),
                "weights": self.weights_sha256(),
                "config": self.config,
            }
            text = json.dumps(blob, sort_keys=True, separators=(",", ":"))
            cached = hashlib.sha256(text.encode()).hexdigest()
            self._fingerprint = cached
        return cached

    def info(self) -> dict[str, Any]:
        """Plain-JSON description of this encoder (for metadata, pages and the CLI)."""
        return {
            "id": self.name,
            "version": self.version,
            "dim": self.dim,
            "description": self.description,
            "config": self.config,
            "code": self.code_versions(),
            "weights_sha256": self.weights_sha256(),
            "fingerprint": self.fingerprint,
        }

    @abstractmethod
    def embed_structures(
        self,
        structures: Sequence[Structure],
        *,
        device: str = "auto",
        batch_size: int = 64,
        progress: Progress | None = None,
    ) -> np.ndarray:
        """Embed pymatgen structures.

        Args:
            structures: Crystals to embed.
            device: ``"auto"``, ``"cpu"`` or ``"cuda"`` (ignored by CPU-only descriptors).
            batch_size: Crystals per batch.
            progress: Called as ``progress(done, total)`` after each batch.

        Returns:
            Array of shape ``(len(structures), dim)``, dtype float32.
        """

    def embed_dataset(
        self,
        dataset: Dataset,
        *,
        device: str = "auto",
        batch_size: int = 64,
        progress: Progress | None = None,
    ) -> np.ndarray:
        """Embed every crystal of a dataset, in dataset order (same contract as above)."""
        return self.embed_structures(
            dataset.structures(), device=device, batch_size=batch_size, progress=progress
        )

    def _empty(self) -> np.ndarray:
        return np.zeros((0, self.dim), dtype=np.float32)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, dim={self.dim}, version={self.version!r})"


class ArrayEncoder(Encoder):
    """An encoder fed ``(lattice, numbers, frac_coords)`` arrays batch by batch: the one embedding loop.

    Structures and dataset rows become the same arrays, so both paths share one loop: batches of
    at most ``batch_size`` crystals and :attr:`atoms_per_batch` atoms, elements checked against
    :attr:`max_z`, torch encoders run on the resolved device under ``torch.inference_mode``,
    ``progress(done, total)`` after each batch, rows written into one float32 array.

    Subclasses implement :meth:`_embed_batch`; they may override :meth:`_prepare` (load a model,
    build what every batch needs), :meth:`_summary` (facts for ``last_run_info``) and
    :meth:`_cell` (how a structure becomes arrays).

    Attributes:
        max_z: Heaviest element accepted; a heavier one raises ``ValueError`` naming the row.
        atoms_per_batch: A batch stops growing before this many atoms (``None``: no cap). Small
            passes keep per-edge tensors in cache, which is faster than one large pass.
        min_batch: Vectorised encoders take at least this many crystals per batch, whatever
            ``batch_size`` asks for.
    """

    max_z: ClassVar[int | None] = None
    atoms_per_batch: ClassVar[int | None] = None
    min_batch: ClassVar[int] = 1

    def _prepare(self, device: Any) -> Any:
        """What every batch needs (a model on ``device``, tables); called once per embedding call.

        Args:
            device: The resolved ``torch.device`` for torch encoders, else ``None``.
        """
        return None

    @abstractmethod
    def _embed_batch(self, cells: list[Any], first: int, state: Any) -> np.ndarray | Tensor:
        """Rows ``[len(cells), dim]`` for one batch; ``first`` is the row index of ``cells[0]``."""

    def _summary(self, state: Any) -> dict[str, Any]:
        """Plain-JSON facts about the finished call (merged into ``last_run_info``)."""
        return {}

    def _cell(self, structure: Structure) -> Any:
        """The arrays of one structure (composition-only encoders may skip the geometry)."""
        return structure_arrays(structure)

    def embed_structures(
        self,
        structures: Sequence[Structure],
        *,
        device: str = "auto",
        batch_size: int = 64,
        progress: Progress | None = None,
    ) -> np.ndarray:
        """Embed pymatgen structures (see :meth:`Encoder.embed_structures`)."""
        return self.embed_arrays(lambda i: self._cell(structures[i]), [len(s) for s in structures],
                                 device=device, batch_size=batch_size, progress=progress)

    def embed_dataset(
        self,
        dataset: Dataset,
        *,
        device: str = "auto",
        batch_size: int = 64,
        progress: Progress | None = None,
    ) -> np.ndarray:
        """Embed every crystal of a dataset from its arrays (no pymatgen objects are built)."""
        return self.embed_arrays(dataset.arrays, np.diff(dataset.offsets),
                                 device=device, batch_size=batch_size, progress=progress)

    def embed_arrays(
        self,
        get: Callable[[int], Any],
        sizes: Sequence[int] | np.ndarray,
        *,
        device: str = "auto",
        batch_size: int = 64,
        progress: Progress | None = None,
    ) -> np.ndarray:
        """Embed rows ``get(0) .. get(len(sizes) - 1)``, each ``(lattice, numbers, frac_coords)``.

        Args:
            get: Row ``i``'s arrays (or whatever :meth:`_embed_batch` takes).
            sizes: Atoms per row (sets the batches).
            device: ``"auto"``, ``"cpu"`` or ``"cuda"`` (ignored by CPU-only descriptors).
            batch_size: Crystals per batch at most.
            progress: Called as ``progress(done, total)`` after each batch.

        Returns:
            float32 array ``[len(sizes), dim]``.

        Raises:
            ValueError: For a bad ``batch_size`` or an element heavier than :attr:`max_z`.
        """
        _check_batch_size(batch_size)
        n = len(sizes)
        batches = atom_batches(sizes, max(batch_size, self.min_batch), self.atoms_per_batch)
        out = np.empty((n, self.dim), dtype=np.float32)
        run_device: Any = None
        inference: contextlib.AbstractContextManager[Any] = contextlib.nullcontext()
        if self.uses_torch:
            import torch

            from crystalrep.device import resolve_device

            run_device, inference = resolve_device(device), torch.inference_mode()
        state = self._prepare(run_device) if n else None
        with inference:
            for start, stop in batches:
                cells = [get(i) for i in range(start, stop)]
                if self.max_z is not None:
                    self._check_elements(cells, start)
                rows = self._embed_batch(cells, start, state)
                out[start:stop] = rows if isinstance(rows, np.ndarray) else rows.float().cpu().numpy()
                if progress is not None:
                    progress(stop, n)
        info = {"device": str(run_device)} if run_device is not None else {}
        self.last_run_info = {**info, **(self._summary(state) if n else {})}
        return out

    def _check_elements(self, cells: list[Any], first: int) -> None:
        label = type(self).__name__.removesuffix("Encoder")
        for k, (_, numbers, _) in enumerate(cells):
            if np.max(numbers, initial=0) > self.max_z:
                raise ValueError(f"{label} covers elements up to Z={self.max_z}; structure {first + k} has "
                                 "heavier ones.")
