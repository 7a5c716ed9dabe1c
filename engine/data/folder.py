"""Bring your own data: a benchmark read from a folder, named ``folder:PATH``.

PATH is either one ``.npz`` file (or a folder holding exactly one) with arrays ``x`` — images,
N×H×W or N×C×H×W (N×H×W×C is read too when its last axis is 1, 3 or 4), uint8 or float — and
``y``, one whole-number label per image; or an ImageFolder tree: one subfolder per class, each
holding that class's images (PNG, JPEG, BMP, GIF, TIFF, WebP, PPM/PGM; subfolders inside a class
folder are walked too). Files whose names start with a dot are ignored.

The folder is described from its files' names, sizes and headers (:func:`describe`: classes,
image shape, count, and a SHA-256 of the files' names and bytes), memoized by the files' sizes
and modification times, so the cost estimates and the config's canonical form read it cheaply.
The canonical benchmark name carries the first 16 hex digits of that digest
(``folder:/abs/path#0123456789abcdef``), so changed files make a new cache key and never a
stale result. Loading (:func:`load`) decodes the images once, checks them, splits off a fixed,
seeded, stratified test set (``data.test_fraction``) and keeps the split arrays in
``$FORGET_DATA_DIR/folders/`` under the digest (plain ``.npz``, read back without pickle).

Bad data is one ConfigError naming the file and what is wrong: a missing folder, images of
different shapes, a single class, a file that is not an image, an ``.npz`` holding pickled
objects, labels that are not whole numbers.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import re
import zipfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from engine.data.catalog import FOLDER_PREFIX, FOLDER_SOURCE, BenchmarkFacts, folder_preset
from engine.data.raw import SPLIT_SEED, RawData, data_dir, stratified_split
from engine.errors import ConfigError

# torchvision.datasets.folder.IMG_EXTENSIONS plus GIF (importing torchvision takes seconds).
IMAGE_EXTENSIONS = (
    ".png",
    ".jpg",
    ".jpeg",
    ".bmp",
    ".gif",
    ".tif",
    ".tiff",
    ".webp",
    ".ppm",
    ".pgm",
)
GREY_MODES = ("1", "L", "LA", "I", "I;16", "F")  # read as one channel; anything else as RGB
TAG_DIGITS = 16
_TAG = re.compile(rf"#([0-9a-f]{{{TAG_DIGITS}}})$")
FIELD = "data.benchmark"
ARRAYS = ("x_train", "y_train", "x_test", "y_test")


def _fail(what: str) -> ConfigError:
    return ConfigError(f"{FIELD}: {what}")


def split_name(name: str) -> tuple[Path, str | None]:
    """(the absolute path, the content tag or None) of a ``folder:PATH[#tag]`` name."""
    text = name.removeprefix(FOLDER_PREFIX)
    tag = _TAG.search(text)
    if tag is not None:
        text = text[: tag.start()]
    if not text.strip():
        raise _fail("folder: needs a path, e.g. folder:/data/my-images")
    return Path(text).expanduser().absolute(), tag.group(1) if tag else None


@dataclass(frozen=True)
class Folder:
    """What a folder benchmark is, from its files (nothing decoded)."""

    path: Path
    kind: str  # "npz" or "tree"
    files: tuple[Path, ...]  # the data files, in the digest's order
    names: tuple[str, ...]  # their names relative to the folder (the npz: its file name)
    digest: str  # SHA-256 of the names and bytes
    n_images: int
    class_names: tuple[str, ...]
    input_shape: tuple[int, int, int]

    @property
    def name(self) -> str:
        """The canonical benchmark name: the absolute path and the content tag."""
        return f"{FOLDER_PREFIX}{self.path}#{self.digest[:TAG_DIGITS]}"

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    def facts(self) -> BenchmarkFacts:
        c, h, w = self.input_shape
        return BenchmarkFacts(
            self.name,
            FOLDER_SOURCE,
            f"{self.n_images:,} images of {self.n_classes} classes, {c}×{h}×{w}, from {self.path}",
            self.n_classes,
            self.input_shape,
            self.n_images,
            preset=folder_preset(self.n_classes, self.input_shape),
        )


# ---- finding the files --------------------------------------------------------------------


def _visible(entries) -> list[os.DirEntry]:
    return sorted((e for e in entries if not e.name.startswith(".")), key=lambda e: e.name)


def _locate(path: Path) -> tuple[str, list[Path], list[str]]:
    """(kind, data files, their relative names) of a folder benchmark's path."""
    if not path.exists():
        raise _fail(f"folder {str(path)!r} does not exist")
    if path.is_file():
        if path.suffix.lower() != ".npz":
            raise _fail(f"{str(path)!r} is a file but not an .npz; give a folder or an .npz")
        return "npz", [path], [path.name]
    with os.scandir(path) as it:
        entries = _visible(it)
    dirs = [e for e in entries if e.is_dir()]
    files = [e for e in entries if not e.is_dir()]
    if not dirs:
        npz = [e for e in files if e.name.lower().endswith(".npz")]
        if len(npz) == 1 and len(files) == 1:
            return "npz", [Path(npz[0].path)], [npz[0].name]
        if len(npz) > 1:
            raise _fail(f"folder {str(path)!r} holds {len(npz)} .npz files; keep exactly one")
        if npz:
            other = next(e.name for e in files if e not in npz)
            raise _fail(f"folder {str(path)!r}: {other!r} beside the .npz; keep the .npz alone")
        raise _fail(
            f"folder {str(path)!r} holds neither one .npz (x, y) nor one subfolder of images "
            "per class"
        )
    if files:
        raise _fail(
            f"{str(path / files[0].name)!r} is not in a class subfolder (the folder holds one "
            "subfolder of images per class)"
        )
    paths, names = [], []
    for d in dirs:
        for root, subdirs, filenames in os.walk(d.path):
            subdirs[:] = sorted(s for s in subdirs if not s.startswith("."))
            for f in sorted(f for f in filenames if not f.startswith(".")):
                full = Path(root) / f
                paths.append(full)
                names.append(full.relative_to(path).as_posix())
    return "tree", paths, names


def _signature(files: list[Path]) -> tuple:
    out = []
    for f in files:
        st = f.stat()
        out.append((str(f), st.st_size, st.st_mtime_ns))
    return tuple(out)


def content_digest(files: list[Path], names: list[str]) -> str:
    """SHA-256 over each file's relative name, size and bytes, in order: the same data under
    another path gives the same digest; a renamed, added or changed file a different one."""
    h = hashlib.sha256()
    for f, name in zip(files, names, strict=True):
        h.update(name.encode() + b"\0" + str(f.stat().st_size).encode() + b"\0")
        with f.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


# ---- describing: from names, sizes and headers ----------------------------------------------


def describe(name: str) -> Folder:
    """The folder behind a ``folder:PATH`` name (ConfigError with one line when it is not a
    usable benchmark). Memoized by the files' sizes and modification times."""
    path, _ = split_name(name)
    kind, files, names = _locate(path)
    return _describe(path, kind, tuple(files), tuple(names), _signature(files))


@lru_cache(maxsize=16)
def _describe(path: Path, kind: str, files: tuple, names: tuple, signature: tuple) -> Folder:
    if kind == "npz":
        n, shape, labels = _npz_header(files[0])
        classes = tuple(str(c) for c in np.unique(labels))
        counts = dict(zip(*np.unique(labels, return_counts=True), strict=True))
        few = [str(c) for c, k in counts.items() if k < 2]
        location = str(files[0])
    else:
        classes, shape, per_class = _tree_header(path, files, names)
        n = len(files)
        few = [c for c, k in per_class.items() if k < 2]
        location = str(path)
    if not classes:
        raise _fail(f"{location!r} holds no images")
    if len(classes) < 2:
        raise _fail(
            f"{location!r} holds a single class ({classes[0]}); a benchmark needs at least 2"
        )
    if few:
        raise _fail(
            f"{location!r}: class {few[0]} has fewer than 2 images (every class needs one to "
            "train on and one to test on)"
        )
    digest = content_digest(list(files), list(names))
    return Folder(path, kind, files, names, digest, n, classes, shape)


def _npz_member(z: zipfile.ZipFile, path: Path, key: str) -> str:
    member = f"{key}.npy"
    if member not in z.namelist():
        have = ", ".join(m.removesuffix(".npy") for m in z.namelist()) or "nothing"
        raise _fail(f"{str(path)!r} has no array {key!r} (it holds: {have})")
    return member


def _npz_header(path: Path) -> tuple[int, tuple[int, int, int], np.ndarray]:
    """(images, C×H×W, labels) of an .npz, reading x's header only."""
    try:
        with zipfile.ZipFile(path) as z:
            with z.open(_npz_member(z, path, "x")) as f:
                version = np.lib.format.read_magic(f)
                read = (
                    np.lib.format.read_array_header_1_0
                    if version == (1, 0)
                    else np.lib.format.read_array_header_2_0
                )
                x_shape, _, x_dtype = read(f)
            _npz_member(z, path, "y")
        with np.load(path, allow_pickle=False) as data:
            y = data["y"]
    except ConfigError:
        raise
    except ValueError as err:
        if "pickle" in str(err).lower():
            raise _fail(_pickled(path, "y")) from None
        raise _fail(f"{str(path)!r} is not a readable .npz ({err})") from None
    except (OSError, zipfile.BadZipFile, KeyError) as err:
        raise _fail(f"{str(path)!r} is not a readable .npz ({err})") from None
    if x_dtype.hasobject:
        raise _fail(_pickled(path, "x"))
    if x_dtype.kind not in "uif":
        raise _fail(f"{str(path)!r}: x must hold uint8 or float pixels (got {x_dtype})")
    shape = image_shape(tuple(x_shape), path)
    labels = check_labels(y, x_shape[0], path)
    return int(x_shape[0]), shape, labels


def _pickled(path: Path, key: str) -> str:
    return (
        f"{str(path)!r}: {key} holds pickled Python objects, which are never loaded; store "
        "plain arrays (np.savez(path, x=uint8_images, y=int_labels))"
    )


def image_shape(x_shape: tuple[int, ...], path: Path) -> tuple[int, int, int]:
    """C×H×W of the images of an array of shape ``x_shape`` (N×H×W, N×C×H×W or N×H×W×C)."""
    if len(x_shape) == 3:
        return (1, int(x_shape[1]), int(x_shape[2]))
    if len(x_shape) == 4:
        if x_shape[1] not in (1, 3, 4) and x_shape[3] in (1, 3, 4):  # channels last
            return (int(x_shape[3]), int(x_shape[1]), int(x_shape[2]))
        return (int(x_shape[1]), int(x_shape[2]), int(x_shape[3]))
    raise _fail(
        f"{str(path)!r}: x must be images N×H×W or N×C×H×W, all of one shape (got an array "
        f"of shape {tuple(x_shape)})"
    )


def check_labels(y: np.ndarray, n: int, path: Path) -> np.ndarray:
    if y.dtype.kind not in "iu":
        raise _fail(
            f"{str(path)!r}: y must hold whole-number class labels (got {y.dtype}); store "
            "them as an integer array"
        )
    if y.ndim != 1 or len(y) != n:
        raise _fail(
            f"{str(path)!r}: x holds {n:,} images but y has shape {tuple(y.shape)} (one label "
            "per image)"
        )
    return y


def _tree_header(path: Path, files: tuple, names: tuple):
    """(class names, C×H×W, images per class) of an ImageFolder tree, from image headers."""
    classes = tuple(sorted({n.split("/", 1)[0] for n in names}))
    per_class = dict.fromkeys(classes, 0)
    for d in sorted(p.name for p in path.iterdir() if p.is_dir() and not p.name.startswith(".")):
        per_class.setdefault(d, 0)
    first: tuple[str, tuple[int, int]] | None = None
    grey = True
    for f, name in zip(files, names, strict=True):
        if f.suffix.lower() not in IMAGE_EXTENSIONS:
            raise _fail(
                f"{str(f)!r} is not an image (class folders hold only "
                f"{', '.join(IMAGE_EXTENSIONS)} files)"
            )
        try:
            with Image.open(f) as im:
                size, mode = im.size, im.mode
        except (UnidentifiedImageError, OSError) as err:
            raise _fail(f"{str(f)!r} is not a readable image ({err})") from None
        if first is None:
            first = (name, size)
        elif size != first[1]:
            (w0, h0), (w, h) = first[1], size
            raise _fail(
                f"images of {str(path)!r} differ in size: {first[0]!r} is {h0}×{w0}, {name!r} is "
                f"{h}×{w} (every image of a benchmark needs the same size)"
            )
        grey = grey and mode in GREY_MODES
        per_class[name.split("/", 1)[0]] += 1
    empty = [c for c, k in per_class.items() if k == 0]
    if empty:
        raise _fail(f"class folder {str(path / empty[0])!r} holds no images")
    if first is None:
        raise _fail(f"folder {str(path)!r} holds no images")
    w, h = first[1]
    return tuple(per_class), (1 if grey else 3, h, w), per_class


def facts(name: str) -> BenchmarkFacts:
    """The catalog facts of a folder benchmark (see :func:`describe`)."""
    return describe(name).facts()


def canonical_name(name: str) -> str:
    """``folder:/absolute/path#tag`` for any spelling of the same folder and content."""
    return describe(name).name


# ---- loading: decode, check, split, keep ----------------------------------------------------


def load(name: str, test_fraction: float) -> RawData:
    """The folder's images as RawData with a fixed stratified test split (kept on disk)."""
    folder = describe(name)
    _, tag = split_name(name)
    if tag is not None and tag != folder.digest[:TAG_DIGITS]:
        raise _fail(
            f"the files of {str(folder.path)!r} changed since this config was made (content "
            f"{tag}, now {folder.digest[:TAG_DIGITS]}); make the config again"
        )
    return _load(folder, float(test_fraction))


@lru_cache(maxsize=2)
def _load(folder: Folder, test_fraction: float) -> RawData:
    path = data_dir() / "folders" / f"{folder.digest}-test{test_fraction!r}-seed{SPLIT_SEED}.npz"
    kept = _read_kept(path, folder)
    if kept is not None:
        return kept
    x, y = _read_npz(folder) if folder.kind == "npz" else _read_tree(folder)
    raw = _split(x, y, folder, test_fraction)
    with contextlib.suppress(OSError):  # best effort: a read-only data folder only costs time
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")
        arrays = {k: getattr(raw, k).numpy() for k in ARRAYS}
        np.savez(tmp, **arrays, class_names=np.array(raw.class_names, dtype=str))
        os.replace(tmp, path)  # atomic: a reader sees the old file or the whole new one
    return raw


def _read_kept(path: Path, folder: Folder) -> RawData | None:
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in ARRAYS}
            class_names = [str(c) for c in f["class_names"]]
    except (OSError, ValueError, KeyError):
        return None  # absent or unreadable: made again
    ok = all(arrays[k].shape[1:] == folder.input_shape for k in ARRAYS[::2])
    ok = ok and all(arrays[k].dtype == np.int64 and arrays[k].ndim == 1 for k in ARRAYS[1::2])
    if not ok or len(class_names) != folder.n_classes:
        return None
    return RawData(
        **{k: torch.from_numpy(v) for k, v in arrays.items()},
        n_classes=folder.n_classes,
        class_names=class_names,
    )


