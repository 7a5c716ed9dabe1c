"""The store against untrusted and damaged files: nothing is ever unpickled (our own store or a
merged one), merge validates each entry and says why it refused one, a damaged database is moved
aside with one line and a fresh store opens, and leases say when they expire."""

from __future__ import annotations

import json
import math
import os
import pathlib
import sqlite3
import subprocess
import sys
import time

import diskcache
import pytest
import torch
from conftest import tiny_config

from engine.runner import run
from engine.store import Store
from engine.store_repair import move_aside

ROOT = pathlib.Path(__file__).resolve().parents[1]


class _Touch:
    """Unpickling this creates a marker file: the harmless stand-in for os.system."""

    def __init__(self, path: pathlib.Path, pad: int = 0) -> None:
        self.path, self.pad = path, pad

    def __reduce__(self):
        return (pathlib.Path.touch, (self.path,))


def _plain_diskcache(directory) -> diskcache.Cache:
    """The store as an attacker (or an older engine) writes it: diskcache's default, pickling Disk."""
    return diskcache.Cache(str(directory))


def _cli(*args: str, cache: pathlib.Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "FORGET_CACHE_DIR": str(cache)}
    return subprocess.run(
        [sys.executable, "-m", "engine", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


# -- nothing is unpickled -------------------------------------------------------------------------
PREFIXES = ["result:k", "meta:k", "ckpt:k", "progress:k", "lease:k", "extra:k:acts/0"]


@pytest.mark.parametrize("name", PREFIXES)
@pytest.mark.parametrize("big", [False, True], ids=["in-db", "in-file"])
def test_a_pickled_row_in_our_store_is_never_loaded_and_is_dropped(tmp_path, name, big):
    marker = tmp_path / "pwned"
    c = _plain_diskcache(tmp_path / "s")
    # A value over diskcache's 32 KiB threshold lives in a file beside the database.
    c.set(name, [_Touch(marker), "x" * (40_000 if big else 1)])
    c.close()
    s = Store(tmp_path / "s")
    assert s.get_result("k") is None
    assert s.get_checkpoint("k") is None
    assert s.get_progress("k") is None
    assert s.get_extra("k", "acts/0") is None
    assert s.lease_holder("k") is None
    assert s.list_results() == []
    s.info()
    assert not marker.exists()
    # Treated as damaged: the row is gone, so the run is recomputed rather than stuck.
    assert name not in s.cache


def test_a_pickled_key_is_never_loaded(tmp_path):
    marker = tmp_path / "pwned"
    c = _plain_diskcache(tmp_path / "s")
    c.set(_Touch(marker), "x")  # a non-string key is pickled by the default Disk
    c.set("result:ok", "y")
    c.close()
    s = Store(tmp_path / "s")
    s.list_results()
    assert s.info()["results"] == 1
    s.delete("ok")
    assert s.clear() >= 1
    assert not marker.exists()


def test_writes_refuse_to_pickle(tmp_path):
    s = Store(tmp_path)
    with pytest.raises(TypeError, match="pickle"):
        s.cache.set("x", {"a": 1})
    with pytest.raises(TypeError, match="pickle"):
        s.cache.set(("tuple", "key"), "v")
    with pytest.raises(TypeError, match="bytes or str"):
        s.put_extra("k", "n", {"a": 1})
    s.put_extra("k", "b", b"\x00\x01")
    s.put_extra("k", "s", "text")
    assert s.get_extra("k", "b") == b"\x00\x01" and s.get_extra("k", "s") == "text"


def test_a_row_naming_a_file_outside_the_store_is_neither_read_nor_deleted(tmp_path):
    outside = tmp_path / "precious.txt"
    outside.write_text("keep me")
    s = Store(tmp_path / "s")
    s.put_extra("k", "big", b"\x00" * 100_000)  # stored in a file, so the row has a filename
    db = sqlite3.connect(tmp_path / "s" / "cache.db")
    db.execute("UPDATE Cache SET filename = ? WHERE filename IS NOT NULL", (str(outside),))
    db.commit()
    db.close()
    assert s.get_extra("k", "big") is None
    s.put_extra("k", "big2", b"\x00" * 100_000)
    db = sqlite3.connect(tmp_path / "s" / "cache.db")
    db.execute("UPDATE Cache SET filename = '../precious.txt' WHERE filename IS NOT NULL")
    db.commit()
    db.close()
    s.delete("k")
    s.clear()
    assert outside.read_text() == "keep me"


# -- checkpoints: tensors + JSON, no pickle ------------------------------------------------------
def test_checkpoints_round_trip_without_any_unpickling(tmp_path, monkeypatch):
    import pickle

    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model(torch.randn(5, 3)).sum().backward()
    opt.step()
    state = {
        "model": model.state_dict(),
        "optimizer": opt.state_dict(),  # int keys, a tuple (betas), nested dicts
        "strategy": {
            "fishers": [{"w": torch.rand(2, 2, dtype=torch.float64)}],
            "index": torch.arange(5),
            "A": [[torch.ones(2, 1)], []],
            "mask": torch.tensor([True, False]),
            "init": {},
            "omega": None,
            "n_seen": 12,
        },
        "R": [[0.5, float("nan")], [0.25, 1.0]],
        "baseline": [0.1, float("inf")],
        "timing": {"train_s": 1.5},
        "step": 7,
        "phase": 1,
        "flag": True,
    }
    s = Store(tmp_path)
    s.put_checkpoint("k", state)

    def refuse(*a, **k):
        raise AssertionError("unpickling was attempted")

    monkeypatch.setattr(torch, "load", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(pickle, "Unpickler", refuse)
    got = s.get_checkpoint("k")
    assert got is not None
    fresh = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
    fresh.load_state_dict(got["model"])
    for a, b in zip(fresh.state_dict().values(), model.state_dict().values(), strict=True):
        assert torch.equal(a, b) and a.dtype == b.dtype
    opt2 = torch.optim.Adam(fresh.parameters(), lr=1e-3)
    opt2.load_state_dict(got["optimizer"])
    assert got["optimizer"]["param_groups"][0]["betas"] == (0.9, 0.999)
    assert set(got["optimizer"]["state"]) == {0, 1, 2, 3}  # int keys stay ints
    st = got["strategy"]
    assert st["fishers"][0]["w"].dtype == torch.float64
    assert torch.equal(st["index"], torch.arange(5)) and st["index"].dtype == torch.long
    assert torch.equal(st["A"][0][0], torch.ones(2, 1)) and st["A"][1] == []
    assert st["mask"].tolist() == [True, False]
    assert st["init"] == {} and st["omega"] is None and st["n_seen"] == 12
    assert got["R"][0][0] == 0.5 and math.isnan(got["R"][0][1])
    assert got["baseline"][1] == math.inf and got["flag"] is True and got["step"] == 7


def test_a_checkpoint_with_an_unsupported_value_is_refused_at_write(tmp_path):
    s = Store(tmp_path)
    with pytest.raises(TypeError, match=r"strategy\.thing"):
        s.put_checkpoint("k", {"strategy": {"thing": object()}})
    assert s.get_checkpoint("k") is None


def test_an_old_torch_save_checkpoint_is_not_loaded(tmp_path):
    import hashlib
    import io

    buf = io.BytesIO()
    torch.save({"model": {}}, buf)
    payload = buf.getvalue()
    s = Store(tmp_path)
    s.cache.set("ckpt:k", b"FEC1" + hashlib.sha256(payload).digest() + payload)
    assert s.get_checkpoint("k") is None  # the run starts over; nothing pickled is read
    assert "ckpt:k" not in s.cache


# -- merge -----------------------------------------------------------------------------------------
def _foreign_store(directory: pathlib.Path, marker: pathlib.Path) -> None:
    """Two good results, then one of each kind of bad entry, written as an attacker could."""
    good = Store(directory)
    good.put_result("good1", {"R": [[0.5]], "config": {"seed": 1}})
    good.put_result("good2", {"R": [[0.25]], "config": {"seed": 2}})
    good.put_result("tampered", {"R": [[0.5]]})
    good.put_result("old", {"R": [[0.5]]})
    good.close()
    c = _plain_diskcache(directory)
    c.set("result:evil", _Touch(marker))
    c.set("result:evil-big", [_Touch(marker), "x" * 40_000])
    w = json.loads(c.get("result:tampered"))
    w["data"] = w["data"].replace("0.5", "0.9")
    c.set("result:tampered", json.dumps(w))
    w = json.loads(c.get("result:old"))
    w["engine_version"] = "0.0.1"
    c.set("result:old", json.dumps(w))
    c.set("result:notjson", "{{{")
    c.set(_Touch(marker), "a pickled key")
    c.close()


def test_cli_merge_never_unpickles_and_reports_refusals_by_reason(tmp_path):
    marker = tmp_path / "pwned"
    other, here = tmp_path / "other", tmp_path / "here"
    _foreign_store(other, marker)
    before = (other / "cache.db").read_bytes()
    p = _cli("cache", "merge", str(other), "--json", str(tmp_path / "out.json"), cache=here)
    assert p.returncode == 0, p.stderr
    assert not marker.exists()
    assert "Traceback" not in p.stderr
    line = p.stdout.strip().splitlines()[-1]
    assert "2 copied" in line
    for reason in ("2 pickled value", "1 pickled key", "1 bad checksum", "1 other engine version"):
        assert reason in line, line
    assert "1 not a result" in line, line
    out = json.loads((tmp_path / "out.json").read_text())
    assert out["copied"] == 2 and out["skipped"] == 6
    assert out["refused"]["pickled value"] == 2
    s = Store(here)
    assert s.get_result("good1")["R"] == [[0.5]] and s.get_result("good2")["R"] == [[0.25]]
    assert s.info()["results"] == 2
    assert (other / "cache.db").read_bytes() == before  # the other store is only read


def test_merge_of_a_damaged_store_is_one_line_and_exit_2(tmp_path, capsys):
    from engine.cli import main

    other = tmp_path / "other"
    other.mkdir()
    (other / "cache.db").write_bytes(b"this is not sqlite" * 100)
    assert main(["cache", "merge", str(other)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "damaged" in err
    assert (other / "cache.db").read_bytes() == b"this is not sqlite" * 100  # left as it was


# -- a damaged database is moved aside -------------------------------------------------------------
def _filled_then_truncated(directory: pathlib.Path, size: int = 20480) -> None:
    s = Store(directory)
    for i in range(60):
        s.put_result(f"k{i}", {"R": [[i / 100]], "curves": {"acc": [0.1] * 300}})
    s.close()
    db = directory / "cache.db"
    con = sqlite3.connect(db)  # everything into the database file, the write-ahead log emptied
    assert con.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] == 0
    con.close()
    assert db.stat().st_size > 4 * size
    os.truncate(db, size)


def _moved_aside(directory: pathlib.Path) -> list[pathlib.Path]:
    return sorted(directory.glob("damaged-*/cache.db"))


def test_cli_on_a_truncated_database_moves_it_aside_in_one_line(tmp_path, caplog):
    cache = tmp_path / "cache"
    for action in ("info", "clear"):
        _filled_then_truncated(cache)
        before = set(_moved_aside(cache))
        p = _cli("cache", action, cache=cache)
        assert p.returncode == 0, p.stderr
        assert "Traceback" not in p.stderr
        (moved,) = set(_moved_aside(cache)) - before
        lines = p.stderr.strip().splitlines()
        assert len(lines) == 1 and str(moved) in lines[0], p.stderr
        assert moved.stat().st_size == 20480
    assert "removed 0 entries" in p.stdout  # the damaged entries went aside, not counted
    assert Store(cache).info()["results"] == 0  # the fresh store is healthy: no third move
    assert len(_moved_aside(cache)) == 2 and caplog.records == []


def test_store_opens_fresh_after_garbage_and_can_be_used(tmp_path, caplog):
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "cache.db").write_bytes(os.urandom(50_000))
    s = Store(cache)
    assert s.info()["results"] == 0
    s.put_result("k", {"R": [[1.0]]})
    assert s.get_result("k") == {"R": [[1.0]]}
    (moved,) = _moved_aside(cache)
    assert [str(moved) in r.getMessage() for r in caplog.records] == [True]


def test_a_store_already_open_recovers_when_its_database_is_damaged(tmp_path, caplog):
    cache = tmp_path / "cache"
    s = Store(cache)  # e.g. the app's long-lived job manager
    for i in range(60):
        s.put_result(f"k{i}", {"R": [[i / 100]], "curves": {"acc": [0.1] * 300}})
    s.close()  # drops the connection; diskcache reconnects on the next call
    os.truncate(cache / "cache.db", 20480)
    assert s.list_results() == []
    assert s.info()["results"] == 0
    s.put_result("k", {"R": [[1.0]]})
    assert s.get_result("k") == {"R": [[1.0]]}
    assert len(_moved_aside(cache)) == 1
    assert sum("moved" in r.getMessage() for r in caplog.records) == 1


def test_a_store_already_open_follows_when_another_process_moves_the_database(tmp_path):
    cache = tmp_path / "cache"
    app = Store(cache)  # holds its connection to the database file
    app.put_result("old", {"R": [[0.5]]})
    move_aside(cache)  # what another process does on finding the database damaged
    cli = Store(cache)
    cli.put_result("new", {"R": [[1.0]]})
    assert app.get_result("new") == {"R": [[1.0]]}  # not still reading the moved file
    assert app.get_result("old") is None
    app.put_result("later", {"R": [[0.25]]})
    assert cli.get_result("later") == {"R": [[0.25]]}


def test_a_run_on_a_damaged_store_computes_and_stores(tmp_path):
    cache = pathlib.Path(os.environ["FORGET_CACHE_DIR"])
    _filled_then_truncated(cache)
    r = run(tiny_config(train__epochs=1))
    assert not r.cached and run(tiny_config(train__epochs=1)).cached
    assert len(_moved_aside(cache)) == 1


# -- leases ------------------------------------------------------------------------------------------
def test_lease_expires_in(tmp_path):
    s = Store(tmp_path)
    assert s.lease_expires_in("k") is None
    assert s.try_lease("k", "a", ttl=30)
    assert 29 <= s.lease_expires_in("k") <= 30
    assert s.renew_lease("k", "a", ttl=60)
    assert 59 <= s.lease_expires_in("k") <= 60
    s.release_lease("k", "a")
    assert s.lease_expires_in("k") is None
    assert s.try_lease("k", "b", ttl=0.2)
    time.sleep(0.3)
    assert s.lease_expires_in("k") is None  # expired: nobody holds it


WRITER = """
import sys
from engine.store import Store
s = Store(sys.argv[1])
for k in range(int(sys.argv[2])):
    s.put_result(f"{k:024d}", {"R": [[0.5] * 5] * 5, "pad": "x" * 3000})
    s.set_progress("p", {"k": k})
"""


def test_opening_more_stores_never_breaks_another_process_writes(tmp_path):
    """Each Store() used to read the database header with a plain open/close; closing a file
    descriptor drops every POSIX lock SQLite holds on that file in the process, so a job's
    process writing meanwhile corrupted what the app read, and the store was moved aside as
    'damaged'. A process that has the database open never reads it outside SQLite again."""
    keep = Store(tmp_path)
    keep.put_result("f" * 24, {"R": [[1.0]]})
    root = pathlib.Path(__file__).resolve().parents[1]
    child = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(tmp_path), "400"],
        cwd=root,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        while child.poll() is None:
            Store(tmp_path)  # another page's store, while `keep` has the database open
            keep.list_results()
            keep.info()
    finally:
        _, err = child.communicate(timeout=120)
    assert child.returncode == 0, err
    assert not list(tmp_path.glob("damaged-*")), "a healthy store was moved aside"
    assert keep.info()["results"] == 401
