"""The whole CDSSL study in its smoke size, on synthetic crystals (real background jobs, no ../shared)."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

from crystalrep.analysis.probes import probe
from crystalrep.analysis.splits import labelled_folds, subsample
from crystalrep.cli.main import main
from crystalrep.datasets import Dataset, load_dataset
from crystalrep.encoders.cgcnn_encoder import CGCNNEncoder
from crystalrep.jobs import background
from crystalrep.runs import tasks_home
from crystalrep.study import load_report
from crystalrep.study.plan import EvalProperty, StudyPlan
from crystalrep.study.pretraining import job_spec, run_jobs
from crystalrep.study.run import StudyInputs, run_study

PROP = EvalProperty("synth-eval", "a_per_atom", "synthetic a per atom", "Å")


@pytest.mark.slow
def test_smoke_study_runs_end_to_end_and_reports_computed_numbers(labelled: Dataset, unlabelled: Dataset,
                                                                  tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["study", "show"]) == 2  # nothing yet
    inputs = StudyInputs(corpus_sources=[("builtin", load_dataset("default").subset(np.arange(60))),
                                         ("synth", unlabelled), ("synth-eval", labelled)],
                         eval_sources={"synth-eval": labelled})
    plan = StudyPlan.smoke_plan(properties=(PROP,), pool_cap=None, corpus_sources=None)
    report = run_study(plan, inputs, out=tmp_path / "out")

    on_disk = json.loads((tmp_path / "out" / "report.json").read_text())
    assert on_disk["created"] == report["created"] and on_disk["smoke"] is True
    assert "SSL beats random init beyond the spread" in (tmp_path / "out" / "report.md").read_text()
    loaded = load_report()
    assert loaded is not None and loaded["created"] == report["created"] and "## Corpus" in loaded["markdown"]

    # corpus: every evaluation crystal out, counted; the other sources in
    sources = {s["source"]: s for s in report["corpus"]["sources"]}
    assert sources["synth-eval"]["evaluation_repeats"] == 70 and sources["synth-eval"]["kept"] == 0
    assert sources["synth"]["kept"] == 40 and report["corpus"]["n"] == sources["builtin"]["kept"] + 40

    # plan: measured, not assumed
    assert all(math.isfinite(v) and v > 0 for v in report["plan"]["throughput"].values())
    assert report["plan"]["epochs"] == 1 and report["plan"]["estimate"]["n_jobs"] == 2

    # two real background jobs, one epoch each
    assert [(j["task"], j["state"], j["epochs"]) for j in report["pretraining"]] == [("denoise", "done", 1), ("masking", "done", 1)]
    assert all(Path(j["checkpoint"]).is_file() and math.isfinite(j["final_loss"]) for j in report["pretraining"])

    # 2 evaluations x 2 backbones x 3 inits x 2 splits at N = 50, every number finite
    table = report["table"]
    assert len(table) == 24 and {r["n"] for r in table} == {50}
    assert all(math.isfinite(r["mae_mean"]) and math.isfinite(r["r2_mean"]) and r["mae_std"] >= 0 for r in table)
    assert {r["count"] for r in table if r["evaluation"] == "probe"} == {5}
    assert {r["count"] for r in table if r["evaluation"] == "finetune"} == {2}
    assert len({round(r["mae_mean"], 9) for r in table}) > 12  # encoders differ: nothing is a constant
    counts = report["verdict"]["counts"]
    assert counts["total"] == 16 and counts["better"] + counts["worse"] + counts["within"] == 16

    # recompute one cell independently: the mean-readout random-init probe, random split, N = 50
    y = labelled.table["a_per_atom"].to_numpy(float)
    X = CGCNNEncoder.random(seed=0).embed_dataset(labelled, device="cpu")
    full = labelled_folds(labelled.table, y, split="random", n_splits=5, seed=0)
    expected = probe(X, y, subsample(full, 50, seed=0), scale_rows=[tr for tr, _ in full])
    cell = next(r for r in table if (r["evaluation"], r["backbone"], r["init"], r["split"]) == ("probe", "mean", "random", "random"))
    # float32 embeddings from another process (other thread count, other batch order) agree to ~1e-6 relative; the
    # encoders in this table differ by far more than 1e-4, so the tolerance still pins the cell to this computation
    assert cell["mae_mean"] == pytest.approx(expected.mae_mean, rel=1e-4)
    assert cell["mae_std"] == pytest.approx(expected.mae_std, rel=1e-3)

    # asking again for the same runs finds the finished jobs instead of starting new ones
    specs = [job_spec(dataset=report["corpus"]["dataset"], task=j["task"], seed=j["seed"], epochs=1, max_structures=None,
                      options=plan.pretrain_options) for j in report["pretraining"]]
    again = run_jobs(specs, workers=2, poll_s=0.01)
    assert [j["job_id"] for j in again] == [j["job_id"] for j in report["pretraining"]] and all(j["reused"] for j in again)
    assert not any(j["reused"] for j in report["pretraining"])

    # the second evaluation process did half of the encoders (its rows are in the cache the report used)
    helpers = [p.name for p in tasks_home().iterdir() if p.name.startswith("cdssl-eval-")]
    assert len(helpers) == 1 and background.state(helpers[0]).state == "done"
    done = re.search(r"evaluated shard 1/2: (\d+) rows", background.output(helpers[0]))
    assert done is not None and int(done.group(1)) == 3 * 14  # 3 of 6 encoders, 14 rows each

    capsys.readouterr()
    assert main(["study", "show", "--smoke"]) == 0
    assert "CDSSL pretraining study" in capsys.readouterr().out
