"""The study's grid and its compute budget: measure this machine's throughput, then size the runs.

The budget covers pretraining and evaluation (imports and the corpus are cached one-offs, timed
separately). Pretraining jobs run ``workers`` at a time, evaluation in ``workers`` processes, each
on one torch thread. Epochs fill
``pretrain_share`` of the budget; the fine-tune step budget fills what the estimate leaves after
embeddings and probes. When even the minimum step budget does not fit, fewer outer folds are
fine-tuned (5, then 3, 2 and 1 per seed, rotating with the seed), and the plan says so, with its
own estimate, instead of pretending. When one epoch over the corpus does not fit the pretraining
share, jobs train one epoch over a seeded subset that does.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from crystalrep.pretrain import TASK_NAMES
from crystalrep.study.backbones import BACKBONES
from crystalrep.study.finetune import FinetuneConfig

__all__ = ["FULL_PROPERTIES", "SMOKE_PROPERTIES", "EvalProperty", "StudyPlan", "idle_rates", "size_plan"]

SPLITS = ("random", "grouped")
MIN_STEPS = 30
MAX_STEPS = 400
MAX_EPOCHS = 100
MIN_CORPUS = 1000
JOB_OVERHEAD_S = 20.0  # a job process importing torch and building its graphs, per job


@dataclass(frozen=True)
class EvalProperty:
    """A labelled property of one shared dataset, with the unit its PROVENANCE.md gives."""

    source: str
    column: str
    label: str
    unit: str


FULL_PROPERTIES = (
    EvalProperty("perov_5", "heat_ref", "perov_5 heat_ref", "eV per 5-atom cell (likely; PROVENANCE.md)"),
    EvalProperty("mp_20_mini_slices", "formation_energy_per_atom", "MP-20 formation energy", "eV/atom"),
    EvalProperty("matbench_phonons", "last phdos peak", "matbench phonons (last PhDOS peak)", "cm^-1"),
)
SMOKE_PROPERTIES = FULL_PROPERTIES[:1]


@dataclass(frozen=True, kw_only=True)
class StudyPlan:
    """Everything that decides a study run (saved in the report).

    ``sizes`` holds training-label counts; 0 stands for "all" training rows of a fold.
    """

    smoke: bool = False
    budget_minutes: float = 120.0
    backbones: tuple[str, ...] = BACKBONES
    tasks: tuple[str, ...] = TASK_NAMES
    seeds: tuple[int, ...] = (0, 1, 2)
    properties: tuple[EvalProperty, ...] = FULL_PROPERTIES
    sizes: tuple[int, ...] = (50, 200, 1000, 0)
    splits: tuple[str, ...] = SPLITS
    n_splits: int = 5
    fold_seed: int = 0
    finetune_folds: int = 5
    pool_cap: int | None = None
    corpus_cap: int | None = None
    corpus_sources: tuple[str, ...] | None = None  # shared folders for the corpus; None = all
    workers: int = 2
    pretrain_share: float = 0.4
    epochs: int = 1
    pretrain_options: dict[str, Any] = field(default_factory=lambda: {"batch_size": 32, "lr": 1e-3})
    finetune: FinetuneConfig = FinetuneConfig()
    throughput: dict[str, float] = field(default_factory=dict)
    estimate: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.tasks or set(self.tasks) - set(TASK_NAMES):
            raise ValueError(f"tasks must be a non-empty subset of {', '.join(TASK_NAMES)}, got {self.tasks!r}.")
        if not self.backbones or set(self.backbones) - set(BACKBONES):
            raise ValueError(f"backbones must be a non-empty subset of {', '.join(BACKBONES)}, got {self.backbones!r}.")
        if not self.seeds or not self.properties or not self.sizes or self.workers < 1:
            raise ValueError("a plan needs seeds, properties, sizes and at least one worker.")
        if not 1 <= self.finetune_folds <= self.n_splits:
            raise ValueError(f"finetune_folds must lie in 1..{self.n_splits}, got {self.finetune_folds}.")
        if not self.budget_minutes > 0:
            raise ValueError(f"budget_minutes must be > 0, got {self.budget_minutes!r}.")

    @classmethod
    def smoke_plan(cls, **overrides: Any) -> StudyPlan:
        """The tiny version: 2 tasks × 1 seed, 1 epoch, N = 50, one property, a few hundred crystals."""
        values: dict[str, Any] = {
            "smoke": True, "budget_minutes": 3.0, "tasks": ("denoise", "masking"), "seeds": (0,),
            "properties": SMOKE_PROPERTIES, "sizes": (50,), "finetune_folds": 2, "pool_cap": 300,
            "corpus_cap": 300, "corpus_sources": ("perov_5",), "epochs": 1,
            "finetune": FinetuneConfig(max_steps=10, batch_size=16, eval_every=5, patience=2),
        }
        return cls(**{**values, **overrides})

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        out = asdict(self)
        out["finetune"] = self.finetune.to_dict()
        return out

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> StudyPlan:
        """Rebuild a plan from :meth:`to_dict` (lists back to tuples, nested configs rebuilt)."""
        data: dict[str, Any] = {k: tuple(v) if isinstance(v, list) and k not in ("properties",) else v for k, v in values.items()}
        data["properties"] = tuple(EvalProperty(**p) for p in values["properties"])
        data["finetune"] = FinetuneConfig(**values["finetune"])
        return cls(**data)

    @property
    def n_encoders(self) -> int:
        """Encoders evaluated: backbones × (random + tasks) × seeds."""
        return len(self.backbones) * (1 + len(self.tasks)) * len(self.seeds)

    def n_finetunes(self) -> int:
        """Fine-tune runs in the grid."""
        return self.n_encoders * len(self.properties) * len(self.sizes) * len(self.splits) * self.finetune_folds

    def finetune_fold_ids(self, seed: int) -> list[int]:
        """Outer folds fine-tuned for a seed: all, or ``finetune_folds`` of them rotating with the seed.

        Rotating keeps seeds × folds spanning several folds when each seed gets only one or two.
        """
        if self.finetune_folds >= self.n_splits:
            return list(range(self.n_splits))
        return [(seed + j) % self.n_splits for j in range(self.finetune_folds)]


def _eval_every(plan: StudyPlan, steps: int) -> int:
    """Validation interval: about five checks per fine-tune (the smoke plan keeps its own)."""
    return plan.finetune.eval_every if plan.smoke else max(5, steps // 5)


def _estimate(plan: StudyPlan, thr: dict[str, float], *, n_corpus: int, pools: list[int], epochs: int,
              corpus_cap: int | None, steps: int, ft_folds: int) -> dict[str, float]:
    """Seconds per phase for a candidate (epochs, corpus cap, steps, fine-tuned folds)."""
    n_train = 0.9 * min(n_corpus, corpus_cap or n_corpus)
    jobs = [n_train * epochs / thr[t] + JOB_OVERHEAD_S for t in plan.tasks for _ in plan.seeds]
    pretrain = max(sum(jobs) / plan.workers, max(jobs))
    # evaluation runs in ``workers`` processes
    embed = plan.n_encoders * sum(pools) / thr["embed"] / plan.workers
    probes = (plan.n_encoders * len(plan.properties) * len(plan.sizes) * len(plan.splits) * plan.n_splits
              * thr["probe_s"] / plan.workers)
    cfg, per_ft = plan.finetune, 0.0
    checks = math.ceil(steps / _eval_every(plan, steps)) if steps else 0
    for pool in pools:
        for size in plan.sizes:
            n = size or pool * (1 - 1 / plan.n_splits)
            n_val = min(cfg.max_val, max(2, round(cfg.val_fraction * n)))
            per_ft += (thr.get("finetune_fixed_s", 0.0) + steps * cfg.batch_size / thr["finetune"]
                       + (checks * n_val + pool / plan.n_splits) / thr["embed"])
    finetune = plan.n_encoders * len(plan.splits) * ft_folds * per_ft / plan.workers
    return {"pretrain_s": pretrain, "embed_s": embed, "probe_s": probes, "finetune_s": finetune,
            "total_s": pretrain + embed + probes + finetune}


def _pretraining(plan: StudyPlan, thr: dict[str, float], n_corpus: int, room: float) -> tuple[int, int | None]:
    """Epochs filling ``room`` seconds, with an optional corpus cap.

    When one epoch does not fit, one epoch over a seeded subset of the corpus that does (at least
    :data:`MIN_CORPUS` crystals).
    """
    one = _estimate(plan, thr, n_corpus=n_corpus, pools=[], epochs=1, corpus_cap=None, steps=0, ft_folds=0)["pretrain_s"]
    overhead = JOB_OVERHEAD_S * len(plan.tasks) * len(plan.seeds) / plan.workers
    per_epoch = max(one - overhead, 1e-9)
    if room - overhead >= per_epoch:
        return int(min(MAX_EPOCHS, (room - overhead) // per_epoch)), None
    cap = max(MIN_CORPUS, int(n_corpus * max(room - overhead, 0.0) / per_epoch))
    return 1, (cap if cap < n_corpus else None)


def idle_rates(throughput: dict[str, float]) -> dict[str, float]:
    """The measured rates per CPU second where known (one thread each: an idle core's wall rates)."""
    return {k: throughput.get(f"{k}_cpu", v) for k, v in throughput.items() if not k.endswith("_cpu")}


def _summary(plan: StudyPlan) -> dict[str, Any]:
    return {"epochs": plan.epochs, "corpus_cap": plan.corpus_cap, "finetune_steps": plan.finetune.max_steps,
            "finetune_folds": plan.finetune_folds, "total_minutes": plan.estimate["total_minutes"],
            "fits": plan.estimate["fits"]}


def size_plan(plan: StudyPlan, throughput: dict[str, float], *, n_corpus: int, pools: list[int],
              with_idle: bool = True) -> StudyPlan:
    """Epochs, corpus cap, fine-tune steps and folds that fit ``plan.budget_minutes`` at the measured throughput.

    The smallest evaluation (embeddings, probes, :data:`MIN_STEPS` fine-tune steps on one fold per
    seed) is reserved first; pretraining gets ``pretrain_share`` of the budget or what the reserve
    leaves, if less. Fine-tuning gets the rest: the most folds (all, then 3, 2, 1 per seed, rotating
    with the seed) at which at least :data:`MIN_STEPS` steps fit, and as many steps as fit there
    (at most :data:`MAX_STEPS`).

    Args:
        plan: The grid (a smoke plan keeps its own epochs, steps and folds).
        throughput: From :func:`crystalrep.study.measure.measure_throughput` (one thread each).
        n_corpus: Crystals in the pretraining corpus.
        pools: Evaluation rows per property.
        with_idle: Also size the plan on :func:`idle_rates` and summarise it as ``estimate["idle"]``
            (what the same budget buys when the cores are free).

    Returns:
        The plan with ``epochs``, ``corpus_cap``, ``finetune`` steps, ``finetune_folds``,
        ``throughput`` and ``estimate`` (seconds per phase, minutes in total, whether it fits).
    """
    budget = plan.budget_minutes * 60.0
    if plan.smoke:
        epochs, cap, steps, folds = plan.epochs, plan.corpus_cap, plan.finetune.max_steps, plan.finetune_folds
    else:
        smallest = _estimate(plan, throughput, n_corpus=n_corpus, pools=pools, epochs=0, corpus_cap=None,
                             steps=MIN_STEPS, ft_folds=1)
        room = min(plan.pretrain_share * budget, budget - (smallest["total_s"] - smallest["pretrain_s"]))
        epochs, cap = _pretraining(plan, throughput, n_corpus, room)

        def total(steps: int, folds: int) -> float:
            return _estimate(plan, throughput, n_corpus=n_corpus, pools=pools, epochs=epochs, corpus_cap=cap,
                             steps=steps, ft_folds=folds)["total_s"]

        for folds in sorted({min(k, plan.finetune_folds) for k in (plan.finetune_folds, 3, 2, 1)}, reverse=True):
            steps = int(min(MAX_STEPS, (budget - total(0, folds)) // max((total(100, folds) - total(0, folds)) / 100, 1e-9)))
            while steps > MIN_STEPS and total(steps, folds) > budget:  # validation checks round up
                steps -= 1
            if steps >= MIN_STEPS and total(steps, folds) <= budget:
                break
        else:  # not even the smallest fits: run it anyway, and say so in the estimate
            steps = MIN_STEPS
    sized = replace(plan, epochs=epochs, corpus_cap=cap, finetune_folds=folds, throughput=dict(throughput),
                    finetune=replace(plan.finetune, max_steps=steps, eval_every=_eval_every(plan, steps)))
    estimate: dict[str, Any] = _estimate(sized, throughput, n_corpus=n_corpus, pools=pools, epochs=epochs,
                                         corpus_cap=cap, steps=steps, ft_folds=folds)
    estimate.update(total_minutes=estimate["total_s"] / 60.0, fits=estimate["total_s"] <= budget,
                    n_corpus=n_corpus, pools=list(pools), n_jobs=len(plan.tasks) * len(plan.seeds),
                    n_finetunes=sized.n_finetunes())
    estimate = {k: (round(v, 2) if isinstance(v, float) and math.isfinite(v) else v) for k, v in estimate.items()}
    if with_idle:
        estimate["idle"] = _summary(size_plan(plan, idle_rates(throughput), n_corpus=n_corpus, pools=pools, with_idle=False))
    return replace(sized, estimate=estimate)
