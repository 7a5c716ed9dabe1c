"""Bring your own data: ``folder:PATH`` benchmarks (engine.data.folder) from files the tests
write — one .npz of x and y, or a tree of class subfolders of PNGs. They train through the CLI
and the app, split into tasks like every benchmark, keep a stratified test split cached by a
content hash, feed the cost estimates, and refuse bad folders with one line each."""

from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
from conftest import tiny_config
from PIL import Image
from streamlit.testing.v1 import AppTest

from app import share
from engine.cli import main
from engine.config import ConfigError, resolve, validate
from engine.data import build_benchmark, class_order
from engine.data import folder as folder_data
from engine.data.catalog import default_tasks
from engine.estimate import input_shape, pool_sizes, training_cost
from engine.jobs import get_manager
from engine.runner import prepare

MAIN = str(Path(__file__).resolve().parents[1] / "app" / "main.py")


@pytest.fixture(autouse=True)
def _own_data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("FORGET_DATA_DIR", str(tmp_path / "data"))


def write_npz(path: Path, n=2000, classes=10, shape=(1, 16, 16), seed=0, **arrays) -> Path:
    """Class prototypes plus noise (easily learnt), uint8, N×C×H×W; ``arrays`` override x/y."""
    rng = np.random.default_rng(seed)
    prototypes = rng.uniform(0, 255, (classes, *shape))
    y = np.arange(n) % classes
    rng.shuffle(y)
    x = np.clip(prototypes[y] + rng.normal(0, 40, (n, *shape)), 0, 255).astype(np.uint8)
    path.mkdir(parents=True, exist_ok=True)
    np.savez(path / "data.npz", **{"x": x, "y": y, **arrays})
    return path


def write_tree(root: Path, classes=("cat", "dog", "fox"), per_class=6, size=(8, 8), mode="RGB"):
    """One subfolder of PNGs per class; returns {file: pixels as written}."""
    rng = np.random.default_rng(1)
    written = {}
    for c in classes:
        (root / c).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            shape = (size[1], size[0], 3) if mode == "RGB" else (size[1], size[0])
            pixels = rng.integers(0, 256, shape, dtype=np.uint8)
            path = root / c / f"{i}.png"
            Image.fromarray(pixels, mode=mode).save(path)
            written[path] = pixels
    return written


def folder_config(path: Path, **data) -> dict:
    return tiny_config(
        data__benchmark=f"folder:{path}", **{f"data__{k}": v for k, v in data.items()}
    )


