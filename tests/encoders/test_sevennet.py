"""The frozen SevenNet-0 encoder: offline checkpoint, SevenNet's own features, invariance, stand-ins."""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from crystalrep.analysis.diagnostics import INVARIANCE_TOLERANCE, invariance
from crystalrep.datasets import DatasetError, load_dataset
from crystalrep.encoders import available_encoders, encoder_descriptions, get_encoder
from crystalrep.encoders.base import Encoder
from crystalrep.structures import StructureError

INVARIANT = ["rotation", "translation", "permutation", "supercell"]


def _block_network(*args: object, **kwargs: object) -> None:
    raise OSError("network access is blocked in this test")


@pytest.fixture(scope="session")
def sevennet() -> Encoder:
    """SevenNet-0 loaded once per session, with sockets blocked while it loads."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(socket.socket, "connect", _block_network)
        encoder = get_encoder("sevennet")
        encoder.load("cpu")
    return encoder


def _polonium(symbol: str = "Po") -> Structure:
    return Structure(Lattice.cubic(3.35), [symbol], [[0, 0, 0]])  # alpha-Po, simple cubic


def test_registered_without_loading_anything() -> None:
    assert "sevennet" in available_encoders() and "128-d" in encoder_descriptions()["sevennet"]
    encoder = get_encoder("sevennet")
    assert encoder.dim == 128 and encoder.uses_torch and encoder._model is None
    assert encoder.config["cutoff"] == 5.0 and encoder.config["pooling"] == "mean"


@pytest.mark.slow  # importing sevenn imports torch and e3nn
def test_checkpoint_must_be_the_wheels_own(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sevenn import _const

    from crystalrep.encoders.sevennet import checkpoint_file

    shipped = checkpoint_file()
    assert shipped.is_relative_to(Path(_const.__file__).parent)  # inside the wheel: nothing to download
    tampered = tmp_path / shipped.name
    shutil.copyfile(shipped, tampered)
    with tampered.open("r+b") as fh:
        fh.seek(-1, 2)
        last = fh.read(1)
        fh.seek(-1, 2)
        fh.write(bytes([last[0] ^ 1]))
    monkeypatch.setattr(_const, "SEVENNET_0_11Jul2024", str(tampered))
    with pytest.raises(FileNotFoundError, match="does not match the sha256"):
        checkpoint_file()


def test_passes_respect_the_edge_budget() -> None:
    from crystalrep.encoders.sevennet import _passes

    assert _passes([5, 5, 5], 10) == [(0, 2), (2, 3)]
    assert _passes([1, 20, 1], 10) == [(0, 1), (1, 2), (2, 3)]  # an oversized graph goes alone
    assert _passes([], 10) == []


@pytest.mark.slow
def test_shape_dtype_metadata_and_determinism(sevennet: Encoder, tiny_structures: list[Structure],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket.socket, "connect", _block_network)
    z = sevennet.embed_structures(tiny_structures, device="cpu", batch_size=2)
    assert z.shape == (len(tiny_structures), 128) and z.dtype == np.float32
    assert np.isfinite(z).all() and (np.linalg.norm(z, axis=1) > 0).all()
    assert len({row.tobytes() for row in z}) == len(tiny_structures)
    info = sevennet.info()
    assert info["dim"] == 128 and len(info["weights_sha256"]) == 64 and info["code"]["sevenn"]
    assert sevennet.last_run_info == {"device": "cpu", "stand_in_rows": []}
    np.testing.assert_array_equal(sevennet.embed_structures(tiny_structures, device="cpu", batch_size=2), z)
    together = sevennet.embed_structures(tiny_structures, device="auto", batch_size=64)
    np.testing.assert_allclose(together, z, rtol=1e-5, atol=1e-6)
    monkeypatch.setattr("crystalrep.encoders.sevennet.EDGES_PER_PASS", 100)  # one crystal per pass
    np.testing.assert_allclose(sevennet.embed_structures(tiny_structures, device="cpu"), z, rtol=1e-5, atol=1e-6)
    fresh = get_encoder("sevennet")
    assert fresh.embed_structures([], device="cpu").shape == (0, 128)
    assert fresh._model is None  # nothing to embed, nothing loaded
    assert fresh.fingerprint == sevennet.fingerprint
    np.testing.assert_allclose(fresh.embed_structures(tiny_structures[:2], device="cpu"), z[:2], rtol=1e-6, atol=1e-7)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:No tensor product accelerator")
def test_matches_sevennet_calculator_features(sevennet: Encoder, tiny_structures: list[Structure]) -> None:
    """Our vesin graph and module loop give the node features SevenNet's own ASE path computes."""
    from pymatgen.io.ase import AseAtomsAdaptor
    from sevenn.calculator import SevenNetCalculator

    from crystalrep.encoders.sevennet import READOUT, checkpoint_file

    calc = SevenNetCalculator(str(checkpoint_file()), device="cpu")
    seen: list[np.ndarray] = []
    calc.model._modules[READOUT].register_forward_pre_hook(lambda _m, args: seen.append(args[0]["x"].detach().numpy()))
    shifted = Structure(tiny_structures[4].lattice, tiny_structures[4].species,
                        tiny_structures[4].frac_coords + [1.3, -2.1, 0.4])  # coordinates outside the cell
    sample = [*tiny_structures, shifted]
    ref = []
    for s in sample:
        atoms = AseAtomsAdaptor.get_atoms(s)
        atoms.calc = calc
        assert np.isfinite(atoms.get_potential_energy())
        ref.append(seen[-1].mean(axis=0))
    got = sevennet.embed_structures(sample, device="cpu")
    ref_arr = np.array(ref)
    assert (np.linalg.norm(got - ref_arr, axis=1) / np.linalg.norm(ref_arr, axis=1)).max() < 1e-5


