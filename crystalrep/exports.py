"""Files to take away: a map as offline HTML, any figure as PNG/SVG, a selection as CSV/Parquet, a chemiscope dataset.

No Streamlit here. Static images come from kaleido (>= 1), which drives a Chromium-family browser
through choreographer; :func:`browser_path` points it at the system browser (``$BROWSER_PATH``,
else Debian's ``/usr/bin/chromium``), never at a downloaded one. The HTML export inlines
plotly.js (~4.7 MB) so it opens without a network. The chemiscope file holds the structures,
every property and every projection of the dataset that the store holds, readable by
``chemiscope.show_input`` and by chemiscope.org.
"""

from __future__ import annotations

import io
import json
import logging
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from crystalrep.plots.data import label_name

if TYPE_CHECKING:
    import plotly.graph_objects as go

    from crystalrep.datasets import Dataset
    from crystalrep.store import Store

log = logging.getLogger(__name__)

__all__ = ["ExportError", "StoredProjection", "browser_path", "chemiscope_bytes", "chemiscope_input", "figure_html",
           "figure_image", "selection_table", "stored_projections", "table_bytes", "write_chemiscope"]

IMAGE_FORMATS = ("png", "svg")
TABLE_FORMATS = ("csv", "parquet")
BROWSERS = ("/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome")
METHOD_NAMES = {"pca": "PCA", "umap": "UMAP", "tsne": "t-SNE"}


class ExportError(RuntimeError):
    """An export cannot be made here (no browser for images, nothing to export); one sentence."""


def browser_path() -> str | None:
    """The browser kaleido drives: ``$BROWSER_PATH`` if set, else the first system Chromium found."""
    if os.environ.get("BROWSER_PATH"):
        return os.environ["BROWSER_PATH"]
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    return None


def figure_html(fig: go.Figure, *, title: str = "crystalrep") -> bytes:
    """A standalone interactive HTML page of ``fig`` with plotly.js inlined: it opens offline."""
    html = fig.to_html(include_plotlyjs=True, full_html=True, include_mathjax=False,
                       config={"displaylogo": False, "responsive": True})
    return html.replace("<head>", f"<head><title>{title}</title>", 1).encode()


def figure_image(fig: go.Figure, *, fmt: str = "png", width: int = 1200, height: int | None = None,
                 scale: float = 2.0) -> bytes:
    """``fig`` as a PNG or SVG for slides, rendered by kaleido in the system Chromium.

    Args:
        fig: Any plotly figure (WebGL traces included).
        fmt: ``"png"`` or ``"svg"``.
        width: Width in CSS px (a Streamlit chart has none of its own).
        height: Height in px; the figure's own height when ``None``.
        scale: Pixel density of a PNG (2 = sharp on a projector).

    Raises:
        ValueError: Unknown format.
        ExportError: No Chromium-family browser found, or the render failed.
    """
    import kaleido

    if fmt not in IMAGE_FORMATS:
        raise ValueError(f"unknown image format {fmt!r}; valid: {', '.join(IMAGE_FORMATS)}.")
    path = browser_path()
    if path is None:
        raise ExportError("no Chromium-family browser found for image export; install chromium or set BROWSER_PATH.")
    opts = {"format": fmt, "width": width, "height": height or fig.layout.height or 500, "scale": scale}
    try:
        return kaleido.calc_fig_sync(fig, opts=opts, kopts={"path": path, "mathjax": False})
    except (OSError, RuntimeError, TimeoutError) as exc:
        raise ExportError(f"the {fmt.upper()} render failed in {path}: {exc}") from exc


def selection_table(dataset: Dataset, rows: Sequence[int] | np.ndarray) -> pd.DataFrame:
    """The chosen crystals with ids: ``row``, ``id``, formula, symmetry, then every property (named for display)."""
    idx = np.asarray(rows, dtype=np.int64).reshape(-1)
    base = ["id", "formula", "chemsys", "spacegroup", "crystal_system", "nsites"]
    columns = base + [p for p in dataset.properties if p not in base]
    out = dataset.table.iloc[idx][columns].reset_index(drop=True)
    out.insert(0, "row", idx)
    return out.rename(columns={c: label_name(c, dataset) for c in columns if c not in ("id", "formula")})


def table_bytes(table: pd.DataFrame, fmt: str) -> bytes:
    """``table`` as CSV (UTF-8, no index) or Parquet (pyarrow) bytes."""
    if fmt == "csv":
        return table.to_csv(index=False).encode()
    if fmt == "parquet":
        buf = io.BytesIO()
        table.to_parquet(buf, index=False)
        return buf.getvalue()
    raise ValueError(f"unknown table format {fmt!r}; valid: {', '.join(TABLE_FORMATS)}.")


@dataclass(frozen=True, eq=False)
class StoredProjection:
    """One stored 2-D map of a dataset: which encoder, how it was made, its coordinates."""

    encoder: str
    method: str
    params: dict[str, Any]
    seed: int | None
    coords: np.ndarray

    @property
    def name(self) -> str:
        """``"magpie UMAP (min_dist=0.1, n_neighbors=15) seed 0"``: unique per encoder, method, params, seed."""
        shown = {k: v for k, v in self.params.items() if k not in ("metric", "knn", "negative_gradient_method")}
        params = ", ".join(f"{k}={v}" for k, v in sorted(shown.items()))
        return f"{self.encoder} {METHOD_NAMES.get(self.method, self.method)}" + (f" ({params})" if params else "") + \
            f" seed {self.seed}"


