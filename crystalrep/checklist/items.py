"""The five checklist items, each read from the store's artifacts (see :mod:`crystalrep.checklist.build`).

Items 1 to 3 (encoders, projection, colour scale) live here; items 4 and 5 (probes) in
:mod:`crystalrep.checklist.probe_items`, and the :class:`Item` record with its readers in
:mod:`crystalrep.checklist.evidence`; both are re-exported so this module names all five.
Every function returns an :class:`Item` whose evidence rows hold plain JSON values (keys, values,
file paths), so the checklist exports and re-imports unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crystalrep.analysis.projections import KIND as PROJECTIONS_KIND
from crystalrep.checklist.evidence import (
    BASELINE,
    DISJOINT_SPLITS,
    MAX_ROWS,
    PRETRAINED,
    PROBES_KIND,
    RANDOM,
    Context,
    Item,
    corpus_of,
    encoder_of,
    names_by_key,
    read_metas,
    short,
)
from crystalrep.checklist.probe_items import ablation_item, disjoint_item, num, probe_rows
from crystalrep.embed import EMBEDDINGS_KIND
from crystalrep.store import Store

if TYPE_CHECKING:
    from crystalrep.encoders import Encoder

__all__ = [
    "BASELINE", "DISJOINT_SPLITS", "MAX_ROWS", "PRETRAINED", "PROBES_KIND", "RANDOM", "Context", "Item",
    "ablation_item", "corpus_of", "disjoint_item", "encoders_item", "num", "probe_rows", "projection_item",
    "read_metas", "view_item",
]


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
    by_key = names_by_key(keys)
    rows: list[dict[str, Any]] = []
    for meta, path in read_metas(store, PROJECTIONS_KIND):
        name = encoder_of(by_key, meta)
        if name is None:
            continue
        seed = meta.get("seed")
        complete = (bool(meta.get("method")) and isinstance(meta.get("params"), dict) and bool(meta.get("versions"))
                    and isinstance(seed, int) and not isinstance(seed, bool))
        rows.append({"encoder": name, "method": meta.get("method"), "params": short(meta.get("params")),
                     "seed": seed, "versions": short(meta.get("versions"), " "), "complete": complete,
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
