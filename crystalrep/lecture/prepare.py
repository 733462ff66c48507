"""Prepare the whole lecture before the talk: every embedding, invariance table, probe grid and map it shows.

:class:`Preparation` lists the steps whose results the store does not hold yet, each with an
estimate of its duration, and runs them in order, writing to the same store entries the Lecture
page reads (same keys, seeds and settings, from :mod:`crystalrep.lecture.runs`). The page starts
``crystalrep lecture prepare`` as a background task and shows its progress, so no section has to
compute while the room waits. The analogy tables (section 4) are not stored: from stored
embeddings they take about a second.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from crystalrep.lecture import runs
from crystalrep.lecture.analogies import geometry_key, geometry_only_embedding
from crystalrep.store import Store

if TYPE_CHECKING:
    from crystalrep.datasets import Dataset

__all__ = ["Preparation", "Step", "lecture_encoders", "pretrained"]

log = logging.getLogger(__name__)

# Seconds per crystal, measured with `crystalrep lecture prepare -v` on the 1,897-crystal default set
# on this project's 2-core machine while it was shared (load ~10): an estimate, shown as one, which
# the progress lines correct with the measured pace as steps finish.
EMBED_SECONDS = {"cgcnn-random": 0.03, "magpie": 0.0035, "soap": 0.006, "chgnet": 0.1, "sevennet": 0.45}
CHECKPOINT_SECONDS = 0.03  # a pretrained cgcnn@… costs what cgcnn-random does
UNKNOWN_SECONDS = 0.05
TSNE_SECONDS = 0.012  # t-SNE plus trustworthiness and HDBSCAN islands
PROBE_SECONDS = 0.0025  # one (property, embedding) cell: 5 grouped folds of RidgeCV
INVARIANCE_FACTOR = 15  # crystal-embeddings per sampled crystal: itself, 4 transforms, a 2×2×2 supercell (8×) + noise
SECTION3_BASELINES = ("cgcnn-random", "magpie", "chgnet")
PRETRAINED_SHOWN = 3


def pretrained(names: Sequence[str], available: Sequence[str]) -> list[str]:
    """Section 3's pretrained encoders: the ``cgcnn@…`` ones chosen, else the three newest available."""
    from crystalrep.encoders import CHECKPOINT_PREFIX

    chosen = [n for n in names if n.startswith(CHECKPOINT_PREFIX)]
    return chosen or [n for n in available if n.startswith(CHECKPOINT_PREFIX)][-PRETRAINED_SHOWN:]


def lecture_encoders(names: Sequence[str], available: Sequence[str]) -> dict[int, list[str]]:
    """Encoders each section shows: the chosen ones in 1, 2 and 4; random, pretrained, Magpie, CHGNet in 3."""
    chosen = list(dict.fromkeys(names))
    third = [SECTION3_BASELINES[0], *pretrained(chosen, available), *SECTION3_BASELINES[1:]]
    return {1: chosen, 2: chosen, 3: list(dict.fromkeys(third)), 4: chosen}


def _embed_seconds(name: str) -> float:
    from crystalrep.encoders import CHECKPOINT_PREFIX

    if name.startswith(CHECKPOINT_PREFIX):
        return CHECKPOINT_SECONDS
    return EMBED_SECONDS.get(name, UNKNOWN_SECONDS)


@dataclass(frozen=True)
class Step:
    """One piece of the lecture to compute.

    Attributes:
        section: Lecture section (1–4) that shows it first.
        label: What it computes, e.g. ``"embed chgnet"``.
        seconds: Estimated duration.
        action: Computes it into the store.
    """

    section: int
    label: str
    seconds: float
    action: Callable[[], object]


