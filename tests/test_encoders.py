"""Encoders: registry, shapes, determinism, checkpoints, CHGNet offline, and invariance."""

from __future__ import annotations

import socket
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from pymatgen.core import Lattice, Structure

from crystalrep.analysis.diagnostics import INVARIANCE_TOLERANCE, invariance
from crystalrep.checkpoint import CheckpointError, save_checkpoint, save_to_store
from crystalrep.datasets import DatasetError, load_dataset
from crystalrep.encoders import available_encoders, encoder_descriptions, get_encoder
from crystalrep.encoders.base import Encoder

FAST = ["cgcnn-random", "magpie", "soap"]
INVARIANT = ["rotation", "translation", "permutation", "supercell"]


def _block_network(*args: object, **kwargs: object) -> None:
    raise OSError("network access is blocked in this test")


@pytest.fixture(scope="session")
def chgnet() -> Encoder:
    """CHGNet loaded once per session, with sockets blocked while it loads and first runs."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(socket.socket, "connect", _block_network)
        encoder = get_encoder("chgnet")
        encoder.load("cpu")
    return encoder


@pytest.fixture
def encoder(request: pytest.FixtureRequest) -> Encoder:
    if request.param == "chgnet":
        return request.getfixturevalue("chgnet")
    return get_encoder(request.param)


ALL = [*FAST, pytest.param("chgnet", marks=pytest.mark.slow)]


@pytest.fixture(scope="session")
def real_structures(shared_data: Path) -> list[Structure]:
    """Two perovskites, three MP-20 crystals and one carbon_24 polymorph (up to ~24 atoms)."""
    perov = pd.read_csv(shared_data / "perov_5" / "val.csv", nrows=2)["cif"].tolist()
    mp20 = pd.read_csv(shared_data / "mp_20_mini_slices" / "raw_mp20_dataset_mini.csv", nrows=3)["cif"].tolist()
    carbon = pd.read_csv(shared_data / "carbon_24" / "val.csv", nrows=1)["cif"].tolist()
    return [Structure.from_str(cif, fmt="cif") for cif in perov + mp20 + carbon]


@pytest.fixture(scope="session")
def default_structures() -> list[Structure]:
    """Four random rows of the built-in default dataset (skipped until it is built)."""
    try:
        dataset = load_dataset("default")
    except DatasetError:
        pytest.skip("the default dataset (data/default) has not been built yet")
    rows = np.random.default_rng(0).choice(len(dataset), size=min(4, len(dataset)), replace=False)
    return [dataset.structure(int(i)) for i in rows]


def test_registry_lists_and_rejects() -> None:
    assert available_encoders() == ["cgcnn-random", "chgnet", "magpie", "sevennet", "soap"]
    assert set(encoder_descriptions()) == set(available_encoders())
    with pytest.raises(ValueError, match="valid encoders are: cgcnn-random, chgnet, magpie, sevennet, soap"):
        get_encoder("schnet")


@pytest.mark.parametrize("encoder", FAST, indirect=True)
def test_shape_dtype_and_metadata(encoder: Encoder, tiny_structures: list[Structure]) -> None:
    z = encoder.embed_structures(tiny_structures, device="cpu", batch_size=2)
    assert z.shape == (len(tiny_structures), encoder.dim) and z.dtype == np.float32
    assert np.isfinite(z).all() and (np.linalg.norm(z, axis=1) > 0).all()
    assert len(encoder.fingerprint) == 64 and encoder.description
    assert encoder.embed_structures([], device="cpu").shape == (0, encoder.dim)


@pytest.mark.parametrize("encoder", FAST, indirect=True)
def test_batch_size_does_not_change_rows(encoder: Encoder, tiny_structures: list[Structure]) -> None:
    together = encoder.embed_structures(tiny_structures, device="cpu", batch_size=64)
    alone = np.vstack([encoder.embed_structures([s], device="cpu") for s in tiny_structures])
    np.testing.assert_allclose(alone, together, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("encoder", ALL, indirect=True)
def test_invariance_on_tiny_crystals(encoder: Encoder, tiny_structures: list[Structure]) -> None:
    # CHGNet is slow on 40-atom supercells: three crystals (cubic, hexagonal, triclinic) suffice.
    sample = tiny_structures[2:] if encoder.name == "chgnet" else tiny_structures
    report = invariance(encoder, sample, n=len(sample), device="cpu")
    for name in INVARIANT:
        assert report["transforms"][name]["max"] < INVARIANCE_TOLERANCE, (name, report)
        assert report["transforms"][name]["passed"] is True
    if encoder.name != "magpie":  # composition-only features cannot see a rattle
        assert report["transforms"]["thermal"]["median"] > 10 * INVARIANCE_TOLERANCE


@pytest.mark.shared
@pytest.mark.parametrize("encoder", ALL, indirect=True)
def test_invariance_on_real_crystals(encoder: Encoder, real_structures: list[Structure]) -> None:
    n = 3 if encoder.name == "chgnet" else len(real_structures)
    report = invariance(encoder, real_structures, n=n, seed=3, device="cpu")
    worst = {name: report["transforms"][name]["max"] for name in INVARIANT}
    assert max(worst.values()) < INVARIANCE_TOLERANCE, worst


@pytest.mark.parametrize("encoder", ALL, indirect=True)
def test_invariance_on_default_dataset(encoder: Encoder, default_structures: list[Structure]) -> None:
    report = invariance(encoder, default_structures, n=len(default_structures), seed=5, device="cpu")
    worst = {name: report["transforms"][name]["max"] for name in INVARIANT}
    assert max(worst.values()) < INVARIANCE_TOLERANCE, worst


def test_cgcnn_random_is_deterministic(tiny_structures: list[Structure]) -> None:
    a, b = get_encoder("cgcnn-random"), get_encoder("cgcnn-random")
    for (name, ta), tb in zip(a.model.state_dict().items(), b.model.state_dict().values(), strict=True):
        assert torch.equal(ta, tb), name
    assert a.fingerprint == b.fingerprint
    np.testing.assert_array_equal(a.embed_structures(tiny_structures, device="cpu"),
                                  b.embed_structures(tiny_structures, device="cpu"))
    other = get_encoder("cgcnn-random", seed=1)
    assert other.fingerprint != a.fingerprint and other.name != a.name


def test_cgcnn_does_not_touch_global_rng() -> None:
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    get_encoder("cgcnn-random")
    assert torch.equal(torch.rand(3), expected)


def test_cgcnn_checkpoint_round_trip(tiny_structures: list[Structure], tmp_path: Path) -> None:
    base = get_encoder("cgcnn-random", seed=7)
    cfg, sd = asdict(base.model.config), base.model.state_dict()
    path = save_to_store(kind="cgcnn", config=cfg, state_dict=sd, meta={"task": "denoise", "epochs": 2})
    loaded = get_encoder(f"cgcnn@{path.stem}")
    assert loaded.name == f"cgcnn@{path.stem}" and "denoise" in loaded.description
    assert loaded.fingerprint != base.fingerprint  # identity is the checkpoint file, not the seed
    np.testing.assert_array_equal(loaded.embed_structures(tiny_structures, device="cpu"),
                                  base.embed_structures(tiny_structures, device="cpu"))
    assert get_encoder(f"cgcnn@{path}").name == loaded.name  # a path works too
    assert f"cgcnn@{path.stem}" in available_encoders(include_checkpoints=True)


def test_cgcnn_checkpoint_is_loaded_strictly(tmp_path: Path) -> None:
    base = get_encoder("cgcnn-random")
    sd = {**base.model.state_dict(), "extra.weight": torch.zeros(1)}
    save_checkpoint(tmp_path / "bad.pt", kind="cgcnn", config=asdict(base.model.config), state_dict=sd)
    with pytest.raises(CheckpointError, match="does not fit the CGCNN model"):
        get_encoder(f"cgcnn@{tmp_path / 'bad.pt'}")
    save_checkpoint(tmp_path / "other.pt", kind="pretrain-state", config={}, state_dict={})
    with pytest.raises(CheckpointError, match="not a 'cgcnn'"):
        get_encoder(f"cgcnn@{tmp_path / 'other.pt'}")


@pytest.mark.slow
def test_chgnet_runs_offline_and_is_per_atom(chgnet: Encoder, tiny_structures: list[Structure],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket.socket, "connect", _block_network)
    s = tiny_structures[3]
    model = chgnet.load("cpu")
    with torch.inference_mode():
        graphs = [model.graph_converter(x) for x in (s, s * (2, 2, 2))]
        raw = model(graphs, task="e", return_crystal_feas=True)["crystal_fea"]
    ratio = float(raw[1].norm() / raw[0].norm())
    assert ratio == pytest.approx(8.0, rel=1e-4)  # CHGNet sums over atoms ...
    ours = chgnet.embed_structures([s], device="cpu")
    assert ours.shape == (1, chgnet.dim) and ours.dtype == np.float32
    expected = raw[0].numpy() / len(s)  # ... so we divide
    assert np.linalg.norm(ours[0] - expected) / np.linalg.norm(expected) < 1e-5
    assert "divided by the number of atoms" in chgnet.description


def _chgnet_reference(model: object, structures: list[Structure]) -> np.ndarray:
    """CHGNet's own converter and forward: crystal_fea / n_atoms."""
    with torch.inference_mode():
        pred = model([model.graph_converter(s) for s in structures], task="e", return_crystal_feas=True)
    return (pred["crystal_fea"] / pred["atoms_per_graph"][:, None]).numpy()


