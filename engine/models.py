"""Models with named probe points: MLP, a small CNN, VGG-11/13/16/19 and ResNet-18/34.

Every model is a :class:`ProbedModel`: an ordered list of hidden layers (``layers``), one per
probe point, then a fixed ``neck`` (flatten, or global average pooling for conv nets) and a
linear ``head``. A probe point's activation is the output of its layer: after the nonlinearity,
and after max-pooling where the layer ends a stage.

Granularity, compared with the thesis (seed 003, 5.8.1):

- MLP: one layer = Linear + ReLU, named ``fc1``…``fcD``. MLP-12 of width 1024 is
  ``arch="mlp", depth=12, width=1024``.
- VGG: one layer = conv3×3 (+BN) + ReLU (+ max-pool 2×2 where it ends a stage), named
  ``conv1``…``convN``: 8/10/13/16 probe points for VGG-11/13/16/19, base channels 64, 128, 256,
  512, 512 times ``width_factor`` (Table 5.3.1 uses ¼, 1, 2). The thesis's ImageNet-style VGG ends
  in three fully connected layers; here, as in the usual CIFAR VGGs, the 512-d globally pooled
  features feed a single linear head, so the probed layers are exactly the conv layers.
- ResNet: CIFAR-style stem (conv3×3 (+BN) + ReLU, no max-pool) named ``stem``, then one probe
  point per BasicBlock output, ``block1``…``block8`` (ResNet-18) or ``block16`` (ResNet-34).
  The thesis probes finer (every conv, 18/34 "layers"); per-block is the output of each block's
  second conv after the addition, which is what it reports for ResNets ("conv2" layers).
  ``skips=False`` gives the thesis's plain nets (5.15): no identity and no downsample shortcut.

Inputs of any size work: MLPs flatten; VGG and the small CNN max-pool only while the spatial size
is at least 2 (so 8×8 digits and 28×28 MNIST pass through VGG-19), and every conv net ends in
global average pooling, so the head's input is always the last layer's channel count.

Builders are looked up by name in :data:`BUILDERS`; a plugin (engine.plugins) adds its own, whose
``build(cfg, input_shape, n_outputs)`` returns a ProbedModel like the ones here.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor, nn

from engine import plugins

VGG_CONFIGS: dict[str, list[list[int]]] = {
    # Convs per stage and their base channel counts; a max-pool closes each stage.
    "vgg11": [[64], [128], [256, 256], [512, 512], [512, 512]],
    "vgg13": [[64, 64], [128, 128], [256, 256], [512, 512], [512, 512]],
    "vgg16": [[64, 64], [128, 128], [256, 256, 256], [512, 512, 512], [512, 512, 512]],
    "vgg19": [
        [64, 64],
        [128, 128],
        [256, 256, 256, 256],
        [512, 512, 512, 512],
        [512, 512, 512, 512],
    ],
}
RESNET_BLOCKS: dict[str, list[int]] = {"resnet18": [2, 2, 2, 2], "resnet34": [3, 4, 6, 3]}
RESNET_CHANNELS = [64, 128, 256, 512]
ARCHS = ("mlp", "cnn", *VGG_CONFIGS, *RESNET_BLOCKS)  # and the plugins' (see BUILDERS)


def scaled(channels: int, factor: float) -> int:
    """Channel count times a width factor, rounded, at least 1."""
    return max(1, round(channels * factor))


def _pooled(size: int) -> int:
    """Spatial size after a 2×2 max-pool, which we only apply while size ≥ 2."""
    return size // 2 if size >= 2 else size


class DenseLayer(nn.Module):
    """Flatten (a no-op on flat input) → Linear → ReLU."""

    def __init__(self, n_in: int, n_out: int):
        super().__init__()
        self.linear = nn.Linear(n_in, n_out)
        self.act = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.linear(x.flatten(1)))


class ConvLayer(nn.Module):
    """conv3×3 (+BN) → ReLU (→ max-pool 2×2 when it ends a stage)."""

    def __init__(self, c_in: int, c_out: int, batch_norm: bool, pool: bool):
        super().__init__()
        # BN has its own shift, so a conv bias before it would be redundant.
        self.conv = nn.Conv2d(c_in, c_out, 3, padding=1, bias=not batch_norm)
        self.bn = nn.BatchNorm2d(c_out) if batch_norm else nn.Identity()
        self.act = nn.ReLU()
        self.pool = nn.MaxPool2d(2) if pool else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return self.pool(self.act(self.bn(self.conv(x))))


class BasicBlock(nn.Module):
    """ResNet BasicBlock: relu(bn(conv(relu(bn(conv(x))))) + shortcut(x)).

    With ``skip=False`` there is no shortcut at all (no identity, no 1×1 projection):
    relu(bn(conv(relu(bn(conv(x)))))).
    """

    def __init__(self, c_in: int, c_out: int, stride: int, batch_norm: bool, skip: bool):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=not batch_norm)
        self.bn1 = nn.BatchNorm2d(c_out) if batch_norm else nn.Identity()
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=not batch_norm)
        self.bn2 = nn.BatchNorm2d(c_out) if batch_norm else nn.Identity()
        self.act = nn.ReLU()
        self.skip = skip
        self.shortcut: nn.Module | None = None
        if skip and (stride != 1 or c_in != c_out):
            self.shortcut = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride=stride, bias=not batch_norm),
                nn.BatchNorm2d(c_out) if batch_norm else nn.Identity(),
            )

    def forward(self, x: Tensor) -> Tensor:
        out = self.bn2(self.conv2(self.act(self.bn1(self.conv1(x)))))
        if self.skip:
            out = out + (x if self.shortcut is None else self.shortcut(x))
        return self.act(out)


class ProbedModel(nn.Module):
    """Hidden layers with named outputs (probe points), a neck and a linear head.

    ``layers[i]`` produces the activation named ``probe_points[i]``; ``neck`` turns the last one
    into the flat feature vector the ``head`` reads (flatten for MLPs, global average pooling for
    conv nets).
    """

    def __init__(
        self,
        arch: str,
        names: list[str],
        layers: Iterable[nn.Module],
        neck: nn.Module,
        n_features: int,
        n_outputs: int,
        input_shape: tuple[int, int, int],
    ):
        super().__init__()
        self.arch = arch
        self.probe_points: list[str] = list(names)
        self.layers = nn.ModuleList(layers)
        if len(self.layers) != len(self.probe_points):
            raise ValueError("one layer per probe point")
        self.neck = neck
        self.head = nn.Linear(n_features, n_outputs)
        self.input_shape = tuple(input_shape)

    def features(self, x: Tensor) -> Tensor:
        """The head's input (penultimate representation), N×F."""
        for layer in self.layers:
            x = layer(x)
        return self.neck(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))

    def forward_with_acts(
        self, x: Tensor, points: Iterable[str] | None = None
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """Logits and the activations at ``points`` (all if None), in probe order, not flattened.

        Activations are returned attached to the graph; detaching is the caller's business.
        """
        wanted = set(self.probe_points if points is None else points)
        unknown = wanted - set(self.probe_points)
        if unknown:
            raise KeyError(f"unknown probe points {sorted(unknown)}; known: {self.probe_points}")
        acts: dict[str, Tensor] = {}
        for name, layer in zip(self.probe_points, self.layers, strict=True):
            x = layer(x)
            if name in wanted:
                acts[name] = x
        return self.head(self.neck(x)), acts

    def layer(self, name: str) -> nn.Module:
        """The layer whose output is the probe point ``name``."""
        return self.layers[self.probe_points.index(name)]

    @property
    def n_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def describe(self) -> dict:
        """Arch, parameter count and each probe point's output shape (without the batch dim)."""
        p = next(self.parameters())
        was_training = self.training
        self.eval()  # BN in train mode would refuse a 1×1 map with batch 1 and update stats
        try:
            with torch.no_grad():
                x = torch.zeros(1, *self.input_shape, device=p.device, dtype=p.dtype)
                logits, acts = self.forward_with_acts(x)
        finally:
            self.train(was_training)
        return {
            "arch": self.arch,
            "n_params": self.n_params,
            "input_shape": list(self.input_shape),
            "n_features": self.head.in_features,
            "n_outputs": logits.shape[1],
            "probe_points": [
                {"name": name, "shape": list(a.shape[1:]), "size": math.prod(a.shape[1:])}
                for name, a in acts.items()
            ],
        }


def init_hidden(model: ProbedModel) -> None:
    """He init for the ReLU layers (the head keeps PyTorch's default).

    PyTorch's default (uniform, gain 1/√3) shrinks the signal at every ReLU layer, so a deep
    plain net (MLP-12, VGG-19 without BN, a ResNet without skips) starts with collapsed deep
    representations; He init keeps their scale, which is what the thesis's networks assume.
    """
    for m in model.layers.modules():
        if isinstance(m, nn.Conv2d | nn.Linear):
            # fan_in preserves the forward scale; with BN the mode hardly matters.
            nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def _mlp(cfg, input_shape, n_outputs) -> ProbedModel:
    n_in = math.prod(input_shape)
    layers = [DenseLayer(n_in if i == 0 else cfg.width, cfg.width) for i in range(cfg.depth)]
    names = [f"fc{i + 1}" for i in range(cfg.depth)]
    return ProbedModel("mlp", names, layers, nn.Flatten(), cfg.width, n_outputs, input_shape)


def _conv_stack(arch, stages, batch_norm, input_shape, n_outputs) -> ProbedModel:
    """Conv layers grouped in stages; a max-pool ends each stage while the map is ≥ 2×2."""
    c, size = input_shape[0], min(input_shape[1:])
    layers = []
    for stage in stages:
        for j, c_out in enumerate(stage):
            pool = j == len(stage) - 1 and size >= 2
            layers.append(ConvLayer(c, c_out, batch_norm, pool))
            c = c_out
        size = _pooled(size)
    names = [f"conv{i + 1}" for i in range(len(layers))]
    neck = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
    return ProbedModel(arch, names, layers, neck, c, n_outputs, input_shape)


def _cnn(cfg, input_shape, n_outputs) -> ProbedModel:
    """Small CNN: ``depth`` conv layers in stages of two; channels double per stage (≤ 8×)."""
    widths = [cfg.width * min(2 ** (i // 2), 8) for i in range(cfg.depth)]
    stages = [widths[i : i + 2] for i in range(0, cfg.depth, 2)]
    return _conv_stack("cnn", stages, cfg.batch_norm, input_shape, n_outputs)


def _vgg(cfg, input_shape, n_outputs) -> ProbedModel:
    stages = [[scaled(c, cfg.width_factor) for c in s] for s in VGG_CONFIGS[cfg.arch]]
    return _conv_stack(cfg.arch, stages, cfg.batch_norm, input_shape, n_outputs)


def _resnet(cfg, input_shape, n_outputs) -> ProbedModel:
    widths = [scaled(c, cfg.width_factor) for c in RESNET_CHANNELS]
    layers: list[nn.Module] = [ConvLayer(input_shape[0], widths[0], cfg.batch_norm, pool=False)]
    c = widths[0]
    for stage, (n_blocks, c_out) in enumerate(zip(RESNET_BLOCKS[cfg.arch], widths, strict=True)):
        for b in range(n_blocks):
            stride = 2 if stage > 0 and b == 0 else 1
            layers.append(BasicBlock(c, c_out, stride, cfg.batch_norm, cfg.skips))
            c = c_out
    names = ["stem"] + [f"block{i}" for i in range(1, len(layers))]
    neck = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
    return ProbedModel(cfg.arch, names, layers, neck, c, n_outputs, input_shape)


Builder = Callable[[Any, tuple[int, int, int], int], ProbedModel]

# arch → builder(cfg, input_shape, n_outputs); plugins (engine.plugins, group
# ``forgetting_explorer.models``: ``ARCH`` and ``build``) add theirs after the built-ins.
BUILDERS: dict[str, Builder] = {
    "mlp": _mlp,
    "cnn": _cnn,
    **{arch: _vgg for arch in VGG_CONFIGS},
    **{arch: _resnet for arch in RESNET_BLOCKS},
}
BUILT_IN = tuple(BUILDERS)
ARCH_PATTERN = re.compile(r"[a-z][a-z0-9_-]{0,39}")
PLUGIN_ARCHS: dict[str, str] = {}  # arch → the label of the plugin that registered it


def _register_plugin(plugin: plugins.Plugin, obj: Any) -> None:
    global ARCHS
    arch = obj.ARCH
    if not isinstance(arch, str) or not ARCH_PATTERN.fullmatch(arch):
        plugins.report(plugin, f"ARCH {arch!r} is not lower-case letters, digits, - and _")
    elif arch in BUILDERS:
        owner = "a built-in model" if arch in BUILT_IN else "another plugin"
        plugins.report(plugin, f"model name {arch!r} is taken by {owner}")
    elif not callable(obj.build):
        plugins.report(plugin, "build is not callable")
    else:
        BUILDERS[arch] = obj.build
        PLUGIN_ARCHS[arch] = plugin.label()
        ARCHS = tuple(BUILDERS)


def build_model(
    cfg, input_shape: tuple[int, int, int], n_outputs: int, init: bool = True
) -> ProbedModel:
    """Build the model ``cfg.arch`` for inputs of shape (C, H, W) with ``n_outputs`` logits.

    Reads ``cfg.arch``, ``cfg.depth`` and ``cfg.width`` (MLP, small CNN), ``cfg.width_factor``
    (VGG, ResNet), ``cfg.skips`` (ResNet) and ``cfg.batch_norm`` (CNN, VGG, ResNet); a plugin's
    builder reads what it documents. Deterministic given ``torch.manual_seed``. ``init=False``
    skips He initialisation, for shape-only models on the meta device (cost estimates).
    """
    builder = BUILDERS.get(cfg.arch)
    if builder is None:
        raise ValueError(f"unknown arch {cfg.arch!r}; allowed: {', '.join(BUILDERS)}")
    model = builder(cfg, tuple(input_shape), n_outputs)
    if not isinstance(model, ProbedModel):
        where = PLUGIN_ARCHS.get(cfg.arch, "its builder")
        raise TypeError(
            f"model.arch: {where} built a {type(model).__name__}, not an engine.models.ProbedModel"
        )
    if init:
        init_hidden(model)
    return model


plugins.connect("models", _register_plugin)
