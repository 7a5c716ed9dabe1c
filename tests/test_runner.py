"""run(): memoized, resumable, deterministic; events drive progress; R is complete."""

import pytest
from conftest import tiny_config

from engine.metrics import summarize
from engine.runner import run
from engine.store import Store
from engine.train import Cancelled


def test_run_fills_the_whole_matrix_and_metrics():
    events = []
    r = run(tiny_config(), on_event=events.append)
    T = 5
    assert len(r.R) == T and all(len(row) == T for row in r.R)
    assert len(r.baseline) == T and len(r.loss_matrix) == T
    assert all(0.0 <= a <= 1.0 for row in r.R for a in row)
    assert r.metrics == summarize(r.R, r.baseline)
    kinds = [e["type"] for e in events]
    assert kinds[0] == "start" and kinds[-1] == "done"
    assert kinds.count("row") == T and kinds.count("task_start") == T
    assert [e["t"] for e in events if e["type"] == "row"] == list(range(T))
    assert len(r.curves["step"]) == T * 2  # evals_per_task=2
    assert all(len(acc) == T for acc in r.curves["acc"])
    assert r.timing["total_s"] > 0 and not r.cached and r.status == "done"


def test_second_run_is_a_cache_hit_with_equal_numbers():
    first = run(tiny_config())
    events = []
    second = run(tiny_config(), on_event=events.append)
    assert second.cached and second.R == first.R and second.key == first.key
    assert [e["type"] for e in events] == ["done"]


def test_same_seed_same_numbers_other_seed_other_numbers():
    a = run(tiny_config(), use_cache=False)
    b = run(tiny_config(), use_cache=False)
    c = run(tiny_config(train__seed=1), use_cache=False)
    assert a.R == b.R and a.curves == b.curves
    assert a.R != c.R


def test_no_cache_leaves_the_store_empty():
    run(tiny_config(), use_cache=False)
    assert Store().info()["results"] == 0


def test_cancel_keeps_finished_tasks_and_rerun_resumes_to_the_same_result():
    reference = run(tiny_config(), use_cache=False)
    seen = {"phase": -1}

    def on_event(e):
        if e["type"] == "task_start":
            seen["phase"] = e["phase"]

    with pytest.raises(Cancelled):
        run(tiny_config(), on_event=on_event, cancel=lambda: seen["phase"] == 2)
    store = Store()
    assert store.get_result(reference.key) is None  # nothing half-finished is served
    ckpt = store.get_checkpoint(reference.key)
    assert ckpt is not None and ckpt["phase"] == 1 and len(ckpt["R"]) == 2
    events = []
    resumed = run(tiny_config(), on_event=events.append)
    start = next(e for e in events if e["type"] == "start")
    assert start["resumed_at"] == 2
    assert [e["phase"] for e in events if e["type"] == "task_start"] == [2, 3, 4]
    assert resumed.R == reference.R and resumed.baseline == reference.baseline
    assert store.get_checkpoint(reference.key) is None  # dropped once the result is stored


def test_joint_fills_every_row_with_the_one_model():
    r = run(tiny_config(strategy={"name": "joint"}, train__epochs=4))
    assert all(row == r.R[0] for row in r.R)
    assert r.metrics["bwt"] == 0.0 and r.metrics["forgetting"] == 0.0


def test_divergence_ends_with_status_and_message():
    r = run(
        tiny_config(
            train__optimizer="sgd",
            train__lr=10.0,
            train__momentum=0.99,
            train__temperature=0.001,
            model__depth=3,
            model__width=256,
        )
    )
    assert r.status == "diverged"
    assert "lower train.lr" in r.message and len(r.R) < 5


@pytest.mark.parametrize("scenario", ["task", "domain", "class"])
def test_every_scenario_runs(scenario):
    r = run(tiny_config(scenario=scenario))
    assert len(r.R) == 5
    assert r.metrics["learning_acc"] > 0.6


def test_task_incremental_uses_heads():
    """In task-IL an untrained model already scores ~50% on binary tasks; in class-IL ~10%."""
    task = run(tiny_config(scenario="task"))
    cls = run(tiny_config(scenario="class"))
    assert sum(task.baseline) / 5 > 0.3 and sum(cls.baseline) / 5 < 0.3


@pytest.mark.parametrize(
    "strategy",
    [
        {"name": "naive"},
        {"name": "replay", "buffer_size": 100, "grow_epoch": True},  # phases longer than planned
    ],
)
def test_progress_ends_at_its_total(strategy):
    events = []
    result = run(tiny_config(strategy=strategy), on_event=events.append, use_cache=False)
    progress = [e for e in events if e["type"] == "progress"]
    last = progress[-1]
    assert last["global_step"] == last["total_steps"] == result.curves["step"][-1]
    assert all(e["global_step"] <= e["total_steps"] for e in progress)
