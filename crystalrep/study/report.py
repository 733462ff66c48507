"""The study's report: ``report.json`` + ``report.md`` in the store (kind ``"study"``) and ``--out``.

:func:`load_report` is what a page calls: the newest full report (or the newest smoke report
when no full one exists), with its Markdown under ``"markdown"``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from crystalrep.store import Store, atomic_write_text, content_key

__all__ = ["KIND", "load_report", "render_markdown", "save_report"]

KIND = "study"
JSON_FILE, MD_FILE = "report.json", "report.md"


def _plain(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    return obj


def _num(value: float | None) -> str:
    return "–" if value is None or not math.isfinite(value) else f"{value:.4g}"


def _pm(mean: float, std: float) -> str:
    if not math.isfinite(mean):
        return "–"
    digits = 3 if abs(mean) < 10 else 1
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def _results_tables(report: dict[str, Any]) -> list[str]:
    table = report["table"]
    inits = ["random", *report["plan"]["tasks"]]
    lines = []
    for prop in report["evaluation_sets"]:
        lines += ["", f"### {prop['label']} — test MAE in {prop['unit']} (mean ± std over seeds × folds)", "",
                  "| evaluation | backbone | split | N | " + " | ".join(inits) + " |",
                  "|---|---|---|---|" + "---|" * len(inits)]
        mine = [r for r in table if r["property"] == prop["label"]]
        keys = sorted({(r["evaluation"], r["backbone"], r["split"], r["n"]) for r in mine},
                      key=lambda k: (k[0], k[1], k[2], k[3] or 10**9))
        for key in keys:
            cells = {r["init"]: _pm(r["mae_mean"], r["mae_std"]) for r in mine
                     if (r["evaluation"], r["backbone"], r["split"], r["n"]) == key}
            n = "all" if key[3] == 0 else str(key[3])
            lines.append(f"| {key[0]} | {key[1]} | {key[2]} | {n} | " + " | ".join(cells.get(i, "–") for i in inits) + " |")
    return lines


def render_markdown(report: dict[str, Any]) -> str:
    """The report as Markdown: verdict, command, budget, corpus, pretraining, result tables."""
    verdict, plan, budget = report["verdict"], report["plan"], report["budget"]
    c = verdict["counts"]
    kind = "smoke run (tiny; not a result)" if report["smoke"] else "full run"
    lines = [f"# CDSSL pretraining study — {kind}", "",
             f"**Verdict:** SSL beats random init beyond the spread in **{c['better']} of {c['total']}** settings; "
             f"worse beyond the spread in {c['worse']}; within the spread in {c['within']}.", "",
             f"Rule: {verdict['rule']}.", "", f"Command: `{report['command']}`  ", f"Created: {report['created']}", "",
             "## Compute budget", "",
             f"Budget {plan['budget_minutes']:g} min on {report['machine']['cpus']} CPU cores "
             f"({plan['workers']} pretraining jobs at a time, then {plan['workers']} evaluation processes; one torch thread each). "
             f"Planned {budget['estimate'].get('total_minutes', float('nan')):.1f} min; took "
             f"{budget['actual_minutes']['total']:.1f} min (pretraining {budget['actual_minutes']['pretrain']:.1f}, "
             f"evaluation {budget['actual_minutes']['evaluate']:.1f}; corpus and imports "
             f"{budget['actual_minutes']['prepare']:.1f}, cached after the first run).", "",
             "Measured throughput (structures per wall second; per CPU second in brackets): "
             + ", ".join(f"{k} {v:.0f} ({plan['throughput'].get(k + '_cpu', v):.0f})" for k, v in plan["throughput"].items()
                         if not k.endswith(("_s", "_cpu")))
             + f"; machine load average {report['machine']['load_average_at_start']} at the start.", "",
             f"Pretraining: {plan['epochs']} epoch(s) per job, batch {plan['pretrain_options'].get('batch_size')}. "
             f"Fine-tune: at most {plan['finetune']['max_steps']} steps of {plan['finetune']['batch_size']}, "
             f"{plan['finetune']['head']} head, early stopping every {plan['finetune']['eval_every']} steps "
             f"(patience {plan['finetune']['patience']}) on {plan['finetune']['val_fraction']:.0%} of the training rows; "
             f"on {plan['finetune_folds']} of {plan['n_splits']} outer folds per seed (probes on all {plan['n_splits']}).", "",
             "## Corpus", "", f"{report['corpus']['n']} crystals (dataset `{report['corpus']['dataset']}`"
             + (f", at most {plan['corpus_cap']} used per job" if plan["corpus_cap"] else "") + f"). Same crystal = {report['corpus']['rule']}.", "",
             "| source | rows | repeats an evaluation crystal | repeats an earlier source | kept |", "|---|---|---|---|---|"]
    lines += [f"| {s['source']} | {s['rows']} | {s['evaluation_repeats']} | {s['duplicates']} | {s['kept']} |"
              for s in report["corpus"]["sources"]]
    lines += ["", "## Pretraining jobs", "", "| task | seed | job | epochs | final loss | val loss | training minutes |",
              "|---|---|---|---|---|---|---|"]
    lines += [f"| {j['task']} | {j['seed']} | `{j['job_id']}`{' (reused)' if j.get('reused') else ''} | {j['epochs']} | "
              f"{_num(j['final_loss'])} | {_num(j['final_val_loss'])} | {j['seconds'] / 60:.1f} |" for j in report["pretraining"]]
    lines += ["", "## Results"] + _results_tables(report)
    lines += ["", "## Verdict by dimension", ""]
    for dim, groups in verdict["by"].items():
        parts = ", ".join(f"{_group_label(dim, k)}: {v['better']}/{v['total']} better, {v['worse']} worse"
                          for k, v in sorted(groups.items(), key=lambda kv: _group_order(dim, kv[0])))
        lines.append(f"- **{dim}** — {parts}")
    lines += ["", "## Notes", ""] + [f"- {note}" for note in report["notes"]]
    return "\n".join(lines) + "\n"


def _group_label(dim: str, key: object) -> str:
    """A verdict group's name; training size 0 is the study's code for "every training row"."""
    return "all" if dim == "n" and str(key) == "0" else str(key)


def _group_order(dim: str, key: object) -> tuple[float, str]:
    """Training sizes in increasing order with "all" (0) last; other dimensions alphabetically."""
    if dim == "n" and str(key).isdigit():
        return (int(str(key)) or float("inf"), "")
    return (0.0, str(key))


def save_report(report: dict[str, Any], *, store: Store | None = None, out: str | Path | None = None) -> dict[str, str]:
    """Write the report into the store (and into ``out`` when given); returns where."""
    store = store if store is not None else Store()
    plain = _plain(report)
    text = json.dumps(plain, indent=2, sort_keys=True, allow_nan=True) + "\n"
    markdown = render_markdown(plain)
    key = content_key({"study": "cdssl", "created": plain["created"], "plan": plain["plan"]})
    folder = store.save_files(KIND, key, {JSON_FILE: text.encode(), MD_FILE: markdown.encode()}, replace=True)
    where = {"store": str(folder)}
    if out is not None:
        atomic_write_text(Path(out) / JSON_FILE, text)
        atomic_write_text(Path(out) / MD_FILE, markdown)
        where["out"] = str(Path(out))
    return where


def load_report(*, store: Store | None = None, smoke: bool | None = None) -> dict[str, Any] | None:
    """The newest study report in the store, with its Markdown under ``"markdown"``.

    Args:
        store: Where to look (default ``$CRYSTALREP_HOME``).
        smoke: ``True``/``False`` for only smoke/full reports; ``None`` prefers a full report.

    Returns:
        The report dict, or ``None`` when the store holds none.
    """
    store = store if store is not None else Store()
    found = []
    for key in store.keys(KIND):
        files = store.load_files(KIND, key, required=(JSON_FILE, MD_FILE))
        if files is None:
            continue
        report = json.loads(files[JSON_FILE])
        if smoke is None or bool(report.get("smoke")) == smoke:
            found.append({**report, "markdown": files[MD_FILE].decode()})
    if not found:
        return None
    return max(found, key=lambda r: (not r.get("smoke"), r.get("created", "")) if smoke is None else r.get("created", ""))
