"""From raw data to a continual-learning benchmark: task splits, scenarios, tensors on the device.

Every sample carries an *output-unit target* (which logit is right) and a *task id*. Samples are
sorted by task, so a task's data is one contiguous slice and "all tasks so far" is a prefix.

Scenarios (van de Ven et al.'s three):
* class  — one head over every class of every task; task t's classes are units offset_t…;
* task   — the same units, but each task's loss and prediction use only its own slice (head);
* domain — one shared head of k units; a sample's target is its class's position within its task.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from engine.data import folder
from engine.data.catalog import CATALOG, BenchmarkFacts, is_folder
from engine.data.raw import RawData, data_dir


@dataclass
class Benchmark:
    name: str
    scenario: str
    input_shape: tuple[int, int, int]
    n_outputs: int
    task_classes: list[list[int]]  # raw class ids in each task
    heads: list[tuple[int, int]]  # output units each task may use: [lo, hi)
    x_train: torch.Tensor
    y_train: torch.Tensor  # output-unit targets
    t_train: torch.Tensor  # task ids
    x_test: torch.Tensor
    y_test: torch.Tensor
    t_test: torch.Tensor
    train_slices: list[tuple[int, int]]
    test_slices: list[tuple[int, int]]
    class_names: list[str] = field(default_factory=list)

    @property
    def n_tasks(self) -> int:
        return len(self.task_classes)

    def head_mask(self) -> torch.Tensor:
        """T × n_outputs boolean table: which units each task's prediction may use."""
        mask = torch.zeros(
            self.n_tasks, self.n_outputs, dtype=torch.bool, device=self.x_train.device
        )
        for t, (lo, hi) in enumerate(self.heads):
            mask[t, lo:hi] = True
        return mask

    def train_index(self, tasks: list[int]) -> torch.Tensor | slice:
        """Rows of the training set for these tasks: a slice when contiguous, else an index tensor."""
        tasks = sorted(tasks)
        if tasks == list(range(tasks[0], tasks[-1] + 1)):
            return slice(self.train_slices[tasks[0]][0], self.train_slices[tasks[-1]][1])
        parts = [torch.arange(*self.train_slices[t], device=self.x_train.device) for t in tasks]
        return torch.cat(parts)


def facts_of(name: str) -> BenchmarkFacts:
    """The facts of any benchmark name: the catalog's (built-in or a plugin's), or a folder's
    (``folder:PATH``, read from its files; ConfigError when it is not usable)."""
    return folder.facts(name) if is_folder(name) else CATALOG[name]


def load_raw_data(data_cfg) -> RawData:
    """The raw dataset behind a benchmark name (embedded, synthetic, torchvision, a plugin's
    loader, or a folder of the user's images)."""
    from engine.data import embedded

    name = data_cfg.benchmark
    if is_folder(name):
        return folder.load(name, data_cfg.test_fraction)
    if CATALOG[name].loader is not None:
        return CATALOG[name].loader(data_cfg)
    if name == "split-digits":
        return embedded.load_digits(data_cfg.test_fraction)
    if name == "split-mnist5k":
        return embedded.load_mnist5k(data_cfg.test_fraction)
    if name == "synthetic":
        return embedded.load_synthetic(
            data_cfg.synthetic_n,
            data_cfg.synthetic_shape,
            data_cfg.synthetic_classes,
            data_cfg.synthetic_noise,
            data_cfg.test_fraction,
        )
    from engine.data.torchvision_sets import load_raw

    return load_raw(CATALOG[name].torchvision_name, data_dir(), needed_by=name)


def class_order(n_classes: int, order_seed: int | None) -> list[int]:
    """The seeded class permutation (natural order when the seed is None)."""
    if order_seed is None:
        return list(range(n_classes))
    g = torch.Generator().manual_seed(order_seed)
    return torch.randperm(n_classes, generator=g).tolist()


def _to_float(x: torch.Tensor) -> torch.Tensor:
    return x.float() / 255.0 if x.dtype == torch.uint8 else x.float()


