"""Forgetting: configure in the sidebar, press Run, watch R[t,i] fill in while it trains."""

from __future__ import annotations

import streamlit as st

from app import live
from app.references import ref_link
from app.sidebar import experiment_sidebar

m = live.manager()
sel = experiment_sidebar(hosted_caps=m.caps if m.hosted else None)

st.title("Forgetting")
st.markdown(
    "Train on the tasks one after another and watch what happens to the earlier ones. "
    "Row *t* of the matrix is measured after training task *t*; column *i* is the test "
    "accuracy on task *i*. Below the diagonal is what is remembered, the diagonal what was "
    "just learned, above it what transfers forward before a task is seen "
    f"({ref_link('lopez-paz-2017')}; the three scenarios are "
    f"{ref_link('van-de-ven-2019', 'van de Ven & Tolias')}'s)."
)
sel.require()
cfg = sel.cfg
st.caption(
    f"{cfg.data.benchmark} · {cfg.scenario}-incremental · {cfg.strategy.name} · "
    f"{cfg.model.arch} · {cfg.train.epochs} epochs/task · lr {cfg.train.lr:g} · "
    f"batch {cfg.train.batch_size} · seed {cfg.train.seed} · config key `{sel.key}`"
)
live.run_panel(sel.key, sel.raw, cfg.data.n_tasks, strategy=cfg.strategy.name)
