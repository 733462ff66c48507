"""``crystalrep data import|list|show|delete|build-default|fetch``: the datasets."""

from __future__ import annotations

import argparse
from typing import Any

from crystalrep.cli.output import emit, progress


def add_commands(subparsers: Any, common_parent: argparse.ArgumentParser) -> None:
    """Register the ``data`` group."""
    data = subparsers.add_parser("data", help="import, list, show, delete, build or fetch datasets")
    dsub = data.add_subparsers(dest="data_command", required=True)
    p = dsub.add_parser("import", parents=[common_parent], help="import CSV (cif column), CIF folder, extxyz or matbench JSON")
    p.add_argument("path")
    p.add_argument("--name", required=True)
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--workers", type=_positive, metavar="N", help="parsing processes on this machine (default: every core)")
    p.add_argument("--ray", nargs="?", const="local", metavar="ADDRESS",
                   help="parse on Ray: a private local Ray without ADDRESS, else the cluster at HOST:PORT")
    p.set_defaults(func=cmd_data_import)
    dsub.add_parser("list", parents=[common_parent], help="list datasets").set_defaults(func=cmd_data_list)
    for verb, func in (("show", cmd_data_show), ("delete", cmd_data_delete)):
        p = dsub.add_parser(verb, parents=[common_parent], help=f"{verb} a dataset")
        p.add_argument("name")
        p.set_defaults(func=func)
    p = dsub.add_parser("build-default", parents=[common_parent], help="rebuild the built-in default dataset")
    p.set_defaults(func=cmd_data_build_default)
    p = dsub.add_parser("fetch", parents=[common_parent], help="download a public benchmark (checksummed)")
    p.add_argument("name")
    p.add_argument("--overwrite", action="store_true", help="replace an existing dataset of that name")
    p.add_argument("--mirror", metavar="URL", help="base URL laid out like ../shared/data (default: $CRYSTALREP_FETCH_MIRROR)")
    p.set_defaults(func=cmd_data_fetch)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text[:20]!r}")
    return value


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
    """``crystalrep data import``: import a structure file or folder as a named dataset, in parallel chunks."""
    from crystalrep.importers.stream import import_streaming

    report = import_streaming(args.path, name=args.name, overwrite=args.overwrite, workers=args.workers,
                              ray=args.ray, progress=progress("importing", not args.quiet))
    payload = _report_payload(report)
    emit(args, payload, _report_text(payload))


def cmd_data_list(args: argparse.Namespace) -> None:
    """``crystalrep data list``: one line per stored dataset."""
    from crystalrep.datasets import list_datasets

    rows = list_datasets()
    lines = [f"{r['name']:24s} {r['n_structures']:>7} {r['source']}" if "error" not in r
             else f"{r['name']:24s} {'BROKEN':>7} {r['error']}" for r in rows]
    emit(args, rows, "\n".join(lines) or "no datasets")


def cmd_data_show(args: argparse.Namespace) -> None:
    """``crystalrep data show``: a dataset's size, columns and provenance."""
    from crystalrep.datasets import load_dataset

    ds = load_dataset(args.name)
    info = ds.describe()
    text = "\n".join(
        [f"{ds.name}: {len(ds)} structures, {info['n_sites']} sites, {info['n_elements']} elements",
         f"source: {info.get('source', '')}", f"license: {info.get('license', '')}",
         f"fingerprint: {info['fingerprint']}"]
        + [f"  {k} [{v.unit or '-'}] ({v.kind}): {v.description}" for k, v in ds.properties.items()]
    )
    emit(args, info, text)


def cmd_data_delete(args: argparse.Namespace) -> None:
    """``crystalrep data delete``: remove a stored dataset."""
    from crystalrep.datasets import delete_dataset

    delete_dataset(args.name)
    emit(args, {"deleted": args.name}, f"deleted {args.name}")


def cmd_data_build_default(args: argparse.Namespace) -> None:
    """``crystalrep data build-default``: rebuild the built-in default dataset."""
    from crystalrep.sources.default import build_default

    ds = build_default(progress=progress("building", not args.quiet))
    info = ds.describe()
    emit(args, info, f"default: {len(ds)} structures written (fingerprint {ds.fingerprint[:12]})")


def cmd_data_fetch(args: argparse.Namespace) -> None:
    """``crystalrep data fetch``: download a public benchmark and check its checksum."""
    from crystalrep.sources.fetch import fetch

    report = fetch(args.name, progress=progress("downloading", not args.quiet), mirror=args.mirror,
                   overwrite=args.overwrite)
    payload = _report_payload(report)
    emit(args, payload, _report_text(payload))
