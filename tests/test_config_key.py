"""The canonical config key (engine.config): the text and hash that name every stored result.

Two runs share a stored result exactly when their keys match, so the key must follow its
documented recipe: SHA-256 of ``ENGINE_VERSION|canonical JSON``, the first 24 hex digits, where
the canonical JSON is the resolved config's fields as compact JSON with sorted keys.
"""

import hashlib
import json
import re

import pytest

import engine.config as config_module
from engine.config import canonical_json, config_key, resolve, validate
from engine.version import ENGINE_VERSION


@pytest.fixture
def cfg():
    return resolve(validate({"train": {"seed": 3}, "model": {"width": 48}}), device="cpu")


def test_canonical_json_is_compact_sorted_json_of_every_field(cfg):
    text = canonical_json(cfg)
    assert json.loads(text) == cfg.model_dump(mode="json")
    # Sorted keys at every level and no optional whitespace: re-encoding changes nothing.
    assert text == json.dumps(json.loads(text), sort_keys=True, separators=(",", ":"))
    # The fields are not declared in sorted order, so the sorting above is not a given.
    assert text != json.dumps(cfg.model_dump(mode="json"), separators=(",", ":"))


def test_key_follows_the_documented_recipe(cfg):
    payload = f"{ENGINE_VERSION}|{canonical_json(cfg)}".encode()
    assert config_key(cfg) == hashlib.sha256(payload).hexdigest()[:24]
    assert re.fullmatch(r"[0-9a-f]{24}", config_key(cfg))


def test_a_new_engine_version_changes_the_key(cfg, monkeypatch):
    before = config_key(cfg)
    monkeypatch.setattr(config_module, "ENGINE_VERSION", "999.0.0")
    assert config_key(cfg) != before


def test_field_order_of_the_request_does_not_matter():
    a = validate({"train": {"seed": 3, "epochs": 4}, "model": {"width": 48, "depth": 2}})
    b = validate({"model": {"depth": 2, "width": 48}, "train": {"epochs": 4, "seed": 3}})
    assert canonical_json(a) == canonical_json(b)
    assert config_key(a) == config_key(b)
