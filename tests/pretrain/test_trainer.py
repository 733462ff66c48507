from __future__ import annotations

import numpy as np
import pytest
import torch
from pymatgen.core import Lattice, Structure

from crystalrep.checkpoint import load_checkpoint
from crystalrep.datasets import Dataset
from crystalrep.encoders.cgcnn import CGCNNConfig, build_cgcnn
from crystalrep.encoders.cgcnn_encoder import CGCNNEncoder
from crystalrep.graphs import structure_to_graph
from crystalrep.pretrain import TASK_NAMES, PretrainConfig
from crystalrep.pretrain.tasks import TASKS, Corpus, build_task
from crystalrep.pretrain.trainer import (
    METRIC_COLUMNS,
    STATE_KIND,
    pretrain,
    read_metrics,
    split_indices,
)

SMALL = CGCNNConfig(hidden=32, out_dim=32, n_layers=2, n_rbf=16, cutoff=5.0)
PEROV = [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]


def tiny_crystals() -> list[Structure]:
    """8 rock-salts and 8 cubic perovskites (2 and 5 atoms)."""
    salts = [("Na", "Cl"), ("K", "Cl"), ("Mg", "O"), ("Li", "F"), ("Ca", "O"), ("Na", "F"), ("K", "Br"), ("Rb", "I")]
    perovs = [("Sr", "Ti"), ("Ba", "Ti"), ("Ca", "Zr"), ("La", "Al"), ("K", "Nb"), ("Pb", "Ti"), ("Sr", "Zr"), ("Ba", "Zr")]
    out = [Structure(Lattice.cubic(4.0 + 0.2 * k), [a, b], [[0, 0, 0], [0.5] * 3]) for k, (a, b) in enumerate(salts)]
    out += [Structure(Lattice.cubic(3.8 + 0.05 * k), [a, b, "O", "O", "O"], PEROV) for k, (a, b) in enumerate(perovs)]
    return out


@pytest.fixture(scope="module")
def tiny() -> Dataset:
    structures = tiny_crystals()
    return Dataset.from_structures("tiny", [f"c{k}" for k in range(len(structures))], structures)


def config(task: str, **kw) -> PretrainConfig:
    return PretrainConfig(**{"task": task, "epochs": 3, "batch_size": 4, "lr": 3e-3, "threads": 1, **kw})


def test_config_validates_and_lists_names():
    with pytest.raises(ValueError, match="denoise, contrastive, masking"):
        PretrainConfig(task="jigsaw")
    with pytest.raises(ValueError, match="valid: task"):
        PretrainConfig.from_dict({"task": "denoise", "learning_rate": 1.0})
    for bad in ({"epochs": 0}, {"batch_size": 1}, {"seed": -1}, {"mask_rate": 1.5}, {"sigma": 0.0}):
        with pytest.raises(ValueError):
            PretrainConfig(**bad)
    assert PretrainConfig(seed=0).seed == 0
    assert tuple(TASKS) == TASK_NAMES


def test_split_is_seeded_disjoint_and_cut(tiny):
    train, val = split_indices(len(tiny), PretrainConfig(seed=3, val_fraction=0.25))
    assert len(val) == 4 and not set(train) & set(val) and len(train) + len(val) == 16
    again, _ = split_indices(len(tiny), PretrainConfig(seed=3, val_fraction=0.25))
    np.testing.assert_array_equal(train, again)
    train, val = split_indices(len(tiny), PretrainConfig(max_structures=6, val_fraction=0.2))
    assert len(train) + len(val) == 6
    with pytest.raises(ValueError, match="at least 2"):
        split_indices(2, PretrainConfig(val_fraction=0.5))


@pytest.mark.parametrize("task", TASK_NAMES)
def test_task_returns_finite_scalar_with_gradients(tiny, task):
    model = build_task(config(task), build_cgcnn(SMALL, seed=0))
    corpus = Corpus(arrays=[tiny.arrays(i) for i in range(4)],
                    graphs=[structure_to_graph(tiny.structure(i), config=_graph_cfg()) for i in range(4)],
                    graph_config=_graph_cfg())
    batch = model.make_batch([0, 1, 2, 3], corpus, np.random.default_rng(0))
    loss = model(batch, torch.Generator().manual_seed(0))
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.encoder.parameters())


def _graph_cfg():
    from crystalrep.graphs import GraphConfig

    return GraphConfig(cutoff=SMALL.cutoff)


@pytest.mark.parametrize(("task", "epochs"), [("denoise", 12), ("contrastive", 5), ("masking", 12)])
def test_loss_decreases(tiny, tmp_path, task, epochs):
    history = pretrain(tiny, config(task, epochs=epochs), out_dir=tmp_path, encoder_config=SMALL)
    losses = [row["loss"] for row in history]
    assert [row["epoch"] for row in history] == list(range(1, epochs + 1))
    assert all(np.isfinite(losses))
    assert np.mean(losses[-2:]) < 0.8 * np.mean(losses[:2]), losses