@pytest.mark.slow
def test_chgnet_fast_graphs_match_chgnet(chgnet: Encoder, tiny_structures: list[Structure]) -> None:
    from crystalrep.encoders.chgnet_graph import build_crystal_graph

    model = chgnet.load("cpu")
    shifted = Structure(tiny_structures[4].lattice, tiny_structures[4].species,
                        tiny_structures[4].frac_coords + [1.3, -2.1, 0.4])  # coordinates outside the cell
    sample = [*tiny_structures, shifted]
    for s in sample:
        ours = build_crystal_graph(s.lattice.matrix, np.array(s.atomic_numbers), s.frac_coords)
        ref = model.graph_converter(s)
        assert ours.atom_graph.shape == ref.atom_graph.shape
        assert len(ours.bond_graph) == len(ref.bond_graph)
        assert sorted(map(tuple, ours.atom_graph.tolist())) == sorted(map(tuple, ref.atom_graph.tolist()))
    got = chgnet.embed_structures(sample, device="cpu")
    ref = _chgnet_reference(model, sample)
    assert (np.linalg.norm(got - ref, axis=1) / np.linalg.norm(ref, axis=1)).max() < 1e-5


@pytest.mark.slow
@pytest.mark.shared
def test_chgnet_matches_chgnet_on_real_crystals(chgnet: Encoder, real_structures: list[Structure]) -> None:
    got = chgnet.embed_structures(real_structures, device="cpu")
    ref = _chgnet_reference(chgnet.load("cpu"), real_structures)
    assert (np.linalg.norm(got - ref, axis=1) / np.linalg.norm(ref, axis=1)).max() < 1e-5


