"""The store: round trips, damaged entries detected, version changes invalidate."""

import json

from engine.store import Store


def test_result_round_trip_and_listing(tmp_path):
    s = Store(tmp_path)
    s.put_result(
        "k1",
        {"R": [[1.0]], "config": {"a": 1}, "metrics": {"acc": 1.0}, "timing": {"total_s": 0.1}},
    )
    assert s.get_result("k1")["R"] == [[1.0]]
    rows = s.list_results()
    assert [r["key"] for r in rows] == ["k1"] and rows[0]["metrics"] == {"acc": 1.0}
    s.delete("k1")
    assert s.get_result("k1") is None and s.list_results() == []


def test_damaged_result_is_dropped_not_served(tmp_path):
    s = Store(tmp_path)
    s.put_result("k", {"R": [[0.5]]})
    wrapper = json.loads(s.cache.get("result:k"))
    wrapper["data"] = wrapper["data"].replace("0.5", "0.9")  # a flipped byte on disk
    s.cache.set("result:k", json.dumps(wrapper))
    assert s.get_result("k") is None
    assert "result:k" not in s.cache
    s.cache.set("result:k", "not json at all")
    assert s.get_result("k") is None


def test_other_engine_version_is_not_misread(tmp_path, monkeypatch):
    s = Store(tmp_path)
    s.put_result("k", {"R": [[0.5]]})
    monkeypatch.setattr("engine.store.ENGINE_VERSION", "999.0")
    assert s.get_result("k") is None


def test_checkpoint_round_trip_and_corruption(tmp_path):
    import torch

    s = Store(tmp_path)
    s.put_checkpoint("k", {"model": {"w": torch.ones(3)}, "R": [[1.0]]})
    got = s.get_checkpoint("k")
    assert torch.equal(got["model"]["w"], torch.ones(3)) and got["R"] == [[1.0]]
    blob = bytearray(s.cache.get("ckpt:k"))
    blob[-5] ^= 0xFF
    s.cache.set("ckpt:k", bytes(blob))
    assert s.get_checkpoint("k") is None


def test_info_and_clear(tmp_path):
    s = Store(tmp_path)
    s.put_result("a", {"R": [[1.0]]})
    s.set_progress("b", {"step": 1})
    info = s.info()
    assert info["results"] == 1 and info["running"] == 1
    assert s.clear() >= 2
    assert s.info()["results"] == 0