def test_a_ten_class_npz_folder_trains_through_the_cli(tmp_path, capsys):
    data = write_npz(tmp_path / "x")
    out = tmp_path / "r.json"
    args = ["run", "--benchmark", f"folder:{data}", "--set", "n_tasks=5", "--scenario", "task"]
    assert main([*args, "--epochs", "2", "--quiet", "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    digest = folder_data.describe(f"folder:{data}").digest
    assert doc["config"]["data"]["benchmark"] == f"folder:{data}#{digest[:16]}"
    assert doc["config"]["data"]["split"] == "2,2,2,2,2"
    # The preset of small grey images is the MNIST sets' MLP.
    assert (doc["config"]["model"]["arch"], doc["config"]["model"]["width"]) == ("mlp", 400)
    R = doc["R"]
    assert len(R) == 5 and min(R[t][t] for t in range(5)) > 0.95  # every task is learnt
    assert main([*args, "--epochs", "2", "--quiet"]) == 0  # the same run again: from the store
    assert f"key {doc['key']}  (cached" in capsys.readouterr().out


def test_tasks_and_test_split_follow_the_settings(tmp_path):
    data = write_npz(tmp_path / "x")
    cfg = resolve(validate(folder_config(data, split="3,7", order_seed=4)), device="cpu")
    assert resolve(cfg, device="cpu") == cfg  # the canonical form is a fixed point
    b = build_benchmark(cfg.data, "class")
    raw = folder_data.load(cfg.data.benchmark, cfg.data.test_fraction)
    # A stratified 20 % test split: 40 of each class's 200 images, 160 to train.
    assert len(raw.y_test) == 400 and np.bincount(raw.y_test.numpy()).tolist() == [40] * 10
    assert np.bincount(raw.y_train.numpy()).tolist() == [160] * 10
    # The seeded class order puts 3 classes in the first task and 7 in the second.
    order = class_order(10, 4)
    assert b.task_classes == [order[:3], order[3:]]
    assert b.train_slices == [(0, 480), (480, 1600)] and b.test_slices == [(0, 120), (120, 400)]
    # Standardised like the rest: the training pixels have mean 0 and standard deviation 1.
    assert abs(b.x_train.mean().item()) < 1e-4 and abs(b.x_train.std().item() - 1) < 1e-3
    # Without n_tasks: tasks of two classes.
    assert resolve(validate(folder_config(data)), device="cpu").data.split == "2,2,2,2,2"


def test_default_task_count_of_a_folder():
    counts = {k: default_tasks(k) for k in (2, 3, 4, 7, 9, 10, 100)}
    assert counts == {2: 2, 3: 3, 4: 2, 7: 7, 9: 3, 10: 5, 100: 50}


def test_an_image_folder_tree_reads_its_classes_and_pixels(tmp_path):
    written = write_tree(tmp_path / "pets")
    name = f"folder:{tmp_path / 'pets'}"
    info = folder_data.describe(name)
    assert (info.kind, info.class_names, info.n_images) == ("tree", ("cat", "dog", "fox"), 18)
    assert info.input_shape == (3, 8, 8)
    raw = folder_data.load(name, 0.5)
    assert raw.class_names == ["cat", "dog", "fox"] and len(raw.y_test) == 9
    x = np.concatenate([raw.x_train.numpy(), raw.x_test.numpy()])
    y = np.concatenate([raw.y_train.numpy(), raw.y_test.numpy()])
    # PNG is lossless: every written image is there, channels first, under its folder's class.
    for path, pixels in written.items():
        label = ("cat", "dog", "fox").index(path.parent.name)
        assert any((x[i] == pixels.transpose(2, 0, 1)).all() for i in np.flatnonzero(y == label))
    grey = write_tree(tmp_path / "grey", classes=("a", "b"), per_class=2, mode="L")
    assert folder_data.describe(f"folder:{tmp_path / 'grey'}").input_shape == (1, 8, 8)
    assert len(grey) == 4


def test_npz_variants_labels_channels_last_and_floats(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 6, 5, 3)).astype(np.float32)  # N×H×W×C, floats
    y = np.repeat([3, 7, 11, 42], 10)  # any whole numbers
    (tmp_path / "v").mkdir()
    np.savez(tmp_path / "v" / "data.npz", x=x, y=y)
    name = f"folder:{tmp_path / 'v' / 'data.npz'}"  # the .npz itself is a folder benchmark too
    info = folder_data.describe(name)
    assert info.input_shape == (3, 6, 5) and info.class_names == ("3", "7", "11", "42")
    raw = folder_data.load(name, 0.25)
    assert raw.x_train.dtype.is_floating_point and raw.x_train.shape[1:] == (3, 6, 5)
    together = np.concatenate([raw.x_train.numpy(), raw.x_test.numpy()])
    labels = np.concatenate([raw.y_train.numpy(), raw.y_test.numpy()])
    assert sorted(labels.tolist()) == sorted(np.repeat([0, 1, 2, 3], 10).tolist())
    first = x[0].transpose(2, 0, 1)
    assert any(np.array_equal(first, row) for row in together)


def test_cached_by_a_content_hash(tmp_path):
    data = write_npz(tmp_path / "a", n=200)
    npz = data / "data.npz"
    name = f"folder:{data}"
    info = folder_data.describe(name)
    # The digest is SHA-256 over each file's relative name, size and bytes.
    body = npz.read_bytes()
    recipe = hashlib.sha256(b"data.npz\0" + str(len(body)).encode() + b"\0" + body).hexdigest()
    assert info.digest == recipe
    raw = folder_data.load(name, 0.2)
    kept = tmp_path / "data" / "folders" / f"{recipe}-test0.2-seed0.npz"
    with np.load(kept, allow_pickle=False) as f:  # plain arrays: no pickle to read them back
        assert np.array_equal(f["x_train"], raw.x_train.numpy())
        assert np.array_equal(f["y_test"], raw.y_test.numpy())
        assert f["class_names"].tolist() == [str(c) for c in range(10)]
    # The same bytes elsewhere: the same content, the same split; the key differs by path only.
    copy = tmp_path / "b"
    copy.mkdir()
    (copy / "data.npz").write_bytes(body)
    assert folder_data.describe(f"folder:{copy}").digest == recipe
    key = prepare(folder_config(data))[1]
    # One changed label: a new digest, so a new key — never a stale result.
    x, y = np.load(npz)["x"], np.load(npz)["y"]
    y[0] = (y[0] + 1) % 10
    np.savez(npz, x=x, y=y)
    bump_mtime(npz)
    cfg, changed = prepare(folder_config(data))
    assert changed != key and cfg.data.benchmark.endswith(folder_data.describe(name).digest[:16])
    # A config made before the change does not load the changed files.
    with pytest.raises(ConfigError, match="changed since this config was made"):
        folder_data.load(f"{name}#{recipe[:16]}", 0.2)


def bump_mtime(path: Path) -> None:
    """A rewrite within one tick of a coarse file clock keeps the old time; move it on."""
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))


