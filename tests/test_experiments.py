"""Representation experiments (the kinds in engine.kinds, run by engine.executor), activations, OOD sets.

Fast tests use tiny models on split-digits; the thesis-scale checks are marked slow.
"""

from __future__ import annotations

import pytest
import torch
from conftest import tiny_config

from engine import kinds
from engine.analysis.activations import (
    collect,
    eval_subset,
    load_recording,
    record_after_task,
    recorded_tasks,
)
from engine.config import ConfigError, ModelConfig
from engine.executor import execute
from engine.models import build_model

TRAIN = {"epochs": 3, "device": "cpu", "evals_per_task": 1, "batch_size": 64, "optimizer": "adam"}
ANALYSIS = {"probe_epochs": 10, "n_eval": 200}


def tiny(kind: str, **over) -> dict:
    cfg = {"train": dict(TRAIN), "data": {"benchmark": "split-digits"}, **ANALYSIS}
    if kind in ("tunnel", "temperature"):
        cfg["ood"] = "none"
    if kind == "repforget":
        cfg["hidden"] = "32,8,32"
    else:
        cfg["model"] = {"arch": "mlp", "depth": 2, "width": 32}
    for k, v in over.items():
        if isinstance(v, dict):
            cfg[k] = {**cfg.get(k, {}), **v}
        else:
            cfg[k] = v
    return cfg


@pytest.fixture(scope="module")
def tunnel_result(tmp_path_factory):
    from engine.store import Store

    store = Store(tmp_path_factory.mktemp("tunnel_store"))
    cfg = tiny("tunnel", train={"epochs": 12, "lr": 3e-3}, model={"width": 64}, probe_epochs=30)
    return execute("tunnel", cfg, store=store)


# -------------------------------------------------------------------------- activations


def test_collect_equals_forward_with_acts_in_eval_mode():
    torch.manual_seed(0)
    model = build_model(ModelConfig(arch="mlp", depth=3, width=16), (1, 8, 8), 10)
    model.train()
    x = torch.randn(50, 1, 8, 8)
    acts = collect(model, x, batch_size=7)  # several batches
    assert model.training  # mode restored
    model.eval()
    with torch.no_grad():
        _, ref = model.forward_with_acts(x)
    assert [a.shape for a in acts] == [(50, 16)] * 3
    for a, name in zip(acts, model.probe_points, strict=True):
        torch.testing.assert_close(a, ref[name].flatten(1))


def test_collect_caps_wide_conv_layers():
    torch.manual_seed(0)
    model = build_model(ModelConfig(arch="cnn", depth=2, width=8), (3, 16, 16), 10)
    acts = collect(model, torch.randn(6, 3, 16, 16), max_features=200)
    # conv1 is 8×16×16 = 2048 features: pooled to 8×5×5 = 200; conv2 (8×8×8 = 512) to 8×5×5.
    assert [a.shape[1] for a in acts] == [200, 200]
    wide = collect(model, torch.randn(6, 3, 16, 16), max_features=4096)
    assert [a.shape[1] for a in wide] == [2048, 512]  # under the cap: untouched


def test_eval_subset_is_seeded_sorted_and_clipped():
    a, b = eval_subset(1000, 50, seed=3), eval_subset(1000, 50, seed=3)
    assert torch.equal(a, b) and torch.all(a[1:] > a[:-1]) and len(a) == 50
    assert not torch.equal(a, eval_subset(1000, 50, seed=4))
    assert torch.equal(eval_subset(10, 50), torch.arange(10))


def test_recording_round_trip_keeps_activations_to_three_digits():
    from engine.config import resolve, validate
    from engine.data import build_benchmark

    cfg = resolve(validate(tiny_config()))
    bench = build_benchmark(cfg.data, cfg.scenario, "cpu")
    torch.manual_seed(0)
    model = build_model(cfg.model, bench.input_shape, bench.n_outputs)
    rec = load_recording(record_after_task(model, bench, 40))
    idx = eval_subset(len(bench.x_test), 40)
    ref = collect(model, bench.x_test[idx])
    assert rec["points"] == model.probe_points and torch.equal(rec["index"], idx)
    assert torch.equal(rec["y"], bench.y_test[idx]) and rec["n_outputs"] == bench.n_outputs
    for a, r in zip(rec["acts"], ref, strict=True):
        torch.testing.assert_close(a, r, atol=1e-3 * float(r.abs().max()), rtol=0)


