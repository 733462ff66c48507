"""The scaling plot reads whatever scaling results exist, whoever wrote them, and draws time and peak RSS."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks import plot_scaling, row


def _write(folder: Path, name: str, rows: list[dict]) -> None:
    (folder / f"{name}.json").write_text(json.dumps({"name": name, "skipped": None, "rows": rows}))


def test_sections_sizes_and_peak_rss_are_read_from_every_format(tmp_path: Path) -> None:
    _write(tmp_path, "pages-scale", [row("page data warm", "AppTest", "ours", n, s, "x") | {"peak_rss_mb": m}
                                     for n, s, m in ((10_000, 0.2, 400.0), (200_000, 0.9, 900.0))])
    _write(tmp_path, "knn-scale", [row(f"kNN {n:,}×128 exact, build + 1,000 queries", "faiss", "peer", 1_000, s,
                                       f"build 1 s; peak RSS {m} MB") for n, s, m in ((50_000, 1.0, "1,200"),
                                                                                    (200_000, 4.0, "2,400"))])
    _write(tmp_path, "projections-scale", [row("Scaling: UMAP 10k×64", "p", "ours", 10_000, 30.0, "peak RSS 1.5 GB"),
                                           row("Scaling: UMAP 50k×64", "p", "ours", 50_000, float("nan"), "skipped")])
    _write(tmp_path, "retrieval", [row("kNN", "x", "ours", 10, 1.0)])  # not a scaling section: left out
    got = plot_scaling.load(tmp_path)
    assert set(got) == {"pages", "kNN", "projections"}
    assert got["pages"]["page data warm"] == [(10_000, 0.2, 400.0, False), (200_000, 0.9, 900.0, False)]
    knn = got["kNN"]["kNN N×128 exact, build + 1,000 queries · faiss"]
    assert [(n, rss) for n, _, rss, _ in knn] == [(50_000, 1200.0), (200_000, 2400.0)]  # N from the stage name
    assert got["projections"]["UMAP N×64"] == [(10_000, 30.0, 1536.0, False)]  # the NaN row is not drawn
    png = plot_scaling.draw(got, tmp_path / "scaling.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_stage_naming_its_size_in_words_and_the_memory_section_join_their_stages(tmp_path: Path) -> None:
    # "import 10,000 (synthetic CSV)": N is the row's n written in the stage; each size once made its own series
    _write(tmp_path, "import-scale", [row(f"import {n:,} (synthetic CSV)", impl, kind, n, s) | {"peak_rss_mb": m}
                                      for n, s, m in ((10_000, 34.0, 475.0), (50_000, 171.0, 539.0))
                                      for impl, kind in (("streaming", "ours"), ("before", "peer"))])
    # memory-1m holds an import row (200k) and an embed row (1M): each joins its own stage's panel
    _write(tmp_path, "memory-1m", [row("import 200,000 (synthetic CSV)", "streaming", "ours", 200_000, 1611.0)
                                   | {"peak_rss_mb": 687.0},
                                   row("embed magpie 1,000,000 (synthetic)", "sharded", "ours", 1_000_000, 65.0)
                                   | {"peak_rss_mb": 1520.0}])
    _write(tmp_path, "clusters-scale", [row("Scaling: clustering hdbscan 1,000k×64", "h", "ours", 1_000_000, 90.0,
                                            "peak RSS 2.10 GB")])
    got = plot_scaling.load(tmp_path)
    assert set(got) == {"import", "embed", "clustering"}
    assert [p[0] for p in got["import"]["import N (synthetic CSV)"]] == [10_000, 50_000, 200_000]
    assert [p[0] for p in got["import"]["import N (synthetic CSV) · before"]] == [10_000, 50_000]
    assert got["embed"]["embed magpie N (synthetic)"] == [(1_000_000, 65.0, 1520.0, False)]
    assert got["clustering"]["clustering hdbscan N×64"] == [(1_000_000, 90.0, 2150.4, False)]
