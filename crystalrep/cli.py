"""The ``crystalrep`` command: datasets, embeddings, diagnostics.

Every command takes ``--json`` for machine-readable output. Bad input exits with code 2 and
one clear line on stderr; progress bars go to stderr so ``--json`` output stays parseable.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any

from crystalrep.datasets import DatasetError
from crystalrep.structures import StructureError

USER_ERRORS = (DatasetError, StructureError, ValueError, FileNotFoundError)


def _progress(desc: str, enabled: bool) -> Callable[[int, int], None] | None:
    """A tqdm-backed progress callback (done, total) on stderr, or None when disabled."""
    if not enabled:
        return None
    from tqdm import tqdm

    state: dict[str, Any] = {}

    def update(done: int, total: int) -> None:
        bar = state.get("bar")
        # a new phase (fetch: bytes, then rows) changes the total or starts again from 0
        if bar is not None and (total != bar.total or done < bar.n):
            bar.close()
            bar = None
        if bar is None:
            bar = state["bar"] = tqdm(total=total, desc=desc, file=sys.stderr, leave=False)
        bar.n = done
        bar.refresh()
        if done >= total:
            bar.close()
            del state["bar"]

    return update


def _emit(args: argparse.Namespace, payload: Any, text: str) -> None:
    if args.json:
        print(json.dumps(payload, indent=2, sort_keys=True, default=str))
    else:
        print(text)


def _report_payload(report: Any) -> dict[str, Any]:
    ds = report.dataset
    return {
        "name": ds.name,
        "format": report.format,
        "rows": len(ds),
        "rejected": [{"row": r.row, "reason": r.reason} for r in report.rejected],
        "properties": {k: {"unit": v.unit, "kind": v.kind} for k, v in ds.properties.items()},
        "fingerprint": ds.fingerprint,
    }


def _report_text(payload: dict[str, Any]) -> str:
    lines = [f"{payload['name']}: {payload['rows']} structures imported ({payload['format']}), "
             f"{len(payload['rejected'])} rejected; properties: {', '.join(payload['properties']) or 'none'}"]
    lines += [f"  rejected {r['row']}: {r['reason']}" for r in payload["rejected"][:50]]
    if len(payload["rejected"]) > 50:
        lines.append(f"  ... and {len(payload['rejected']) - 50} more (use --json for all)")
    return "\n".join(lines)


def cmd_data_import(args: argparse.Namespace) -> None:
    from crystalrep.importers import import_and_save

    report = import_and_save(args.path, name=args.name, overwrite=args.overwrite,
                             progress=_progress("parsing", not args.quiet))
    payload = _report_payload(report)
    _emit(args, payload, _report_text(payload))


def cmd_data_list(args: argparse.Namespace) -> None:
    from crystalrep.datasets import list_datasets

    rows = list_datasets()
    _emit(args, rows, "\n".join(f"{r['name']:24s} {r['n_structures']:>7} {r['source']}" for r in rows) or "no datasets")


def cmd_data_show(args: argparse.Namespace) -> None:
    from crystalrep.datasets import load_dataset

    ds = load_dataset(args.name)
    info = ds.describe()
    text = "\n".join(
        [f"{ds.name}: {len(ds)} structures, {info['n_sites']} sites, {info['n_elements']} elements",
         f"source: {info.get('source', '')}", f"license: {info.get('license', '')}",
         f"fingerprint: {info['fingerprint']}"]
        + [f"  {k} [{v.unit or '-'}] ({v.kind}): {v.description}" for k, v in ds.properties.items()]
    )
    _emit(args, info, text)


def cmd_data_delete(args: argparse.Namespace) -> None:
    from crystalrep.datasets import delete_dataset

    delete_dataset(args.name)
    _emit(args, {"deleted": args.name}, f"deleted {args.name}")


def cmd_data_build_default(args: argparse.Namespace) -> None:
    from crystalrep.sources.default import build_default

    ds = build_default(progress=_progress("building", not args.quiet))
    info = ds.describe()
    _emit(args, info, f"default: {len(ds)} structures written (fingerprint {ds.fingerprint[:12]})")


def cmd_data_fetch(args: argparse.Namespace) -> None:
    from crystalrep.sources.fetch import fetch

    report = fetch(args.name, progress=_progress("downloading", not args.quiet), mirror=args.mirror,
                   overwrite=args.overwrite)
    payload = _report_payload(report)
    _emit(args, payload, _report_text(payload))


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every command."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="machine-readable output on stdout")
    common.add_argument("--quiet", action="store_true", help="no progress bars")
    common.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    parser = argparse.ArgumentParser(prog="crystalrep", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    data = sub.add_parser("data", help="import, list, show, delete, build or fetch datasets")
    dsub = data.add_subparsers(dest="data_command", required=True)
    p = dsub.add_parser("import", parents=[common], help="import CSV (cif column), CIF folder, extxyz or matbench JSON")
    p.add_argument("path")
    p.add_argument("--name", required=True)
    p.add_argument("--overwrite", action="store_true")
    p.set_defaults(func=cmd_data_import)
    dsub.add_parser("list", parents=[common], help="list datasets").set_defaults(func=cmd_data_list)
    for verb, func in (("show", cmd_data_show), ("delete", cmd_data_delete)):
        p = dsub.add_parser(verb, parents=[common], help=f"{verb} a dataset")
        p.add_argument("name")
        p.set_defaults(func=func)
    p = dsub.add_parser("build-default", parents=[common], help="rebuild the built-in default dataset")
    p.set_defaults(func=cmd_data_build_default)
    p = dsub.add_parser("fetch", parents=[common], help="download a public benchmark (checksummed)")
    p.add_argument("name")
    p.add_argument("--overwrite", action="store_true", help="replace an existing dataset of that name")
    p.add_argument("--mirror", metavar="URL", help="base URL laid out like ../shared/data (default: $CRYSTALREP_FETCH_MIRROR)")
    p.set_defaults(func=cmd_data_fetch)

    from crystalrep.pretrain.cli import add_commands as add_pretrain_commands

    add_pretrain_commands(sub, common)
    from crystalrep.cli_analysis import add_commands as add_analysis_commands

    add_analysis_commands(sub, common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit code (0 ok, 1 a check failed, 2 bad input)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        code = args.func(args)  # handlers return None, or an exit code (e.g. a failed check)
    except USER_ERRORS as exc:
        print(f"crystalrep: {str(exc).strip() or type(exc).__name__}", file=sys.stderr)
        return 2
    return int(code or 0)
