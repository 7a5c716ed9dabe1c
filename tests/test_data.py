"""Benchmarks and scenarios: splits, label mapping, class order, determinism."""

import pytest
import torch

from engine.config import resolve, validate
from engine.data import build_benchmark, class_order


def bench(scenario="class", **data):
    cfg = resolve(validate({"scenario": scenario, "data": data}), device="cpu")
    return build_benchmark(cfg.data, cfg.scenario)


def test_split_digits_is_the_real_dataset_with_a_fixed_stratified_split():
    b = bench()
    assert b.input_shape == (1, 8, 8)
    assert len(b.x_train) + len(b.x_test) == 1797  # every image of scikit-learn's digits
    assert len(b.x_test) == pytest.approx(0.2 * 1797, abs=2)
    # stratified: every class keeps its share in the test split
    counts = torch.bincount(b.y_test, minlength=10).float()
    assert counts.min() >= 34 and counts.max() <= 37
    again = bench()
    assert torch.equal(again.x_test, b.x_test)


def test_class_order_is_a_seeded_permutation():
    assert class_order(10, None) == list(range(10))
    assert class_order(10, 3) == class_order(10, 3)
    assert sorted(class_order(10, 3)) == list(range(10))
    assert class_order(10, 3) != class_order(10, 4)


def test_scenarios_map_labels_to_heads():
    cls, task, dom = bench("class"), bench("task"), bench("domain")
    assert cls.n_outputs == task.n_outputs == 10 and dom.n_outputs == 2
    assert cls.heads == [(0, 10)] * 5
    assert task.heads == [(0, 2), (2, 4), (4, 6), (6, 8), (8, 10)]
    for t, (lo, hi) in enumerate(task.heads):
        a, b = task.test_slices[t]
        ys = task.y_test[a:b]
        assert ys.min() >= lo and ys.max() < hi  # each task's targets live in its own head
        assert set(dom.y_test[a:b].tolist()) == {0, 1}
    # a task holds exactly its two classes
    raw_classes = [sorted(c) for c in cls.task_classes]
    assert sorted(sum(raw_classes, [])) == list(range(10))


def test_custom_split_and_natural_order():
    b = bench(split="3,7", order_seed=None)
    assert b.task_classes == [[0, 1, 2], [3, 4, 5, 6, 7, 8, 9]]
    assert b.n_tasks == 2


def test_tasks_are_contiguous_slices():
    b = bench()
    for t, (a, e) in enumerate(b.train_slices):
        assert (b.t_train[a:e] == t).all()
    assert b.train_index([0, 1, 2]) == slice(0, b.train_slices[2][1])
    idx = b.train_index([0, 2])
    assert torch.equal(b.t_train[idx].unique(), torch.tensor([0, 2]))


def test_mnist5k_embedded():
    b = bench(benchmark="split-mnist5k")
    assert b.input_shape == (1, 28, 28)
    assert len(b.x_train) + len(b.x_test) == 5000


def test_synthetic_any_shape_is_seeded():
    b = bench(
        benchmark="synthetic",
        synthetic_n=600,
        synthetic_shape="3x16x16",
        synthetic_classes=6,
        n_tasks=3,
    )
    assert b.input_shape == (3, 16, 16) and b.n_tasks == 3
    assert len(b.x_train) + len(b.x_test) == 600
    again = bench(
        benchmark="synthetic",
        synthetic_n=600,
        synthetic_shape="3x16x16",
        synthetic_classes=6,
        n_tasks=3,
    )
    assert torch.equal(b.x_train, again.x_train)


