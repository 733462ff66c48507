"""The lecture's cached numbers: one memo helper, one cache for the probe it shares with the Probes page."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crystalrep.analysis import probes
from crystalrep.lecture import runs
from crystalrep.store import Store


class _Table:
    """The two things probe_grid reads from a dataset."""

    def __init__(self, n: int = 40) -> None:
        rng = np.random.default_rng(0)
        self.X = rng.normal(size=(n, 3))
        self.y = self.X[:, 0] * 2 + rng.normal(scale=0.01, size=n)
        self.table = pd.DataFrame({"chemsys": [f"S{i % 8}" for i in range(n)], "target": self.y})

    def property_names(self, kind: str) -> list[str]:
        return ["target"]


def _never() -> probes.ProbeResult:
    raise AssertionError("the probe was recomputed")


def test_a_probe_grid_cell_is_the_probes_pages_artifact(tmp_path) -> None:
    data, store = _Table(), Store(tmp_path)
    first = runs.probe_grid(data, {"x": (data.X, "key-x")}, store=store)
    key = runs.probe_key("key-x", "target", data.y)
    assert key == probes.probe_key("key-x", "target", data.y, split="grouped", seed=0, n_splits=5)
    assert store.keys(runs.PROBES_KIND) == [key] and store.keys(runs.KIND) == []
    assert runs.is_stored(key, store=store, kind=runs.PROBES_KIND) and not runs.is_stored(key, store=store)
    result, hit = probes.probe_cached(key, _never, store=store)
    assert hit and result.r2_mean == first["r2_mean"].iloc[0] > 0.99
    _, meta = store.load_array(runs.PROBES_KIND, key)
    assert meta["embedding_key"] == "key-x" and meta["property"] == "target" and meta["split"] == "grouped"
    pd.testing.assert_frame_equal(first, runs.probe_grid(data, {"x": (data.X, "key-x")}, store=store))


def test_an_unreadable_probe_artifact_is_recomputed(tmp_path) -> None:
    data, store = _Table(), Store(tmp_path)
    key = runs.probe_key("key-x", "target", data.y)
    store.save_array(runs.PROBES_KIND, key, np.zeros(5), {"result": {"r2_mean": 1.0}})  # an incomplete record
    grid = runs.probe_grid(data, {"x": (data.X, "key-x")}, store=store)
    assert grid["r2_mean"].iloc[0] > 0.99 and grid["r2_mean"].iloc[0] != 1.0
    assert probes.probe_cached(key, _never, store=store)[1]


def test_lecture_results_use_the_stores_memo(tmp_path) -> None:
    data, store = _Table(), Store(tmp_path)
    coords = data.X[:, :2]
    report = runs.map_report(data.X, coords, key="map-1", store=store)
    assert not report["from_cache"] and store.keys(runs.KIND) == [runs.map_key("map-1")]
    assert (store.path(runs.KIND, runs.map_key("map-1")) / "result.json").is_file()
    again = runs.map_report(data.X, coords, key="map-1", store=store)
    assert again == {**report, "from_cache": True}
    store.save_files(runs.KIND, runs.map_key("map-1"), {"result.json": b"[1, 2]"}, replace=True)  # not a dict
    assert not runs.map_report(data.X, coords, key="map-1", store=store)["from_cache"]


def test_a_property_too_small_to_split_gets_nan_and_nothing_cached(tmp_path) -> None:
    data, store = _Table(), Store(tmp_path)
    data.table["target"] = np.nan
    data.table.loc[:1, "target"] = 1.0
    with pytest.raises(ValueError):
        runs.probe_grid(data, {"x": (data.X, "key-x")}, store=store)
    assert store.keys(runs.PROBES_KIND) == []
