"""torchvision datasets (MNIST, Fashion-MNIST, CIFAR-10/100, SVHN) as uint8 tensors.

``load_raw(name, data_dir, download=True)`` reads a dataset from ``data_dir`` in torchvision's
own on-disk layout, downloads it there when it is missing and the machine is online, and
otherwise raises ``DataUnavailable`` with one line that says which files to put where. Nothing
else escapes: every torchvision, network or file error becomes ``DataUnavailable``.

After the first successful load the tensors are cached as ``<data_dir>/<name>.tensors.pt``, so
later loads skip torchvision's parsing and its checksums. Delete that file to force a re-read.

Where each dataset's files go (``DIR`` is ``data_dir``):

- mnist: ``DIR/MNIST/raw/`` train-images-idx3-ubyte, train-labels-idx1-ubyte,
  t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte (plain or ``.gz``)
- fashion-mnist: the same four names in ``DIR/FashionMNIST/raw/``
- cifar10: ``DIR/cifar-10-python.tar.gz`` or its folder ``DIR/cifar-10-batches-py/``
- cifar100: ``DIR/cifar-100-python.tar.gz`` or its folder ``DIR/cifar-100-python/``
- svhn: ``DIR/train_32x32.mat`` and ``DIR/test_32x32.mat``
"""

from __future__ import annotations

import contextlib
import gzip
import logging
import os
import shutil
import socket
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from engine.data.raw import RawData
from engine.errors import DataUnavailable
from engine.tensor_tree import pack, unpack

__all__ = [
    "DATASETS",
    "DataUnavailable",
    "RawData",
    "cache_path",
    "cache_tensors",
    "load_raw",
    "where_to_put",
]

log = logging.getLogger(__name__)

DATASETS = ("mnist", "fashion-mnist", "cifar10", "cifar100", "svhn")
_DISPLAY = {
    "mnist": "MNIST",
    "fashion-mnist": "Fashion-MNIST",
    "cifar10": "CIFAR-10",
    "cifar100": "CIFAR-100",
    "svhn": "SVHN",
}
# torchvision's urlopen calls pass no timeout, so they use the socket default (None = wait
# forever). A per-operation limit makes a machine whose packets are dropped fail in seconds;
# it bounds each connect/read, not the whole download, so slow but live links still finish.
DOWNLOAD_TIMEOUT_S = 20.0
_CACHE_FORMAT = 2  # 1 was torch.save: such a file is ignored and rebuilt, never loaded


# ---------------------------------------------------------------------------------------------
# public API


def load_raw(
    name: str,
    data_dir: str | os.PathLike,
    download: bool = True,
    *,
    needed_by: str | None = None,
    cache: bool = True,
) -> RawData:
    """Load ``name`` from ``data_dir`` (downloading into it if allowed) as uint8 N×C×H×W.

    ``needed_by`` (e.g. "split-cifar10") only prefixes the error message. Raises
    ``DataUnavailable`` when the files are missing or unreadable and cannot be downloaded.
    """
    if name not in DATASETS:
        raise ValueError(f"unknown torchvision dataset {name!r}; allowed: {', '.join(DATASETS)}")
    root = Path(data_dir).expanduser().absolute()
    with _exclusive(root, name, create=download):
        if cache:
            cached = _read_cache(cache_path(name, root))
            if cached is not None:
                return cached
        raw = _load_uncached(name, root, download, needed_by)
        if cache:
            cache_tensors(raw, cache_path(name, root))
        return raw


def where_to_put(name: str, data_dir: str | os.PathLike) -> str:
    """Which files ``name`` needs and in which directory, as a short phrase."""
    root = Path(data_dir).expanduser().absolute()
    files, folder = _expected(name, root)
    return f"put {files} in {folder}"


def cache_path(name: str, data_dir: str | os.PathLike) -> Path:
    """Where the tensor cache of ``name`` lives."""
    return Path(data_dir).expanduser().absolute() / f"{name}.tensors.pt"


