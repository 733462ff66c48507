"""The periodic-table heatmap reads pymatviz's element table without importing pymatviz (~10 s, ~170 MB)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from pymatgen.core import Structure


def test_the_heatmap_does_not_import_pymatviz(tmp_path, tiny_structures: list[Structure]) -> None:
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps([s.as_dict() for s in tiny_structures]))
    code = ("import json, sys; from pymatgen.core import Structure; from crystalrep.datasets import Dataset; "
            "from crystalrep.plots.data import element_counts_figure; "
            f"s = [Structure.from_dict(d) for d in json.load(open({str(path)!r}))]; "
            "fig = element_counts_figure(Dataset.from_structures('t', [str(i) for i in range(len(s))], s)); "
            "print(json.dumps({'pymatviz': 'pymatviz' in sys.modules, 'traces': len(fig.data)}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300,
                         env={**os.environ, "CRYSTALREP_HOME": str(tmp_path / "home")})
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {"pymatviz": False, "traces": 2}
