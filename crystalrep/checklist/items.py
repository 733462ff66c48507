"""The five checklist items, each read from the store's artifacts (see :mod:`crystalrep.checklist.build`).

Every function returns an :class:`Item` whose evidence rows hold plain JSON values (keys, values,
file paths), so the checklist exports and re-imports unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crystalrep.analysis.projections import KIND as PROJECTIONS_KIND
from crystalrep.embed import EMBEDDINGS_KIND
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


def _short(mapping: Any, sep: str = "=") -> str:
    if not isinstance(mapping, Mapping) or not mapping:
        return ""
    return ", ".join(f"{k}{sep}{v}" for k, v in sorted(mapping.items()))


def _by_key(keys: Mapping[str, str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, key in keys.items():
        out.setdefault(key, name)
    return out


def _named(by_key: Mapping[str, str], meta: Mapping[str, Any]) -> str | None:
    """The chosen encoder whose embedding ``meta`` was computed from, or None."""
    key = meta.get("embedding_key")
    return by_key.get(key) if isinstance(key, str) else None


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


def encoders_item(store: Store, named: Mapping[str, Encoder], keys: Mapping[str, str], ctx: Context) -> Item:
    """Item 1: each encoder identified with its corpus, and its embedding of the dataset stored."""
    rows, missing, unknown = [], [], []
    for name, enc in named.items():
        corpus, known = corpus_of(name, enc)
        folder = store.verified(EMBEDDINGS_KIND, keys[name])
        rows.append({"encoder": name, "pretraining corpus": corpus, "embedding stored": folder is not None,
                     "id": enc.name, "version": enc.version, "fingerprint": enc.fingerprint,
                     "embedding key": keys[name], "path": str(store.path(EMBEDDINGS_KIND, keys[name]))})
        missing += [] if folder is not None else [name]
        unknown += [] if known else [name]
    ds = ctx["dataset"]
    if not named:
        finding, todo = "No encoder is chosen.", "Choose one or more encoders in the sidebar."
    elif missing or unknown:
        parts = [f"no stored embedding of {ds} by {', '.join(missing)}"] if missing else []
        parts += [f"no recorded pretraining corpus for {', '.join(unknown)}"] if unknown else []
        finding = "Missing: " + "; ".join(parts) + "."
        todo = (f"Compute the missing embeddings on the Data page, or run "
                f"`crystalrep embed --dataset {ds} --encoder {','.join(missing)}`." if missing else "")
        todo += (" Use a checkpoint made by `crystalrep pretrain` (it records task, corpus and seed)."
                 if unknown else "")
    else:
        finding = f"All {len(named)} encoders are identified and their embeddings of {ds} are stored."
        todo = ""
    return Item(1, "Encoder and pretraining corpus", bool(named) and not missing and not unknown,
                finding, todo.strip(), tuple(rows))


def projection_item(store: Store, keys: Mapping[str, str], ctx: Context) -> Item:
    """Item 2: a stored projection of a chosen embedding with method, params, seed and versions."""
    by_key = _by_key(keys)
    rows: list[dict[str, Any]] = []
    for meta, path in read_metas(store, PROJECTIONS_KIND):
        name = _named(by_key, meta)
        if name is None:
            continue
        seed = meta.get("seed")
        complete = (bool(meta.get("method")) and isinstance(meta.get("params"), dict) and bool(meta.get("versions"))
                    and isinstance(seed, int) and not isinstance(seed, bool))
        rows.append({"encoder": name, "method": meta.get("method"), "params": _short(meta.get("params")),
                     "seed": seed, "versions": _short(meta.get("versions"), " "), "complete": complete,
                     "key": path.parent.name, "path": str(path.parent)})
    rows.sort(key=lambda r: not r["complete"])  # stable: complete first, newest first
    shown = rows[:MAX_ROWS]
    for row in shown:
        row["stored"] = store.verified(PROJECTIONS_KIND, row["key"]) is not None
    good = [r for r in shown if r["complete"] and r["stored"]]
    ds, first = ctx["dataset"], next(iter(keys), "magpie")
    if good:
        r = good[0]
        finding = (f"{len(rows)} stored projection(s) of these embeddings; e.g. {r['method']} of {r['encoder']} "
                   f"with seed {r['seed']} ({r['params'] or 'no parameters'}).")
        todo = ""
    else:
        finding = (f"{len(rows)} stored projection(s) of these embeddings, none with a seed and versions recorded."
                   if rows else f"No stored projection of the chosen encoders' embeddings of {ds}.")
        todo = (f"Draw a seeded map on the Projections page, or run "
                f"`crystalrep project --dataset {ds} --encoder {first} --method pca --seed 0`.")
    return Item(2, "Projection, parameters and seed", bool(good), finding, todo, tuple(shown))


def view_item(store: Store, views: Sequence[tuple[Mapping[str, Any], Path]], ctx: Context) -> Item:
    """Item 3: a recorded map view of this dataset coloured by the property, with scale and clip."""
    prop = ctx["property"]
    rows: list[dict[str, Any]] = []
    for view, path in views[:MAX_ROWS]:
        clip = view.get("clip")
        rows.append({"encoder": view["encoder"], "method": view["method"], "seed": view["seed"],
                     "colour": view["colour"], "scale": view["scale"],
                     "clip": f"{clip[0]:g}–{clip[1]:g} percentile" if clip else "none",
                     "projection stored": store.verified(PROJECTIONS_KIND, view["projection_key"]) is not None,
                     "projection key": view["projection_key"], "path": str(path)})
    wanted = [r for r in rows if r["colour"] is not None and (prop is None or r["colour"] == prop)]
    good = [r for r in wanted if r["projection stored"]]
    if good:
        r = good[0]
        finding = (f"The {r['method']} map of {r['encoder']} is coloured by {r['colour']} on a {r['scale']} scale, "
                   f"clip {r['clip']}.")
        return Item(3, "Colour scale", True, finding, "", tuple(rows))
    colours = sorted({str(r["colour"]) for r in rows if r["colour"] is not None})
    if wanted:
        finding = "A map view was recorded, but its projection is no longer in the store."
    elif colours and prop is not None:
        finding = f"Maps of {ctx['dataset']} were recorded coloured by {', '.join(colours)}, not by {prop}."
    else:
        finding = f"No coloured map of {ctx['dataset']} by the chosen encoders has been recorded."
    target = f"colour it by {prop}" if prop else "colour it by a property"
    todo = f"Draw a map on the Projections page and {target}: the page records the colour scale and clip it uses."
    return Item(3, "Colour scale", False, finding, todo, tuple(rows))


def probe_rows(store: Store, keys: Mapping[str, str], prop: str | None) -> list[dict[str, Any]]:
    """Stored probes of ``prop`` through the embeddings in ``keys`` (encoder -> key), newest first."""
    by_key = _by_key(keys)
    rows: list[dict[str, Any]] = []
    for meta, path in read_metas(store, PROBES_KIND):
        name = _named(by_key, meta)
        result = meta.get("result") if isinstance(meta.get("result"), dict) else {}
        if name is None or meta.get("property") != prop or not result:
            continue
        rows.append({"encoder": name, "r2_mean": num(result.get("r2_mean")), "r2_std": num(result.get("r2_std")),
                     "mae_mean": num(result.get("mae_mean")), "split": meta.get("split"), "seed": meta.get("seed"),
                     "n_labels": meta.get("n_labels"), "element": meta.get("element"),
                     "folds": len(result.get("n_test_folds") or []), "test rows": list(result.get("n_test_folds") or []),
                     "n": result.get("n"), "key": path.parent.name, "path": str(path.parent)})
    return rows


def num(x: Any) -> float | None:
    """``x`` as a float, or None when it is not a number or is NaN (JSON-safe)."""
    try:
        value = float(x)
    except (TypeError, ValueError):
        return None
    return None if value != value else value  # NaN (a one-row test fold) becomes None: JSON-safe


def _groups(rows: Sequence[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Probes on identical folds (split, seed, labels, element, test-fold sizes), one row per encoder."""
    groups: dict[tuple[Any, ...], dict[str, dict[str, Any]]] = {}
    for r in rows:
        sig = (r["split"], r["seed"], r["n_labels"], r["element"], tuple(r["test rows"]))
        groups.setdefault(sig, {}).setdefault(r["encoder"], r)  # rows are newest first
    return [list(g.values()) for g in groups.values() if len(g) >= 2]


