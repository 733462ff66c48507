"""The lecture's five-item reproducibility checklist, computed from what the store holds.

For one view (a dataset, the chosen encoders, a property) each item is green only when the store
holds its evidence, and the evidence (keys, values, files) comes with it:

1. every encoder is identified (id, version, fingerprint, pretraining corpus) and its embedding
   of the dataset is stored;
2. a stored projection of one of those embeddings records method, params, seed and versions;
3. a recorded map view (:func:`record_view`) names its colour property, scale and clip;
4. an ablation: two or more encoders probed on the same folds for the property;
5. a chemistry-disjoint probe (grouped or element split) beside a Magpie baseline on its folds.

Pages draw a :class:`Checklist`; ``to_markdown`` and ``to_json`` export it with the figures'
provenance.
"""

from __future__ import annotations

import builtins
import datetime as dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crystalrep.analysis.projections import KIND as PROJECTIONS_KIND
from crystalrep.analysis.projections import cache_key, make_spec
from crystalrep.checklist.items import (
    Item,
    ablation_item,
    disjoint_item,
    encoders_item,
    num,
    probe_rows,
    projection_item,
    read_metas,
    view_item,
)
from crystalrep.embed import embedding_key
from crystalrep.store import Store, content_key

if TYPE_CHECKING:
    from crystalrep.datasets import Dataset
    from crystalrep.encoders import Encoder

__all__ = ["SCALES", "VIEWS_KIND", "Checklist", "Item", "ViewRecord", "build_checklist", "record_view"]

VIEWS_KIND = "views"
VIEW_FILE = "view.json"
SCALES = ("linear", "log", "categorical")
BASELINE = "magpie"


