"""Lesson 7 — the tunnel effect: a guided tour of what the Tunnel page measures."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app.lessons import configs
from app.lessons import figures as lf
from app.lessons.base import Step, TryIt, chart, kept, render_step
from app.lessons.runs import lesson_result
from engine.analysis.probes import compression_kappa, tunnel_start


def demo_spec() -> dict:
    """The lesson's network as a tunnel experiment: an 8-layer MLP on all ten digits."""
    net = configs.DEEP_NET
    return {
        "data": {"benchmark": net["data"]["benchmark"]},
        "model": net["model"],
        "train": net["train"],
        "ood": "none",
    }


def demo() -> dict | None:
    """Layers, probe accuracy, rank and the input probe of the lesson's network (a job of kind
    tunnel, stored and shared); None while it is being computed."""
    r = lesson_result(
        "tunnel",
        demo_spec(),
        prefix="learn:tn",
        hint="Training an 8-layer network on all ten digits and probing every layer "
        "(first time only)…",
    )
    if r is None or r.get("status") != "done":
        return None
    probe = r["probe"]["test_acc"]
    input_acc = r["input_probe"]["test_acc"]
    return {
        "layers": r["layers"],
        "probe_acc": probe,
        "input_acc": input_acc,
        "rank": r["rank"],
        "tunnel_start": tunnel_start(probe, 0.98, input_acc=input_acc),
        "model_acc": r["model_acc"],
        "n_classes": r["n_classes"],
    }


def shaded(d: dict) -> dict:
    """The demo with its tunnel start at the share chosen in step 2 (98 % until then)."""
    share = st.session_state.get("_kept:tn:share", 0.98)
    return {**d, "tunnel_start": tunnel_start(d["probe_acc"], share, input_acc=d["input_acc"])}


SLUG = "tunnel"
TITLE = "The tunnel effect"
SUMMARY = "Deep layers that stop adding separability and squeeze representations to low rank."


def _probes() -> None:
    st.markdown(
        "How much does each layer of a network 'know'? Freeze the trained network, take the "
        "output of one layer, and fit a plain linear classifier on it — a **linear probe**. "
        "Its test accuracy says how linearly separable the classes are at that depth. Here "
        "is a probe on every layer of an 8-layer MLP trained on all ten digits."
    )
    d = demo()
    if d is None:
        return
    chart(lf.figure_probe_rank(shaded(d)), "tn:probe")
    st.caption(
        f"The network's own test accuracy: {d['model_acc']:.3f}. On 8×8 digits even the first "
        "layer is already quite separable, so the rise is short; on CIFAR-sized problems "
        "(Tunnel page) the early layers do much more of the work."
    )


def _start() -> None:
    st.markdown(
        "In deep networks the probe accuracy stops improving well before the last layer. "
        "The layers after that point form the **tunnel**: they keep transforming the "
        "representation without making it more separable. Its start is the first layer whose "
        "probe has made a set share (95 % or 98 %) of the gain from a probe on the raw input to "
        "the best probe (a share of the accuracy itself would say 'layer 1' on data like 8×8 "
        "digits, which are nearly separable at the input); the **compression** κ "
        "is the first layer reaching a share η of the best probe, divided by the depth — lower "
        "κ means the network really used fewer of its layers."
    )
    d = demo()
    if d is None:
        return
    share = kept(
        st.select_slider,
        "share of the gain from the input probe to the best probe",
        "tn:share",
        0.98,
        options=[0.8, 0.9, 0.95, 0.98, 0.99],
    )
    start = tunnel_start(d["probe_acc"], share, input_acc=d["input_acc"])
    kappa = compression_kappa(d["probe_acc"], eta=share)
    c1, c2 = st.columns(2)
    c1.metric("tunnel starts at layer", f"{start + 1} of {len(d['layers'])}")
    c2.metric("compression κ", f"{kappa:.2f}")
    chart(lf.figure_probe_rank({**d, "tunnel_start": start}), "tn:start")


def _rank() -> None:
    st.markdown(
        "What happens inside the tunnel? The **numerical rank** of a layer's representations "
        "(how many directions of its feature covariance carry more than a thousandth of the "
        "largest) falls from layer to layer, towards the number of classes. The tunnel "
        "compresses: it keeps what separates the training classes and drops the rest, which "
        "is why features from deep layers transfer worse to out-of-distribution data than "
        "those from the end of the extractor. For continual learning the thesis reports "
        "something less obvious: when new tasks arrive the tunnel stays nearly unchanged — a "
        "task-agnostic compressor — and the forgetting happens in the extractor."
    )
    d = demo()
    if d is None:
        return
    st.dataframe(
        pd.DataFrame(
            {
                "layer": d["layers"],
                "probe accuracy": d["probe_acc"],
                "numerical rank": d["rank"],
                "rank ÷ classes": [r / d["n_classes"] for r in d["rank"]],
            }
        ),
        hide_index=True,
        key="learn:tn:table",
    )
    chart(lf.figure_probe_rank(shaded(d)), "tn:rank")


def _explore() -> None:
    st.markdown(
        "The Tunnel page runs the full analysis: probes on every layer of deeper networks "
        "(MLPs, VGGs, ResNets), in distribution and on out-of-distribution data, the rank by "
        "layer with the tunnel shaded, and how both change while tasks arrive one after "
        "another. Things to try there: make the network deeper (the tunnel grows with depth), "
        "wider, or train it on fewer classes (the rank settles near the number of classes)."
    )
    d = demo()
    if d is None:
        return
    chart(lf.figure_probe_rank(shaded(d)), "tn:explore")


STEPS = [
    Step("Probing each layer", _probes),
    Step("Where does the tunnel start?", _start),
    Step("Rank falls inside the tunnel", _rank),
    Step("Explore on the Tunnel page", _explore),
]


def try_it() -> list[TryIt]:
    net = configs.DEEP_NET
    view = {
        "benchmark": net["data"]["benchmark"],
        "depth": net["model"]["depth"],
        "width": net["model"]["width"],
        "epochs": net["train"]["epochs"],
    }
    return [TryIt("Open a network like this on the Tunnel page", "tunnel", {}, view)]


def render(step: int = 0) -> None:
    render_step(STEPS, step)