def test_record_kind_records_after_every_task_and_views_read_the_store():
    from engine.analysis.recorded import cka_view, probes_view, rank_view, recordings
    from engine.store import Store

    store = Store()
    result = execute(
        "record", {**tiny_config(model__depth=2), "n": 60, "probe_epochs": 3}, store=store
    )
    assert recorded_tasks(store, result["key"]) == [0, 1, 2, 3, 4]
    recs = recordings(store, result["key"])
    ranks = rank_view(recs)
    assert len(ranks["rank"]) == 5 and all(len(r) == 2 for r in ranks["rank"])
    assert result["rank"] == ranks["rank"]  # the stored views are the recordings' views
    drift = cka_view(recs)["drift"]
    assert drift.shape == (2, 5, 5)
    assert drift[:, range(5), range(5)] == pytest.approx(1.0)
    probes = probes_view(recs, epochs=3)
    assert len(probes["test_acc"]) == 5 and probes["n_fit"] + probes["n_test"] == 60
    assert len(result["R"]) == 5 and result["metrics"]["acc"] > 0  # the run itself, too


# --------------------------------------------------------------------------- tunnel


def test_last_layer_probe_is_close_to_the_models_own_accuracy(tunnel_result):
    r = tunnel_result
    assert r["status"] == "done" and r["model_acc"] > 0.85
    assert abs(r["probe"]["test_acc"][-1] - r["model_acc"]) <= 0.05


def test_tunnel_numbers_follow_their_definitions(tunnel_result):
    from engine.analysis.probes import compression_kappa, tunnel_start

    r = tunnel_result
    probe = r["probe"]["test_acc"]
    assert r["layers"] == ["fc1", "fc2"] and len(r["rank"]) == 2
    input_acc = r["input_probe"]["test_acc"]  # the gain over a probe on the raw input
    assert r["tunnel_start"]["0.95"]["layer"] == tunnel_start(probe, 0.95, input_acc=input_acc) + 1
    assert 0.0 < input_acc <= 1.0 and 1 <= r["logits_rank"] <= 10
    assert r["kappa"] == pytest.approx(compression_kappa(probe, eta=0.99))
    assert r["rho"] is None and r["ood"] is None
    assert [r["cka"][i][i] for i in range(2)] == pytest.approx([1.0, 1.0])
    assert all(1 <= k <= 64 for k in r["rank"]) and r["input_rank"] > 0
    assert (
        len(r["logits_norm"]["value"]) == len(r["logits_norm"]["step"]) == 2
    )  # init + 1 eval point


def test_experiments_are_memoized_with_their_kind(tunnel_result):
    from engine.store import Store

    store = Store()
    cfg = tiny("tunnel")
    first = execute("tunnel", cfg, store=store)
    events = []
    second = execute("tunnel", cfg, store=store, on_event=events.append)
    assert not first["cached"] and second["cached"]
    assert {k: v for k, v in first.items() if k != "cached"} == {
        k: v for k, v in second.items() if k != "cached"
    }
    assert [e["type"] for e in events] == ["done"] and events[0]["cached"]
    assert [m["kind"] for m in store.list_results()] == ["tunnel"]
    # Equal configs spelled differently share the key; any change of setting makes a new one.
    assert (
        kinds.prepare("tunnel", cfg)[1]
        == kinds.prepare("tunnel", {**cfg, "data": {"benchmark": "split-digits"}})[1]
    )
    assert kinds.prepare("tunnel", cfg)[1] != kinds.prepare("tunnel", {**cfg, "n_eval": 201})[1]


def test_events_run_start_progress_done_in_order():
    events = []
    execute("tunnel", tiny("tunnel"), on_event=events.append, use_cache=False)
    types = [e["type"] for e in events]
    assert (
        types[0] == "start" and types[-1] == "done" and set(types) == {"start", "progress", "done"}
    )
    steps = [e["global_step"] for e in events if e["type"] == "progress"]
    assert steps == sorted(steps) and steps[-1] == events[0]["total_steps"]


def test_cancel_stops_training_and_says_so():
    from engine.train import Cancelled

    events = []
    with pytest.raises(Cancelled):
        execute("tunnel", tiny("tunnel"), on_event=events.append, cancel=lambda: True)
    assert events[-1]["type"] == "cancelled"


