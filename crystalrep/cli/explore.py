"""``crystalrep probe | neighbours | precision | cluster``: what an embedding knows, finds and groups.

Registered by :func:`crystalrep.cli.embeddings.add_commands`; shares its option parsers and
output helpers. Heavy modules are imported inside the handlers.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from crystalrep.analysis.clusters import CLUSTERERS
from crystalrep.analysis.retrieval import METRICS
from crystalrep.analysis.splits import SPLITS
from crystalrep.cli.embeddings import embedding
from crystalrep.cli.output import emit, fmt, ints, names, progress, records

TOP_CLUSTERS = 20  # clusters listed in the text output (all of them in --json)


def add_commands(subparsers: Any, common_parent: argparse.ArgumentParser) -> None:
    """Register ``probe``, ``neighbours``, ``precision`` and ``cluster``."""
    p = subparsers.add_parser("probe", parents=[common_parent], help="ridge probe of a property, several encoders, same folds")
    p.add_argument("--dataset", required=True)
    p.add_argument("--property", required=True, help="numeric property column")
    p.add_argument("--encoders", required=True, help="comma list, e.g. cgcnn-random,magpie")
    p.add_argument("--split", default="grouped", choices=tuple(SPLITS),
                   help="outer folds: random, grouped by chemical system, or leave one element out")
    p.add_argument("--element", help="element held out by --split element")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--n-splits", type=int, default=5)
    p.add_argument("--n-labels", type=int, help="training labels per fold (default: all)")
    p.add_argument("--sizes", help="comma list of training sizes, e.g. 50,100,200: a learning curve")
    p.add_argument("--curve", help="comma list of training sizes: a learning curve as well as the all-label probe "
                                   "(what the Probes page shows)")
    p.set_defaults(func=cmd_probe)

    p = subparsers.add_parser("neighbours", parents=[common_parent], help="nearest dataset crystals to a query file")
    p.add_argument("--dataset", required=True)
    p.add_argument("--encoder", required=True)
    p.add_argument("--query", required=True, help="CIF, POSCAR or pymatgen JSON file of one crystal")
    p.add_argument("-k", type=int, default=10)
    p.add_argument("--metric", default="cosine", choices=METRICS)
    p.set_defaults(func=cmd_neighbours)

    p = subparsers.add_parser("precision", parents=[common_parent],
                              help="precision@k of every label (and a property's spread ratio), several encoders")
    p.add_argument("--dataset", required=True)
    p.add_argument("--encoders", required=True, help="comma list, e.g. cgcnn-random,magpie")
    p.add_argument("-k", type=int, default=10)
    p.add_argument("--metric", default="cosine", choices=METRICS)
    p.add_argument("--property", help="numeric property whose spread among neighbours is reported")
    p.set_defaults(func=cmd_precision)

    p = subparsers.add_parser("cluster", parents=[common_parent], help="clusters and outliers of an embedding")
    p.add_argument("--dataset", required=True)
    p.add_argument("--encoder", required=True)
    p.add_argument("--method", default="hdbscan", choices=tuple(CLUSTERERS))
    p.add_argument("--min-cluster-size", type=int, default=15, help="hdbscan")
    p.add_argument("--min-samples", type=int, help="hdbscan (default: --min-cluster-size)")
    p.add_argument("--pca-dims", type=int, help="hdbscan: cluster this many principal components; 0: every dimension "
                   "(default: 10 above 20,000 rows, where HDBSCAN on a 64-d embedding takes minutes per 50k rows)")
    p.add_argument("--k-min", type=int, default=2, help="kmeans: smallest k scored by silhouette")
    p.add_argument("--k-max", type=int, default=12, help="kmeans: try k = K_MIN..K_MAX, keep the best silhouette")
    p.add_argument("--k", type=int, help="kmeans: use this k (every k of the range is still scored)")
    p.add_argument("--seed", type=int, default=0, help="kmeans")
    p.add_argument("--label", default="spacegroup",
                   help="column the clusters are compared with (AMI, cross-tab); empty: no comparison")
    p.add_argument("--sweep", help="hdbscan min_cluster_size values, e.g. 5,10,25,50: clusters and noise per size")
    p.add_argument("--top", type=float, default=0.01, help="fraction flagged as novel (distance to 10th neighbour)")
    p.set_defaults(func=cmd_cluster)


def cmd_probe(args: argparse.Namespace) -> None:
    """``crystalrep probe``: ridge probes of a property through several encoders on the same folds."""
    from crystalrep.analysis.probes import compare, learning_curve
    from crystalrep.datasets import load_dataset
    from crystalrep.encoders import get_encoder

    dataset, encoders = load_dataset(args.dataset), names(args.encoders, "--encoders")
    for name in encoders:
        get_encoder(name)  # every name checked before any embedding is computed
    common = {"split": args.split, "seed": args.seed, "n_splits": args.n_splits, "element": args.element,
              "progress": progress("probing", not args.quiet)}
    if args.sizes or args.curve:
        if args.n_labels is not None:
            raise ValueError("--sizes/--curve and --n-labels exclude each other (a learning curve sets the labels).")
        if args.sizes and args.curve:
            raise ValueError("--sizes and --curve exclude each other (--curve adds a curve to the all-label probe).")
    _step(args, f"probing {args.property} with {len(encoders)} encoder(s), {args.split} split")
    if args.sizes:
        table = learning_curve(dataset, args.property, encoders, sizes=ints(args.sizes, "--sizes"), **common)
    else:
        table = compare(dataset, args.property, encoders, n_labels=args.n_labels, **common)
    curve = None
    if args.curve:
        _step(args, f"learning curve of {args.property} at N = {args.curve}")
        curve = learning_curve(dataset, args.property, encoders, sizes=ints(args.curve, "--curve"),
                               **{**common, "progress": progress("learning curve", not args.quiet)})
    unit = dataset.properties[args.property].unit
    rows = records(table)
    skipped = (curve if curve is not None else table).attrs.get("skipped_sizes", [])
    payload = {"dataset": dataset.name, "property": args.property, "unit": unit, "split": args.split,
               "seed": args.seed, "element": args.element, "rows": rows, "skipped_sizes": skipped,
               "curve": records(curve) if curve is not None else None}
    lines = [f"{args.property} [{unit or '-'}] on {dataset.name}, {args.split} split, seed {args.seed}",
             f"{'encoder':24s} {'labels':>7s} {'R²':>15s} {'MAE':>21s} {'n':>7s} {'n_train':>8s}"]
    for r in rows:
        lines.append(f"{r['encoder']:24s} {r['n_labels'] or 'all'!s:>7s} "
                     f"{fmt(r['r2_mean']):>7s} ± {fmt(r['r2_std']):5s} {fmt(r['mae_mean'], '.4g'):>10s} ± "
                     f"{fmt(r['mae_std'], '.2g'):8s} {r['n']:>7d} {r['n_train']:>8.1f}")
    for r in payload["curve"] or []:
        lines.append(f"  curve N = {r['n_labels']:>5d} {r['encoder']:24s} R² {fmt(r['r2_mean'])} ± {fmt(r['r2_std'])}")
    if skipped:
        available = (curve if curve is not None else table).attrs.get("available")
        lines.append(f"sizes {skipped} skipped: only {available} training labels per fold")
    emit(args, payload, "\n".join(lines))


def cmd_neighbours(args: argparse.Namespace) -> None:
    """``crystalrep neighbours``: the dataset crystals nearest to a query file."""
    from crystalrep.analysis.retrieval import neighbours_of, read_query
    from crystalrep.datasets import load_dataset

    structure = read_query(args.query)  # a broken file fails before any model loads
    dataset, _, _ = embedding(args, load_dataset(args.dataset))  # warms the cache with a progress bar
    table = neighbours_of(structure, dataset, args.encoder, k=args.k, metric=args.metric)
    payload = {"query": args.query, "formula": structure.composition.reduced_formula, "dataset": dataset.name,
               "encoder": args.encoder, "metric": args.metric, "neighbours": records(table)}
    shown = table[["rank", "id", "formula", "spacegroup", "distance"]].to_string(index=False, float_format="{:.4g}".format)
    emit(args, payload, f"{len(table)} nearest to {args.query} ({payload['formula']}) in {dataset.name} "
                         f"by {args.encoder}, {args.metric} distance\n{shown}")


def cmd_precision(args: argparse.Namespace) -> None:
    """``crystalrep precision``: each encoder's precision@k per label against chance, cached in the store.

    The Retrieval page reads the same store entries (:mod:`crystalrep.analysis.retrieval.report_cache`).
    """
    from crystalrep.analysis.retrieval.report_cache import report_cached
    from crystalrep.datasets import load_dataset
    from crystalrep.encoders import get_encoder

    dataset, encoders = load_dataset(args.dataset), names(args.encoders, "--encoders")
    if args.property is not None and args.property not in dataset.property_names("numeric"):
        raise ValueError(f"dataset {dataset.name!r} has no numeric property {args.property!r}; choose one of "
                         f"{', '.join(dataset.property_names('numeric')) or 'none'}.")
    for name in encoders:
        get_encoder(name)  # every name checked before any search
    out, lines = [], [f"precision@{args.k} on {dataset.name}, {args.metric} distance"]
    for i, name in enumerate(encoders):
        _step(args, f"step {i + 1} of {len(encoders)}: precision@{args.k} of {name} on {len(dataset):,} crystals")
        embedding(argparse.Namespace(**{**vars(args), "encoder": name}), dataset)  # a progress bar if missing
        report, spread, cached = report_cached(dataset, name, k=args.k, metric=args.metric, prop=args.property,
                                               progress=progress(f"searching ({name})", not args.quiet))
        out.append({"encoder": name, "rows": records(report), "spread": spread, "cache_hit": cached,
                    "search": report.attrs["search"], "queries": report.attrs["queries"]})
        shown = ", ".join(f"{r.label} {fmt(r.precision)} (chance {fmt(r.chance)})" for r in report.itertuples())
        lines.append(f"{name:24s} {shown}" + (f", spread ratio {fmt(spread['ratio'])}" if spread else ""))
    emit(args, {"dataset": dataset.name, "k": args.k, "metric": args.metric, "property": args.property,
                "encoders": out}, "\n".join(lines))


def _step(args: argparse.Namespace, text: str) -> None:
    """One progress line on stderr (a background task's log shows the last one); silent with ``--quiet``."""
    if not args.quiet:
        print(text, file=sys.stderr, flush=True)


def cmd_cluster(args: argparse.Namespace) -> None:
    """``crystalrep cluster``: clusters and outliers of an embedding, compared with a label column.

    Every result is cached in the store (:mod:`crystalrep.analysis.cluster_cache`) under the same
    keys the Clusters page reads, so the page shows what a background run of this command computed.
    """
    from crystalrep.analysis import cluster_cache, clusters
    from crystalrep.datasets import load_dataset
    from crystalrep.plots.clusters import label_columns

    dataset = load_dataset(args.dataset)
    if args.label and args.label not in dataset.table.columns:
        raise ValueError(f"dataset {dataset.name!r} has no column {args.label!r}; choose one of "
                         f"{', '.join(map(str, dataset.table.columns))}.")
    sizes = ints(args.sweep, "--sweep") if args.sweep else []
    _, X, meta = embedding(args, dataset)
    compare = label_columns(dataset)  # the Clusters page's "compare with" choices: their AMI is stored for it
    total = 2 + len(sizes) + bool(compare)
    pca_dims = "auto" if args.pca_dims is None else args.pca_dims
    if args.pca_dims is not None and args.pca_dims < 0:
        raise ValueError(f"--pca-dims must be 0 (every dimension) or a number of components, got {args.pca_dims}.")
    if args.method == "hdbscan":
        dims = cluster_cache.resolved_pca_dims(pca_dims, len(X))
        space = f" (first {dims} principal components)" if dims and dims < X.shape[1] else ""
        _step(args, f"step 1 of {total}: HDBSCAN (min_cluster_size {args.min_cluster_size}) on {len(X):,} rows{space}")
    else:
        _step(args, f"step 1 of {total}: k-means, k = {args.k_min}..{args.k_max}, on {len(X):,} rows")
    result, cached = cluster_cache.clusters_cached(
        X, meta["key"], method=args.method, min_cluster_size=args.min_cluster_size, min_samples=args.min_samples,
        k=args.k, k_range=range(args.k_min, args.k_max + 1), seed=args.seed, pca_dims=pca_dims)
    _step(args, f"step 2 of {total}: novelty (distance to the 10th neighbour) of {len(X):,} rows")
    nov, _ = cluster_cache.novelty_cached(X, meta["key"], top=args.top)

    def report(done: int, n: int) -> None:
        if done < n:
            _step(args, f"step {3 + done} of {total}: HDBSCAN sweep of min_cluster_size "
                        f"{', '.join(map(str, sizes))} ({done} of {n} done)")

    known = {args.min_cluster_size: result} if args.method == "hdbscan" else None  # that size is already clustered
    sweep = cluster_cache.sweep_cached(X, meta["key"], sizes, min_samples=args.min_samples, pca_dims=pca_dims,
                                       progress=report, known=known)
    if compare:
        _step(args, f"step {total} of {total}: agreement (adjusted mutual information) with {', '.join(compare)}")
        for column in compare:
            cluster_cache.ami_cached(result.labels, dataset.table[column])
    truth = dataset.table[args.label] if args.label else None
    ami = cluster_cache.ami_cached(result.labels, truth)[0] if truth is not None else None
    crosstab = {}
    if truth is not None:
        crosstab = {str(c): {str(k): int(v) for k, v in row[row > 0].sort_values(ascending=False).items()}
                    for c, row in clusters.crosstab(result.labels, truth).iterrows()}
    novel = sorted(map(int, nov.flagged.nonzero()[0]), key=lambda i: -nov.scores[i])
    ids = dataset.ids
    payload = {**result.to_dict(labels=True), "dataset": dataset.name, "encoder": args.encoder,
               "embedding_key": meta["key"], "cache_hit": cached, "label": args.label or None, "ami": ami,
               "crosstab": crosstab,
               "novelty": {"ids": [ids[i] for i in novel], "scores": [float(nov.scores[i]) for i in novel],
                           "threshold": nov.threshold, "k": nov.k, "metric": nov.metric},
               "sweep": records(sweep) if sizes else None}
    lines = [f"{result.method} on {args.encoder} of {dataset.name} ({len(X)} rows, "
             f"{', '.join(f'{k}={v}' for k, v in result.params.items())})",
             f"clusters {result.n_clusters}, noise {result.noise_fraction:.1%}, silhouette {fmt(result.silhouette)}"
             + (f", AMI vs {args.label} {fmt(ami)}" if ami is not None else "")]
    for c, counts in list(crosstab.items())[:TOP_CLUSTERS]:
        top = ", ".join(f"{k} {v}" for k, v in list(counts.items())[:3])
        lines.append(f"  cluster {c:>3s} ({sum(counts.values())} rows): {top}")
    if len(crosstab) > TOP_CLUSTERS:
        lines.append(f"  ... {len(crosstab) - TOP_CLUSTERS} more clusters (use --json)")
    for row in payload["sweep"] or []:
        lines.append(f"  min_cluster_size {row['min_cluster_size']:>4d}: {row['n_clusters']} clusters, "
                     f"noise {row['noise_fraction']:.1%}")
    lines.append(f"most novel (distance to neighbour {nov.k}): " + ", ".join(payload["novelty"]["ids"][:10]))
    emit(args, payload, "\n".join(lines))
