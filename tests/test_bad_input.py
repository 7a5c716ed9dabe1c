"""Property-based: every invalid value is refused at the edge with one line naming the field,
through the API and the CLI alike, and nothing invalid reaches the store."""

from __future__ import annotations

import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.cli import main
from engine.config import (
    ConfigError,
    DataConfig,
    ModelConfig,
    TrainConfig,
    apply_overrides,
    field_info,
    resolve,
    validate,
)
from engine.strategies import PARAMS_MODELS

SECTIONS = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig}


def _numeric_fields() -> list[tuple[str, dict]]:
    """(dotted path, bounds) of every bounded number, strategy fields included."""
    out = []
    for section, model in SECTIONS.items():
        for name in model.model_fields:
            info = field_info(f"{section}.{name}")
            if {"ge", "gt", "le", "lt"} & info.keys():
                out.append((f"{section}.{name}", info))
    for params in PARAMS_MODELS:
        sname = params.model_fields["name"].default
        for name in params.model_fields:
            if name == "name":
                continue
            info = field_info(f"strategy.{sname}.{name}")
            if {"ge", "gt", "le", "lt"} & info.keys():
                out.append((f"strategy.{sname}.{name}", info))
    return out


NUMERIC = _numeric_fields()


def _raw_for(path: str, value) -> dict:
    section, *rest = path.split(".")
    if section == "strategy":
        sname, name = rest
        return {"strategy": {"name": sname, name: value}}
    return {section: {rest[0]: value}}


@st.composite
def out_of_range(draw):
    path, info = draw(st.sampled_from(NUMERIC))
    sides = []
    lo = info.get("ge", info.get("gt"))
    hi = info.get("le", info.get("lt"))
    if lo is not None:
        sides.append(
            draw(st.floats(max_value=lo, allow_nan=False, allow_infinity=False))
            - (0 if "gt" in info else 1)
        )
    if hi is not None:
        sides.append(
            draw(st.floats(min_value=hi, allow_nan=False, allow_infinity=False))
            + (0 if "lt" in info else 1)
        )
    value = draw(st.sampled_from(sides))
    return path, value


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(out_of_range())
def test_out_of_range_numbers_are_refused_naming_the_field(case):
    path, value = case
    if not math.isfinite(value):
        return
    try:
        validate(_raw_for(path, value))
    except ConfigError as err:
        msg = str(err)
        shown = path if not path.startswith("strategy.") else "strategy." + path.split(".")[2]
        assert "\n" not in msg and msg.startswith(shown), msg
    else:
        raise AssertionError(f"{path}={value} was accepted")


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(NUMERIC), st.text(alphabet="abcxyz!?", min_size=1, max_size=6))
def test_words_where_numbers_belong_are_refused(field, word):
    path, _ = field
    try:
        validate(_raw_for(path, word))
    except ConfigError as err:
        assert "\n" not in str(err)
    else:
        raise AssertionError(f"{path}={word!r} was accepted")


@settings(max_examples=60, deadline=None)
@given(
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz_.", min_size=1, max_size=12),
    st.text(alphabet="abc0123456789.-e", max_size=6),
)
def test_arbitrary_overrides_are_accepted_or_refused_in_one_line(name, value):
    try:
        cfg = validate(apply_overrides({}, [f"{name}={value}"]))
        resolve(cfg, device="cpu")
    except ConfigError as err:
        assert "\n" not in str(err) and str(err)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(out_of_range())
def test_cli_exit_2_one_line_and_the_store_stays_empty(capsys, case):
    path, value = case
    if not math.isfinite(value):
        return
    section, *rest = path.split(".")
    args = ["run", "--quiet"]
    if section == "strategy":
        args += ["--strategy", rest[0], "--set", f"strategy.{rest[1]}={value!r}"]
    else:
        args += ["--set", f"{path}={value!r}"]
    try:
        code = main(args)
    except SystemExit as stop:
        code = stop.code
    err = capsys.readouterr().err.strip()
    if code == 0:  # the scenario default can make a strategy refuse for another reason first
        raise AssertionError(f"{args} ran")
    assert code == 2 and len(err.splitlines()) == 1, err
    from engine.store import Store

    assert Store().info()["entries"] == 0
