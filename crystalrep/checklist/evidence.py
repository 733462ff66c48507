"""What a checklist item is and how its evidence is read from the store and the encoders.

:class:`Item` holds plain JSON values so the checklist exports and re-imports unchanged; the
readers here are shared by the items in :mod:`crystalrep.checklist.items` and
:mod:`crystalrep.checklist.probe_items`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crystalrep.store import Store

if TYPE_CHECKING:
    from crystalrep.encoders import Encoder

PROBES_KIND = "probes"
DISJOINT_SPLITS = ("grouped", "element")
BASELINE = "magpie"
RANDOM = "cgcnn-random"
PRETRAINED = "cgcnn@"
MAX_ROWS = 8
Context = Mapping[str, Any]


@dataclass(frozen=True)
class Item:
    """One checklist item.

    Attributes:
        number: 1 to 5.
        title: Short name.
        ok: Whether the store holds the evidence.
        finding: One sentence: what was found, or what is missing.
        todo: How to get the evidence (empty when ``ok``).
        evidence: Rows of plain values (keys, values, file paths) shown as a table.
    """

    number: int
    title: str
    ok: bool
    finding: str
    todo: str
    evidence: tuple[dict[str, Any], ...]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON form."""
        return {"number": self.number, "title": self.title, "ok": self.ok, "finding": self.finding,
                "todo": self.todo, "evidence": [dict(r) for r in self.evidence]}

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> Item:
        """Inverse of :meth:`to_dict`."""
        return cls(**{**values, "evidence": tuple(dict(r) for r in values["evidence"])})


def read_metas(store: Store, kind: str, filename: str = "meta.json") -> list[tuple[dict[str, Any], Path]]:
    """``(meta, path)`` of every artifact of a kind whose metadata file parses, newest first."""
    found = []
    for key in store.keys(kind):
        path = store.path(kind, key) / filename
        try:
            found.append((path.stat().st_mtime, json.loads(path.read_text()), path))
        except (OSError, ValueError):
            continue
    found.sort(key=lambda t: t[0], reverse=True)
    return [(meta, path) for _, meta, path in found if isinstance(meta, dict)]


def short(mapping: Any, sep: str = "=") -> str:
    """``mapping`` as ``k=v, ...`` sorted by key; empty when it is not a non-empty mapping."""
    if not isinstance(mapping, Mapping) or not mapping:
        return ""
    return ", ".join(f"{k}{sep}{v}" for k, v in sorted(mapping.items()))


def names_by_key(keys: Mapping[str, str]) -> dict[str, str]:
    """Invert ``encoder -> embedding key``; the first encoder named wins a shared key."""
    out: dict[str, str] = {}
    for name, key in keys.items():
        out.setdefault(key, name)
    return out


def encoder_of(names: Mapping[str, str], meta: Mapping[str, Any]) -> str | None:
    """The chosen encoder (``names``: embedding key -> encoder) whose embedding ``meta`` came from, or None."""
    key = meta.get("embedding_key")
    return names.get(key) if isinstance(key, str) else None


def corpus_of(name: str, encoder: Encoder) -> tuple[str, bool]:
    """What an encoder learned from, and whether that is fully recorded."""
    if name.startswith(PRETRAINED):
        meta = getattr(encoder, "checkpoint_meta", None) or {}
        if any(meta.get(k) is None for k in ("task", "dataset_fingerprint", "seed")):
            return "not recorded: the checkpoint lacks task, dataset fingerprint or seed", False
        text = (f"{meta['task']} pretraining on {meta.get('dataset', 'an unnamed dataset')} "
                f"(fingerprint {str(meta['dataset_fingerprint'])[:12]}), seed {meta['seed']}")
        text += f", {meta['epochs']} epochs" if meta.get("epochs") is not None else ""
        return text + (f", job {meta['job_id']}" if meta.get("job_id") else ""), True
    if name == "chgnet":
        return f"MPtrj via CHGNet {getattr(encoder, 'model_name', '0.3.0')} weights", True
    if name == "sevennet":
        return f"MPtrj via SevenNet {getattr(encoder, 'model_name', 'SevenNet-0')} weights (sevenn wheel)", True
    if name.startswith(RANDOM):
        return f"none: random initialisation (seed {getattr(encoder, 'seed', '?')}), never trained", True
    if encoder.weights_sha256() is None:
        return "none: a fixed descriptor, no training", True
    return "not recorded", False
