"""crystalrep dashboard: page config, the shared sidebar, then the page chosen in the menu.

Run with ``streamlit run app.py`` (``make run``). Pages are listed in ``ui.PAGES``; each is served
at its own ``/<url_path>``. Streamlit serves the default page only at ``/`` (its own path then
answers "Page not found"), so the default is a hidden page that opens the first menu page,
query string included: ``/`` and ``/dataset`` both show the Data page, and links keep working.
"""

import streamlit as st

from ui import PAGES, state

st.set_page_config(page_title="crystalrep", page_icon=":material/diamond:", layout="wide")

pages = [st.Page(p.path, title=p.title, icon=p.icon, url_path=p.url_path) for p in PAGES]


def home() -> None:
    """Open the first menu page with the same query string."""
    st.switch_page(pages[0], query_params={k: st.query_params.get_all(k) for k in st.query_params})


navigation = st.navigation([st.Page(home, title=PAGES[0].title, url_path="", default=True, visibility="hidden"),
                            *pages])
state.sidebar()
navigation.run()
