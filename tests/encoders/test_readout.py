"""The cgcnn readout option: mean (default, keys unchanged) or Set2Set, and what each leaves invariant."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch
from pymatgen.core import Structure

from crystalrep.analysis.diagnostics import INVARIANCE_TOLERANCE, invariance
from crystalrep.checkpoint import save_checkpoint
from crystalrep.encoders.cgcnn import CGCNN, CGCNNConfig, build_cgcnn, config_from_dict
from crystalrep.encoders.cgcnn_encoder import CGCNNEncoder
from crystalrep.transforms import supercell

# The model config of the embedding key before the option existed: mean keys must not move.
LEGACY_MODEL_CONFIG = {"hidden": 128, "out_dim": 128, "n_layers": 3, "n_rbf": 40, "cutoff": 6.0,
                       "max_z": 100, "avg_neighbors": 32.0}


@pytest.fixture(scope="module")
def set2set() -> CGCNNEncoder:
    return CGCNNEncoder.random(seed=3, readout="set2set")


def test_mean_is_the_default_and_its_keys_are_unchanged() -> None:
    mean = CGCNNEncoder.random()
    assert mean.model.config.readout == "mean" and mean.name == "cgcnn-random"
    assert mean.config["model"] == LEGACY_MODEL_CONFIG
    assert not any(k.startswith("set2set") for k in mean.model.state_dict())
    assert mean.model.head.in_features == 128
    other = CGCNNEncoder.random(seed=3, readout="set2set")
    assert other.config["model"] == {**LEGACY_MODEL_CONFIG, "readout": "set2set"}
    assert other.name == "cgcnn-set2set-random-s3" and "Set2Set" in other.description
    assert other.fingerprint != CGCNNEncoder.random(seed=3).fingerprint


def test_unknown_readout_is_rejected() -> None:
    with pytest.raises(ValueError, match="readout must be one of mean, set2set"):
        CGCNNConfig(readout="sum")


def test_same_seed_gives_the_same_convolutions_for_both_readouts() -> None:
    mean, s2s = build_cgcnn(CGCNNConfig(), seed=5), build_cgcnn(CGCNNConfig(readout="set2set"), seed=5)
    for name, tensor in mean.state_dict().items():
        if not name.startswith("head."):
            assert torch.equal(tensor, s2s.state_dict()[name]), name
    assert s2s.head.in_features == 256


def test_set2set_checkpoint_round_trips(set2set: CGCNNEncoder, tiny_structures: list[Structure],
                                        tmp_path: Path) -> None:
    path = tmp_path / "s2s.pt"
    save_checkpoint(path, kind="cgcnn", config=asdict(set2set.model.config), state_dict=set2set.model.state_dict())
    loaded = CGCNNEncoder.from_checkpoint(path)
    assert loaded.model.config.readout == "set2set" and "Set2Set" in loaded.description
    np.testing.assert_array_equal(loaded.embed_structures(tiny_structures, device="cpu"),
                                  set2set.embed_structures(tiny_structures, device="cpu"))
    legacy = dict(LEGACY_MODEL_CONFIG)  # a checkpoint written before the option: mean pooling
    assert config_from_dict(legacy).readout == "mean"


def test_set2set_is_invariant_on_tiny_crystals(set2set: CGCNNEncoder, tiny_structures: list[Structure]) -> None:
    report = invariance(set2set, tiny_structures, n=len(tiny_structures), device="cpu")
    for name in ("rotation", "translation", "permutation", "supercell"):
        assert report["transforms"][name]["max"] < INVARIANCE_TOLERANCE, (name, report["transforms"][name])
    assert report["transforms"]["thermal"]["median"] > 10 * INVARIANCE_TOLERANCE


def test_set2set_is_a_weighted_mean_so_only_uniform_replication_is_invisible(
        set2set: CGCNNEncoder, tiny_structures: list[Structure]) -> None:
    # A 2x1x1 and a 3x1x1 supercell replicate every atom equally: softmax weights split evenly.
    cell = tiny_structures[3]
    rows = set2set.embed_structures([cell, supercell(cell, (2, 1, 1)), supercell(cell, (3, 1, 1))], device="cpu")
    np.testing.assert_allclose(rows[1], rows[0], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(rows[2], rows[0], rtol=1e-4, atol=1e-5)
    # Not a size-extensive readout either way, but unlike the mean it weighs atoms unequally:
    # its output is not the mean-pooled vector passed through any fixed map of the same cell.
    model: CGCNN = set2set.model
    from torch_geometric.data import Batch

    from crystalrep.graphs import structure_to_graph
    batch = Batch.from_data_list([structure_to_graph(cell, config=set2set.graph_config())])
    with torch.no_grad():
        x = model.encode_nodes(batch)
        out = model.set2set(x, batch.batch, dim_size=1)
    attention_part = out[0, 128:]
    assert not torch.allclose(attention_part, x.mean(dim=0), atol=1e-3)


def test_set2set_rows_do_not_depend_on_batch_mates(set2set: CGCNNEncoder, tiny_structures: list[Structure]) -> None:
    together = set2set.embed_structures(tiny_structures, device="cpu", batch_size=len(tiny_structures))
    alone = np.vstack([set2set.embed_structures([s], device="cpu") for s in tiny_structures])
    np.testing.assert_allclose(alone, together, rtol=1e-5, atol=1e-6)
