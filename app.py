"""crystalrep dashboard: page config, the shared sidebar, then the page chosen in the menu.

Run with ``streamlit run app.py`` (``make run``). Pages are listed in ``ui.PAGES``.
"""

import streamlit as st

from ui import PAGES, state

st.set_page_config(page_title="crystalrep", page_icon=":material/diamond:", layout="wide")

pages = [st.Page(p.path, title=p.title, icon=p.icon, url_path=p.url_path, default=i == 0)
         for i, p in enumerate(PAGES)]
navigation = st.navigation(pages)
state.sidebar()
navigation.run()
