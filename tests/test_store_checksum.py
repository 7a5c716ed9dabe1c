"""The store's result checksum: a stored result is served only while its payload still hashes
to the SHA-256 stored beside it, under this engine version (engine.store.unwrap_result)."""

import hashlib
import json

import pytest

from engine.store import Store, unwrap_result
from engine.version import ENGINE_VERSION

RESULT = {"R": [[0.9, 0.1], [0.4, 0.95]], "metrics": {"acc": 0.675}}


def wrapped(data: str, sha256: str | None = None, version: str = ENGINE_VERSION) -> str:
    digest = hashlib.sha256(data.encode()).hexdigest() if sha256 is None else sha256
    return json.dumps({"engine_version": version, "sha256": digest, "data": data})


def test_an_intact_result_is_served():
    data = json.dumps(RESULT)
    assert unwrap_result(wrapped(data)) == (RESULT, None)


def test_the_checksum_is_the_sha256_of_the_payload_text():
    data = json.dumps(RESULT)
    tampered = data.replace("0.675", "0.875")
    assert unwrap_result(wrapped(tampered, sha256=hashlib.sha256(data.encode()).hexdigest())) == (
        None,
        "bad checksum",
    )
    # Upper-case hex, or the digest of other bytes, is not the checksum either.
    upper = hashlib.sha256(data.encode()).hexdigest().upper()
    assert unwrap_result(wrapped(data, sha256=upper)) == (None, "bad checksum")
    md5 = hashlib.md5(data.encode()).hexdigest()
    assert unwrap_result(wrapped(data, sha256=md5)) == (None, "bad checksum")
    # A payload that cannot be UTF-8 encoded (a lone surrogate) cannot match any checksum.
    assert unwrap_result(wrapped('{"a": "\ud800"}', sha256="0" * 64)) == (None, "bad checksum")


def test_another_engine_version_is_not_served():
    data = json.dumps(RESULT)
    assert unwrap_result(wrapped(data, version="0.0.0-other")) == (None, "other engine version")
    no_version = json.dumps({"sha256": hashlib.sha256(data.encode()).hexdigest(), "data": data})
    assert unwrap_result(no_version) == (None, "other engine version")


@pytest.mark.parametrize(
    "text",
    [
        None,
        b"\x00\x01",
        "not json",
        "[1, 2]",
        json.dumps({"engine_version": ENGINE_VERSION, "data": "{}"}),  # no checksum
        json.dumps({"engine_version": ENGINE_VERSION, "sha256": 5, "data": "{}"}),
        json.dumps({"engine_version": ENGINE_VERSION, "sha256": "0" * 64, "data": {"R": 1}}),
        wrapped("[1, 2]"),  # intact, but the payload is not a result object
        wrapped("not json"),
    ],
)
def test_what_is_not_a_result(text):
    assert unwrap_result(text) == (None, "not a result")


def test_a_tampered_stored_result_is_dropped_and_recomputed(tmp_path):
    store = Store(tmp_path)
    store.put_result("k", RESULT)
    assert store.get_result("k") == RESULT
    # Change the stored payload, keep its old checksum: as a flipped bit on disk would.
    stored = json.loads(store.cache.get("result:k"))
    assert stored["sha256"] == hashlib.sha256(stored["data"].encode()).hexdigest()
    stored["data"] = stored["data"].replace("0.675", "0.875")
    store.cache.set("result:k", json.dumps(stored))
    assert store.get_result("k") is None
    assert not store.has_result("k")
