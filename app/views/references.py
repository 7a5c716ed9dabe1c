"""References: full citations of the project's source documents and of the literature the
strategies, metrics and analyses follow, each with the pages and sections that draw on it."""

from __future__ import annotations

import streamlit as st

from app.references import LITERATURE, SEEDS, Reference


def entry(ref: Reference) -> None:
    # The anchor is the key, so /references#<key> (app.references.ref_link) scrolls here.
    st.subheader(ref.short[0].upper() + ref.short[1:], anchor=ref.key, divider="gray")
    st.markdown(ref.citation)
    if ref.url:
        st.markdown(f"<{ref.url}>")
    st.markdown("Where the app draws on it:\n" + "\n".join(f"- {use}" for use in ref.used_by))
    if ref.seed:
        st.caption(f"Source document: `seeds/{ref.seed}` (see the project's SPEC).")


st.title("References")
st.markdown(
    "What the pages mean by *the thesis*, *the course*, *the guide* and *the blog*, and the "
    "papers behind the strategies, metrics and analyses. A mention on another page links here."
)
st.header("The project's source documents", anchor="sources")
for ref in SEEDS:
    entry(ref)
st.header("Literature", anchor="literature")
for ref in LITERATURE:
    entry(ref)
