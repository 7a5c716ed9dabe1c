"""The Streamlit app: thin pages over the engine (widgets, layout, figures; no training)."""


def _leave_pages_directory_mode() -> None:
    """Route every request through main.py's st.navigation.

    Until some run has called st.navigation, Streamlit routes requests by the legacy ``pages/``
    convention: the first visitor of a fresh server arriving on a link such as
    ``/forgetting?…`` would get that page run alone (no navigation, no wide layout). The first
    import of this package inside such a run switches the legacy mode off and runs again.
    """
    try:
        from streamlit.runtime.pages_manager import PagesManager
        from streamlit.runtime.scriptrunner import get_script_run_ctx
    except ImportError:  # a newer Streamlit without these internals: nothing to fix
        return
    if PagesManager.uses_pages_directory and get_script_run_ctx() is not None:
        PagesManager.uses_pages_directory = False
        import streamlit as st

        st.rerun()


_leave_pages_directory_mode()