def _describe(group: Sequence[dict[str, Any]], prop: str) -> str:
    r = group[0]
    labels = f", {r['n_labels']} labels" if r["n_labels"] is not None else ""
    held = f" (held out: {r['element']})" if r["element"] else ""
    scores = ", ".join(f"{g['encoder']} R² {_fmt(g['r2_mean'])} ± {_fmt(g['r2_std'])}" for g in group)
    return f"{prop} probed on the same {r['folds']} {r['split']} fold(s){held}, seed {r['seed']}{labels}: {scores}."


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def _no_probe(number: int, title: str, ctx: Context) -> Item | None:
    if ctx["numeric"]:
        return None
    prop = ctx["property"]
    finding = (f"{prop} is not numeric, so it cannot be probed." if prop else "No property is chosen.")
    return Item(number, title, False, finding, "Choose a numeric property in the sidebar.", ())


def ablation_item(store: Store, probes: Sequence[dict[str, Any]], ctx: Context) -> Item:
    """Item 4: two or more encoders probed on the same folds for the property."""
    title = "One ablation"
    if (item := _no_probe(4, title, ctx)) is not None:
        return item
    groups = _groups(probes)
    if groups:
        def rank(g: list[dict[str, Any]]) -> tuple[bool, int]:
            names = [r["encoder"] for r in g]
            pair = any(n.startswith(PRETRAINED) for n in names) and RANDOM in names
            return pair, len(g)

        best = max(groups, key=rank)  # max keeps the first (newest) among equals
        return Item(4, title, True, _describe(best, ctx["property"]), "", tuple(best))
    chosen = list(ctx["encoders"])
    pretrained = next((n for n in chosen if n.startswith(PRETRAINED)), None)
    pair = [pretrained, RANDOM] if pretrained else list(dict.fromkeys([*chosen, BASELINE]))[:2]
    pair = pair if len(pair) == 2 else [RANDOM, BASELINE]
    todo = (f"Probe {ctx['property']} with two or more encoders on the Probes page, or run `crystalrep probe "
            f"--dataset {ctx['dataset']} --property {ctx['property']} --encoders {','.join(pair)} --split grouped`.")
    finding = (f"{len(probes)} stored probe(s) of {ctx['property']}, but no two encoders on the same folds."
               if probes else f"No stored probe of {ctx['property']} by these encoders.")
    return Item(4, title, False, finding, todo, tuple(probes[:MAX_ROWS]))


