"""Fixtures of the dashboard's tests: every test here gets a fresh Streamlit process state."""

from __future__ import annotations

import pytest

from tests.conftest import ROOT


@pytest.fixture(autouse=True)
def _streamlit_app_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """``ui`` importable as under ``streamlit run``, empty Streamlit caches, and background UMAP/t-SNE
    tasks recorded instead of started (they are real detached processes that would outlive the test)."""
    import streamlit as st

    monkeypatch.syspath_prepend(str(ROOT))
    st.cache_data.clear()
    st.cache_resource.clear()
    monkeypatch.setattr("crystalrep.jobs.background.start", lambda argv, *, key: None)