def test_bad_settings_are_one_line_config_errors():
    with pytest.raises(ConfigError, match="n_eval"):
        kinds.prepare("tunnel", {"n_eval": 3})
    with pytest.raises(ConfigError, match="unknown setting"):
        kinds.prepare("tunnel", {"bogus": 1})
    with pytest.raises(ConfigError, match="classes=K"):
        kinds.prepare("tunnel", {"data": {"split": "5,5"}})
    with pytest.raises(ConfigError, match="kind"):
        kinds.prepare("nope", {})
    with pytest.raises(ConfigError, match="temperature"):
        kinds.prepare("temperature", {"temperatures": "1,0"})
    with pytest.raises(ConfigError, match="unknown setting 'ratio'"):
        kinds.apply_settings("tunnel", {}, ["ratio=0.5"])
    assert kinds.apply_settings("erosion", {}, ["ratio=0.5", "depth=3"]) == {
        "ratio": 0.5,
        "model": {"depth": 3},
    }


# ---------------------------------------------------------------------------- OOD sets


def test_ood_pairs_for_the_embedded_benchmarks():
    from engine.analysis.ood import load_ood, resolve_name
    from engine.config import DataConfig

    digits = load_ood("auto", "split-digits", DataConfig(), (1, 8, 8), n_train=500, n_test=200)
    assert (
        digits.name == "mnist5k"
        and digits.x_train.shape == (500, 1, 8, 8)
        and digits.n_classes == 10
    )
    assert float(digits.x_train.mean()) == pytest.approx(0.0, abs=1e-4)
    assert float(digits.x_train.std()) == pytest.approx(1.0, abs=1e-2)
    mnist = load_ood("auto", "split-mnist5k", DataConfig(), (1, 28, 28), n_train=100, n_test=50)
    assert mnist.name == "digits" and mnist.x_test.shape == (50, 1, 28, 28)
    assert load_ood("none", "split-digits", DataConfig(), (1, 8, 8)) is None
    assert resolve_name("auto", "split-cifar10") == "cifar100-10"
    with pytest.raises(ValueError, match="ood"):
        resolve_name("imagenet", "split-digits")


# ----------------------------------------------------------------------------- erosion


def test_corner_squares_encode_the_class_on_the_chosen_share():
    from engine.kinds.erosion import add_squares

    g = torch.Generator().manual_seed(0)
    x = torch.randn(100, 3, 8, 8, generator=g)
    y = torch.arange(100) % 4
    out, mask = add_squares(x, y, 4, side=2, ratio=0.3, seed=1)
    assert int(mask.sum()) == 30
    assert torch.equal(out[~mask], x[~mask])  # the rest untouched
    assert torch.equal(out[:, :, 2:, :], x[:, :, 2:, :]) and torch.equal(
        out[:, :, :, 2:], x[:, :, :, 2:]
    )
    corners = out[mask][:, :, :2, :2].flatten(1)
    labels = y[mask]
    for c in range(4):
        same = corners[labels == c]
        assert torch.all(same == same[0])  # one colour per class …
    firsts = torch.stack([corners[labels == c][0] for c in range(4) if (labels == c).any()])
    assert len(torch.unique(firsts, dim=0)) == len(firsts)  # … and a different one for each


def test_erosion_reports_before_and_after():
    r = execute("erosion", tiny("erosion", finetune_epochs=3))
    assert r["status"] == "done"
    assert len(r["before"]["rank"]) == len(r["after"]["rank"]) == 2
    assert len(r["cka_before_after"]) == 2 and len(r["cka_diagonal"]) == 2
    assert r["square"]["n_patched"] == r["square"]["n_train"]  # ratio 1
    # The squares carry the label: after fine-tuning on them the model reads them well.
    assert r["patched_acc_after"] >= 0.85
    assert len(r["finetune_curve"]["patched_acc"]) == len(r["finetune_curve"]["step"])


# ------------------------------------------------------------------------ substitution


def test_substitution_endpoints_are_the_two_models():
    r = execute("substitution", tiny("substitution"))
    n = len(r["layers"])
    R = r["R"]
    # x = n: all of M1 (task 1 read by its own head) → M1's accuracy on task 1.
    assert r["m1_bottom"]["task1"][n] == pytest.approx(R[0][0])
    # x = 0: all of M2 → the final model's accuracies.
    assert [r["m1_bottom"]["task1"][0], r["m1_bottom"]["task2"][0]] == pytest.approx(R[1])
    assert [r["m2_bottom"]["task1"][n], r["m2_bottom"]["task2"][n]] == pytest.approx(R[1])
    names = [row["name"] for row in r["table"]]
    assert names == ["E1 + T1", "E1 + T2", "E2 + T2", "E2 + T1", "E2 + T1 (FT)", "E2 (FT)"]
    assert r["table"][0]["task1"] == pytest.approx(R[0][0]) and 1 <= r["split_at"] < n