def cache_tensors(raw: RawData, path: str | os.PathLike) -> bool:
    """Save ``raw`` to ``path`` atomically; False (and a log line) if the disk refuses."""
    path = Path(path)
    payload = {
        "format": _CACHE_FORMAT,
        "x_train": raw.x_train,
        "y_train": raw.y_train,
        "x_test": raw.x_test,
        "y_test": raw.y_test,
        "n_classes": int(raw.n_classes),
        "class_names": [str(c) for c in raw.class_names],
    }
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # A unique temporary name in the same directory: concurrent writers never share a file,
        # and os.replace is atomic, so readers see the old cache or the new one, never half.
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            f.write(pack(payload))  # JSON + safetensors: a cache file never runs code on read
        os.replace(tmp, path)
        return True
    except OSError as e:
        log.warning("could not write the tensor cache %s: %s", path, e)
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.remove(tmp)
        return False


# ---------------------------------------------------------------------------------------------
# loading


def _load_uncached(name: str, root: Path, download: bool, needed_by: str | None) -> RawData:
    """Local files first (no network), then a download, else DataUnavailable."""
    _unpack_local_archives(name, root)
    try:
        return _read(name, root, download=False)
    except Exception as e:  # any failure means "not usable as it is": try the next source
        log.debug("loading %s from %s failed", name, root, exc_info=True)
        local = _why_local(name, root, e)
    if not download:
        raise _unavailable(name, root, needed_by, f"{local} and downloading is off")
    try:
        with _socket_timeout(DOWNLOAD_TIMEOUT_S):
            return _read(name, root, download=True)
    except Exception as e:  # users get one line, never a torchvision traceback
        log.debug("downloading %s into %s failed", name, root, exc_info=True)
        why = f"{local}, and it could not be downloaded (offline?): {_brief(e)}"
        raise _unavailable(name, root, needed_by, why) from None


def _read(name: str, root: Path, download: bool) -> RawData:
    """Both splits through torchvision's dataset classes, arrays taken as they are."""
    from torchvision import datasets

    if name in ("mnist", "fashion-mnist"):
        cls = datasets.MNIST if name == "mnist" else datasets.FashionMNIST
        train = cls(root, train=True, download=download)
        test = cls(root, train=False, download=download)
        # data is N×28×28 uint8, targets int64: add the channel axis, copy to compact storage
        return _raw(
            train.data.unsqueeze(1).clone(),
            train.targets.clone(),
            test.data.unsqueeze(1).clone(),
            test.targets.clone(),
            list(train.classes),
        )
    if name in ("cifar10", "cifar100"):
        # CIFAR10/CIFAR100 verify every batch file against torchvision's MD5 table on load. We
        # keep that check rather than bypass it: the official files always pass, and when a
        # file is truncated or corrupt the check is what makes download=True fetch it again.
        # (Tests pin the table to their synthetic files' MD5s instead.) CIFAR-100's targets
        # are its fine labels.
        cls = datasets.CIFAR10 if name == "cifar10" else datasets.CIFAR100
        train = cls(root, train=True, download=download)
        test = cls(root, train=False, download=download)
        return _raw(
            _nhwc_to_nchw(train.data),
            torch.tensor(train.targets, dtype=torch.int64),
            _nhwc_to_nchw(test.data),
            torch.tensor(test.targets, dtype=torch.int64),
            list(train.classes),
        )
    # SVHN: data is already N×3×32×32 and torchvision has mapped label 10 to digit 0
    train = datasets.SVHN(root, split="train", download=download)
    test = datasets.SVHN(root, split="test", download=download)
    return _raw(
        torch.from_numpy(np.ascontiguousarray(train.data)),
        torch.from_numpy(train.labels.astype(np.int64)),
        torch.from_numpy(np.ascontiguousarray(test.data)),
        torch.from_numpy(test.labels.astype(np.int64)),
        [str(d) for d in range(10)],
    )


