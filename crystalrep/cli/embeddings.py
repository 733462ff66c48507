"""``crystalrep embed | check invariance | project | sweep``: embeddings and the maps drawn from them.

Every handler parses its options, makes one library call and prints the result; heavy modules
(encoders, torch, umap) are imported inside the handlers so ``crystalrep --help`` stays fast.
The exploratory commands (probe, neighbours, cluster) live in :mod:`crystalrep.cli.explore`.
"""

from __future__ import annotations

import argparse
from typing import Any

from crystalrep.analysis.projections import PROJECTIONS
from crystalrep.cli.output import emit, fmt, ints, names, pair, parse_value, progress, records
from crystalrep.embed.shards import DEFAULT_BATCH_ATOMS, DEFAULT_SHARD_ROWS

REQUIRED_INVARIANCES = ("rotation", "translation", "permutation", "supercell")
_EMBED_FIELDS = ("encoder_id", "dataset", "n", "dim", "device", "seconds", "structures_per_second", "key", "cache_hit",
                 "shards", "shards_resumed", "engine", "workers", "model_loads")


def add_commands(subparsers: Any, common_parent: argparse.ArgumentParser) -> None:
    """Register ``embed``, ``check``, ``project``, ``sweep``, ``probe``, ``neighbours``, ``cluster``."""
    p = subparsers.add_parser("embed", parents=[common_parent], help="embed a dataset with one or more encoders (cached)")
    p.add_argument("--dataset", required=True)
    p.add_argument("--encoder", required=True, help="encoder id, or a comma list (a,b,c); see `crystalrep.encoders`")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--batch-size", type=int, default=64, help="at most this many crystals per batch")
    p.add_argument("--batch-atoms", type=int, default=DEFAULT_BATCH_ATOMS, help="at most this many atoms per batch")
    p.add_argument("--shard-rows", type=int, help="rows per shard (default: the dataset's own shards, at most "
                   f"{DEFAULT_SHARD_ROWS} rows); finished shards are kept, so a killed run resumes from them")
    p.add_argument("--ray", nargs="?", const="local", metavar="ADDRESS",
                   help="fan the shards out to Ray workers: the cluster at ADDRESS (HOST:PORT), or, bare, "
                        "a Ray started on this machine for the run")
    p.add_argument("--workers", type=int, help="with --ray: number of workers (default one per GPU, else per CPU)")
    p.add_argument("--recompute", action="store_true", help="ignore a cached embedding and overwrite it")
    p.set_defaults(func=cmd_embed)

    check = subparsers.add_parser("check", help="diagnostics of an encoder")
    csub = check.add_subparsers(dest="check_command", required=True)
    p = csub.add_parser("invariance", parents=[common_parent], help="embedding change under symmetry operations",
                        description="Relative embedding change under rotation, origin shift, atom permutation, "
                                    "supercell and thermal noise. Exit code 1 when any of rotation, translation, "
                                    "permutation or supercell exceeds the tolerance (thermal is expected to change).")
    _dataset_encoder(p)
    p.add_argument("--n", type=int, default=50, help="structures sampled from the dataset")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.set_defaults(func=cmd_check_invariance)

    p = subparsers.add_parser("project", parents=[common_parent], help="2-D map of an embedding (cached)")
    _dataset_encoder(p)
    p.add_argument("--method", required=True, choices=tuple(PROJECTIONS))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                   help="method parameter (repeatable), e.g. n_neighbors=30; values parsed as int/float/bool/str")
    p.add_argument("--out", help="write the coordinates as CSV (id, x, y)")
    p.set_defaults(func=cmd_project)

    p = subparsers.add_parser("sweep", parents=[common_parent], help="projection grid × seeds: trustworthiness, stability")
    _dataset_encoder(p)
    p.add_argument("--method", required=True, choices=tuple(PROJECTIONS))
    p.add_argument("--seeds", default="0,1,2", help="comma list of seeds run in every cell")
    p.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2",
                   help="parameter values (repeatable), e.g. n_neighbors=5,15,50; cells are the product")
    p.add_argument("--n-jobs", type=int, default=1)
    p.set_defaults(func=cmd_sweep)



