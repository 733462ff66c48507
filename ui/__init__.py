"""Streamlit-only glue for the dashboard: session-state keys, pickers, cached loaders.

``PAGES`` is the menu: ``app.py`` builds ``st.navigation`` from it and the tests visit every
entry, so adding a page is one line here. Importing this package does not import Streamlit.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePath


@dataclass(frozen=True)
class PageSpec:
    """One dashboard page.

    Args:
        path: Script path relative to the project root (where ``app.py`` lives).
        title: Menu title.
        icon: Streamlit icon (``:material/...:`` or an emoji).
        url_path: URL path segment (the first page is also served at ``/``). It differs from the
            file's stem, so that no URL could ever name a script directly. The scripts live in
            ``views/``, not ``pages/``: Streamlit treats a folder named ``pages/`` beside the main
            script as legacy multipage pages, which made a server's first deep link flash "Page not
            found" before the right page ran.
    """

    path: str
    title: str
    icon: str
    url_path: str

    def __post_init__(self) -> None:
        if self.url_path == PurePath(self.path).stem:
            raise ValueError(f"page {self.path}: url_path must differ from the file stem {self.url_path!r}.")


PAGES: tuple[PageSpec, ...] = (
    PageSpec("views/data.py", "Data", ":material/database:", "dataset"),
    PageSpec("views/projections.py", "Projections", ":material/scatter_plot:", "maps"),
    PageSpec("views/probes.py", "Probes", ":material/query_stats:", "probe"),
    PageSpec("views/retrieval.py", "Retrieval", ":material/travel_explore:", "neighbours"),
    PageSpec("views/clusters.py", "Clusters", ":material/bubble_chart:", "clustering"),
    PageSpec("views/pretraining.py", "Pretraining", ":material/model_training:", "pretrain"),
    PageSpec("views/checklist.py", "Checklist", ":material/checklist:", "reproducibility"),
    PageSpec("views/lecture.py", "Lecture", ":material/school:", "teach"),
)

__all__ = ["PAGES", "PageSpec"]
