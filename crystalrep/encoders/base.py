"""The encoder interface: structures in, one float32 row per crystal out."""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

if TYPE_CHECKING:
    from pymatgen.core import Structure

    from crystalrep.datasets import Dataset

__all__ = ["Encoder", "Progress", "batch_ranges", "state_dict_sha256"]

Progress = Callable[[int, int], None]


def batch_ranges(n: int, batch_size: int) -> Iterator[tuple[int, int]]:
    """Yield ``(start, stop)`` pairs covering ``range(n)`` in chunks of ``batch_size``.

    Raises:
        ValueError: If ``batch_size`` is not a positive integer.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"Batch size must be a positive integer, got {batch_size!r}.")
    for start in range(0, n, batch_size):
        yield start, min(start + batch_size, n)


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