@pytest.mark.slow
def test_invariance_on_tiny_crystals(sevennet: Encoder, tiny_structures: list[Structure]) -> None:
    report = invariance(sevennet, tiny_structures, n=len(tiny_structures), device="cpu")
    for name in INVARIANT:
        assert report["transforms"][name]["max"] < INVARIANCE_TOLERANCE, (name, report)
        assert report["transforms"][name]["passed"] is True
    assert report["transforms"]["thermal"]["median"] > 10 * INVARIANCE_TOLERANCE  # a rattle is seen


@pytest.mark.slow
def test_invariance_on_default_dataset(sevennet: Encoder) -> None:
    try:
        dataset = load_dataset("default")
    except DatasetError:
        pytest.skip("the default dataset has not been built yet")
    rows = np.random.default_rng(0).choice(len(dataset), size=min(4, len(dataset)), replace=False)
    report = invariance(sevennet, [dataset.structure(int(i)) for i in rows], n=len(rows), seed=5, device="cpu")
    worst = {name: report["transforms"][name]["max"] for name in INVARIANT}
    assert max(worst.values()) < INVARIANCE_TOLERANCE, worst


@pytest.mark.slow
def test_unseen_elements_are_refused_unless_stand_ins_are_asked_for(sevennet: Encoder,
                                                                    tiny_structures: list[Structure]) -> None:
    with pytest.raises(StructureError, match=r"Z=\[84\] \(structure 0\)"):
        sevennet.embed_structures([_polonium()], device="cpu")
    lenient = get_encoder("sevennet", stand_ins=True)
    assert lenient.fingerprint != sevennet.fingerprint
    z = lenient.embed_structures([tiny_structures[0], _polonium(), _polonium("Te")], device="cpu")
    np.testing.assert_array_equal(z[1], z[2])  # Po is read as Te, in Po's geometry
    assert lenient.last_run_info["stand_in_rows"] == [1]
    with pytest.raises(StructureError, match=r"Z=\[98\]"):
        sevennet.embed_structures([_polonium("Cf")], device="cpu")
