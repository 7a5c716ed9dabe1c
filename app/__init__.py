"""The Streamlit app: thin pages over the engine (widgets, layout, figures; no training).

The pages live in ``app/views/``, not ``app/pages/``: a ``pages/`` folder beside the main
script switches Streamlit into its legacy multipage mode, in which the first visitor of a fresh
server arriving on a shared link would get that page run alone, outside ``st.navigation``.
"""
