"""engine.data.torchvision_sets on tiny files written in torchvision's real on-disk formats.

No test touches the network: an autouse fixture replaces ``urllib.request.urlopen`` (which
torchvision's downloader calls) with a fake web that is offline unless a test serves files.
Synthetic files cannot match torchvision's hard-coded MD5s, so tests that go through an MD5
check pin torchvision's tables to the MD5s of the files they wrote (``pin_md5``); everything
else (file names, layout, parsing, the download and unpacking code) is torchvision's own.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import pickle
import socket
import struct
import tarfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field

import numpy as np
import pytest
import torch
from torchvision import datasets

from engine.data.torchvision_sets import (
    DATASETS,
    DataUnavailable,
    cache_path,
    load_raw,
    where_to_put,
)
from engine.tensor_tree import unpack

MNIST_CLASSES = {"mnist": datasets.MNIST, "fashion-mnist": datasets.FashionMNIST}
CIFAR_CLASSES = {"cifar10": datasets.CIFAR10, "cifar100": datasets.CIFAR100}


# ---------------------------------------------------------------------------------------------
# a fake web: torchvision's downloader sees either files or "no network"


class FakeResponse:
    """What urlopen returns: read() in chunks, optionally dying after ``cut`` bytes."""

    def __init__(self, url: str, data: bytes, cut: int | None):
        self.url, self._data, self._cut, self._pos = url, data, cut, 0
        self.length = len(data)

    def read(self, n: int = -1) -> bytes:
        if self._cut is not None and self._pos >= self._cut:
            raise ConnectionResetError("connection reset by peer")
        end = len(self._data) if n < 0 else self._pos + n
        if self._cut is not None:
            end = min(end, self._cut)
        chunk, self._pos = self._data[self._pos : end], end
        return chunk

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


@dataclass
class FakeWeb:
    served: dict[str, bytes] = field(default_factory=dict)  # URL basename → bytes
    cut: int | None = None  # serve only this many bytes of each file, then reset
    calls: list[str] = field(default_factory=list)

    def urlopen(self, request, *args, **kwargs):
        url = request.full_url if isinstance(request, urllib.request.Request) else request
        self.calls.append(url)
        name = url.rsplit("/", 1)[-1]
        if name not in self.served:
            raise urllib.error.URLError(OSError(-2, "Name or service not known"))
        return FakeResponse(url, self.served[name], self.cut)


@pytest.fixture(autouse=True)
def web(monkeypatch) -> FakeWeb:
    fake = FakeWeb()
    monkeypatch.setattr(urllib.request, "urlopen", fake.urlopen)
    return fake


# ---------------------------------------------------------------------------------------------
# tiny datasets in the real formats


@dataclass
class FakeSet:
    x_train: np.ndarray  # N×C×H×W uint8, what load_raw must return
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: list[str]
    unpacked: dict[str, bytes]  # path under data_dir → bytes, as torchvision reads them
    packed: dict[str, bytes]  # path under data_dir → bytes, as they are downloaded

    def write(self, root, packed: bool = False) -> None:
        for rel, data in (self.packed if packed else self.unpacked).items():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_bytes(data)

    def served(self) -> dict[str, bytes]:
        return {rel.rsplit("/", 1)[-1]: data for rel, data in self.packed.items()}


def images(rng, n: int, c: int, h: int) -> np.ndarray:
    x = rng.integers(0, 256, size=(n, c, h, h), dtype=np.uint8)
    x[0, 0, 0, 0], x[-1, -1, -1, -1] = 0, 255  # both ends of the range survive
    return x


def idx_bytes(arr: np.ndarray) -> bytes:
    """IDX: magic 0x00000800 + ndim (2051 images, 2049 labels), big-endian dims, raw bytes."""
    head = struct.pack(">I", 0x0800 | arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return head + arr.astype(np.uint8).tobytes()


def make_mnist(name: str, rng, n: tuple[int, int]) -> FakeSet:
    folder = f"{MNIST_CLASSES[name].__name__}/raw"
    x_tr, x_te = images(rng, n[0], 1, 28), images(rng, n[1], 1, 28)
    y_tr, y_te = rng.integers(0, 10, n[0]), rng.integers(0, 10, n[1])
    arrays = {
        "train-images-idx3-ubyte": x_tr[:, 0],
        "train-labels-idx1-ubyte": y_tr,
        "t10k-images-idx3-ubyte": x_te[:, 0],
        "t10k-labels-idx1-ubyte": y_te,
    }
    unpacked = {f"{folder}/{f}": idx_bytes(a) for f, a in arrays.items()}
    packed = {f"{rel}.gz": gzip.compress(data) for rel, data in unpacked.items()}
    names = list(MNIST_CLASSES[name].classes)
    return FakeSet(x_tr, y_tr, x_te, y_te, names, unpacked, packed)


def tar_gz(files: dict[str, bytes], folder: str) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo(folder)
        info.type, info.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(info)
        for rel, data in files.items():
            info = tarfile.TarInfo(rel)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def cifar_pickle(d: dict) -> bytes:
    # The official files are Python 2 pickles whose str keys load as str under torchvision's
    # encoding="latin1" (as b"data" etc. under encoding="bytes"); str keys written by Python 3
    # load the same way, so the loader sees exactly what it sees in the real files.
    return pickle.dumps(d, protocol=2)


def make_cifar(name: str, rng, n: tuple[int, int]) -> FakeSet:
    cls = CIFAR_CLASSES[name]
    folder = cls.base_folder
    n_classes, (n_train, n_test) = (10 if name == "cifar10" else 100), n
    x_tr, x_te = images(rng, n_train, 3, 32), images(rng, n_test, 3, 32)
    y_tr, y_te = rng.integers(0, n_classes, n_train), rng.integers(0, n_classes, n_test)
    names = [f"class_{i}" for i in range(n_classes)]

    def batch(x, y, label):
        # rows of 3072 bytes: the 1024 red, then green, then blue values, each row-major
        d = {"batch_label": label, "data": x.reshape(len(x), -1), "filenames": ["a.png"] * len(x)}
        if name == "cifar10":
            d["labels"] = [int(v) for v in y]
        else:
            d["fine_labels"], d["coarse_labels"] = [int(v) for v in y], [int(v) // 5 for v in y]
        return cifar_pickle(d)

    files = {}
    train_names = [f for f, _ in cls.train_list]
    for i, (f, part) in enumerate(
        zip(train_names, np.array_split(np.arange(n_train), len(train_names)), strict=True)
    ):
        files[f"{folder}/{f}"] = batch(x_tr[part], y_tr[part], f"training batch {i + 1}")
    files[f"{folder}/{cls.test_list[0][0]}"] = batch(x_te, y_te, "testing batch")
    meta = {cls.meta["key"]: names}
    if name == "cifar100":
        meta["coarse_label_names"] = [f"super_{i}" for i in range(20)]
    files[f"{folder}/{cls.meta['filename']}"] = cifar_pickle(meta)
    packed = {cls.filename: tar_gz(files, folder)}
    return FakeSet(x_tr, y_tr, x_te, y_te, names, files, packed)


def make_svhn(rng, n: tuple[int, int]) -> FakeSet:
    scipy_io = pytest.importorskip("scipy.io", reason="SVHN's .mat files need scipy")
    x_tr, x_te = images(rng, n[0], 3, 32), images(rng, n[1], 3, 32)
    y_tr, y_te = np.arange(n[0]) % 10, np.arange(n[1]) * 9 % 10  # digit 0 in both splits
    files = {}
    for split, x, y in (("train", x_tr, y_tr), ("test", x_te, y_te)):
        buf = io.BytesIO()
        # SVHN's layout: X is H×W×3×N, y is N×1 with digit 0 stored as label 10
        labels = np.where(y == 0, 10, y).astype(np.uint8)[:, None]
        scipy_io.savemat(buf, {"X": x.transpose(2, 3, 1, 0), "y": labels})
        files[datasets.SVHN.split_list[split][1]] = buf.getvalue()
    names = [str(d) for d in range(10)]
    return FakeSet(x_tr, y_tr, x_te, y_te, names, files, dict(files))


SIZES = {"mnist": (12, 6), "fashion-mnist": (12, 6), "cifar10": (10, 4), "cifar100": (8, 4)}


def make(name: str, seed: int = 0, n: tuple[int, int] | None = None) -> FakeSet:
    """A tiny ``name`` (n = (train, test) images) in its real on-disk format."""
    rng = np.random.default_rng(seed)
    n = n or SIZES.get(name, (7, 3))
    if name in MNIST_CLASSES:
        return make_mnist(name, rng, n)
    if name in CIFAR_CLASSES:
        return make_cifar(name, rng, n)
    return make_svhn(rng, n)


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def pin_md5(monkeypatch, name: str, fake: FakeSet) -> None:
    """Point torchvision's hard-coded MD5 tables at the synthetic files (restored after)."""
    by_file = {
        rel.rsplit("/", 1)[-1]: md5(d) for rel, d in {**fake.unpacked, **fake.packed}.items()
    }
    if name in MNIST_CLASSES:
        cls = MNIST_CLASSES[name]
        monkeypatch.setattr(cls, "resources", [(f, by_file[f]) for f, _ in cls.resources])
    elif name in CIFAR_CLASSES:
        cls = CIFAR_CLASSES[name]
        monkeypatch.setattr(cls, "train_list", [[f, by_file[f]] for f, _ in cls.train_list])
        monkeypatch.setattr(cls, "test_list", [[f, by_file[f]] for f, _ in cls.test_list])
        monkeypatch.setattr(cls, "meta", {**cls.meta, "md5": by_file[cls.meta["filename"]]})
        monkeypatch.setattr(cls, "tgz_md5", by_file[cls.filename])
    else:
        split = {
            k: [url, f, by_file.get(f, m)] for k, (url, f, m) in datasets.SVHN.split_list.items()
        }
        monkeypatch.setattr(datasets.SVHN, "split_list", split)


