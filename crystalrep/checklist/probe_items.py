"""Checklist items 4 and 5: ablations and chemistry-disjoint probes, read from the stored probes.

Both items compare encoders only on identical folds (split, seed, labels, held-out element and
test-fold sizes), so a row per encoder in one group is a like-for-like comparison.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from crystalrep.checklist.evidence import (
    BASELINE,
    DISJOINT_SPLITS,
    MAX_ROWS,
    PRETRAINED,
    PROBES_KIND,
    RANDOM,
    Context,
    Item,
    encoder_of,
    names_by_key,
    read_metas,
)
from crystalrep.store import Store


def probe_rows(store: Store, keys: Mapping[str, str], prop: str | None) -> list[dict[str, Any]]:
    """Stored probes of ``prop`` through the embeddings in ``keys`` (encoder -> key), newest first."""
    by_key = names_by_key(keys)
    rows: list[dict[str, Any]] = []
    for meta, path in read_metas(store, PROBES_KIND):
        name = encoder_of(by_key, meta)
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