def test_substitution_needs_two_tasks_and_a_tunnel():
    with pytest.raises(ConfigError, match="two tasks"):
        execute("substitution", tiny("substitution", data={"split": "2,2,2"}))
    with pytest.raises(ConfigError, match="split_at"):  # 2 layers: the extractor can have 1
        execute("substitution", tiny("substitution", split_at=2))


# ---------------------------------------------------------------------------- repforget


def test_frozen_probes_fill_the_lower_triangle_and_drift_starts_at_one():
    r = execute("repforget", tiny("repforget"))
    T = r["tasks"]
    for model in ("discriminative", "autoencoder"):
        P = r[model]["probe_acc"]
        assert all(P[t][j] is None for t in range(T) for j in range(t + 1, T))
        assert all(0.0 <= P[t][j] <= 1.0 for t in range(T) for j in range(t + 1))
        for k, d in enumerate(r[model]["drift"]):
            assert len(d) == 3 and all(len(layer) == T - k for layer in d)  # 3 hidden layers
            assert [layer[0] for layer in d] == pytest.approx([1.0, 1.0, 1.0])
    # The task-incremental classifier learns each 2-class task well while it is current.
    assert r["metrics"]["discriminative"]["probe_acc_when_learned"] > 0.8


# --------------------------------------------------------------------------- temperature


def test_temperature_collects_memoized_tunnel_runs():
    from engine.store import Store

    store = Store()
    r = execute("temperature", tiny("temperature", temperatures="1,100"), store=store)
    assert [row["temperature"] for row in r["table"]] == [1.0, 100.0]
    stored = sorted(m["kind"] for m in store.list_results())
    assert stored == ["temperature", "tunnel", "tunnel"]
    for row in r["table"]:
        sub = store.get_result(row["key"])
        assert sub["config"]["train"]["temperature"] == row["temperature"]
        assert (
            row["rank"] == sub["rank"] and row["logits_norm_end"] == sub["logits_norm"]["value"][-1]
        )
    # The temperature experiment's own key ignores train.temperature.
    assert (
        kinds.prepare("temperature", {"train": {"temperature": 5}})[1]
        == kinds.prepare("temperature", {})[1]
    )


# -------------------------------------------------------------------- slow: the thesis checks


@pytest.mark.slow
def test_deep_mlp_rank_falls_toward_the_class_count_while_probes_saturate():
    r = execute("tunnel", {"train": {"device": "cpu"}})  # the defaults: MLP-12 × 512, split-mnist5k
    rank, probe = r["rank"], r["probe"]["test_acc"]
    assert r["train_acc"] == pytest.approx(1.0)
    assert rank[0] > 4 * rank[-1]  # the deep layers compress
    assert r["logits_rank"] <= 15  # ≈ 10 classes
    assert probe[-1] >= 0.98 * max(probe)  # saturated: the deep layers keep the accuracy
    assert r["metrics"]["tunnel_start_95"] <= 6  # 98 % of a 0.036 gain is within probe noise


@pytest.mark.slow
def test_high_temperature_lowers_the_rank_of_deep_layers():
    r = execute("temperature", {"train": {"device": "cpu"}, "ood": "none"})
    ranks = {row["temperature"]: row["rank"] for row in r["table"]}
    deep = slice(len(ranks[1.0]) // 2, None)
    for t in (100.0, 1000.0):
        assert sum(ranks[t][deep]) < sum(ranks[1.0][deep])


def test_a_cancelled_tunnel_resumes_after_its_training():
    """Cancelled during its analysis, the tunnel experiment keeps its trained model: run again,
    it does not train again, and the result equals an uninterrupted one."""
    from engine.errors import Cancelled
    from engine.store import Store

    store = Store()
    cfg = tiny("tunnel")
    stages = []

    def cancel_at_probes() -> bool:
        return "probes" in stages

    with pytest.raises(Cancelled):
        execute(
            "tunnel",
            cfg,
            store=store,
            cancel=cancel_at_probes,
            on_event=lambda e: stages.append(e.get("stage")),
        )
    events = []
    resumed = execute("tunnel", cfg, store=store, on_event=events.append)
    trained_steps = [e for e in events if e["type"] == "progress" and e.get("stage") == "train"]
    assert not trained_steps  # no training step the second time
    fresh = execute("tunnel", cfg, use_cache=False)
    assert resumed["probe"] == fresh["probe"] and resumed["rank"] == fresh["rank"]
