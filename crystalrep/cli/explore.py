"""``crystalrep probe | neighbours | cluster``: what an embedding knows, finds and groups.

Registered by :func:`crystalrep.cli.embeddings.add_commands`; shares its option parsers and
output helpers. Heavy modules are imported inside the handlers.
"""

from __future__ import annotations

import argparse
from typing import Any

from crystalrep.analysis.clusters import CLUSTERERS
from crystalrep.analysis.retrieval import METRICS
from crystalrep.analysis.splits import SPLITS
from crystalrep.cli.embeddings import embedding
from crystalrep.cli.output import emit, fmt, ints, names, progress, records

TOP_CLUSTERS = 20  # clusters listed in the text output (all of them in --json)


def add_commands(subparsers: Any, common_parent: argparse.ArgumentParser) -> None:
    """Register ``probe``, ``neighbours`` and ``cluster``."""
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
    p.set_defaults(func=cmd_probe)

    p = subparsers.add_parser("neighbours", parents=[common_parent], help="nearest dataset crystals to a query file")
    p.add_argument("--dataset", required=True)
    p.add_argument("--encoder", required=True)
    p.add_argument("--query", required=True, help="CIF, POSCAR or pymatgen JSON file of one crystal")
    p.add_argument("-k", type=int, default=10)
    p.add_argument("--metric", default="cosine", choices=METRICS)
    p.set_defaults(func=cmd_neighbours)

    p = subparsers.add_parser("cluster", parents=[common_parent], help="clusters and outliers of an embedding")
    p.add_argument("--dataset", required=True)
    p.add_argument("--encoder", required=True)
    p.add_argument("--method", default="hdbscan", choices=tuple(CLUSTERERS))
    p.add_argument("--min-cluster-size", type=int, default=15, help="hdbscan")
    p.add_argument("--min-samples", type=int, help="hdbscan (default: --min-cluster-size)")
    p.add_argument("--k-max", type=int, default=12, help="kmeans: try k = 2..K, keep the best silhouette")
    p.add_argument("--seed", type=int, default=0, help="kmeans")
    p.add_argument("--label", default="spacegroup", help="column the clusters are compared with (AMI, cross-tab)")
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
    if args.sizes:
        if args.n_labels is not None:
            raise ValueError("--sizes and --n-labels exclude each other (a learning curve sets the labels).")
        table = learning_curve(dataset, args.property, encoders, sizes=ints(args.sizes, "--sizes"), **common)
    else:
        table = compare(dataset, args.property, encoders, n_labels=args.n_labels, **common)
    unit = dataset.properties[args.property].unit
    rows = records(table)
    skipped = table.attrs.get("skipped_sizes", [])
    payload = {"dataset": dataset.name, "property": args.property, "unit": unit, "split": args.split,
               "seed": args.seed, "element": args.element, "rows": rows, "skipped_sizes": skipped}
    lines = [f"{args.property} [{unit or '-'}] on {dataset.name}, {args.split} split, seed {args.seed}",
             f"{'encoder':24s} {'labels':>7s} {'R²':>15s} {'MAE':>21s} {'n':>7s} {'n_train':>8s}"]
    for r in rows:
        lines.append(f"{r['encoder']:24s} {r['n_labels'] or 'all'!s:>7s} "
                     f"{fmt(r['r2_mean']):>7s} ± {fmt(r['r2_std']):5s} {fmt(r['mae_mean'], '.4g'):>10s} ± "
                     f"{fmt(r['mae_std'], '.2g'):8s} {r['n']:>7d} {r['n_train']:>8.1f}")
    if skipped:
        lines.append(f"sizes {skipped} skipped: only {table.attrs.get('available')} training labels per fold")
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


def cmd_cluster(args: argparse.Namespace) -> None:
    """``crystalrep cluster``: clusters and outliers of an embedding, compared with a label column."""
    from crystalrep.analysis import clusters
    from crystalrep.datasets import load_dataset

    dataset = load_dataset(args.dataset)
    if args.label not in dataset.table.columns:
        raise ValueError(f"dataset {dataset.name!r} has no column {args.label!r}; choose one of "
                         f"{', '.join(map(str, dataset.table.columns))}.")
    sizes = ints(args.sweep, "--sweep") if args.sweep else None
    _, X, _ = embedding(args, dataset)
    if args.method == "hdbscan":
        result = clusters.hdbscan_clusters(X, min_cluster_size=args.min_cluster_size, min_samples=args.min_samples)
    else:
        result = clusters.kmeans_clusters(X, k_range=range(2, args.k_max + 1), seed=args.seed)
    truth = dataset.table[args.label]
    ami = clusters.adjusted_mutual_info(result.labels, truth)
    table = clusters.crosstab(result.labels, truth)
    crosstab = {str(c): {str(k): int(v) for k, v in row[row > 0].sort_values(ascending=False).items()}
                for c, row in table.iterrows()}
    nov = clusters.novelty(X, top=args.top)
    novel = sorted(map(int, nov.flagged.nonzero()[0]), key=lambda i: -nov.scores[i])
    ids = dataset.ids
    payload = {**result.to_dict(labels=True), "dataset": dataset.name, "encoder": args.encoder,
               "label": args.label, "ami": ami, "crosstab": crosstab,
               "novelty": {"ids": [ids[i] for i in novel], "scores": [float(nov.scores[i]) for i in novel],
                           "threshold": nov.threshold, "k": nov.k, "metric": nov.metric},
               "sweep": records(clusters.cluster_sweep(X, sizes)) if sizes else None}
    lines = [f"{result.method} on {args.encoder} of {dataset.name} ({len(X)} rows, "
             f"{', '.join(f'{k}={v}' for k, v in result.params.items())})",
             f"clusters {result.n_clusters}, noise {result.noise_fraction:.1%}, silhouette {fmt(result.silhouette)}, "
             f"AMI vs {args.label} {fmt(ami)}"]
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
