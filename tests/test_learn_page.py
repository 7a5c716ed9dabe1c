"""The Learn page: every lesson and every step opens without an exception, navigation works,
the URL picks the screen, and every "try it" link carries the lesson's config."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qsl, urlparse

import pytest
from conftest import tiny_config
from streamlit.testing.v1 import AppTest

from app.lessons import LESSONS, configs, ewc_taylor, replay, softmax_rank, three_approaches
from app.main import PAGE_LIST
from app.share import VIEW_PREFIX, format_value, query_to_config
from engine.runner import prepare

PAGE = str(Path(__file__).resolve().parents[1] / "app" / "views" / "learn.py")


@pytest.fixture
def tiny_lessons(monkeypatch):
    """Lessons that train use configs that take a fraction of a second."""
    two = tiny_config(scenario="task", data__split="5,5", train__epochs=1)
    five = tiny_config(data__split="5,5", train__epochs=1)
    deep = tiny_config(strategy={"name": "joint"}, model__depth=3, train__epochs=1)
    monkeypatch.setattr(configs, "TWO_TASKS", two)
    monkeypatch.setattr(configs, "FIVE_TASKS", five)
    monkeypatch.setattr(configs, "DEEP_NET", deep)
    monkeypatch.setattr(ewc_taylor, "NET", {"width": 8, "depth": 1})
    monkeypatch.setattr(ewc_taylor, "PENALTY_STEPS", 20)
    monkeypatch.setattr(softmax_rank, "TOY_ITERS", 300)
    monkeypatch.setattr(replay, "FRACTIONS", (0.0, 0.5))


def _open(lesson: str | None = None, step: int | None = None) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=120)
    if lesson is not None:
        at.session_state["learn:lesson"] = lesson
    if step is not None:
        at.session_state["learn:step"] = step
    return at.run()


def _progress_text(at: AppTest) -> str:
    return "".join(str(p.proto.text) for p in at.get("progress"))


def _ok(at: AppTest) -> None:
    assert not at.exception, [e.message for e in at.exception]
    assert not at.error, [e.value for e in at.error]


@pytest.mark.parametrize("lesson", LESSONS, ids=[lesson.SLUG for lesson in LESSONS])
def test_every_step_of_every_lesson_opens(lesson, tiny_lessons):
    at = _open(lesson.SLUG)
    n = len(lesson.STEPS)
    for k in range(n):
        _ok(at)
        assert f"Step {k + 1} of {n}" in _progress_text(at)
        assert at.subheader[0].value == lesson.STEPS[k].title
        assert at.button(key="learn:prev").disabled == (k == 0)
        assert at.button(key="learn:next").disabled == (k == n - 1)
        if k < n - 1:
            at.button(key="learn:next").click().run()
    links = [m.value for m in at.markdown if "](/" in m.value]
    assert len(links) == len(lesson.try_it())


def test_url_opens_the_named_lesson_and_step(tiny_lessons):
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.query_params[f"{VIEW_PREFIX}lesson"] = "parameter-space"
    at.query_params[f"{VIEW_PREFIX}step"] = "4"
    at.run()
    _ok(at)
    assert at.subheader[0].value.startswith("L2")
    assert at.query_params[f"{VIEW_PREFIX}step"] == "4"
    at.button(key="learn:prev").click().run()
    assert at.query_params[f"{VIEW_PREFIX}step"] == "3"


def test_bad_url_falls_back_to_the_first_lesson(tiny_lessons):
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.query_params[f"{VIEW_PREFIX}lesson"] = "no-such-lesson"
    at.query_params[f"{VIEW_PREFIX}step"] = "99"
    at.run()
    _ok(at)
    assert at.session_state["learn:lesson"] == LESSONS[0].SLUG
    assert at.subheader[0].value == LESSONS[0].STEPS[-1].title  # step clamped to the last


def test_picking_a_lesson_starts_at_its_first_step(tiny_lessons):
    at = _open("information", 3)
    at.selectbox(key="learn:lesson").set_value("softmax-rank").run()
    _ok(at)
    assert at.subheader[0].value == softmax_rank.STEPS[0].title


def test_kl_lesson_shows_the_course_numbers():
    at = _open("information", 4)
    _ok(at)
    values = {m.label: m.value for m in at.metric}
    assert values["D_KL(p‖q) (bits)"] == "0.737"
    assert values["D_KL(q‖p) (bits)"] == "0.531"
    at.radio(key="kl:unit").set_value("nats").run()
    values = {m.label: m.value for m in at.metric}
    assert values["D_KL(p‖q) (nats)"] == "0.511"


def _finish_jobs(at: AppTest) -> AppTest:
    from app.live import manager

    for job in manager().jobs():
        manager().wait(job["key"], timeout=120)
    return at.run()


def test_course_table_is_filled_from_the_runs(tiny_lessons, monkeypatch):
    monkeypatch.setenv("FORGET_JOB_PROCESSES", "0")
    at = _open("three-approaches", 3)
    _ok(at)
    assert not at.dataframe  # the runs train as jobs: progress first, no half-filled table
    at = _finish_jobs(at)
    _ok(at)
    table = at.dataframe[0].value
    assert list(table.columns) == list(three_approaches.APPROACHES)
    assert list(table.index) == [
        "new task performance",
        "old task performance",
        "stores old task data",
    ]
    assert table.loc["stores old task data"].tolist() == ["no", "no", "yes"]
    assert all("(" in cell for cell in table.loc["new task performance"])


def test_verdicts():
    assert three_approaches.verdict(0.99, 0.99) == "best"
    assert three_approaches.verdict(0.97, 0.99) == "good"
    assert three_approaches.verdict(0.92, 0.99) == "fair"
    assert three_approaches.verdict(0.80, 0.99) == "poor"


PAGE_NAMES = {file.removesuffix(".py") for file, _, _ in PAGE_LIST}


@pytest.mark.parametrize("lesson", LESSONS, ids=[lesson.SLUG for lesson in LESSONS])
def test_try_it_links_carry_the_lessons_config(lesson):
    links = lesson.try_it()
    assert links, "every lesson has at least one try-it link"
    for link in links:
        url = urlparse(link.url())
        assert url.path.strip("/") == link.page and link.page in PAGE_NAMES
        params = dict(parse_qsl(url.query))
        view = {k[len(VIEW_PREFIX) :]: v for k, v in params.items() if k.startswith(VIEW_PREFIX)}
        assert view == {k: format_value(v) for k, v in link.view.items()}
        raw = query_to_config(params)
        assert prepare(raw)[1] == prepare(link.config)[1]


def test_kl_lesson_survives_zero_probabilities_and_three_outcomes():
    at = _open("information", 3)
    at.slider(key="kl:q1").set_value(1.0).run()  # q rules out an outcome p can produce
    _ok(at)
    assert any("∞" in m.value for m in at.markdown)  # D_KL(p‖q) is infinite
    at.radio(key="kl:outcomes").set_value(3).run()
    _ok(at)
    at.slider(key="kl:p1").set_value(0.2).run()
    at.slider(key="kl:p2").set_value(0.5).run()
    _ok(at)
    table = at.dataframe[0].value
    assert table["p"].iloc[:3].tolist() == pytest.approx([0.2, 0.5, 0.3])
    assert table["p log(p/q)"].iloc[3] == pytest.approx(
        table["−p log q"].iloc[3] - table["−p log p"].iloc[3]
    )
    at.button(key="learn:next").click().run()
    _ok(at)


def test_ewc_lesson_shows_negative_exact_curvature_for_a_smooth_unconverged_net(
    tiny_lessons, monkeypatch
):
    monkeypatch.setenv("FORGET_JOB_PROCESSES", "0")
    at = _finish_jobs(_open("ewc-taylor", 2))
    _ok(at)
    shares = {m.label: m.value for m in at.metric}
    assert shares["squared gradients: share < 0"] == "0.0 %"
    assert shares["exact H_ii: share < 0"] == "0.0 %"  # ReLU: the exact diagonal is ≥ 0
    assert shares["Hutchinson H_ii: share < 0"] != "0.0 %"
    at.radio(key="ewc:act").set_value("tanh").run()
    at.select_slider(key="ewc:epochs").set_value(1).run()
    at = _finish_jobs(at)
    _ok(at)
    shares = {m.label: m.value for m in at.metric}
    assert shares["squared gradients: share < 0"] == "0.0 %"
    assert shares["exact H_ii: share < 0"] != "0.0 %"


def test_lessons_that_train_draw_what_their_jobs_return(tiny_lessons, monkeypatch):
    """The EWC lesson's network and the tunnel lesson's deep net are jobs (kinds
    lesson-curvature and tunnel): the step shows progress, then draws the stored result."""
    from engine.store import Store

    monkeypatch.setenv("FORGET_JOB_PROCESSES", "0")
    at = _finish_jobs(_open("ewc-taylor", 1))
    _ok(at)
    stored = {m["kind"]: m for m in Store().list_results()}
    assert "lesson-curvature" in stored
    result = Store().get_result(stored["lesson-curvature"]["key"])
    values = {m.label: m.value for m in at.metric}
    assert values["parameters"] == f"{result['curvature']['n_params']:,}"
    at = _finish_jobs(_open("tunnel", 1))
    _ok(at)
    assert any(m.label == "compression κ" for m in at.metric)