def test_cgcnn_batched_graphs_equal_the_per_cell_path(tiny_structures: list[Structure]) -> None:
    from crystalrep.graphs import structure_to_graph

    enc = get_encoder("cgcnn-random")
    per_cell = [structure_to_graph(s, config=enc.graph_config()) for s in tiny_structures]
    np.testing.assert_array_equal(enc.embed_structures(tiny_structures, device="cpu"),
                                  enc.embed_graphs(per_cell, device="cpu"))
    built = enc.embed_graphs(lambda i: per_cell[i], len(per_cell), device="cpu", batch_size=2)
    np.testing.assert_allclose(built, enc.embed_graphs(per_cell, device="cpu"), rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_chgnet_batch_graph_equals_single_graphs(chgnet: Encoder, tiny_structures: list[Structure]) -> None:
    from crystalrep.encoders.chgnet_graph import batch_graph, build_crystal_graph

    cells = [(s.lattice.matrix, np.array(s.atomic_numbers), s.frac_coords) for s in tiny_structures]
    batch, atoms, edges, bonds = batch_graph(cells), 0, 0, 0
    for cell in cells:
        one = build_crystal_graph(*cell)
        e, u = len(one.atom_graph), len(one.undirected2directed)
        np.testing.assert_array_equal(batch.atom_graph[edges:edges + e], one.atom_graph.numpy() + atoms)
        np.testing.assert_array_equal(batch.directed2undirected[edges:edges + e], one.directed2undirected.numpy() + bonds)
        atoms, edges, bonds = atoms + len(cell[1]), edges + e, bonds + u
    assert (atoms, edges, bonds) == (len(batch.numbers), len(batch.atom_graph), len(batch.undirected2directed))
    together = chgnet.embed_structures(tiny_structures, device="cpu")
    alone = np.vstack([chgnet.embed_structures([s], device="cpu") for s in tiny_structures])
    assert (np.linalg.norm(together - alone, axis=1) / np.linalg.norm(alone, axis=1)).max() < 1e-6


@pytest.mark.slow
def test_chgnet_names_the_crystal_it_cannot_embed(chgnet: Encoder, tiny_structures: list[Structure]) -> None:
    lonely = Structure(Lattice.cubic(13.0), ["Na"], [[0, 0, 0]])
    with pytest.raises(ValueError, match=r"CHGNet cannot embed structure 2: An atom has no neighbour within 6.0"):
        chgnet.embed_structures([*tiny_structures[:2], lonely], device="cpu")
    heavy = Structure(Lattice.cubic(5.0), ["Cf"], [[0, 0, 0]])
    with pytest.raises(ValueError, match="CHGNet covers elements up to Z=94; structure 1 has heavier ones"):
        chgnet.embed_structures([tiny_structures[0], heavy], device="cpu")


@pytest.mark.parametrize("name", ["soap", "cgcnn-random", pytest.param("chgnet", marks=pytest.mark.slow)])
def test_a_cell_too_thin_to_search_is_refused_before_the_library_sees_it(name: str) -> None:
    """A 4-atom cell 0.01 Å thin: dscribe built 1.2e7 images (9 s, 2 GB) before the check."""
    thin = Structure(Lattice([[5, 0, 0], [5, 0.01, 0], [0, 0, 5]]), ["Si"] * 4,
                     [[0.1, 0.2, 0.3], [0.4, 0.5, 0.6], [0.7, 0.8, 0.1], [0.3, 0.6, 0.9]])
    fine = Structure(Lattice.cubic(5.4), ["Si", "Si"], [[0, 0, 0], [0.25, 0.25, 0.25]])
    encoder = get_encoder(name)
    prefix = "CHGNet cannot embed " if name == "chgnet" else ""
    reason = "cannot compute SOAP" if name == "soap" else "cannot build neighbour list"
    with pytest.raises(ValueError, match=rf"^{prefix}structure 3: {reason}: the cell is so thin"):
        encoder.embed_structures([fine, fine, fine, thin], batch_size=2)  # the second batch: rows, not batch cells
    assert np.isfinite(encoder.embed_structures([fine])).all()