def _raw(x_train, y_train, x_test, y_test, class_names: list[str]) -> RawData:
    """RawData after checking the invariants every loader promises."""
    for x, y in ((x_train, y_train), (x_test, y_test)):
        if (
            x.dtype != torch.uint8
            or x.ndim != 4
            or y.dtype != torch.int64
            or y.shape != x.shape[:1]
        ):
            raise ValueError(f"unexpected arrays: x {tuple(x.shape)} {x.dtype}, y {tuple(y.shape)}")
    return RawData(
        x_train, y_train, x_test, y_test, len(class_names), [str(c) for c in class_names]
    )


def _nhwc_to_nchw(data: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(data.transpose(0, 3, 1, 2)))


# ---------------------------------------------------------------------------------------------
# archives a user put in place by hand


def _unpack_local_archives(name: str, root: Path) -> None:
    """Unpack MNIST's .gz files / a CIFAR tarball the user put in place, if still packed.

    torchvision only reads the unpacked files when download=False, and with download=True it
    unpacks an archive only when its MD5 matches (a mismatch means a fresh download). Unpacking
    here lets a user drop in the archives and load them without any network. Never raises: a
    truncated archive (e.g. left by an interrupted download) is skipped, and the load then
    reports the files as missing or unreadable.
    """
    from torchvision import datasets

    if name in ("mnist", "fashion-mnist"):
        cls = datasets.MNIST if name == "mnist" else datasets.FashionMNIST
        raw_dir = root / cls.__name__ / "raw"
        for gz_name, _md5 in cls.resources:
            target = raw_dir / gz_name.removesuffix(".gz")
            if not target.is_file() and (raw_dir / gz_name).is_file():
                _gunzip(raw_dir / gz_name, target)
    elif name in ("cifar10", "cifar100"):
        cls = datasets.CIFAR10 if name == "cifar10" else datasets.CIFAR100
        needed = [f for f, _ in cls.train_list + cls.test_list] + [cls.meta["filename"]]
        folder = root / cls.base_folder
        if not all((folder / f).is_file() for f in needed) and (root / cls.filename).is_file():
            _untar_folder(root / cls.filename, root, cls.base_folder)


def _gunzip(src: Path, dst: Path) -> None:
    """Decompress src to dst via a temporary file, so dst is whole or absent."""
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.tmp")
    try:
        with gzip.open(src, "rb") as fin, open(tmp, "wb") as fout:
            shutil.copyfileobj(fin, fout)
        os.replace(tmp, dst)
    except (OSError, EOFError) as e:  # BadGzipFile is an OSError; truncation is an EOFError
        log.warning("could not unpack %s: %s", src, e)
        with contextlib.suppress(OSError):
            os.remove(tmp)


