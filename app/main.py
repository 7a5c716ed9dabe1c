"""Forgetting Explorer: `streamlit run app/main.py` from the repository root.

One navigation over the pages; the experiment pages share the sidebar in app/sidebar.py.
Pages written by other parts of the project (Learn, Representations, Tunnel) are listed once
their files exist, so the app runs while they are being written.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `import engine` / `import app` from any working directory
    sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402

from app.sidebar import load_from_url  # noqa: E402

# Not "pages/": that folder name switches Streamlit into its legacy multipage mode, which runs a
# page alone (outside st.navigation) for the first visitor of a fresh server on a shared link.
PAGES = Path(__file__).resolve().parent / "views"
# (file, title, icon); the first is the default page
PAGE_LIST = (
    ("forgetting.py", "Forgetting", ":material/grid_on:"),
    ("compare.py", "Compare", ":material/compare_arrows:"),
    ("representations.py", "Representations", ":material/hub:"),
    ("tunnel.py", "Tunnel", ":material/stacked_line_chart:"),
    ("softmax.py", "Softmax", ":material/functions:"),
    ("learn.py", "Learn", ":material/school:"),
    ("reproduce.py", "Reproduce", ":material/science:"),
    ("runs.py", "Runs", ":material/storage:"),
    ("references.py", "References", ":material/menu_book:"),
)

st.set_page_config(
    layout="wide", page_title="Forgetting Explorer", page_icon=":material/psychology:"
)
load_from_url()  # the first run of a session takes the config from the link it was opened with
pages = [
    st.Page(PAGES / file, title=title, icon=icon, url_path=file.removesuffix(".py"))
    for file, title, icon in PAGE_LIST[1:]
    if (PAGES / file).exists()
]
# The first page is served at the root URL; it is also reachable at its own name (/forgetting?…,
# the form share.link_for writes) through a hidden alias, since a root page has no other URL.
first, title, icon = PAGE_LIST[0]
name = first.removesuffix(".py")
home = st.Page(PAGES / first, title=title, icon=icon, url_path=f"{name}-home", default=True)
alias = st.Page(PAGES / first, title=title, icon=icon, url_path=name, visibility="hidden")
st.navigation([home, *pages, alias]).run()