def assert_matches(raw, fake: FakeSet) -> None:
    for got, want in ((raw.x_train, fake.x_train), (raw.x_test, fake.x_test)):
        assert got.dtype == torch.uint8 and got.is_contiguous()
        assert torch.equal(got, torch.from_numpy(want))
    for got, want in ((raw.y_train, fake.y_train), (raw.y_test, fake.y_test)):
        assert got.dtype == torch.int64 and got.shape == (len(want),)
        assert got.tolist() == [int(v) for v in want]
    assert raw.n_classes == len(fake.class_names)
    assert raw.class_names == fake.class_names


LAYOUTS = [
    ("mnist", False),
    ("mnist", True),
    ("fashion-mnist", False),
    ("fashion-mnist", True),
    ("cifar10", False),
    ("cifar10", True),
    ("cifar100", False),
    ("cifar100", True),
    ("svhn", False),
]


# ---------------------------------------------------------------------------------------------
# loading files that are in place


@pytest.mark.parametrize(("name", "packed"), LAYOUTS)
def test_loads_files_in_place_without_network(tmp_path, monkeypatch, web, name, packed):
    fake = make(name)
    fake.write(tmp_path, packed=packed)
    pin_md5(monkeypatch, name, fake)
    raw = load_raw(name, tmp_path, download=False)
    assert_matches(raw, fake)
    assert web.calls == []
    if name in CIFAR_CLASSES and packed:  # the tarball was unpacked next to it, in full
        assert sorted(
            p.name for p in (tmp_path / CIFAR_CLASSES[name].base_folder).iterdir()
        ) == sorted(rel.rsplit("/", 1)[-1] for rel in fake.unpacked)
        assert not list(tmp_path.glob(".unpack-*"))


