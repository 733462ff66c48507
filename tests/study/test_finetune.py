"""The small fine-tune: learns, stops early, never changes the encoder it was given."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from crystalrep.datasets import Dataset
from crystalrep.encoders.cgcnn import CGCNNConfig, build_cgcnn
from crystalrep.graphs import GraphConfig, dataset_graphs
from crystalrep.study.backbones import build_encoder
from crystalrep.study.finetune import FinetuneConfig, finetune


@pytest.mark.slow
def test_fine_tune_beats_the_mean_and_leaves_the_encoder_alone(labelled: Dataset) -> None:
    graphs = dataset_graphs(labelled, config=GraphConfig(cutoff=6.0))
    y = labelled.table["a_per_atom"].to_numpy(float)
    model = build_cgcnn(CGCNNConfig(hidden=32, out_dim=32), seed=0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    train, test = np.arange(50), np.arange(50, 70)
    result = finetune(model, graphs, y, train, test, config=FinetuneConfig(max_steps=120, batch_size=16, eval_every=10,
                                                                          patience=20), seed=0)
    baseline = float(np.mean(np.abs(y[test] - y[train].mean())))
    assert result.mae < 0.7 * baseline and np.isfinite(result.r2)
    assert 10 <= result.best_step <= result.steps <= 120 and result.n_val == 10 and result.n_train == 40
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_early_stopping_stops_before_the_step_budget(labelled: Dataset) -> None:
    graphs = dataset_graphs(labelled, config=GraphConfig(cutoff=6.0))
    y = np.zeros(len(labelled))  # nothing to learn: validation MAE cannot keep improving
    y[::2] = 1.0
    model = build_cgcnn(CGCNNConfig(hidden=16, out_dim=16, n_layers=1), seed=0)
    result = finetune(model, graphs, y, np.arange(40), np.arange(40, 50),
                      config=FinetuneConfig(max_steps=500, batch_size=8, eval_every=2, patience=2, lr=0.05), seed=1)
    assert result.steps < 500 and result.best_step < result.steps


def test_bad_configs_and_inputs_are_refused(labelled: Dataset) -> None:
    with pytest.raises(ValueError, match="head must be one of"):
        FinetuneConfig(head="gru")
    with pytest.raises(ValueError, match="at least|>= 4"):
        finetune(build_cgcnn(seed=0), [], np.zeros(3), np.arange(3), np.arange(1), config=FinetuneConfig(), seed=0)


def test_set2set_backbone_keeps_the_pretrained_convolutions(tmp_path: object) -> None:
    from dataclasses import asdict

    from crystalrep.checkpoint import save_checkpoint

    trained = build_cgcnn(seed=11)
    path = tmp_path / "ckpt.pt"  # type: ignore[operator]
    save_checkpoint(path, kind="cgcnn", config=asdict(trained.config), state_dict=trained.state_dict(),
                    meta={"task": "denoise", "seed": 11})
    encoder = build_encoder("set2set", "denoise", 2, path)
    state = encoder.model.state_dict()
    for name, tensor in trained.state_dict().items():
        if not name.startswith("head."):
            assert torch.equal(state[name], tensor), name
    fresh = build_cgcnn(CGCNNConfig(readout="set2set"), seed=2).state_dict()
    assert torch.equal(state["set2set.lstm.weight_ih_l0"], fresh["set2set.lstm.weight_ih_l0"])
    assert encoder.model.config.readout == "set2set" and encoder.name.startswith("cgcnn-set2set@")
    assert build_encoder("mean", "random", 4).name == "cgcnn-random-s4"
    with pytest.raises(ValueError, match="needs a checkpoint"):
        build_encoder("mean", "denoise", 0)