@dataclass(frozen=True)
class ViewRecord:
    """How one drawn map was made and coloured (stored under kind ``"views"``).

    Attributes:
        dataset: Dataset name.
        dataset_fingerprint: Its fingerprint (ids + structures).
        encoder: Encoder name as chosen (e.g. ``"cgcnn@<job-id>"``).
        embedding_key: Store key of the embedding that was projected.
        method: Projection method.
        params: Complete method parameters (defaults filled in).
        seed: Projection seed (``None``: unseeded).
        projection_key: Store key of the projection (kind ``"projections"``).
        colour: Property the points are coloured by (``None``: uncoloured).
        scale: ``"linear"``, ``"log"`` or ``"categorical"``.
        clip: Percentile clip ``(low, high)`` of the colour scale, ``None`` when not clipped.
    """

    dataset: str
    dataset_fingerprint: str
    encoder: str
    embedding_key: str
    method: str
    params: dict[str, Any]
    seed: int | None
    projection_key: str
    colour: str | None
    scale: str
    clip: tuple[float, float] | None

    @property
    def key(self) -> str:
        """Store key: the same view always maps to the same artifact."""
        return content_key(self.to_dict())

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON form."""
        out = asdict(self)
        out["clip"] = None if self.clip is None else list(self.clip)
        return out

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> ViewRecord:
        """Inverse of :meth:`to_dict` (extra keys such as ``recorded`` are ignored)."""
        fields: dict[str, Any] = {k: values.get(k) for k in cls.__dataclass_fields__}
        clip = fields["clip"]
        fields["clip"] = None if clip is None else (float(clip[0]), float(clip[1]))
        fields["params"] = dict(fields["params"] or {})
        return cls(**fields)


def record_view(dataset: Dataset, *, encoder: str, embedding_key: str, method: str,
                params: Mapping[str, Any] | None = None, seed: int | None = 0, colour: str | None,
                scale: str = "linear", clip: tuple[float, float] | None = None,
                store: Store | None = None) -> ViewRecord:
    """Record how a map is drawn, so the checklist can show its colour scale (idempotent).

    Args:
        dataset: The dataset whose embedding was projected.
        encoder: Encoder name as chosen in the sidebar.
        embedding_key: Store key of that embedding (``ui.embeddings.key(ref, encoder)``).
        method: Projection method (``"pca"``, ``"umap"``, ``"tsne"``).
        params: Method parameters as passed to ``project_cached`` (defaults are filled in).
        seed: Projection seed.
        colour: Property column the points are coloured by, or ``None``.
        scale: ``"linear"`` or ``"log"`` for a numeric colour, ``"categorical"`` otherwise.
        clip: Percentile clip ``(low, high)`` with ``0 <= low < high <= 100``, or ``None``.
        store: Artifact store (default: ``$CRYSTALREP_HOME``).

    Returns:
        The record; it is written atomically unless the store already holds it.

    Raises:
        ValueError: Unknown method, parameter, scale or colour column, or a malformed clip.
    """
    spec = make_spec(method, params, seed)
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {', '.join(SCALES)}, got {scale!r}.")
    if colour is not None and colour not in dataset.table.columns:
        raise ValueError(f"dataset {dataset.name!r} has no column {colour!r} to colour by.")
    if clip is not None:
        low, high = (float(v) for v in clip)
        if not 0 <= low < high <= 100:
            raise ValueError(f"clip must be percentiles (low, high) with 0 <= low < high <= 100, got {clip!r}.")
        clip = (low, high)
    record = ViewRecord(dataset=dataset.name, dataset_fingerprint=dataset.fingerprint, encoder=encoder,
                        embedding_key=embedding_key, method=spec.method, params=dict(spec.params), seed=spec.seed,
                        projection_key=cache_key(embedding_key, spec), colour=colour, scale=scale, clip=clip)
    store = store if store is not None else Store()
    if store.verified(VIEWS_KIND, record.key) is None:
        now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        blob = json.dumps({**record.to_dict(), "recorded": now}, indent=2, sort_keys=True) + "\n"
        store.save_files(VIEWS_KIND, record.key, {VIEW_FILE: blob.encode()})
    return record


@dataclass(frozen=True)
class Checklist:
    """The five items for one view, the figures' provenance, and where they were read."""

    dataset: str
    dataset_fingerprint: str
    encoders: tuple[str, ...]
    property: str | None
    items: tuple[Item, ...]
    provenance: tuple[dict[str, Any], ...]
    store: str
    created: str

    @builtins.property  # the field ``property`` shadows the builtin inside this class body
    def passed(self) -> int:
        """Number of green items."""
        return sum(item.ok for item in self.items)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON form (``from_dict`` inverts it)."""
        out = asdict(self)
        out["encoders"] = list(self.encoders)
        out["items"] = [item.to_dict() for item in self.items]
        out["provenance"] = [dict(p) for p in self.provenance]
        return out

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> Checklist:
        """Rebuild a checklist from :meth:`to_dict` output."""
        return cls(**{**values, "encoders": tuple(values["encoders"]),
                      "items": tuple(Item.from_dict(i) for i in values["items"]),
                      "provenance": tuple(dict(p) for p in values["provenance"])})

    def to_json(self) -> str:
        """Indented JSON."""
        return json.dumps(self.to_dict(), indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Checklist:
        """Inverse of :meth:`to_json`."""
        return cls.from_dict(json.loads(text))

    def to_markdown(self) -> str:
        """A report: the view, each item with its finding, to-do and evidence, then the provenance."""
        lines = [f"# Reproducibility checklist: {self.dataset}", "",
                 f"- Dataset: `{self.dataset}` (fingerprint `{self.dataset_fingerprint}`)",
                 f"- Encoders: {', '.join(f'`{e}`' for e in self.encoders) or 'none chosen'}",
                 f"- Property: {f'`{self.property}`' if self.property else 'none'}",
                 f"- Store: `{self.store}`", f"- Generated: {self.created}",
                 f"- **{self.passed} of {len(self.items)} items hold.**", ""]
        for item in self.items:
            lines += [f"## {item.number}. {'✅' if item.ok else '❌'} {item.title}", "", item.finding, ""]
            if item.todo:
                lines += [f"**To do:** {item.todo}", ""]
            lines += _table(item.evidence)
        lines += ["## Figures' provenance", ""]
        lines += _table(self.provenance) or ["No map view of this dataset has been recorded.", ""]
        return "\n".join(lines)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        value = f"{value:.4g}"
    elif isinstance(value, dict | list):
        value = json.dumps(value, sort_keys=True)
    return "" if value is None else str(value).replace("|", "\\|").replace("\n", " ")


def _table(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    if not rows:
        return []
    columns = list(dict.fromkeys(k for row in rows for k in row))
    out = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    out += ["| " + " | ".join(_cell(row.get(c)) for c in columns) + " |" for row in rows]
    return [*out, ""]


def _named(encoders: Sequence[str] | Mapping[str, Encoder]) -> dict[str, Encoder]:
    if isinstance(encoders, Mapping):
        return dict(encoders)
    from crystalrep.encoders import get_encoder

    return {name: get_encoder(name) for name in encoders}


def _views(store: Store, dataset: Dataset, keys: Mapping[str, str]) -> list[tuple[ViewRecord, dict[str, Any], Path]]:
    """Recorded views of this dataset through one of ``keys`` (encoder -> embedding key), newest first."""
    chosen = set(keys.values())
    out = []
    for meta, path in read_metas(store, VIEWS_KIND, VIEW_FILE):
        try:
            record = ViewRecord.from_dict(meta)
        except (TypeError, ValueError, KeyError, IndexError):
            continue
        if record.dataset_fingerprint == dataset.fingerprint and record.embedding_key in chosen:
            out.append((record, meta, path))
    return out


def _provenance(store: Store, views: list[tuple[ViewRecord, dict[str, Any], Path]]) -> tuple[dict[str, Any], ...]:
    rows = []
    for record, meta, path in views:
        hit = store.load_array(PROJECTIONS_KIND, record.projection_key)
        projection = hit[1] if hit else {}
        rows.append({**record.to_dict(), "recorded": meta.get("recorded"), "view_file": str(path),
                     "projection_stored": hit is not None, "versions": projection.get("versions"),
                     "n": projection.get("n"), "seconds": num(projection.get("seconds"))})
    return tuple(rows)


def build_checklist(dataset: Dataset, encoders: Sequence[str] | Mapping[str, Encoder], property: str | None, *,
                    store: Store | None = None) -> Checklist:
    """The five items for ``dataset`` seen through ``encoders`` and coloured/probed by ``property``.

    Args:
        dataset: The dataset of the view.
        encoders: Encoder names, or name -> built encoder (pages pass their cached encoders).
        property: The property of the view (``None`` when the dataset has none).
        store: Artifact store (default: ``$CRYSTALREP_HOME``).

    Returns:
        The checklist; nothing is computed or written.
    """
    store = store if store is not None else Store()
    named = _named(encoders)
    keys = {name: embedding_key(dataset, enc) for name, enc in named.items()}
    baseline = dict(keys)
    if BASELINE not in baseline:
        from crystalrep.encoders import get_encoder

        baseline[BASELINE] = embedding_key(dataset, get_encoder(BASELINE))
    numeric = property is not None and property in dataset.properties and dataset.properties[property].kind == "numeric"
    probes = probe_rows(store, baseline, property) if numeric else []
    views = _views(store, dataset, keys)
    context = {"dataset": dataset.name, "encoders": list(named), "property": property, "numeric": numeric}
    items = (
        encoders_item(store, named, keys, context),
        projection_item(store, keys, context),
        view_item(store, [(v.to_dict(), p) for v, _, p in views], context),
        ablation_item(store, probes, context),
        disjoint_item(store, probes, context),
    )
    return Checklist(dataset=dataset.name, dataset_fingerprint=dataset.fingerprint, encoders=tuple(named),
                     property=property, items=items, provenance=_provenance(store, views), store=str(store.root),
                     created=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))


