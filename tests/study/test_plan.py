"""Sizing the plan to a budget from measured throughput."""

from __future__ import annotations

import pytest

from crystalrep.study.plan import (
    FULL_PROPERTIES,
    MIN_CORPUS,
    MIN_STEPS,
    StudyPlan,
    idle_rates,
    size_plan,
)

THROUGHPUT = {"denoise": 200.0, "contrastive": 80.0, "masking": 250.0, "finetune": 150.0, "finetune_fixed_s": 0.3,
              "embed": 600.0, "probe_s": 0.05}
POOLS = [3787, 2573, 1265]


def test_a_bigger_budget_buys_more_epochs_and_steps_and_the_estimate_fits() -> None:
    small = size_plan(StudyPlan(budget_minutes=120), THROUGHPUT, n_corpus=9000, pools=POOLS)
    big = size_plan(StudyPlan(budget_minutes=600), THROUGHPUT, n_corpus=9000, pools=POOLS)
    assert big.epochs > small.epochs >= 1
    assert big.finetune.max_steps >= small.finetune.max_steps >= MIN_STEPS
    for plan in (small, big):
        if plan.estimate["fits"]:
            assert plan.estimate["total_minutes"] <= plan.budget_minutes
    assert small.estimate["n_jobs"] == 9 and small.n_encoders == 24
    assert small.estimate["n_finetunes"] == 24 * 3 * 4 * 2 * small.finetune_folds


def test_a_budget_too_small_cuts_corpus_and_folds_and_says_it_does_not_fit() -> None:
    plan = size_plan(StudyPlan(budget_minutes=5), THROUGHPUT, n_corpus=9000, pools=POOLS)
    assert plan.epochs == 1 and MIN_CORPUS <= plan.corpus_cap < 9000
    assert plan.finetune_folds == 1 and plan.finetune.max_steps == MIN_STEPS
    assert plan.estimate["fits"] is False and plan.estimate["total_minutes"] > 5
    assert [plan.finetune_fold_ids(s) for s in (0, 1, 2)] == [[0], [1], [2]]  # seeds x folds span 3 folds


def test_a_middle_budget_fits_with_fewer_fine_tuned_folds() -> None:
    plan = size_plan(StudyPlan(budget_minutes=240), THROUGHPUT, n_corpus=9000, pools=POOLS)
    assert plan.estimate["fits"] is True and plan.finetune.max_steps >= MIN_STEPS
    assert plan.finetune.eval_every == max(5, plan.finetune.max_steps // 5)
    full = size_plan(StudyPlan(budget_minutes=100_000), THROUGHPUT, n_corpus=9000, pools=POOLS)
    assert full.finetune_folds == 5 and full.finetune_fold_ids(1) == [0, 1, 2, 3, 4] and full.corpus_cap is None


def test_the_smoke_plan_keeps_its_tiny_settings() -> None:
    plan = size_plan(StudyPlan.smoke_plan(), THROUGHPUT, n_corpus=300, pools=[300])
    assert (plan.epochs, plan.finetune.max_steps, plan.sizes, plan.seeds) == (1, 10, (50,), (0,))
    assert plan.tasks == ("denoise", "masking") and plan.properties == FULL_PROPERTIES[:1]
    assert plan.estimate["n_jobs"] == 2 and plan.to_dict()["finetune"]["max_steps"] == 10


def test_invalid_plans_are_refused() -> None:
    with pytest.raises(ValueError, match="tasks must be"):
        StudyPlan(tasks=("jigsaw",))
    with pytest.raises(ValueError, match="finetune_folds"):
        StudyPlan(finetune_folds=6)


def test_the_idle_estimate_uses_rates_per_cpu_second() -> None:
    busy = {**THROUGHPUT, **{f"{k}_cpu": 4 * v for k, v in THROUGHPUT.items() if not k.endswith("_s")},
            "probe_s_cpu": 0.01, "finetune_fixed_s_cpu": 0.1}
    assert idle_rates(busy)["denoise"] == 800.0 and idle_rates(busy)["probe_s"] == 0.01
    plan = size_plan(StudyPlan(budget_minutes=120), busy, n_corpus=9000, pools=POOLS)
    idle = plan.estimate["idle"]
    assert idle["epochs"] > plan.epochs and idle["fits"] is True and idle["total_minutes"] <= 120


def test_a_sized_plan_round_trips_through_json() -> None:
    import json

    plan = size_plan(StudyPlan(budget_minutes=90), THROUGHPUT, n_corpus=9000, pools=POOLS)
    again = StudyPlan.from_dict(json.loads(json.dumps(plan.to_dict())))
    assert again == plan