def test_mnist_shapes_and_svhn_label_ten_is_zero(tmp_path, monkeypatch):
    fake = make("mnist")
    fake.write(tmp_path)
    raw = load_raw("mnist", tmp_path, download=False)
    assert raw.x_train.shape == (12, 1, 28, 28) and raw.x_test.shape == (6, 1, 28, 28)
    svhn = make("svhn")
    svhn.write(tmp_path)
    pin_md5(monkeypatch, "svhn", svhn)
    raw = load_raw("svhn", tmp_path, download=False)
    assert raw.x_train.shape == (7, 3, 32, 32)
    assert 0 in raw.y_test.tolist() and int(raw.y_train.max()) <= 9


def test_cifar_keeps_torchvision_md5_check(tmp_path):
    # Unpinned: the synthetic batches do not carry the official MD5s, so torchvision refuses
    # them, and load_raw says the files there could not be read (it never trusts them blindly).
    make("cifar10").write(tmp_path)
    with pytest.raises(DataUnavailable, match="could not be read"):
        load_raw("cifar10", tmp_path, download=False)


# ---------------------------------------------------------------------------------------------
# files missing, offline, interrupted downloads


def expected_names(name: str) -> list[str]:
    if name in MNIST_CLASSES:
        return [f.removesuffix(".gz") for f, _ in MNIST_CLASSES[name].resources]
    if name in CIFAR_CLASSES:
        cls = CIFAR_CLASSES[name]
        return [cls.filename, cls.base_folder]
    return ["train_32x32.mat", "test_32x32.mat"]


def expected_dir(name: str, root) -> str:
    if name in MNIST_CLASSES:
        return str(root / MNIST_CLASSES[name].__name__ / "raw")
    return str(root)


@pytest.mark.parametrize("name", DATASETS)
def test_missing_files_with_download_off_name_files_and_dir(tmp_path, web, name):
    root = tmp_path / "data"
    with pytest.raises(DataUnavailable) as info:
        load_raw(name, root, download=False, needed_by=f"split-{name}")
    msg = str(info.value)
    assert "\n" not in msg and msg.startswith(f"split-{name} needs ")
    assert expected_dir(name, root) in msg and "downloading is off" in msg
    for f in expected_names(name):
        assert f in msg
    assert where_to_put(name, root) in msg
    assert web.calls == [] and not root.exists()  # nothing created, nothing fetched