def _read_npz(folder: Folder) -> tuple[np.ndarray, np.ndarray]:
    path = folder.files[0]
    try:
        with np.load(path, allow_pickle=False) as data:
            x, y = data["x"], data["y"]
    except ValueError as err:
        raise _fail(_pickled(path, "x") if "pickle" in str(err).lower() else str(err)) from None
    y = check_labels(y, len(x), path)
    if x.ndim == 3:
        x = x[:, None]
    elif x.shape[1:] != folder.input_shape:  # channels last
        x = x.transpose(0, 3, 1, 2)
    x = pixels(x, path)
    _, codes = np.unique(y, return_inverse=True)
    return x, codes.astype(np.int64)


def pixels(x: np.ndarray, path: Path) -> np.ndarray:
    """uint8 images as they are, whole numbers in 0…255 as uint8, floats as float32."""
    if x.dtype == np.uint8:
        return np.ascontiguousarray(x)
    if x.dtype.kind in "iu":
        lo, hi = int(x.min()), int(x.max())
        if lo < 0 or hi > 255:
            raise _fail(
                f"{str(path)!r}: whole-number pixels must lie in 0…255 (found {lo}…{hi}); "
                "store uint8 or floats"
            )
        return np.ascontiguousarray(x, dtype=np.uint8)
    x = np.ascontiguousarray(x, dtype=np.float32)
    if not np.isfinite(x).all():
        raise _fail(f"{str(path)!r}: x holds NaN or infinite pixel values")
    return x