def _meta(folder: Path) -> dict[str, Any]:
    try:
        return json.loads((folder / "meta.json").read_text())
    except (OSError, ValueError):
        return {}


def stored_projections(dataset: Dataset, *, store: Store | None = None) -> list[StoredProjection]:
    """Every intact projection in the store of an embedding of this dataset (by fingerprint), by name."""
    from crystalrep.analysis.projections import KIND
    from crystalrep.embed import EMBEDDINGS_KIND
    from crystalrep.store import Store

    store = store or Store()
    encoders = {}
    for key in store.keys(EMBEDDINGS_KIND):
        meta = _meta(store.path(EMBEDDINGS_KIND, key))
        if meta.get("dataset_fingerprint") == dataset.fingerprint:
            encoders[key] = str(meta.get("encoder_id", key[:8]))
    found = []
    for key in store.keys(KIND):
        meta = _meta(store.path(KIND, key))
        if meta.get("embedding_key") not in encoders or meta.get("n") != len(dataset):
            continue
        hit = store.load_array(KIND, key)
        if hit is None:  # a truncated artifact: skip it rather than export half a map
            continue
        found.append(StoredProjection(encoders[meta["embedding_key"]], str(meta["method"]), dict(meta["params"]),
                                      meta.get("seed"), np.asarray(hit[0], dtype=np.float64)))
    return sorted(found, key=lambda p: p.name)


def chemiscope_input(dataset: Dataset, *, projections: Sequence[StoredProjection] | None = None,
                     store: Store | None = None) -> dict[str, Any]:
    """The chemiscope dataset (``chemiscope.create_input``): structures, properties, projections, settings.

    Properties: id, formula, space group, crystal system, sites, then every dataset property
    (missing values stay NaN, which chemiscope leaves off the map). Each projection becomes
    ``"<name>[1]"``/``"<name>[2]"``; the map opens on the first one, coloured by the first numeric
    property. ``projections`` defaults to :func:`stored_projections`.
    """
    import chemiscope
    from pymatgen.io.ase import AseAtomsAdaptor

    if projections is None:
        projections = stored_projections(dataset, store=store)
    table = dataset.table
    props: dict[str, dict[str, Any]] = {
        "id": {"target": "structure", "values": table["id"].astype(str).tolist()},
        "formula": {"target": "structure", "values": table["formula"].astype(str).tolist()},
        "space group": {"target": "structure", "values": table["spacegroup"].astype(int).to_numpy()},
        "crystal system": {"target": "structure", "values": table["crystal_system"].astype(str).tolist()},
        "sites per cell": {"target": "structure", "values": table["nsites"].astype(int).to_numpy()},
    }
    for name, info in dataset.properties.items():
        column = table[name]
        values = (pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64) if info.kind == "numeric"
                  else column.astype(str).where(column.notna(), "no value").tolist())
        props[name] = {"target": "structure", "values": values, "units": info.unit,
                       "description": info.description}
    for proj in projections:
        props[proj.name] = {"target": "structure", "values": proj.coords,
                            "description": f"{proj.method} map of the {proj.encoder} embedding, stored by crystalrep"}
    numeric = dataset.property_names("numeric")
    x, y = (f"{projections[0].name}[1]", f"{projections[0].name}[2]") if projections else (None, None)
    settings = chemiscope.quick_settings(x=x, y=y, map_color=numeric[0] if numeric else None, periodic=True)
    meta = {"name": f"crystalrep: {dataset.name}",
            "description": (f"{len(dataset):,} crystals of the crystalrep dataset '{dataset.name}' "
                            f"(fingerprint {dataset.fingerprint[:12]}), {len(projections)} stored projection(s). "
                            + str(dataset.meta.get("description", ""))).strip(),
            "references": [str(dataset.meta["source"])] if dataset.meta.get("source") else []}
    frames = [AseAtomsAdaptor.get_atoms(s) for s in dataset.structures()]
    return chemiscope.create_input(structures=frames, properties=props, metadata=meta, settings=settings)


def chemiscope_bytes(dataset: Dataset, *, projections: Sequence[StoredProjection] | None = None,
                     store: Store | None = None) -> bytes:
    """:func:`chemiscope_input` as gzip-compressed JSON (a ``.json.gz`` file), as chemiscope writes it."""
    import gzip

    data = chemiscope_input(dataset, projections=projections, store=store)
    return gzip.compress(json.dumps(data, default=_plain).encode(), compresslevel=6)  # NaN stays NaN


def write_chemiscope(dataset: Dataset, path: str | Path, *, projections: Sequence[StoredProjection] | None = None,
                     store: Store | None = None) -> Path:
    """Write :func:`chemiscope_bytes` to ``path`` (it must end with ``.json.gz``); returns the path."""
    path = Path(path)
    if not path.name.endswith(".json.gz"):
        raise ValueError(f"a compressed chemiscope file ends with .json.gz, got {path.name!r}.")
    path.write_bytes(chemiscope_bytes(dataset, projections=projections, store=store))
    log.info("wrote chemiscope dataset %s (%d structures)", path, len(dataset))
    return path


def _plain(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")
