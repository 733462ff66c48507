"""``crystalrep cluster`` and ``probe`` store their results under the keys the Clusters and Probes pages read."""

from __future__ import annotations

import json

import numpy as np
import pytest

from crystalrep.cli.main import main
from crystalrep.datasets import Dataset
from tests.cli import test_main
from tests.cli.test_main import fails, run

crystals, ds = test_main.crystals, test_main.ds  # the 30-crystal dataset fixtures


def _embedding_key(dataset: Dataset, name: str) -> str:
    from crystalrep.embed import embedding_key
    from crystalrep.encoders import get_encoder

    return embedding_key(dataset, get_encoder(name))


def test_cluster_stores_clusters_sweep_and_novelty_under_the_page_keys(ds: Dataset,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    from crystalrep.analysis import cluster_cache
    from crystalrep.analysis.clusters import hdbscan_clusters, novelty
    from crystalrep.embed import load_embedding

    key = _embedding_key(ds, "magpie")
    assert not cluster_cache.is_stored(cluster_cache.KIND, cluster_cache.clusters_key(key, method="hdbscan",
                                                                                      min_cluster_size=3))
    out = run(capsys, "cluster", "--dataset", "cli", "--encoder", "magpie", "--min-cluster-size", "3",
              "--sweep", "3,5", "--label", "")
    assert out["cache_hit"] is False and out["ami"] is None and out["crosstab"] == {}
    assert cluster_cache.is_stored(cluster_cache.KIND, cluster_cache.clusters_key(key, method="hdbscan",
                                                                                  min_cluster_size=3))
    assert all(cluster_cache.is_stored(cluster_cache.SWEEP_KIND, cluster_cache.sweep_key(key, s)) for s in (3, 5))
    assert cluster_cache.is_stored(cluster_cache.NOVELTY_KIND, cluster_cache.novelty_key(key, k=10, top=0.01))

    X = load_embedding(ds, "magpie")[0]
    stored, hit = cluster_cache.clusters_cached(X, key, method="hdbscan", min_cluster_size=3)
    fresh = hdbscan_clusters(X, min_cluster_size=3)
    assert hit and out["labels"] == stored.labels.tolist() == fresh.labels.tolist()
    assert (stored.n_clusters, stored.noise_fraction, stored.params) == (fresh.n_clusters, fresh.noise_fraction,
                                                                         fresh.params)
    assert stored.silhouette == fresh.silhouette or (np.isnan(stored.silhouette) and np.isnan(fresh.silhouette))
    nov, hit = cluster_cache.novelty_cached(X, key)
    expected = novelty(X)
    assert hit and np.array_equal(nov.scores, expected.scores) and np.array_equal(nov.flagged, expected.flagged)
    assert nov.threshold == expected.threshold
    again = run(capsys, "cluster", "--dataset", "cli", "--encoder", "magpie", "--min-cluster-size", "3", "--label", "")
    assert again["cache_hit"] is True and again["labels"] == out["labels"]


def test_cluster_on_principal_components_is_stored_under_its_own_key(ds: Dataset, capsys: pytest.CaptureFixture[str],
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from crystalrep.analysis import cluster_cache, clusters

    key = _embedding_key(ds, "magpie")
    out = run(capsys, "cluster", "--dataset", "cli", "--encoder", "magpie", "--min-cluster-size", "3",
              "--pca-dims", "2", "--sweep", "3", "--label", "")
    assert out["params"]["pca_dims"] == 2
    assert cluster_cache.is_stored(cluster_cache.KIND, cluster_cache.clusters_key(key, method="hdbscan",
                                                                                  min_cluster_size=3, pca_dims=2))
    assert cluster_cache.is_stored(cluster_cache.SWEEP_KIND, cluster_cache.sweep_key(key, 3, pca_dims=2))
    # the default follows the row count, as the Clusters page's check does (30 crystals > a threshold of 20)
    monkeypatch.setattr(clusters, "PCA_ABOVE", 20)
    monkeypatch.setattr(clusters, "PCA_DIMS", 2)
    again = run(capsys, "cluster", "--dataset", "cli", "--encoder", "magpie", "--min-cluster-size", "3", "--label", "")
    assert again["cache_hit"] is True and again["labels"] == out["labels"]
    assert "every dimension" in fails(capsys, "cluster", "--dataset", "cli", "--encoder", "magpie",
                                      "--pca-dims", "-1")


def test_kmeans_with_a_given_k_is_stored_with_every_score(ds: Dataset, capsys: pytest.CaptureFixture[str]) -> None:
    from crystalrep.analysis import cluster_cache
    from crystalrep.analysis.clusters import kmeans_clusters
    from crystalrep.embed import load_embedding

    out = run(capsys, "cluster", "--dataset", "cli", "--encoder", "magpie", "--method", "kmeans",
              "--k-min", "3", "--k-max", "5", "--k", "4", "--label", "crystal_system")
    assert out["params"]["k"] == 4 and sorted(out["scores"]) == ["3", "4", "5"] and out["ami"] is not None
    X, key = load_embedding(ds, "magpie")[0], _embedding_key(ds, "magpie")
    stored, hit = cluster_cache.clusters_cached(X, key, method="kmeans", k=4, k_range=range(3, 6))
    fresh = kmeans_clusters(X, k=4, k_range=range(3, 6))
    assert hit and stored.scores == fresh.scores and stored.params == fresh.params
    assert np.array_equal(stored.labels, fresh.labels)


def test_cluster_reports_its_steps_on_stderr(ds: Dataset, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cluster", "--dataset", "cli", "--encoder", "magpie", "--min-cluster-size", "3",
                 "--sweep", "3,5", "--label", "", "--json"]) == 0
    out, err = capsys.readouterr()
    assert "step 1 of 5: HDBSCAN (min_cluster_size 3) on 30 rows" in err
    assert "step 3 of 5: HDBSCAN sweep of min_cluster_size 3, 5 (0 of 2 done)" in err
    assert "step 4 of 5: HDBSCAN sweep of min_cluster_size 3, 5 (1 of 2 done)" in err  # size 3: the run above
    from crystalrep.analysis import cluster_cache
    from crystalrep.plots.clusters import label_columns

    columns = label_columns(ds)
    assert columns and f"step 5 of 5: agreement (adjusted mutual information) with {', '.join(columns)}" in err
    labels = np.asarray(json.loads(out)["labels"])
    for column in columns:  # stored for the Clusters page, though this run compared with no label
        key = cluster_cache.agreement_key(labels, ds.table[column])
        assert cluster_cache.is_stored(cluster_cache.AGREEMENT_KIND, key)


def test_probe_curve_stores_the_all_label_probe_and_the_curve(ds: Dataset, capsys: pytest.CaptureFixture[str]) -> None:
    from crystalrep.analysis.probes import compare, learning_curve

    out = run(capsys, "probe", "--dataset", "cli", "--property", "density", "--encoders", "magpie",
              "--split", "random", "--curve", "5,10,500")
    assert [r["n_labels"] for r in out["rows"]] == [None] and not out["rows"][0]["cached"]
    assert [r["n_labels"] for r in out["curve"]] == [5, 10] and out["skipped_sizes"] == [500]
    rows = compare(ds, "density", ["magpie"], split="random")
    curve = learning_curve(ds, "density", ["magpie"], sizes=(5, 10), split="random")
    assert rows["cached"].all() and curve["cached"].all()  # what the Probes page asks for is in the store
    assert rows["r2_mean"].tolist() == pytest.approx([r["r2_mean"] for r in out["rows"]], abs=1e-9)  # JSON: 10 digits
    assert curve["r2_mean"].tolist() == pytest.approx([r["r2_mean"] for r in out["curve"]], abs=1e-9)
    assert "exclude each other" in fails(capsys, "probe", "--dataset", "cli", "--property", "density",
                                         "--encoders", "magpie", "--curve", "5", "--sizes", "5")


def test_cluster_json_is_one_object(ds: Dataset, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cluster", "--dataset", "cli", "--encoder", "magpie", "--min-cluster-size", "3", "--label", "",
                 "--json", "--quiet"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["dataset"] == "cli" and captured.err == ""


def test_precision_stores_the_report_the_retrieval_page_reads(ds: Dataset, capsys: pytest.CaptureFixture[str]) -> None:
    from crystalrep.analysis.retrieval import dataset_report
    from crystalrep.analysis.retrieval.report_cache import KIND, report_cached, report_key
    from crystalrep.store import Store

    key = report_key(ds, "magpie", k=4, metric="euclidean", prop="density")
    assert Store().verified(KIND, key) is None
    out = run(capsys, "precision", "--dataset", "cli", "--encoders", "magpie", "-k", "4", "--metric", "euclidean",
              "--property", "density")
    (enc,) = out["encoders"]
    assert enc["cache_hit"] is False and enc["queries"] == {"n": 30, "of": 30, "seed": None}
    assert Store().verified(KIND, key) is not None
    report, spread, hit = report_cached(ds, "magpie", k=4, metric="euclidean", prop="density")
    fresh, fresh_spread = dataset_report(ds, "magpie", k=4, metric="euclidean", prop="density")
    assert hit and report.to_dict("records") == fresh.to_dict("records") and spread == fresh_spread
    assert report.attrs["search"] == fresh.attrs["search"]
    assert "no numeric property 'colour'" in fails(capsys, "precision", "--dataset", "cli", "--encoders", "magpie",
                                                   "--property", "colour")
