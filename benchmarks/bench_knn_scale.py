"""Scaling: kNN — exact faiss vs scikit-learn brute force vs our approximate index, N = 10k to 1M.

Data are **synthetic** (no real dataset here has 1M crystals): 128-d rows with 16 intrinsic
dimensions — a mixture of 100 Gaussian clusters in a 16-d latent space (centres N(0, 3²), unit
within-cluster sd), mapped to 128-d by a fixed random linear map, plus N(0, 0.1²) noise in every
dimension: the shape of an embedding where families of similar crystals sit together and most
variance lies in a few directions. 1,000 queries are fresh draws from the same distribution
(not indexed). Cosine distance, k = 10. Each (N, implementation) runs in its own process, so
`peak RSS` is that process's maximum resident memory (data, normalised copy and index
included; the data alone take N × 128 × 4 bytes). `build` = fit (for the approximate index:
k-means, filling the lists and tuning `nprobe` on held-out indexed rows until recall@10 ≥ 0.99),
`query` = the 1,000 queries. `recall@10` of the approximate index: the held-out value it reports
itself, and (in the note) the overlap of its answers to the 1,000 fresh queries with exact
faiss's. Sizes whose run would exceed 10 minutes are skipped and said so.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import row

SIZES = (10_000, 50_000, 200_000, 1_000_000)
QUICK_SIZES = (10_000, 50_000)
DIM, LATENT, CLUSTERS, SPREAD, NOISE, N_QUERIES, K = 128, 16, 100, 3.0, 0.1, 1_000, 10
TIMEOUT_S = 600
IMPLS = {
    "exact": ("crystalrep KnnIndex exact (faiss flat IP)", "ours"),
    "approximate": ("crystalrep KnnIndex approximate (faiss IVF, tuned)", "ours"),
    "sklearn": ("sklearn NearestNeighbors brute", "peer"),
}


def _draw(rng: np.random.Generator, centres: np.ndarray, mix: np.ndarray, n: int) -> np.ndarray:
    latent = centres[rng.integers(0, CLUSTERS, n)] + rng.normal(size=(n, LATENT)).astype(np.float32)
    return latent @ mix + rng.normal(scale=NOISE, size=(n, DIM)).astype(np.float32)


def _data(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=SPREAD, size=(CLUSTERS, LATENT)).astype(np.float32)
    mix = (rng.normal(size=(LATENT, DIM)) / np.sqrt(LATENT)).astype(np.float32)
    X = np.concatenate([_draw(rng, centres, mix, min(100_000, n - s)) for s in range(0, n, 100_000)])
    return X, _draw(rng, centres, mix, N_QUERIES)


def _peak_mb() -> float:
    """This process's peak resident memory in MB.

    ``VmHWM`` belongs to the process's own address space; ``ru_maxrss`` would also carry the
    parent's peak across fork + exec (the runner has imported torch by then).
    """
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(n: int, impl: str) -> dict[str, Any]:
    """One measurement, in this process: build, query, recall, peak RSS."""
    X, Q = _data(n)
    data_mb = _peak_mb()
    out: dict[str, Any] = {"n": n, "impl": impl}
    if impl == "sklearn":
        from sklearn.neighbors import NearestNeighbors

        start = time.perf_counter()
        nn = NearestNeighbors(algorithm="brute", metric="cosine").fit(X)
        out["build"] = time.perf_counter() - start
        start = time.perf_counter()
        nn.kneighbors(Q, n_neighbors=K)
        out["query"] = time.perf_counter() - start
    else:
        from crystalrep.analysis.retrieval import KnnIndex

        start = time.perf_counter()
        above = 1 if impl == "approximate" else 10**12
        index = KnnIndex(metric="cosine", backend="faiss", approximate_above=above).fit(X)
        out["build"] = time.perf_counter() - start
        start = time.perf_counter()
        _, idx = index.query(Q, k=K)
        out["query"] = time.perf_counter() - start
        out["peak_mb"] = _peak_mb()
        if impl == "approximate":
            import faiss

            info = index.search_info
            out.update(recall=info["recall_at_10"], nlist=info["nlist"], nprobe=info["nprobe"])
            Xn = X / np.linalg.norm(X, axis=1, keepdims=True)
            Qn = (Q / np.linalg.norm(Q, axis=1, keepdims=True)).astype(np.float32)
            _, exact = faiss.knn(Qn, Xn, K, metric=faiss.METRIC_INNER_PRODUCT)
            out["fresh_recall"] = float(np.mean([len(set(a) & set(b)) / K for a, b in zip(idx, exact, strict=True)]))
    out.setdefault("peak_mb", _peak_mb())
    out["data_mb"] = data_mb
    return out


def _measure(n: int, impl: str) -> dict[str, Any] | None:
    try:
        done = subprocess.run([sys.executable, "-m", "benchmarks.bench_knn_scale", str(n), impl],
                              capture_output=True, text=True, timeout=TIMEOUT_S, check=True)
    except subprocess.TimeoutExpired:
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


def run(quick: bool = False) -> list[dict[str, Any]]:
    """Rows ``kNN N×128 build+1,000 queries`` per implementation; a size over 10 min is skipped."""
    rows = []
    for n in QUICK_SIZES if quick else SIZES:
        for impl, (name, kind) in IMPLS.items():
            # exact faiss and sklearn share a stage (ratio); the approximate index has its own (summary: vs exact)
            stage = f"kNN {n:,}×{DIM} {'approximate' if impl == 'approximate' else 'exact'}, build + {N_QUERIES:,} queries"
            m = _measure(n, impl)
            if m is None:
                rows.append(row(stage, name, kind, N_QUERIES, float("nan"), f"skipped: over {TIMEOUT_S // 60} min"))
                continue
            note = (f"build {m['build']:.2f} s, query {m['query']:.2f} s; peak RSS {m['peak_mb']:,.0f} MB "
                    f"(data alone {m['data_mb']:,.0f} MB)")
            if impl == "approximate":
                note += (f"; nlist {m['nlist']}, nprobe {m['nprobe']}; recall@10 {m['recall']:.4f} (held-out, "
                         f"reported) / {m['fresh_recall']:.4f} (1,000 fresh queries vs exact)")
            rows.append(row(stage, name, kind, N_QUERIES, m["build"] + m["query"], note)
                        | {"peak_rss_mb": m["peak_mb"], "measured": m})
    return rows


def summary(rows: list[dict[str, Any]]) -> list[str]:
    """Where the approximate index pays, and whether its recall held."""
    out = []
    for r in rows:
        m = r.get("measured")
        if m and m["impl"] == "approximate":
            exact = next((x["measured"] for x in rows if x.get("measured") and x["measured"]["impl"] == "exact"
                          and x["measured"]["n"] == m["n"]), None)
            if exact:
                out.append(f"N = {m['n']:,}: approximate queries {exact['query'] / m['query']:.1f}× faster than exact "
                           f"faiss, build {m['build']:.1f} s vs {exact['build']:.2f} s; recall@10 {m['recall']:.4f} "
                           f"(target ≥ 0.99: {'met' if m['recall'] >= 0.99 else 'NOT met'}).")
    return out


if __name__ == "__main__":
    print(json.dumps(child(int(sys.argv[1]), sys.argv[2])))