def _dataset_encoder(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", required=True)
    p.add_argument("--encoder", required=True)


def _embed_line(r: dict[str, Any]) -> str:
    timing = (f"{fmt(r.get('seconds'), '.2f')} s, {fmt(r.get('structures_per_second'), '.1f')} structures/s"
              f" on {r.get('device')}")
    how = f"cache hit (first computed in {timing})" if r["cache_hit"] else f"computed in {timing}"
    if not r["cache_hit"] and r.get("shards_resumed"):
        how += f", {r['shards_resumed']} of {r['shards']} shards resumed from an interrupted run"
    if not r["cache_hit"] and r.get("engine") == "ray":
        how += f", on Ray with {r['workers']} workers"
    return f"{r['encoder']} on {r['dataset']}: {r['n']} × {r['dim']}, key {r['key']}, {how}"


def cmd_embed(args: argparse.Namespace) -> None:
    """``crystalrep embed``: embed a dataset with one or more encoders (cached)."""
    from crystalrep.datasets import load_dataset
    from crystalrep.embed import embed_dataset
    from crystalrep.encoders import get_encoder

    if args.workers is not None and args.ray is None:
        raise ValueError("--workers needs --ray (the shards of a local run are embedded one after the other).")
    dataset = load_dataset(args.dataset)
    encoders = [get_encoder(n) for n in names(args.encoder, "--encoder")]  # every name checked before any work
    rows = []
    for enc in encoders:
        _, meta = embed_dataset(dataset, enc, device=args.device, batch_size=args.batch_size, recompute=args.recompute,
                                batch_atoms=args.batch_atoms, shard_rows=args.shard_rows, ray=args.ray,
                                workers=args.workers, progress=progress(f"embedding ({enc.name})", not args.quiet))
        row = {k: meta.get(k) for k in _EMBED_FIELDS}
        rows.append({"encoder": row.pop("encoder_id"), **row})
    emit(args, rows, "\n".join(_embed_line(r) for r in rows))


def cmd_check_invariance(args: argparse.Namespace) -> int:
    """``crystalrep check invariance``: embedding change under symmetry operations.

    Returns:
        Exit code: 1 if a required invariance fails, else 0.
    """
    from crystalrep.analysis.diagnostics import invariance_for_dataset
    from crystalrep.datasets import load_dataset
    from crystalrep.encoders import get_encoder

    encoder, dataset = get_encoder(args.encoder), load_dataset(args.dataset)
    result = invariance_for_dataset(encoder, dataset, n=args.n, seed=args.seed, device=args.device)
    failed = [t for t in REQUIRED_INVARIANCES if result["transforms"].get(t, {}).get("passed") is False]
    lines = [f"invariance of {result['encoder']} on {dataset.name} (n={result['n']}, seed {result['seed']}, "
             f"tolerance {result['tolerance']:.0e}, relative change)",
             f"{'transform':12s} {'max':>10s} {'median':>10s}  passed"]
    for name, row in result["transforms"].items():
        passed = "yes" if row["passed"] else "NO" if row["passed"] is False else "n/a (expected non-zero)"
        lines.append(f"{name:12s} {row['max']:10.2e} {row['median']:10.2e}  {passed}")
    lines.append(f"FAILED: {', '.join(failed)}" if failed else "all invariances hold")
    emit(args, {**result, "failed": failed, "passed": not failed}, "\n".join(lines))
    return 1 if failed else 0


def embedding(args: argparse.Namespace, dataset: Any = None) -> tuple[Any, Any, dict[str, Any]]:
    """``(dataset, X, meta)``: ``args.dataset`` (unless given loaded) and its cached ``args.encoder`` embedding."""
    from crystalrep.datasets import load_dataset
    from crystalrep.embed import embed_dataset
    from crystalrep.encoders import get_encoder

    encoder = get_encoder(args.encoder)
    dataset = dataset if dataset is not None else load_dataset(args.dataset)
    X, meta = embed_dataset(dataset, encoder, progress=progress(f"embedding ({encoder.name})", not args.quiet))
    return dataset, X, meta


def cmd_project(args: argparse.Namespace) -> None:
    """``crystalrep project``: a cached 2-D map of an embedding, optionally written as CSV."""
    from crystalrep.analysis.projections import make_spec, project_cached

    raw = dict(pair(item, "--param") for item in args.param)
    params = {k: parse_value(v) for k, v in raw.items()}
    make_spec(args.method, params, args.seed)  # a bad --param fails before the embedding is computed
    dataset, X, meta = embedding(args)
    proj = project_cached(X, meta["key"], method=args.method, params=params, seed=args.seed)
    payload = {**proj.meta(), "cache_hit": proj.from_cache, "encoder": args.encoder, "dataset": dataset.name,
               "embedding_key": meta["key"], "out": args.out}
    if args.out:
        import pandas as pd

        pd.DataFrame({"id": dataset.ids, "x": proj.coords[:, 0], "y": proj.coords[:, 1]}).to_csv(args.out, index=False)
    shown = ", ".join(f"{k}={v}" for k, v in proj.params.items()) or "defaults"
    text = (f"{proj.method} of {args.encoder} on {dataset.name} ({len(proj.coords)} rows): {shown}, seed {proj.seed}, "
            f"{fmt(proj.seconds, '.2f')} s ({'cache hit' if proj.from_cache else 'computed'})"
            + (f"\ncoordinates written to {args.out}" if args.out else ""))
    emit(args, payload, text)


def cmd_sweep(args: argparse.Namespace) -> None:
    """``crystalrep sweep``: trustworthiness and stability over a projection grid × seeds."""
    from crystalrep.analysis.sweeps import sweep

    seeds = ints(args.seeds, "--seeds")
    grid: dict[str, list[Any]] = {}
    for item in args.grid:
        key, values = pair(item, "--grid")
        grid[key] = [parse_value(v) for v in names(values, "--grid")]
    dataset, X, meta = embedding(args)
    result = sweep(X, method=args.method, grid=grid, seeds=seeds, embedding_key=meta["key"], n_jobs=args.n_jobs,
                   progress=progress("projecting", not args.quiet))
    table = result.table
    payload = {"method": result.method, "dataset": dataset.name, "encoder": args.encoder, "seeds": result.seeds,
               "grid": grid, "sample_size": result.sample_size, "k": result.k,
               "cells": records(table), "runs": records(result.runs)}
    lines = [f"{result.method} sweep of {args.encoder} on {dataset.name}: {len(table)} cells × {len(seeds)} seeds "
             f"(k={result.k}, {result.sample_size} rows scored; stability = mean Procrustes disparity, lower is steadier)",
             "  ".join([*(f"{g:>12s}" for g in grid), f"{'trustworthiness':>16s}", f"{'stability':>10s}",
                        f"{'knn overlap':>12s}", f"{'seconds':>8s}"])]
    for row in payload["cells"]:
        lines.append("  ".join([*(f"{row[g]!s:>12s}" for g in grid), f"{fmt(row['trustworthiness']):>16s}",
                                f"{fmt(row['stability'], '.4f'):>10s}", f"{fmt(row['knn_overlap']):>12s}",
                                f"{fmt(row['seconds'], '.1f'):>8s}"]))
    emit(args, payload, "\n".join(lines))
