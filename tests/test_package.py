"""The package stays light: no streamlit, no heavy ML stack at import, nothing written."""

from __future__ import annotations

import json
import os
import subprocess
import sys


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