def _untar_folder(archive: Path, root: Path, folder: str) -> None:
    """Extract ``folder`` from ``archive`` into ``root``, moving files in only once all are out."""
    tmp_dir = None
    try:
        tmp_dir = Path(tempfile.mkdtemp(prefix=".unpack-", dir=root))
        with tarfile.open(archive, "r:*") as tar:
            tar.extractall(tmp_dir, filter="data")  # "data": no absolute paths, links or devices
        extracted = tmp_dir / folder
        if not extracted.is_dir():
            raise OSError(f"{archive.name} has no folder {folder}/")
        (root / folder).mkdir(exist_ok=True)
        for f in extracted.iterdir():
            os.replace(f, root / folder / f.name)
    except (OSError, EOFError, tarfile.TarError) as e:
        log.warning("could not unpack %s: %s", archive, e)
    finally:
        if tmp_dir is not None:
            shutil.rmtree(tmp_dir, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# messages


def _expected(name: str, root: Path) -> tuple[str, Path]:
    """(the files ``name`` needs, the directory they go in), named from torchvision's tables."""
    from torchvision import datasets

    if name in ("mnist", "fashion-mnist"):
        cls = datasets.MNIST if name == "mnist" else datasets.FashionMNIST
        files = ", ".join(f.removesuffix(".gz") for f, _ in cls.resources)
        return f"{files} (or the same names with .gz)", root / cls.__name__ / "raw"
    if name in ("cifar10", "cifar100"):
        cls = datasets.CIFAR10 if name == "cifar10" else datasets.CIFAR100
        return f"{cls.filename} (or its extracted folder {cls.base_folder}/)", root
    split = datasets.SVHN.split_list
    return f"{split['train'][1]} and {split['test'][1]}", root


def _unavailable(name: str, root: Path, needed_by: str | None, why: str) -> DataUnavailable:
    files, folder = _expected(name, root)
    who = f"{needed_by} needs {_DISPLAY[name]}" if needed_by else f"{_DISPLAY[name]} is needed"
    return DataUnavailable(f"{who}: put {files} in {folder} — {why}")


def _why_local(name: str, root: Path, error: Exception) -> str:
    """Why the local load failed: nothing there, or something there that is unreadable."""
    if not _any_present(name, root):
        return "they are not there"
    return f"the files there could not be read (incomplete or corrupt?): {_brief(error)}"


def _any_present(name: str, root: Path) -> bool:
    """Whether any of the files or folders ``name`` looks for exist."""
    from torchvision import datasets

    if name in ("mnist", "fashion-mnist"):
        cls = datasets.MNIST if name == "mnist" else datasets.FashionMNIST
        raw_dir = root / cls.__name__ / "raw"
        names = [f for gz, _ in cls.resources for f in (gz, gz.removesuffix(".gz"))]
        return any((raw_dir / f).exists() for f in names)
    if name in ("cifar10", "cifar100"):
        cls = datasets.CIFAR10 if name == "cifar10" else datasets.CIFAR100
        return (root / cls.filename).exists() or (root / cls.base_folder).exists()
    return any((root / datasets.SVHN.split_list[s][1]).exists() for s in ("train", "test"))


def _brief(error: BaseException) -> str:
    """One short line from an exception (torchvision's messages can span several lines)."""
    lines = [ln.strip() for ln in str(error).splitlines() if ln.strip()]
    text = lines[-1] if lines else type(error).__name__
    return text if len(text) <= 200 else text[:197] + "..."


# ---------------------------------------------------------------------------------------------
# cache, locking, timeouts


def _read_cache(path: Path) -> RawData | None:
    """The cached tensors, or None when absent, unreadable or not in the expected form."""
    if not path.is_file():
        return None
    try:
        d = unpack(path.read_bytes())  # never an unpickler, even a restricted one
        if d.get("format") != _CACHE_FORMAT:
            return None
        return _raw(d["x_train"], d["y_train"], d["x_test"], d["y_test"], d["class_names"])
    except Exception as e:  # a bad cache is rebuilt from the raw files
        log.warning("ignoring the unreadable tensor cache %s: %s", path, e)
        return None


@contextlib.contextmanager
def _exclusive(root: Path, name: str, create: bool) -> Iterator[None]:
    """Hold a file lock per dataset, so parallel workers never download into the same file.

    Without a writable directory there is nothing to protect and no lock is taken.
    """
    from filelock import FileLock  # a dependency of torch itself

    lock = None
    try:
        if create:
            root.mkdir(parents=True, exist_ok=True)
        if root.is_dir():
            lock = FileLock(str(root / f".{name}.lock"))
            lock.acquire()
    except OSError:
        lock = None
    try:
        yield
    finally:
        if lock is not None:
            lock.release()


@contextlib.contextmanager
def _socket_timeout(seconds: float) -> Iterator[None]:
    """Use ``seconds`` as the socket default while downloading, unless one is already set."""
    previous = socket.getdefaulttimeout()
    if previous is None:
        socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)