def test_estimates_read_the_folders_shape_and_size(tmp_path):
    data = write_npz(tmp_path / "x", n=2000, shape=(1, 16, 16))
    cfg = resolve(validate(folder_config(data) | {"model": {"arch": "mlp"}}), device="cpu")
    assert input_shape(cfg.data) == (1, 16, 16)
    assert pool_sizes(cfg.data) == pytest.approx((1600, 400))
    cost = training_cost(cfg)
    width = cfg.model.width  # preset 400, two layers, 10 outputs in class-IL
    assert cost.params == (256 * width + width) + (width * width + width) + (width * 10 + 10)
    batches = sum(math.ceil(320 / cfg.train.batch_size) for _ in range(5))
    assert cost.steps == cfg.train.epochs * batches


def bad_npz(tmp_path: Path, **arrays) -> Path:
    (tmp_path / "bad").mkdir()
    np.savez(tmp_path / "bad" / "data.npz", **arrays)
    return tmp_path / "bad"


def x_images(n=20):
    return np.zeros((n, 4, 4), dtype=np.uint8)


def two_sizes(p: Path) -> Path:
    write_tree(p / "t")
    write_tree(p / "t", ("dog",), 1, (9, 9))
    return p / "t"


def not_an_image(p: Path) -> Path:
    write_tree(p / "t")
    (p / "t" / "cat" / "notes.txt").write_text("hi")
    return p / "t"


def one_class_tree(p: Path) -> Path:
    write_tree(p / "t", ("cat",))
    return p / "t"


def one_image_class(p: Path) -> Path:
    write_tree(p / "t", ("cat", "dog"), 1)
    return p / "t"


def two_npz(p: Path) -> Path:
    bad_npz(p, x=x_images(), y=np.arange(20) % 2)
    np.savez(p / "bad" / "more.npz", x=x_images())
    return p / "bad"


def empty(p: Path) -> Path:
    (p / "e").mkdir()
    return p / "e"


