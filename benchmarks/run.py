"""Run the stage benchmarks and write ``benchmarks/BENCHMARKS.md``.

Usage: ``python -m benchmarks.run [--only NAME ...] [--quick]``. Each module's rows are kept in
``benchmarks/out/<name>.json`` so that ``--only`` refreshes one section and keeps the others.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import os
import platform
import re
import sys
from pathlib import Path
from typing import Any

from benchmarks import Skipped

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
REPORT = HERE / "BENCHMARKS.md"


def available() -> list[str]:
    # a section name may use hyphens (``knn-scale``); its module uses underscores (``bench_knn_scale.py``)
    return sorted(p.stem.removeprefix("bench_").replace("_", "-") for p in HERE.glob("bench_*.py"))


def machine() -> dict[str, Any]:
    import numpy
    import torch

    cpu = platform.processor() or "unknown"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        names = [ln.split(":", 1)[1].strip() for ln in cpuinfo.read_text().splitlines() if ln.startswith("model name")]
        cpu = names[0] if names else cpu
    return {
        "cores": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "load": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def run_one(name: str, quick: bool) -> dict[str, Any]:
    module = importlib.import_module(f"benchmarks.bench_{name.replace('-', '_')}")
    result: dict[str, Any] = {"name": name, "quick": quick, "machine": machine(), "doc": (module.__doc__ or "").strip()}
    try:
        rows = module.run(quick=quick)
    except Skipped as why:
        return {**result, "skipped": str(why), "rows": [], "summary": []}
    summary = module.summary(rows) if hasattr(module, "summary") else []
    return {**result, "skipped": None, "rows": rows, "summary": summary}


def table(rows: list[dict[str, Any]]) -> list[str]:
    ours = {r["stage"]: r["seconds"] for r in rows if r["kind"] == "ours"}
    lines = ["| stage | implementation | kind | n | seconds | items/s | ratio | note |",
             "|---|---|---|---:|---:|---:|---:|---|"]
    for r in rows:
        base = ours.get(r["stage"])
        if base is None or r["kind"] == "ours":
            ratio = "1.00" if r["kind"] == "ours" else ""
        elif r["kind"] == "peer":
            x = r["seconds"] / base
            ratio = f"ours {x:.1f}× faster" if x >= 1 else f"peer {1 / x:.1f}× faster"
        else:
            ratio = f"ours = {base / r['seconds']:.2f}× floor"
        lines.append(f"| {r['stage']} | {r['impl']} | {r['kind']} | {r['n']} | {r['seconds']:.4f} | "
                     f"{r['n'] / r['seconds']:,.0f} | {ratio} | {r['note']} |")
    return lines


def render(results: list[dict[str, Any]]) -> str:
    lines = ["# crystalrep benchmarks", "",
             "Written by `python -m benchmarks.run`; best of repeats, wall-clock seconds; "
             "`ratio` compares each peer or floor with our implementation of the same stage.", ""]
    for res in results:
        m = res["machine"]
        lines += [f"## {res['name']}" + (" (quick)" if res["quick"] else ""), "", res["doc"], "",
                  f"Machine: {m['cores']} cores, {m['cpu']}; Python {m['python']}, torch {m['torch']}, "
                  f"numpy {m['numpy']}; run {m['date']}, 1-min load average {m.get('load', '?')}.", ""]
        if res["skipped"]:
            lines += [f"Skipped: {res['skipped']}.", ""]
            continue
        lines += table(res["rows"]) + [""] + [f"- {s}" for s in res["summary"]] + [""]
    return "\n".join(lines).rstrip() + "\n"


def old_sections() -> dict[str, str]:
    """The sections of the current BENCHMARKS.md by module name (``## name`` up to the next one)."""
    if not REPORT.is_file():
        return {}
    parts = re.split(r"^## ", REPORT.read_text(), flags=re.M)[1:]
    return {part.split(maxsplit=1)[0]: "## " + part.rstrip() + "\n" for part in parts}


def report(names: list[str]) -> str:
    """BENCHMARKS.md: modules with results in ``out/`` are rendered afresh; the others keep their
    section from the current file (``out/`` is not committed, so a fresh clone keeps what was measured)."""
    old = old_sections()
    head, *_ = render([]).split("\n## ")
    sections = []
    for name in names:
        path = OUT / f"{name}.json"
        if path.is_file():
            sections.append(render([json.loads(path.read_text())]).split("\n## ", 1)[1].join(["## ", ""]))
        elif name in old:
            sections.append(old[name])
    return head.rstrip() + "\n\n" + "\n".join(s.rstrip() + "\n" for s in sections)


def main(argv: list[str] | None = None) -> int:
    names = available()
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=names, metavar="NAME", help=f"one or more of: {', '.join(names)}")
    parser.add_argument("--quick", action="store_true", help="fewer items and repeats (smoke test)")
    args = parser.parse_args(argv)
    from crystalrep.store import atomic_write_json, atomic_write_text

    for name in args.only or names:
        print(f"running {name} ...", file=sys.stderr, flush=True)
        res = run_one(name, args.quick)
        atomic_write_json(OUT / f"{name}.json", res)
        print(render([res]), file=sys.stderr, flush=True)
    atomic_write_text(REPORT, report(names))
    print(f"wrote {REPORT}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
