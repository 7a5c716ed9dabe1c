"""Forgetting Explorer engine: everything that computes. Never imports Streamlit."""