@pytest.mark.parametrize("name", DATASETS)
def test_offline_download_fails_fast_and_leaves_nothing_in_the_way(
    tmp_path, monkeypatch, web, name
):
    fake = make(name)
    pin_md5(monkeypatch, name, fake)
    t0 = time.perf_counter()
    with pytest.raises(DataUnavailable) as info:
        load_raw(name, tmp_path, download=True)
    elapsed = time.perf_counter() - t0
    msg = str(info.value)
    assert "could not be downloaded (offline?)" in msg and "Name or service not known" in msg
    assert "\n" not in msg and expected_dir(name, tmp_path) in msg
    assert web.calls, "a download was attempted"
    assert elapsed < 5.0
    assert socket.getdefaulttimeout() is None  # the short download timeout was undone
    assert not cache_path(name, tmp_path).exists()
    # the user now puts the files in place by hand: they load
    fake.write(tmp_path)
    assert_matches(load_raw(name, tmp_path, download=False), fake)


@pytest.mark.parametrize("name", DATASETS)
def test_interrupted_download_then_retry_succeeds(tmp_path, monkeypatch, web, name):
    fake = make(name)
    pin_md5(monkeypatch, name, fake)
    web.served, web.cut = fake.served(), 100  # every file dies after 100 bytes
    with pytest.raises(DataUnavailable, match="could not be downloaded"):
        load_raw(name, tmp_path, download=True)
    truncated = [p for p in tmp_path.rglob("*") if p.name in web.served]
    assert truncated and all(p.stat().st_size == 100 for p in truncated)
    # the next online attempt replaces the truncated files (torchvision's MD5 check fails)
    web.cut, web.calls = None, []
    assert_matches(load_raw(name, tmp_path, download=True), fake)
    assert web.calls


@pytest.mark.parametrize("name", ["mnist", "cifar10", "svhn"])
def test_interrupted_download_then_files_by_hand(tmp_path, monkeypatch, web, name):
    fake = make(name)
    pin_md5(monkeypatch, name, fake)
    web.served, web.cut = fake.served(), 100
    with pytest.raises(DataUnavailable):
        load_raw(name, tmp_path, download=True)
    fake.write(tmp_path)  # extracted files next to any truncated archive
    web.calls = []
    assert_matches(load_raw(name, tmp_path, download=False), fake)
    assert web.calls == []


def test_corrupt_local_files_are_reported_as_unreadable(tmp_path):
    fake = make("mnist")
    fake.write(tmp_path)
    images_file = tmp_path / "MNIST/raw/train-images-idx3-ubyte"
    images_file.write_bytes(images_file.read_bytes()[:500])
    with pytest.raises(DataUnavailable) as info:
        load_raw("mnist", tmp_path, download=False)
    assert "could not be read" in str(info.value) and "\n" not in str(info.value)


def test_truncated_gz_by_hand_is_reported_not_raised(tmp_path):
    fake = make("mnist")
    fake.write(tmp_path, packed=True)
    gz = tmp_path / "MNIST/raw/train-images-idx3-ubyte.gz"
    gz.write_bytes(gz.read_bytes()[:200])
    with pytest.raises(DataUnavailable, match="could not be read"):
        load_raw("mnist", tmp_path, download=False)
    assert not (tmp_path / "MNIST/raw/train-images-idx3-ubyte").exists()
    assert not list((tmp_path / "MNIST/raw").glob(".*.tmp"))


# ---------------------------------------------------------------------------------------------
# downloading (served by the fake web) and the tensor cache


@pytest.mark.parametrize("name", DATASETS)
def test_download_then_cache_serves_later_loads(tmp_path, monkeypatch, web, name):
    fake = make(name)
    pin_md5(monkeypatch, name, fake)
    web.served = fake.served()
    assert_matches(load_raw(name, tmp_path, download=True), fake)
    assert cache_path(name, tmp_path).is_file()
    # later loads read the cache only: no network, torchvision's files not even needed
    web.served, web.calls = {}, []
    for p in sorted(tmp_path.rglob("*"), reverse=True):
        if p != cache_path(name, tmp_path) and p.is_file():
            p.unlink()
    assert_matches(load_raw(name, tmp_path, download=False), fake)
    assert web.calls == []


def test_corrupt_cache_is_ignored_and_rewritten(tmp_path):
    fake = make("mnist")
    fake.write(tmp_path)
    cache = cache_path("mnist", tmp_path)
    cache.write_bytes(b"not a torch file")
    assert_matches(load_raw("mnist", tmp_path, download=False), fake)
    assert unpack(cache.read_bytes())["x_train"].shape == (12, 1, 28, 28)  # never unpickled
    assert not list(tmp_path.glob(".*.tmp"))


def test_cache_off_writes_nothing(tmp_path):
    make("mnist").write(tmp_path)
    load_raw("mnist", tmp_path, download=False, cache=False)
    assert not cache_path("mnist", tmp_path).exists()


def test_unknown_name_is_a_value_error(tmp_path):
    with pytest.raises(ValueError, match="allowed: mnist, fashion-mnist"):
        load_raw("imagenet", tmp_path)
