"""Faults with real processes: ``kill -9`` in the middle of ``data import`` and ``embed``, two
``embed`` runs on the same dataset at once, and ``data import --overwrite`` racing them.

A child runs the CLI with one function wrapped so that the process SIGKILLs itself at the worst
moment (a temp file written but not renamed, a table written but not committed): deterministic,
no sleeps. Afterwards nothing half-written is listed or read, and a re-run completes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from pymatgen.core import Structure

from crystalrep.cli.main import main
from crystalrep.datasets import dataset_dir, list_datasets, load_dataset
from crystalrep.embed import EMBEDDINGS_KIND
from crystalrep.store import Store

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
ENCODER = "magpie"  # the quickest encoder to start in a fresh interpreter

# Runs `crystalrep <argv>` after wrapping <module>.<name>: its <nth> call kills the process first.
_KILL_AT = """
import os, signal, sys
import importlib
module, name, nth = sys.argv[1], sys.argv[2], int(sys.argv[3])
target = importlib.import_module(module)
real, calls = getattr(target, name), [0]
def dying(*args, **kwargs):
    calls[0] += 1
    if calls[0] == nth:
        os.kill(os.getpid(), signal.SIGKILL)
    return real(*args, **kwargs)
setattr(target, name, dying)
from crystalrep.cli.main import main
sys.exit(main(sys.argv[4:]))
"""


def _child(*argv: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, *argv], env=env, cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def killed_at(module: str, name: str, nth: int, *argv: str) -> None:
    """Run the CLI in a child that SIGKILLs itself at the ``nth`` call of ``module.name``."""
    proc = _child("-c", _KILL_AT, module, name, str(nth), *argv, "--quiet")
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == -signal.SIGKILL, err[-2000:]


def _csv(path: Path, structures: list[Structure]) -> Path:
    rows = ["id,cif"] + [f'r{k},"{s.to(fmt="cif")}"' for k, s in enumerate(structures)]
    path.write_text("\n".join(rows) + "\n")
    return path


@pytest.fixture
def tables(tmp_path, tiny_structures) -> tuple[Path, Path]:
    return _csv(tmp_path / "a.csv", tiny_structures), _csv(tmp_path / "b.csv", tiny_structures[:2])


def _visible(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))


def test_kill_during_import_leaves_nothing_listed_and_a_rerun_completes(tables, capsys):
    a, b = tables
    # a new name, killed between writing the table's temp file and renaming it
    killed_at("os", "fsync", 1, "data", "import", str(a), "--name", "set")
    assert "set" not in [d["name"] for d in list_datasets()]
    assert main(["data", "import", str(a), "--name", "set", "--quiet"]) == 0
    first = load_dataset("set")
    shards = [s["file"] for s in json.loads((dataset_dir("set") / "meta.json").read_text())["shards"]]
    assert len(first) == 5 and _visible(dataset_dir("set")) == sorted(["meta.json", *shards])
    # an overwrite, killed after the new shards are written but before meta.json commits them
    killed_at("crystalrep.datasets.writer", "atomic_write_json", 1, "data", "import", str(b),
              "--name", "set", "--overwrite")
    assert load_dataset("set").fingerprint == first.fingerprint  # the old version, whole
    assert main(["data", "import", str(b), "--name", "set", "--overwrite", "--quiet"]) == 0
    assert len(load_dataset("set")) == 2
    assert len(_visible(dataset_dir("set"))) == 2  # meta.json and one shard: the orphans are gone
    assert not [p for p in dataset_dir("set").iterdir() if p.name.endswith(".tmp")]


def test_kill_during_embed_leaves_no_artifact_and_a_rerun_completes(tables, capsys):
    assert main(["data", "import", str(tables[0]), "--name", "set", "--quiet"]) == 0
    capsys.readouterr()
    store = Store()
    # killed while writing the artifact: its files are in the hidden folder, the manifest is not
    killed_at("crystalrep.store.artifacts", "atomic_write_json", 1, "embed", "--dataset", "set",
              "--encoder", ENCODER)
    assert store.keys(EMBEDDINGS_KIND) == []
    assert any(p.name.endswith(".tmp") for p in (store.root / EMBEDDINGS_KIND).iterdir())
    assert main(["embed", "--dataset", "set", "--encoder", ENCODER, "--quiet", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload[0]["cache_hit"] is False and store.keys(EMBEDDINGS_KIND) == [payload[0]["key"]]
    assert store.load_array(EMBEDDINGS_KIND, payload[0]["key"])[0].shape == (5, payload[0]["dim"])


def test_two_embeds_and_an_overwrite_at_once_leave_a_consistent_store(tables):
    a, b = tables
    assert main(["data", "import", str(a), "--name", "set", "--quiet"]) == 0
    versions = {load_dataset("set").fingerprint: 5}
    flip = "\n".join(f"main(['data', 'import', {str(p)!r}, '--name', 'set', '--overwrite', '--quiet'])"
                     for p in (b, a, b, a, b, a, b))
    racers = [_child("-m", "crystalrep", "embed", "--dataset", "set", "--encoder", ENCODER, "--quiet", "--json"),
              _child("-m", "crystalrep", "embed", "--dataset", "set", "--encoder", ENCODER, "--quiet", "--json"),
              _child("-c", f"from crystalrep.cli.main import main\n{flip}")]
    outputs = [proc.communicate(timeout=600) for proc in racers]
    assert [proc.returncode for proc in racers] == [0, 0, 0], [err[-1000:] for _, err in outputs]
    final = load_dataset("set")  # whole: the last overwrite (b)
    versions[final.fingerprint] = 2
    assert len(final) == 2
    store = Store()
    keys = store.keys(EMBEDDINGS_KIND)
    assert keys and {json.loads(out)[0]["key"] for out, _ in outputs[:2]} <= set(keys)
    for key in keys:  # every stored embedding verifies and matches the version it was made from
        array, meta = store.load_array(EMBEDDINGS_KIND, key)
        assert meta["dataset_fingerprint"] in versions and array.shape == (versions[meta["dataset_fingerprint"]], meta["dim"])
        assert np.isfinite(array).all()
    assert not [p for p in (store.root / EMBEDDINGS_KIND).iterdir() if p.name.endswith(".tmp")]


def test_an_embedding_manifest_of_nothing_is_not_served(tables, capsys):
    assert main(["data", "import", str(tables[0]), "--name", "set", "--quiet"]) == 0
    capsys.readouterr()
    assert main(["embed", "--dataset", "set", "--encoder", ENCODER, "--quiet", "--json"]) == 0
    key = json.loads(capsys.readouterr().out)[0]["key"]
    folder = Store().path(EMBEDDINGS_KIND, key)
    npy = folder / "array.npy"
    flipped = bytearray(npy.read_bytes())
    flipped[-1] ^= 0x40
    npy.write_bytes(bytes(flipped))
    (folder / "manifest.json").write_text("{}")
    assert Store().load_array(EMBEDDINGS_KIND, key) is None
    assert main(["embed", "--dataset", "set", "--encoder", ENCODER, "--quiet", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["cache_hit"] is False
    assert Store().load_array(EMBEDDINGS_KIND, key) is not None

