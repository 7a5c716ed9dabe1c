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


def _result_of_size(i: int, kib: int) -> dict:
    # A result about `kib` KiB in size (curves are what makes real results big).
    return {"R": [[i / 100]], "config": {"seed": i}, "curves": {"acc": [0.123456789] * (kib * 80)}}


def test_size_cap_evicts_least_recently_used_results_first(tmp_path):
    limit = 2 * 2**20
    s = Store(tmp_path, size_limit=limit)
    s.put_result("old", _result_of_size(0, 200))
    s.put_result("read", _result_of_size(1, 200))
    for i in range(2, 30):  # 28 × ~200 KiB: far past the 2 MiB cap
        s.put_result(f"new{i}", _result_of_size(i, 200))
        assert s.get_result("read")["R"] == [[0.01]]  # a visitor keeps reopening this one
    assert s.info()["size_bytes"] <= 1.5 * limit  # culling keeps the store near its cap
    assert s.get_result("read") is not None  # recently used: kept
    assert s.get_result("old") is None  # least recently used: evicted, so recomputed if asked
    assert s.get_result("new29")["config"] == {"seed": 29}  # the newest is there
    # The listing only shows results that are still there.
    listed = {r["key"] for r in s.list_results()}
    assert "old" not in listed and {"read", "new29"} <= listed


def test_size_cap_comes_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("FORGET_CACHE_SIZE_MB", "3")
    assert Store(tmp_path).info()["size_limit_bytes"] == 3 * 2**20