class Preparation:
    """Everything the lecture needs for one dataset and one choice of encoders.

    Args:
        dataset: The crystals.
        names: The encoders chosen in the sidebar.
        available: Every encoder name (for section 3's pretrained checkpoints).
        store: Artifact store (default ``$CRYSTALREP_HOME``).
    """

    def __init__(self, dataset: Dataset, names: Sequence[str], *, available: Sequence[str],
                 store: Store | None = None) -> None:
        self.dataset, self.store = dataset, store if store is not None else Store()
        self.sections = lecture_encoders(names, available)
        self.failures: dict[str, str] = {}
        self._arrays: dict[str, tuple[np.ndarray, str]] = {}
        self._encoders: dict[str, Any] = {}

    def _encoder(self, name: str) -> Any:
        from crystalrep.encoders import get_encoder

        if name not in self._encoders:
            self._encoders[name] = get_encoder(name)
        return self._encoders[name]

    def _key(self, name: str) -> str:
        from crystalrep.embed import embedding_key

        if name == runs.GEOMETRY:
            return geometry_key(self.dataset)
        return embedding_key(self.dataset, self._encoder(name))

    def _array(self, name: str) -> tuple[np.ndarray, str] | None:
        """``(X, key)`` of an embedding, computing and storing it when missing (``None`` if it failed)."""
        from crystalrep.embed import embed_dataset

        if name in self.failures:
            return None
        if name not in self._arrays:
            if name == runs.GEOMETRY:
                X = geometry_only_embedding(self.dataset)
            else:
                try:
                    X = embed_dataset(self.dataset, self._encoder(name), store=self.store)[0]
                except (ValueError, OSError) as exc:  # e.g. an element beyond the encoder's range
                    self.failures[name] = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                    log.warning("lecture: %s cannot embed %s: %s", name, self.dataset.name, self.failures[name])
                    return None
            self._arrays[name] = (X, self._key(name))
        return self._arrays[name]

    def _embedded(self, name: str) -> bool:
        from crystalrep.embed import EMBEDDINGS_KIND

        return self.store.verified(EMBEDDINGS_KIND, self._key(name)) is not None

    def _mapped(self, name: str) -> bool:
        from crystalrep.analysis.projections import KIND, cache_key, make_spec

        key = cache_key(self._key(name), make_spec(runs.MAP_METHOD, None, runs.SEED))
        return self.store.verified(KIND, key) is not None and runs.is_stored(runs.map_key(key), store=self.store)

    def _probed(self, names: Sequence[str]) -> int:
        """How many (property, embedding) probe cells of ``names`` the store lacks."""
        todo = 0
        for prop in self.dataset.property_names("numeric"):
            y = pd.to_numeric(self.dataset.table[prop], errors="coerce").to_numpy(dtype=np.float64)
            todo += sum(not runs.is_stored(runs.probe_key(self._key(n), prop, y), store=self.store, kind=runs.PROBES_KIND)
                        for n in names)
        return todo

    def steps(self) -> list[Step]:
        """The steps whose results the store lacks, in the order they run (embeddings first)."""
        n, out = len(self.dataset), []
        everyone = list(dict.fromkeys(name for names in self.sections.values() for name in names))
        for name in everyone:
            if not self._embedded(name):
                out.append(Step(1, f"embed {name}", n * _embed_seconds(name), partial(self._array, name)))
        for name in self.sections[1]:
            if not runs.is_stored(runs.invariance_key(self.dataset, self._encoder(name)), store=self.store):
                seconds = runs.INVARIANCE_N * INVARIANCE_FACTOR * _embed_seconds(name)
                out.append(Step(1, f"invariance {name}", seconds, partial(self._invariance, name)))
        second = [runs.GEOMETRY, *self.sections[2]]
        third = [name for name in self.sections[3] if name not in second]  # the rest are probed for section 2
        for section, names in ((2, second), (3, third)):
            cells = self._probed(names) if names else 0
            if cells:
                out.append(Step(section, f"probes section {section}", cells * n * PROBE_SECONDS,
                                partial(self._grid, names)))
        for name in [runs.GEOMETRY, *self.sections[2]]:
            if not self._mapped(name):
                out.append(Step(2, f"t-SNE {name}", n * TSNE_SECONDS, partial(self._map, name)))
        return out

    def _invariance(self, name: str) -> None:
        try:
            runs.invariance_cached(self.dataset, self._encoder(name), n=runs.INVARIANCE_N, seed=runs.SEED,
                                   store=self.store)
        except (ValueError, OSError) as exc:
            self.failures.setdefault(name, str(exc))

    def _grid(self, names: Sequence[str]) -> None:
        arrays = {n: hit for n in names if (hit := self._array(n)) is not None}
        if arrays:
            try:
                runs.probe_grid(self.dataset, arrays, store=self.store)
            except ValueError as exc:  # too few crystals or systems for grouped folds: the page says so too
                log.warning("lecture: probes cannot run on %s: %s", self.dataset.name, exc)

    def _map(self, name: str) -> None:
        hit = self._array(name)
        if hit is not None:
            runs.tsne_map(hit[0], hit[1], store=self.store)

    def run(self, steps: Sequence[Step], *, progress: Callable[[int, int, Step, float], None] | None = None) -> float:
        """Run ``steps`` in order; ``progress(done, total, step, seconds_left)`` before each and at the end.

        The time left scales the remaining estimates by how the finished steps compared with theirs.

        Returns:
            Seconds taken.
        """
        start, spent, estimated = time.perf_counter(), 0.0, 0.0
        for i, step in enumerate(steps):
            if progress is not None:
                progress(i, len(steps), step, _left(steps[i:], spent, estimated))
            began = time.perf_counter()
            step.action()
            took = time.perf_counter() - began
            log.info("lecture: %s took %.1f s (estimate %.1f s)", step.label, took, step.seconds)
            spent += took
            estimated += step.seconds
        if progress is not None and steps:
            progress(len(steps), len(steps), steps[-1], 0.0)
        return time.perf_counter() - start


def _left(remaining: Sequence[Step], spent: float, estimated: float) -> float:
    """Estimated seconds for ``remaining``, corrected by the measured/estimated ratio so far (clamped)."""
    ratio = min(max(spent / estimated, 0.25), 4.0) if estimated > 1.0 else 1.0
    return ratio * sum(step.seconds for step in remaining)
