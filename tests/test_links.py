"""Links into the Forgetting page: every value goes through the sidebar's validation (the CLI's
strict parser, the config's bounds and choices, the hosted caps), one setting at a time, so a
bad field is refused with its name while the link's other settings stay; echoed values are cut
to ~80 characters; and no link, however crafted, raises or gets a config over a hosted cap."""

from __future__ import annotations

import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hs
from test_app import open_app

from app import share
from engine.caps import Caps
from engine.config import field_names, resolve, validate
from engine.errors import CapExceeded
from engine.kinds import estimate, prepare
from engine.strategies import STRATEGY_NAMES

CAPS = Caps.from_env()  # the hosted defaults


def hosted_check(cfg) -> None:
    spec, _ = prepare("run", cfg)
    CAPS.check("run", spec, estimate("run", spec))


def test_a_bad_field_leaves_the_links_other_settings_in_place():
    raw, refused = share.read_link(
        {"lam": "100", "epochs": "-3", "strategy": "ewc", "lr": "0.05", "scenario": "task"}
    )
    assert raw["strategy"] == {"name": "ewc", "lam": 100}  # lam before strategy: order is free
    assert raw["train"] == {"lr": 0.05} and raw["scenario"] == "task"
    assert refused == ["train.epochs: Input should be greater than or equal to 1 (got -3)"]


def test_settings_that_depend_on_each_other_are_read_in_any_order():
    # lwf's own setting names exist only once strategy=lwf is read
    raw, refused = share.read_link({"alpha": "2", "strategy": "lwf", "T": "4"})
    assert refused == [] and raw["strategy"] == {"name": "lwf", "alpha": 2, "T": 4}


def test_echoed_values_are_cut_and_unknown_names_named():
    long = "x" * 150
    _, refused = share.read_link({"benchmark": long, long: "1"})
    assert len(refused) == 2
    assert all(long not in r and "…" in r for r in refused)
    assert refused[0].startswith("data.benchmark:") or refused[1].startswith("data.benchmark:")
    assert any(r.startswith("link: unknown setting 'xxx") for r in refused)
    _, refused = share.read_link({"epochs": "9" * 5000})
    assert refused == ["train.epochs: value too long (5,000 characters; at most 200)"]


def test_a_link_with_too_many_settings_is_read_up_to_a_bound():
    params = {f"junk{i}": "1" for i in range(share.MAX_LINK_SETTINGS + 10)}
    _, refused = share.read_link(params)
    assert refused[0].startswith(f"link: {share.MAX_LINK_SETTINGS + 10} settings, at most")
    assert len(refused) == share.MAX_LINK_SETTINGS + 1


def test_hosted_a_link_over_a_cap_names_it_and_keeps_the_rest():
    raw, refused = share.read_link({"epochs": "1000", "lr": "0.05"}, check=hosted_check)
    assert raw == {"strategy": {"name": "naive"}, "train": {"lr": 0.05}}
    assert len(refused) == 1
    assert refused[0].startswith("epochs=1000 is over a hosted cap — ")
    assert "about 45,000" in refused[0] and "hosted limit of 20,000" in refused[0]


def test_the_page_shows_one_line_per_refused_setting_and_uses_the_rest():
    at = open_app({"epochs": "-3", "lr": "0.05", "strategy": "ewc", "lam": "100"})
    assert [e.value for e in at.error] == [
        "A setting of the link was not used — train.epochs: Input should be greater than or "
        "equal to 1 (got -3)"
    ]
    assert at.sidebar.number_input(key="cfg:train.lr@split-digits").value == 0.05
    assert at.sidebar.number_input(key="cfg:strategy.ewc.lam").value == 100.0


def test_hosted_page_falls_back_under_the_cap(monkeypatch):
    monkeypatch.setenv("FORGET_HOSTED", "1")
    at = open_app({"epochs": "1000", "seed": "3"})
    assert len(at.error) == 1 and "epochs=1000 is over a hosted cap" in at.error[0].value
    assert at.sidebar.number_input(key="cfg:train.epochs@split-digits").value == 10  # preset
    assert at.sidebar.number_input(key="cfg:train.seed").value == 3
    assert [b.label for b in at.button if b.label == "Run"] == ["Run"]


# -- property: any query string ----------------------------------------------------------------

NAMES = sorted(set(field_names()) | {n for s in STRATEGY_NAMES for n in field_names(s)})
VALUES = hs.one_of(
    hs.integers(-(10**30), 10**30).map(str),
    hs.floats(allow_nan=True, allow_infinity=True).map(repr),
    hs.sampled_from(
        ["", "none", "true", "١٢", "1e999", "0x10", "3x200x200", "0x0x0", *STRATEGY_NAMES]
    ),
    hs.text(alphabet=string.printable + "λ١", max_size=300),
)
QUERIES = hs.dictionaries(
    hs.one_of(hs.sampled_from(NAMES + ["strategy", "scenario"]), hs.text(max_size=30)),
    VALUES,
    max_size=12,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(QUERIES)
def test_no_query_string_raises_or_gets_past_a_cap(query):
    raw, refused = share.read_link(query, check=hosted_check)
    cfg = resolve(validate(raw), device="cpu")  # what the page goes on with is valid
    hosted_check(cfg)  # … and under every cap
    assert all(len(line) <= share.MAX_MESSAGE for line in refused)
    assert all(isinstance(line, str) and "\n" not in line for line in refused)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(QUERIES)
def test_no_query_string_breaks_the_hosted_page(query):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FORGET_HOSTED", "1")
        at = open_app({k: v for k, v in query.items() if k not in ("embed", "embed_options")})
        assert not at.exception
        from app.sidebar import STATE

        cfg = resolve(validate(at.session_state[STATE]), device="cpu")
        try:
            hosted_check(cfg)
        except CapExceeded as err:  # pragma: no cover - the assertion's message
            pytest.fail(f"a link got past a cap: {err}")