def _stats(x_train: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and std of the (float) training set, for standardisation."""
    mean = x_train.mean(dim=(0, 2, 3), keepdim=True)
    std = x_train.std(dim=(0, 2, 3), keepdim=True).clamp_min(1e-6)
    return mean, std


def _normalise(x_train: torch.Tensor, x_test: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel standardisation with the training set's statistics."""
    x_train, x_test = _to_float(x_train), _to_float(x_test)
    mean, std = _stats(x_train)
    return (x_train - mean) / std, (x_test - mean) / std


def _gather_normalised(x: torch.Tensor, index: torch.Tensor, mean, std) -> torch.Tensor:
    """``(x[index] - mean) / std`` with one copy of the data instead of three: the gather
    copies, the standardisation then runs in place (bit for bit the same numbers). ``x`` is
    the memoized raw data and is never written to."""
    out = _to_float(x[index])  # gather first: for uint8 images that copies bytes, not floats
    return out.sub_(mean).div_(std)


def _permutations(n_tasks: int, n_pixels: int, seed: int) -> list[torch.Tensor]:
    """Permuted-MNIST: task 0 keeps the image as it is, later tasks shuffle pixels (seeded)."""
    g = torch.Generator().manual_seed(seed)
    return [torch.arange(n_pixels)] + [
        torch.randperm(n_pixels, generator=g) for _ in range(n_tasks - 1)
    ]


def build_benchmark(data_cfg, scenario: str, device: torch.device | str = "cpu") -> Benchmark:
    """Assemble a resolved data config into task-sorted tensors on ``device``."""
    raw = load_raw_data(data_cfg)
    input_shape = tuple(raw.x_train.shape[1:])

    def stack(xs, ys):
        slices, tids = _task_rows([len(x) for x in xs])
        return torch.cat(xs).to(device), torch.cat(ys).to(device), tids.to(device), slices

    if data_cfg.benchmark == "permuted-mnist":
        x_train, x_test = _normalise(raw.x_train, raw.x_test)
        parts = _permuted_tasks(raw, x_train, x_test, data_cfg, scenario)
        (xs_tr, ys_tr, xs_te, ys_te, task_classes, heads, n_outputs) = parts
        x_tr, y_tr, t_tr, s_tr = stack(xs_tr, ys_tr)
        x_te, y_te, t_te, s_te = stack(xs_te, ys_te)
    else:
        task_classes, heads, n_outputs, unit = _split_layout(raw, data_cfg, scenario)
        mean, std = _stats(_to_float(raw.x_train))

        def tasks_of(x, y):
            """Task-sorted, standardised inputs, their output units, task ids, slices."""
            picks = [torch.isin(y, torch.tensor(c)).nonzero().squeeze(1) for c in task_classes]
            index = torch.cat(picks)
            slices, tids = _task_rows([len(p) for p in picks])
            x_sorted = _gather_normalised(x, index, mean, std)
            return x_sorted.to(device), unit[y[index]].to(device), tids.to(device), slices

        x_tr, y_tr, t_tr, s_tr = tasks_of(raw.x_train, raw.y_train)
        x_te, y_te, t_te, s_te = tasks_of(raw.x_test, raw.y_test)
    return Benchmark(
        name=data_cfg.benchmark,
        scenario=scenario,
        input_shape=input_shape,  # type: ignore[arg-type]
        n_outputs=n_outputs,
        task_classes=task_classes,
        heads=heads,
        x_train=x_tr,
        y_train=y_tr,
        t_train=t_tr,
        x_test=x_te,
        y_test=y_te,
        t_test=t_te,
        train_slices=s_tr,
        test_slices=s_te,
        class_names=raw.class_names,
    )


def _task_rows(lengths: list[int]) -> tuple[list[tuple[int, int]], torch.Tensor]:
    """For tasks of these sizes stored one after another: each task's (start, stop) rows, and
    the task id of every row."""
    slices, start = [], 0
    for n in lengths:
        slices.append((start, start + n))
        start += n
    tids = torch.repeat_interleave(torch.arange(len(lengths)), torch.tensor(lengths))
    return slices, tids


def _split_layout(raw: RawData, data_cfg, scenario):
    """Classes of each task, each task's head, the number of output units, and unit[c]: the
    output unit of raw class c (its position in the class order, or within its task)."""
    sizes = [int(s) for s in data_cfg.split.split(",")]
    order = class_order(raw.n_classes, data_cfg.order_seed)
    task_classes, offsets, start = [], [], 0
    for size in sizes:
        task_classes.append(order[start : start + size])
        offsets.append(start)
        start += size
    n_used = start
    if scenario == "domain":
        n_outputs = sizes[0]
        heads = [(0, n_outputs)] * len(sizes)
    else:
        n_outputs = n_used
        heads = [(off, off + size) for off, size in zip(offsets, sizes, strict=True)]
        if scenario == "class":
            heads = [(0, n_outputs)] * len(sizes)
    unit = torch.full((raw.n_classes,), -1, dtype=torch.long)
    for t, classes in enumerate(task_classes):
        for pos, c in enumerate(classes):
            unit[c] = pos if scenario == "domain" else offsets[t] + pos
    return task_classes, heads, n_outputs, unit


def _permuted_tasks(raw: RawData, x_train, x_test, data_cfg, scenario):
    n_tasks, k = data_cfg.n_tasks, raw.n_classes
    shape = x_train.shape[1:]
    perms = _permutations(n_tasks, x_train[0].numel(), data_cfg.order_seed or 0)
    xs_tr = [x_train.flatten(1)[:, p].reshape(-1, *shape) for p in perms]
    xs_te = [x_test.flatten(1)[:, p].reshape(-1, *shape) for p in perms]
    if scenario == "domain":
        n_outputs, heads = k, [(0, k)] * n_tasks
        ys_tr = [raw.y_train.clone() for _ in range(n_tasks)]
        ys_te = [raw.y_test.clone() for _ in range(n_tasks)]
    else:
        n_outputs = k * n_tasks
        heads = (
            [(k * t, k * t + k) for t in range(n_tasks)]
            if scenario == "task"
            else [(0, n_outputs)] * n_tasks
        )
        ys_tr = [raw.y_train + k * t for t in range(n_tasks)]
        ys_te = [raw.y_test + k * t for t in range(n_tasks)]
    task_classes = [list(range(k)) for _ in range(n_tasks)]
    return xs_tr, ys_tr, xs_te, ys_te, task_classes, heads, n_outputs
