"""Session-state keys, the shared sidebar pickers (dataset, property, encoders) and the upload import.

The pickers live in the URL too (``?dataset=…&prop=…&encoders=a,b``, :mod:`ui.urlstate`), so a
link opens the same dataset, property and encoders on whichever page it points to.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import PurePath

import streamlit as st

from crystalrep.datasets import DEFAULT_NAME, Dataset, DatasetError, list_datasets
from crystalrep.plots import data as plots
from ui import urlstate
from ui.cache import DatasetRef, dataset, dataset_ref
from ui.messages import sentence

DATASET = "crystalrep.dataset"
PROPERTY = "crystalrep.property"
ENCODERS = "crystalrep.encoders"
DEFAULT_ENCODERS = ("cgcnn-random", "magpie", "soap", "chgnet")
REF = "crystalrep.dataset_ref"
UPLOAD = "crystalrep.import.file"
IMPORT_NAME = "crystalrep.import.name"
IMPORT_RESULT = "crystalrep.import.result"
PENDING = "crystalrep.import.select"
IMPORT_USED = "crystalrep.import.used"

NO_DATA = ("No dataset yet: run `crystalrep data build-default` in the project folder to build the "
           "built-in one, or import your own file under “Import a dataset” on the Data page.")


@dataclass(frozen=True)
class ImportOutcome:
    """What an upload import tells the page: one error sentence, or the new dataset and its rejected rows."""

    name: str
    error: str = ""
    n_structures: int = 0
    fmt: str = ""
    rejected: list[dict[str, str]] = field(default_factory=list)


def dataset_names() -> list[str]:
    """Names of the stored datasets, the built-in default first."""
    names = [d["name"] for d in list_datasets()]
    return sorted(names, key=lambda n: n != DEFAULT_NAME)


def sidebar() -> DatasetRef | None:
    """Draw the dataset and property pickers; return the chosen dataset (``None`` if there is none)."""
    st.session_state[REF] = None
    names = dataset_names()
    with st.sidebar:
        if not names:
            st.caption("No dataset yet.")
            return None
        if st.session_state.get(PENDING) in names:  # a dataset imported on the previous run
            st.session_state[DATASET] = st.session_state.pop(PENDING)
            st.session_state.pop(PROPERTY, None)
        urlstate.bind(DATASET, "dataset", names[0], valid=names)
        name = st.selectbox("Dataset", names, key=DATASET)
        try:
            ref = dataset_ref(name)
            ds = dataset(ref)
        except DatasetError as exc:
            st.error(str(exc))
            return None
        _property_picker(ds)
        _encoder_picker()
    st.session_state[REF] = ref
    return ref


def encoder_names() -> list[str]:
    """Built-in encoders, then every stored checkpoint and pretraining job as ``cgcnn@<id>``."""
    from crystalrep.encoders import available_encoders

    return available_encoders(include_checkpoints=True)


def _encoder_picker() -> None:
    names = encoder_names()
    kept = [n for n in st.session_state.get(ENCODERS) or [] if n in names]  # a deleted checkpoint drops out
    st.session_state[ENCODERS] = kept or [n for n in DEFAULT_ENCODERS if n in names]
    urlstate.bind(ENCODERS, "encoders", st.session_state[ENCODERS], codec=urlstate.NAMES,
                  valid=lambda v: bool(v) and all(n in names for n in v))
    st.multiselect("Encoders", names, key=ENCODERS, help=_encoder_help())


def _encoder_help() -> str:
    from crystalrep.encoders import encoder_descriptions

    lines = [f"- **{name}**: {text}" for name, text in encoder_descriptions().items()]
    return "The embeddings every page compares.\n\n" + "\n".join(lines) + "\n- **cgcnn@…**: a pretrained checkpoint"


def current_encoders() -> list[str]:
    """The encoders chosen in the sidebar, in menu order (may be empty)."""
    return list(st.session_state.get(ENCODERS) or [])


def _property_picker(ds: Dataset) -> None:
    props = ds.property_names()
    if not props:
        st.session_state.pop(PROPERTY, None)
        st.caption("This dataset has no property columns.")
        return
    numeric = ds.property_names("numeric")
    urlstate.bind(PROPERTY, "prop", numeric[0] if numeric else props[0], valid=props)
    st.selectbox("Property", props, key=PROPERTY, format_func=lambda p: plots.axis_label(ds.properties[p]))


def current_ref() -> DatasetRef | None:
    """The dataset chosen in the sidebar during this run."""
    return st.session_state.get(REF)


def require_dataset() -> tuple[DatasetRef, Dataset]:
    """The chosen dataset for a page that needs one; otherwise say how to get one and stop the page."""
    ref = current_ref()
    if ref is None:
        st.info(NO_DATA)
        st.stop()
    return ref, dataset(ref)


def current_property() -> str | None:
    """The property chosen in the sidebar, or ``None`` when the dataset has none."""
    return st.session_state.get(PROPERTY)


def default_import_name(filename: str) -> str:
    """A valid dataset name from an upload's file name (``my file.cif`` -> ``my_file``)."""
    stem = PurePath(filename).name.split(".")[0]
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", stem).strip("_.-")[:64] or "upload"


def run_import(filename: str, data: bytes, *, name: str,
               progress: Callable[[int, int], None] | None = None) -> ImportOutcome:
    """Import an uploaded file and save it as a dataset (streaming, in shards); user errors come back as one sentence."""
    from crystalrep.importers.upload import import_upload_streaming

    try:
        report = import_upload_streaming(filename, data, name=name, progress=progress)
    # DatasetError and StructureError are ValueErrors; OSError covers a full or read-only disk.
    except (ValueError, OSError) as exc:
        return ImportOutcome(name=name, error=sentence(exc))
    rejected = [{"row": str(r.row), "reason": str(r.reason)} for r in report.rejected]
    return ImportOutcome(name=report.dataset.name, n_structures=len(report.dataset), fmt=str(report.format),
                         rejected=rejected)


def import_from_widgets() -> ImportOutcome:
    """Import the uploaded file under the typed (or file-derived) name, with a progress bar.

    On success the new dataset is selected in the sidebar on the rerun that follows.
    """
    st.session_state[IMPORT_USED] = True
    upload = st.session_state.get(UPLOAD)
    if upload is None:
        outcome = ImportOutcome(name="", error="Choose a file to import first.")
    else:
        name = (st.session_state.get(IMPORT_NAME) or "").strip() or default_import_name(upload.name)
        bar = st.progress(0.0, text=f"Reading {upload.name}…")
        shown = [-1]

        def progress(done: int, total: int) -> None:
            percent = int(100 * done / max(total, 1))
            if percent != shown[0]:  # one message per percent, not per row
                shown[0] = percent
                bar.progress(percent / 100, text=f"Parsed {done:,} of {total:,} structures")

        outcome = run_import(upload.name, upload.getvalue(), name=name, progress=progress)
        bar.empty()
    st.session_state[IMPORT_RESULT] = outcome
    if not outcome.error:
        st.session_state[PENDING] = outcome.name
        st.rerun()
    return outcome


def clear_import_result() -> None:
    """``on_change`` of the uploader: a new file makes the previous outcome irrelevant."""
    st.session_state.pop(IMPORT_RESULT, None)
