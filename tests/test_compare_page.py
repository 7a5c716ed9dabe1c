"""The Compare page's table as a reader sees it: runs not yet run say "not run" and "—" (never
None or "0/?"), joint's BWT, FWT and forgetting show "—" with the reason, and a link cannot ask
for more runs than the page compares."""

from __future__ import annotations

import pandas as pd
from conftest import tiny_config
from test_app import TIMEOUT, open_app, tiny_query

from app import comparison
from engine.jobs import get_manager
from engine.runner import prepare


def shown(at, n: int = 0):
    """The table as the page shows it (text: a number formatted, or "—")."""
    return at.dataframe[n].value


def test_runs_not_yet_run_show_not_run_and_dashes():
    at = open_app({**tiny_query(), "v_strategies": "naive,joint"}, "compare")
    table = at.dataframe[0].value
    assert list(table["state"]) == ["not run", "not run"]
    assert list(table["rows of R"]) == ["—", "—"]
    text = shown(at)
    for column in ("ACC", "BWT", "time (s)"):
        assert set(text[column]) == {"—"}
    assert not any("None" in str(v) or "?" in str(v) for v in text.to_numpy().ravel())
    assert [c.value for c in at.caption if c.value.endswith("not run")] == [
        "naive: not run",
        "joint: not run",
    ]


def test_joint_shows_dashes_for_what_means_nothing_and_says_why():
    m = get_manager()
    for name in ("naive", "joint"):
        assert m.submit(tiny_config(strategy={"name": name})).wait(TIMEOUT)
    at = open_app({**tiny_query(), "v_strategies": "naive,joint"}, "compare")
    text = shown(at).set_index("run")
    assert text.loc["joint", "BWT"] == text.loc["joint", "FWT"] == "—"
    assert text.loc["joint", "forgetting"] == "—"
    assert text.loc["joint", "ACC"] != "—" and text.loc["naive", "BWT"] != "—"
    assert text.loc["naive", "rows of R"] == "5/5"
    assert any("same final model" in c.value for c in at.caption)
    keys = {prepare(tiny_config(strategy={"name": n}))[1] for n in ("naive", "joint")}
    assert set(at.dataframe[0].value["key"]) == keys


def test_a_link_asks_for_at_most_the_runs_the_page_compares():
    values = ",".join(str(s) for s in range(comparison.MAX_RUNS + 5))
    q = {**tiny_query(), "v_mode": "sweep", "v_field": "train.seed", "v_values": values}
    at = open_app(q, "compare")
    assert len(at.dataframe[0].value) == comparison.MAX_RUNS
    assert any(w.value.startswith(f"values: {comparison.MAX_RUNS + 5} given") for w in at.warning)


def test_a_bad_view_setting_in_a_link_is_named_and_the_rest_used():
    q = {**tiny_query(), "v_strategies": "naive,nosuch", "v_mode": "strategies"}
    at = open_app(q, "compare")
    assert [w.value for w in at.warning] == [
        "A setting of the link was not used — v_strategies: 'nosuch'; not a strategy; allowed "
        "here: " + ", ".join(at.multiselect(key="cmp:strategies").options)
    ]
    assert list(at.dataframe[0].value["run"]) == ["naive"]


def test_a_table_cell_reads_as_a_number_or_a_dash():
    from app.tables import cell, shown

    assert [cell(None), cell(float("nan")), cell(0.12345, "{:.3f}"), cell("done")] == [
        "—",
        "—",
        "0.123",
        "done",
    ]
    table = shown(pd.DataFrame({"ACC": [0.5, None], "run": ["a", None]}), {"ACC": "{:.2f}"})
    assert table.to_dict("list") == {"ACC": ["0.50", "—"], "run": ["a", "—"]}