def test_permuted_mnist_builds_from_idx_files(tmp_path, monkeypatch):
    """permuted-mnist through the real torchvision loader on tiny IDX files."""
    import struct

    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    g = torch.Generator().manual_seed(0)

    def write(name, n):
        imgs = torch.randint(0, 256, (n, 28, 28), generator=g, dtype=torch.uint8)
        labels = torch.arange(n, dtype=torch.uint8) % 10
        (raw / f"{name}-images-idx3-ubyte").write_bytes(
            struct.pack(">IIII", 2051, n, 28, 28) + imgs.numpy().tobytes()
        )
        (raw / f"{name}-labels-idx1-ubyte").write_bytes(
            struct.pack(">II", 2049, n) + labels.numpy().tobytes()
        )

    write("train", 40)
    write("t10k", 20)
    monkeypatch.setenv("FORGET_DATA_DIR", str(tmp_path))
    b = bench("domain", benchmark="permuted-mnist", n_tasks=3)
    assert b.n_tasks == 3 and b.n_outputs == 10 and len(b.x_train) == 120
    first, second = b.x_train[0:40], b.x_train[40:80]
    # the same images, pixels shuffled: equal multisets of values per image, different layout
    assert torch.equal(first.flatten(1).sort(1).values, second.flatten(1).sort(1).values)
    assert not torch.equal(first, second)
    c = bench("class", benchmark="permuted-mnist", n_tasks=3)
    assert c.n_outputs == 30 and c.y_train[80:].min() >= 20


@pytest.mark.parametrize(
    ("benchmark", "scenario", "extra"),
    [
        ("split-digits", "class", {}),
        ("split-digits", "domain", {"order_seed": 3}),
        ("synthetic", "task", {"synthetic_n": 3000, "split": "3,3,4"}),
    ],
)
def test_task_sorted_data_equals_standardise_then_split_bit_for_bit(benchmark, scenario, extra):
    # The benchmark gathers each task's samples and standardises them in place (one copy);
    # the numbers must be exactly those of standardising everything, then splitting by task.
    from engine.data.benchmark import load_raw_data

    cfg = resolve(
        validate({"scenario": scenario, "data": {"benchmark": benchmark, **extra}}), device="cpu"
    )
    raw = load_raw_data(cfg.data)  # memoized: the benchmark below gets these very tensors
    before = raw.x_train.clone()
    bench = build_benchmark(cfg.data, scenario, "cpu")
    x_tr = raw.x_train.float() / 255.0 if raw.x_train.dtype == torch.uint8 else raw.x_train.float()
    mean = x_tr.mean(dim=(0, 2, 3), keepdim=True)
    std = x_tr.std(dim=(0, 2, 3), keepdim=True).clamp_min(1e-6)
    x_all = (x_tr - mean) / std
    sizes = [int(s) for s in cfg.data.split.split(",")]
    order = class_order(raw.n_classes, cfg.data.order_seed)
    start, parts = 0, []
    for size in sizes:
        parts.append(x_all[torch.isin(raw.y_train, torch.tensor(order[start : start + size]))])
        start += size
    assert torch.equal(bench.x_train, torch.cat(parts))
    assert torch.equal(raw.x_train, before)  # standardising in place never touched the raw data


def test_embedded_sets_are_kept_split_after_the_first_load(tmp_path, monkeypatch):
    """The first load splits with scikit-learn and keeps the arrays (.npz, read without pickle);
    later loads read them back identically, and a damaged file is simply made again."""
    from engine.data import embedded

    monkeypatch.setenv("FORGET_DATA_DIR", str(tmp_path))
    embedded.load_digits.cache_clear()
    first = embedded.load_digits(0.2)
    path = next((tmp_path / "embedded").glob("digits-*.npz"))
    embedded.load_digits.cache_clear()
    again = embedded.load_digits(0.2)
    for name in ("x_train", "y_train", "x_test", "y_test"):
        assert torch.equal(getattr(first, name), getattr(again, name))
    assert again.n_classes == 10 and len(again.x_test) == 360
    path.write_bytes(b"not an npz")
    embedded.load_digits.cache_clear()
    rebuilt = embedded.load_digits(0.2)
    assert torch.equal(rebuilt.x_train, first.x_train)
    embedded.load_digits.cache_clear()
