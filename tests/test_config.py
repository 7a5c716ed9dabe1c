"""Config validation at the edge: defaults, presets, canonical form, keys, one-line errors."""

import pytest

from engine.config import (
    BENCHMARKS,
    ConfigError,
    ExperimentConfig,
    apply_overrides,
    canonical_json,
    config_key,
    field_info,
    resolve,
    validate,
)
from engine.strategies import PARAMS_MODELS, STRATEGY_NAMES


def test_every_field_has_default_description_and_range():
    from engine.config import DataConfig, ModelConfig, TrainConfig

    for model in (DataConfig, ModelConfig, TrainConfig, *PARAMS_MODELS):
        for name, field in model.model_fields.items():
            if name == "name":
                continue
            assert field.description, f"{model.__name__}.{name} has no description"
            assert not field.is_required(), f"{model.__name__}.{name} has no default"
            if field.annotation in (int, float, int | None, float | None):
                info = field_info(
                    f"strategy.{model.model_fields['name'].default}.{name}"
                    if model in PARAMS_MODELS
                    else f"{ {DataConfig: 'data', ModelConfig: 'model', TrainConfig: 'train'}[model] }.{name}"
                )
                assert {"ge", "gt"} & info.keys() and {"le", "lt"} & info.keys(), (
                    f"{model.__name__}.{name} has no range"
                )


def test_resolve_fills_presets_and_is_idempotent():
    cfg = resolve(validate({}), device="cpu")
    assert cfg.data.benchmark == "split-digits"
    assert cfg.data.split == "2,2,2,2,2" and cfg.data.n_tasks == 5
    assert cfg.model.arch == "mlp" and cfg.train.epochs is not None and cfg.train.lr is not None
    assert resolve(cfg, device="cpu") == cfg
    assert config_key(resolve(cfg, device="cpu")) == config_key(cfg)


def test_key_is_stable_and_sensitive():
    a = resolve(validate({"train": {"seed": 1}}), device="cpu")
    b = resolve(validate({"train": {"seed": 1}}), device="cpu")
    c = resolve(validate({"train": {"seed": 2}}), device="cpu")
    assert config_key(a) == config_key(b) != config_key(c)
    # Presets written out explicitly are the same experiment as presets left implicit.
    explicit = resolve(
        validate({"train": {"seed": 1, "epochs": a.train.epochs, "lr": a.train.lr}}), device="cpu"
    )
    assert config_key(explicit) == config_key(a)
    assert canonical_json(a) == canonical_json(b)


def test_irrelevant_fields_do_not_change_the_key():
    a = resolve(validate({"data": {"synthetic_n": 500}}), device="cpu")
    b = resolve(validate({}), device="cpu")
    assert config_key(a) == config_key(b)


def test_split_and_tasks():
    cfg = resolve(validate({"data": {"split": "3,7"}}), device="cpu")
    assert cfg.data.n_tasks == 2 and cfg.data.split == "3,7"
    with pytest.raises(ConfigError, match="data.split"):
        resolve(validate({"data": {"split": "6,7"}}), device="cpu")
    with pytest.raises(ConfigError, match="data.n_tasks"):
        resolve(validate({"data": {"n_tasks": 3}}), device="cpu")
    with pytest.raises(ConfigError, match="domain"):
        resolve(validate({"scenario": "domain", "data": {"split": "3,7"}}), device="cpu")


@pytest.mark.parametrize(
    "raw, field",
    [
        ({"data": {"benchmark": "nope"}}, "data.benchmark"),
        ({"scenario": "weird"}, "scenario"),
        ({"train": {"lr": -1}}, "train.lr"),
        ({"train": {"epochs": 0}}, "train.epochs"),
        ({"train": {"batch_size": 10**6}}, "train.batch_size"),
        ({"model": {"arch": "transformer"}}, "model.arch"),
        ({"data": {"split": "a,b"}}, "data.split"),
        ({"strategy": {"name": "magic"}}, "strategy.name"),
        ({"train": {"typo_field": 1}}, "train.typo_field"),
    ],
)
def test_bad_input_is_one_line_naming_the_field(raw, field):
    with pytest.raises(ConfigError) as err:
        validate(raw)
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith(field), msg


def test_unknown_strategy_lists_the_allowed_ones():
    with pytest.raises(ConfigError) as err:
        validate({"strategy": {"name": "magic"}})
    for name in STRATEGY_NAMES:
        assert name in str(err.value)


def test_overrides_bare_and_dotted_names():
    raw = apply_overrides(
        {},
        [
            "lr=0.01",
            "data.benchmark=split-mnist5k",
            "strategy=joint",
            "amp=true",
            "order_seed=none",
        ],
    )
    cfg = validate(raw)
    assert cfg.train.lr == 0.01 and cfg.data.benchmark == "split-mnist5k"
    assert cfg.strategy.name == "joint" and cfg.train.amp is True and cfg.data.order_seed is None


@pytest.mark.parametrize(
    "item, match", [("lr", "name=value"), ("=3", "name=value"), ("nonsense=1", "unknown setting")]
)
def test_bad_overrides(item, match):
    with pytest.raises(ConfigError, match=match):
        apply_overrides({}, [item])


def test_overrides_leave_the_callers_dict_alone():
    raw = {"train": {"lr": 0.1}}
    apply_overrides(raw, ["lr=0.5"])
    assert raw == {"train": {"lr": 0.1}}


def test_every_benchmark_resolves():
    for name in BENCHMARKS:
        cfg = resolve(validate({"data": {"benchmark": name}}), device="cpu")
        assert cfg.data.n_tasks >= 2
        assert isinstance(cfg, ExperimentConfig)