def disjoint_item(store: Store, probes: Sequence[dict[str, Any]], ctx: Context) -> Item:
    """Item 5: a grouped or element-split probe beside Magpie on the same folds."""
    title = "Chemistry-disjoint probe with a Magpie baseline"
    if (item := _no_probe(5, title, ctx)) is not None:
        return item
    disjoint = [r for r in probes if r["split"] in DISJOINT_SPLITS]
    groups = [g for g in _groups(disjoint) if any(r["encoder"] == BASELINE for r in g)]
    if groups:
        best = max(groups, key=len)
        return Item(5, title, True, _describe(best, ctx["property"]), "", tuple(best))
    other = next((n for n in ctx["encoders"] if n != BASELINE), RANDOM)
    todo = (f"On the Probes page choose a grouped or element split with Magpie beside {other}, or run "
            f"`crystalrep probe --dataset {ctx['dataset']} --property {ctx['property']} "
            f"--encoders {other},{BASELINE} --split grouped`.")
    has_magpie = any(r["encoder"] == BASELINE for r in disjoint)
    finding = ("Magpie was probed on a chemistry-disjoint split, but no other encoder on the same folds."
               if has_magpie else
               f"{len(disjoint)} chemistry-disjoint probe(s) of {ctx['property']}, none beside a Magpie baseline."
               if disjoint else f"No grouped or element-split probe of {ctx['property']} is stored.")
    return Item(5, title, False, finding, todo, tuple(disjoint[:MAX_ROWS]))
