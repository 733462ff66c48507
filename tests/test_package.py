"""The package stays light: no streamlit, no heavy ML stack at import, nothing written."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest


def test_import_is_light(tmp_path):
    code = (
        "import sys, time, json; t=time.time(); import crystalrep; dt=time.time()-t;"
        "heavy=[m for m in ('streamlit','torch','chgnet','umap','openTSNE','dscribe','faiss','matminer') if m in sys.modules];"
        "print(json.dumps({'dt': dt, 'heavy': heavy, 'version': crystalrep.__version__}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "CRYSTALREP_HOME": str(tmp_path / "home")}, cwd=tmp_path)
    info = json.loads(out.stdout)
    assert info["heavy"] == []
    assert info["dt"] < 5.0
    assert not (tmp_path / "home").exists()  # nothing created at import time


def _requirement_ok(spec: str) -> tuple[bool, str]:
    from importlib.metadata import PackageNotFoundError, version

    from packaging.requirements import Requirement

    req = Requirement(spec)
    try:
        have = version(req.name)
    except PackageNotFoundError:
        return False, f"{req.name} is not installed"
    return req.specifier.contains(have, prereleases=True), f"{req.name} {have} vs {req.specifier}"


def test_declared_dependencies_are_met_by_the_lock() -> None:
    """pyproject's ranges accept what requirements.txt pins (the lock the Makefile installs)."""
    import tomllib
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    deps = project["dependencies"]
    assert len(deps) >= 15 and any(d.startswith("torch") for d in deps)
    failures = [why for ok, why in map(_requirement_ok, deps) if not ok]
    assert not failures, failures


@pytest.mark.slow
def test_wheel_works_outside_the_checkout(tmp_path) -> None:
    """`pip install .` gives a CLI that finds the default dataset with no source tree around."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    wheels, site = tmp_path / "wheels", tmp_path / "site"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(root)],
                   check=True, cwd=tmp_path, capture_output=True)
    wheel = next(wheels.glob("crystalrep-*.whl"))
    subprocess.run([*pip, "install", "--no-deps", "--target", str(site), str(wheel)], check=True,
                   capture_output=True)
    env = {**os.environ, "CRYSTALREP_HOME": str(tmp_path / "home"), "PYTHONPATH": str(site)}
    where = subprocess.run([sys.executable, "-c", "import crystalrep; print(crystalrep.__file__)"], env=env,
                           cwd=tmp_path, capture_output=True, text=True, check=True).stdout.strip()
    assert where.startswith(str(site))
    out = subprocess.run([str(site / "bin" / "crystalrep"), "data", "show", "default", "--json"], env=env,
                         cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout)
    assert info["n_structures"] > 1000 and info["name"] == "default"