def _read_tree(folder: Folder) -> tuple[np.ndarray, np.ndarray]:
    c, h, w = folder.input_shape
    x = np.empty((folder.n_images, c, h, w), dtype=np.uint8)
    y = np.empty(folder.n_images, dtype=np.int64)
    index = {name: i for i, name in enumerate(folder.class_names)}
    for i, (f, name) in enumerate(zip(folder.files, folder.names, strict=True)):
        try:
            with Image.open(f) as im:
                image = np.asarray(im.convert("L" if c == 1 else "RGB"))
        except (UnidentifiedImageError, OSError) as err:
            raise _fail(f"{str(f)!r} is not a readable image ({err})") from None
        if image.shape[:2] != (h, w):
            raise _fail(f"{str(f)!r} is {image.shape[0]}×{image.shape[1]}, not {h}×{w}")
        x[i] = image[None] if c == 1 else image.transpose(2, 0, 1)
        y[i] = index[name.split("/", 1)[0]]
    return x, y


def _split(x: np.ndarray, y: np.ndarray, folder: Folder, test_fraction: float) -> RawData:
    n_test = math.ceil(test_fraction * len(y))
    if n_test < folder.n_classes or len(y) - n_test < folder.n_classes:
        raise ConfigError(
            f"data.test_fraction: {test_fraction:g} of {len(y):,} images leaves {n_test} to test "
            f"and {len(y) - n_test} to train, and each needs one per class "
            f"({folder.n_classes}); change it or add images"
        )
    return stratified_split(x, y, test_fraction, folder.n_classes, list(folder.class_names))