BAD_FOLDERS = {
    "missing folder": (lambda p: p / "nowhere", "does not exist"),
    "single class": (lambda p: bad_npz(p, x=x_images(), y=np.zeros(20, int)), "a single class"),
    "pickled objects": (
        lambda p: bad_npz(p, x=np.array([object()] * 20, dtype=object), y=np.arange(20) % 2),
        "pickled Python objects, which are never loaded",
    ),
    "labels not integers": (
        lambda p: bad_npz(p, x=x_images(), y=np.arange(20) % 2 + 0.5),
        "y must hold whole-number class labels (got float64)",
    ),
    "npz of mismatched shapes": (
        lambda p: bad_npz(p, x=x_images(19), y=np.arange(20) % 2),
        "x holds 19 images but y has shape (20,)",
    ),
    "x not images": (
        lambda p: bad_npz(p, x=np.zeros((20, 16)), y=np.arange(20) % 2),
        "x must be images N×H×W or N×C×H×W",
    ),
    "images of two sizes": (
        two_sizes,
        "differ in size: 'cat/0.png' is 8×8, 'dog/0.png' is 9×9",
    ),
    "a file that is not an image": (not_an_image, "notes.txt' is not an image"),
    "a one-class tree": (one_class_tree, "a single class (cat)"),
    "a class with one image": (one_image_class, "class cat has fewer than 2 images"),
    "two npz files": (two_npz, "holds 2 .npz files; keep exactly one"),
    "an empty folder": (empty, "holds neither one .npz"),
}


@pytest.mark.parametrize("case", list(BAD_FOLDERS))
def test_bad_folders_are_one_line_naming_what_is_wrong(tmp_path, case):
    make, expected = BAD_FOLDERS[case]
    path = make(tmp_path)
    with pytest.raises(ConfigError) as err:
        prepare(folder_config(path))
    message = str(err.value)
    assert message.startswith("data.benchmark: ") and "\n" not in message
    assert expected in message


def test_the_cli_refuses_a_bad_folder_with_exit_2(tmp_path, capsys):
    path = bad_npz(tmp_path, x=x_images(), y=np.arange(20) % 2 + 0.5)
    assert main(["run", "--benchmark", f"folder:{path}", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: data.benchmark: ") and len(err.splitlines()) == 1


def test_hosted_mode_refuses_folders_without_reading_them(tmp_path, monkeypatch):
    monkeypatch.setenv("FORGET_HOSTED", "1")
    with pytest.raises(ConfigError) as err:
        validate(folder_config(tmp_path / "nowhere"))
    assert "folder benchmarks read a path on this machine and are off on a hosted demo" in str(
        err.value
    )
    assert "does not exist" not in str(err.value)


def test_config_names_what_is_allowed():
    with pytest.raises(ConfigError) as err:
        validate({"data": {"benchmark": "split-mnits"}})
    assert str(err.value).startswith("data.benchmark: not a benchmark; allowed: split-digits, ")
    assert "folder:PATH" in str(err.value) and str(err.value).endswith("(got 'split-mnits')")


def open_app(query: dict, page: str) -> AppTest:
    """A session opened on a link to ``page`` (tests/test_app.py's pattern)."""
    at = AppTest.from_file(MAIN, default_timeout=120)
    for k, v in query.items():
        at.query_params[k] = str(v)
    at.run()
    at.query_params.clear()
    for k, v in query.items():
        at.query_params[k] = str(v)
    at.switch_page(f"views/{page}.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_the_app_trains_a_folder_from_a_link(tmp_path):
    data = write_npz(tmp_path / "x")
    raw = folder_config(data, n_tasks=5)
    at = open_app(share.config_to_query(raw), "forgetting")
    assert not at.error, [e.value for e in at.error]
    assert at.sidebar.selectbox(key="cfg:data.benchmark").value == f"folder:{data}"
    next(b for b in at.button if b.label == "Run").click().run()
    key = prepare(raw)[1]
    m = get_manager()
    assert m.wait(key, 300)["state"] == "done"
    at.run()
    assert not at.exception
    result = m.store.get_result(key)
    assert len(result["R"]) == 5 and min(result["R"][t][t] for t in range(5)) > 0.9
    assert any(s.value.startswith("Done: 5 of 5 tasks") for s in at.success)