def test_checkpoints_round_trip_as_encoders(tiny, tmp_path):
    calls = []
    history = pretrain(tiny, config("masking", epochs=2), out_dir=tmp_path, encoder_config=SMALL,
                       meta={"job_id": "unit"}, progress=lambda d, t: calls.append((d, t)))
    assert calls[-1][0] == calls[-1][1]
    paths = sorted((tmp_path / "checkpoints").glob("epoch-*.pt"))
    assert [p.name for p in paths] == ["epoch-001.pt", "epoch-002.pt"]
    ckpt = load_checkpoint(paths[-1], kind="cgcnn")
    meta = ckpt.meta
    assert meta["task"] == "masking" and meta["epoch"] == 2 and meta["seed"] == 0 and meta["job_id"] == "unit"
    assert meta["dataset_fingerprint"] == tiny.fingerprint and meta["params"]["mask_rate"] == 0.15
    assert meta["code_version"]["crystalrep"] and meta["metrics"]["loss"] == pytest.approx(history[-1]["loss"])
    encoder = CGCNNEncoder.from_checkpoint(paths[-1])
    for name, tensor in encoder.model.state_dict().items():
        torch.testing.assert_close(tensor, ckpt.state_dict[name])
    emb = encoder.embed_structures(tiny.structures()[:3], device="cpu")
    assert emb.shape == (3, SMALL.out_dim) and np.isfinite(emb).all()
    states = list((tmp_path / "state").glob("*.pt"))
    assert [p.name for p in states] == ["epoch-002.pt"]  # only the last training state is kept
    state = load_checkpoint(states[0], kind=STATE_KIND)
    assert {"task", "optimizer", "scheduler", "rng"} <= set(state.state_dict)
    rows = read_metrics(tmp_path)
    assert list(rows[0]) == list(METRIC_COLUMNS) and [r["epoch"] for r in rows] == [1, 2]


class Interrupted(Exception):
    pass


@pytest.mark.parametrize("task", ["denoise", "contrastive"])
def test_resume_continues_exactly(tiny, tmp_path, task):
    cfg = config(task, epochs=3)
    straight = pretrain(tiny, cfg, out_dir=tmp_path / "a", encoder_config=SMALL)

    def stop_after_two(row):
        if row["epoch"] == 2:
            raise Interrupted

    with pytest.raises(Interrupted):
        pretrain(tiny, cfg, out_dir=tmp_path / "b", encoder_config=SMALL, on_epoch=stop_after_two)
    assert [r["epoch"] for r in read_metrics(tmp_path / "b")] == [1, 2]
    first = (tmp_path / "b" / "checkpoints" / "epoch-001.pt").read_bytes()
    resumed = pretrain(tiny, cfg, out_dir=tmp_path / "b", resume=True)
    assert [r["epoch"] for r in read_metrics(tmp_path / "b")] == [1, 2, 3]
    assert (tmp_path / "b" / "checkpoints" / "epoch-001.pt").read_bytes() == first  # not retrained
    np.testing.assert_allclose([r["loss"] for r in resumed], [r["loss"] for r in straight], rtol=1e-4)
    a = load_checkpoint(tmp_path / "a" / "checkpoints" / "epoch-003.pt").state_dict
    b = load_checkpoint(tmp_path / "b" / "checkpoints" / "epoch-003.pt").state_dict
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=1e-4, atol=1e-5)


def test_resume_refuses_other_options_and_starts_fresh_without_checkpoints(tiny, tmp_path):
    pretrain(tiny, config("masking", epochs=1), out_dir=tmp_path / "r", encoder_config=SMALL)
    with pytest.raises(ValueError, match="other options"):
        pretrain(tiny, config("masking", epochs=2, lr=1e-2), out_dir=tmp_path / "r", resume=True)
    with pytest.raises(ValueError, match="has changed"):
        pretrain(tiny.subset(range(12)), config("masking", epochs=1), out_dir=tmp_path / "r", resume=True)
    history = pretrain(tiny, config("masking", epochs=1), out_dir=tmp_path / "empty", resume=True, encoder_config=SMALL)
    assert [r["epoch"] for r in history] == [1]


def test_default_config_keys_are_those_made_before_readout_and_workers() -> None:
    from crystalrep.store import content_key

    # hashes of PretrainConfig().to_dict() before the readout/workers/ray_address fields existed
    assert content_key(PretrainConfig().to_dict()) == "b76eeaa8d1cf2369"
    assert content_key(PretrainConfig(task="contrastive", seed=3, threads=1, device="cpu").to_dict()) == "1edb7c72e6c3db67"
    assert PretrainConfig.from_dict(PretrainConfig().to_dict()) == PretrainConfig()
    options = PretrainConfig(readout="set2set", workers=2, ray_address="127.0.0.1:6379").to_dict()
    assert (options["readout"], options["workers"], options["ray_address"]) == ("set2set", 2, "127.0.0.1:6379")
    assert PretrainConfig.from_dict(options).readout == "set2set"
    for bad in ({"readout": "max"}, {"workers": 0}, {"workers": 3, "batch_size": 4}, {"ray_address": ""}):
        with pytest.raises(ValueError):
            PretrainConfig(**bad)


def test_contrastive_pretrains_a_set2set_readout(tiny, tmp_path) -> None:
    from crystalrep.encoders.cgcnn import config_from_dict

    cfg = config("contrastive", epochs=1, readout="set2set")
    pretrain(tiny, cfg, out_dir=tmp_path, encoder_config=SMALL)
    ckpt = load_checkpoint(tmp_path / "checkpoints" / "epoch-001.pt", kind="cgcnn")
    assert ckpt.config["readout"] == "set2set" and ckpt.meta["params"]["readout"] == "set2set"
    start = build_cgcnn(config_from_dict(ckpt.config), seed=0).state_dict()
    readout = [k for k in ckpt.state_dict if k.startswith("set2set.")]
    assert readout and any(not torch.equal(ckpt.state_dict[k], start[k]) for k in readout)  # the readout was trained
    encoder = CGCNNEncoder.from_checkpoint(tmp_path / "checkpoints" / "epoch-001.pt")
    assert encoder.config["model"]["readout"] == "set2set"
    with pytest.raises(ValueError, match="other options"):  # a mean-readout resume of a set2set run is refused
        pretrain(tiny, config("contrastive", epochs=2), out_dir=tmp_path, resume=True)
