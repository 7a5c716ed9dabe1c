"""Shapes, probe points, skips and determinism of engine.models (small widths, CPU, fast)."""

from types import SimpleNamespace

import pytest
import torch

from engine.models import BasicBlock, ProbedModel, build_model

SHAPES = [(1, 8, 8), (1, 28, 28), (3, 32, 32)]
N_PROBES = {"vgg11": 8, "vgg13": 10, "vgg16": 13, "vgg19": 16, "resnet18": 9, "resnet34": 17}


def cfg(arch, depth=2, width=16, width_factor=0.125, skips=True, batch_norm=True):
    return SimpleNamespace(
        arch=arch,
        depth=depth,
        width=width,
        width_factor=width_factor,
        skips=skips,
        batch_norm=batch_norm,
    )


def small(arch, shape, n_out=5, **kw):
    torch.manual_seed(0)
    return build_model(cfg(arch, **kw), shape, n_out)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("arch", ["mlp", "cnn", "vgg11", "vgg19", "resnet18"])
def test_output_shapes(arch, shape):
    model = small(arch, shape, depth=3)
    assert isinstance(model, ProbedModel)
    x = torch.randn(4, *shape)
    logits = model(x)
    assert logits.shape == (4, 5)
    feats = model.features(x)
    assert feats.shape == (4, model.head.in_features)
    assert torch.isfinite(logits).all()


@pytest.mark.parametrize("arch", ["vgg13", "vgg16", "resnet34"])
def test_deeper_variants_on_cifar(arch):
    model = small(arch, (3, 32, 32), width_factor=0.0625)
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 5)


@pytest.mark.parametrize("arch,n", sorted(N_PROBES.items()))
def test_probe_point_counts(arch, n):
    model = small(arch, (3, 32, 32), width_factor=0.0625)
    assert len(model.probe_points) == len(model.layers) == n
    if arch.startswith("vgg"):
        assert model.probe_points == [f"conv{i}" for i in range(1, n + 1)]
    else:
        assert model.probe_points == ["stem"] + [f"block{i}" for i in range(1, n)]
        assert all(isinstance(b, BasicBlock) for b in model.layers[1:])


@pytest.mark.parametrize("depth", [1, 2, 5])
def test_mlp_and_cnn_depth(depth):
    mlp = small("mlp", (1, 8, 8), depth=depth)
    assert mlp.probe_points == [f"fc{i}" for i in range(1, depth + 1)]
    cnn = small("cnn", (1, 8, 8), depth=depth)
    assert cnn.probe_points == [f"conv{i}" for i in range(1, depth + 1)]


@pytest.mark.parametrize("arch", ["mlp", "cnn", "vgg11", "resnet18"])
def test_forward_with_acts_matches_forward(arch):
    model = small(arch, (3, 32, 32), depth=3).eval()
    x = torch.randn(3, 3, 32, 32)
    logits, acts = model.forward_with_acts(x)
    torch.testing.assert_close(logits, model(x))
    assert list(acts) == model.probe_points
    assert all(a.shape[0] == 3 for a in acts.values())
    # The acts are each layer's output: replaying layers[:k] gives the k-th activation.
    for k, name in enumerate(model.probe_points, start=1):
        h = x
        for layer in model.layers[:k]:
            h = layer(h)
        torch.testing.assert_close(acts[name], h)
    torch.testing.assert_close(model.features(x), model.neck(acts[model.probe_points[-1]]))


def test_forward_with_acts_subset_and_unknown():
    model = small("vgg11", (3, 32, 32)).eval()
    x = torch.randn(2, 3, 32, 32)
    logits, acts = model.forward_with_acts(x, ["conv5", "conv2"])
    assert list(acts) == ["conv2", "conv5"]  # probe order, not request order
    torch.testing.assert_close(logits, model(x))
    with pytest.raises(KeyError):
        model.forward_with_acts(x, ["conv99"])


def test_vgg_pools_only_while_spatial_allows():
    # 8×8: stages end at 4, 2, 1, then 1, 1 (no pooling on a 1×1 map).
    model = small("vgg11", (1, 8, 8))
    spatial = [s["shape"][1:] for s in model.describe()["probe_points"]]
    assert spatial == [[4, 4], [2, 2], [2, 2], [1, 1], [1, 1], [1, 1], [1, 1], [1, 1]]
    model = small("vgg19", (3, 32, 32))
    assert model.describe()["probe_points"][-1]["shape"] == [64, 1, 1]


def test_skips_off_has_no_shortcut_and_differs():
    with_skips = small("resnet18", (3, 32, 32), skips=True).eval()
    plain = small("resnet18", (3, 32, 32), skips=False).eval()
    assert not any("shortcut" in n for n, _ in plain.named_parameters())
    assert any("shortcut" in n for n, _ in with_skips.named_parameters())
    # Same weights everywhere they both have them: only the shortcuts differ.
    shared = {k: v for k, v in with_skips.state_dict().items() if "shortcut" not in k}
    plain.load_state_dict(shared)
    assert set(plain.state_dict()) == set(shared)
    x = torch.randn(2, 3, 32, 32)
    assert not torch.allclose(plain(x), with_skips(x))


@pytest.mark.parametrize("arch", ["mlp", "vgg11", "resnet18"])
def test_deterministic_under_manual_seed(arch):
    a, b = small(arch, (3, 32, 32)), small(arch, (3, 32, 32))
    for (na, pa), (nb, pb) in zip(a.named_parameters(), b.named_parameters(), strict=True):
        assert na == nb and torch.equal(pa, pb)
    torch.manual_seed(1)
    c = build_model(cfg(arch), (3, 32, 32), 5)
    assert not torch.equal(next(a.parameters()), next(c.parameters()))


def test_mlp_400x2_parameter_count():
    model = small("mlp", (1, 28, 28), n_out=10, depth=2, width=400)
    assert model.n_params == 784 * 400 + 400 + 400 * 400 + 400 + 400 * 10 + 10 == 478_410
    assert model.describe()["n_params"] == 478_410


def test_width_factor_scales_channels():
    shapes = {
        wf: small("vgg11", (3, 32, 32), width_factor=wf).describe()["probe_points"][0]["shape"]
        for wf in (0.25, 1)
    }
    assert shapes[0.25][0] == 16 and shapes[1][0] == 64
    tiny = small("resnet18", (3, 32, 32), width_factor=0.001)  # rounds up to 1 channel
    assert tiny.head.in_features == 1


def test_batch_norm_toggle():
    with_bn = small("vgg11", (3, 32, 32), batch_norm=True)
    without = small("vgg11", (3, 32, 32), batch_norm=False)
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in with_bn.modules())
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in without.modules())
    assert without(torch.randn(2, 3, 32, 32)).shape == (2, 5)


def test_describe_keeps_mode_and_stats():
    model = small("resnet18", (1, 8, 8)).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    d = model.describe()
    assert model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert d["arch"] == "resnet18"
    assert [p["name"] for p in d["probe_points"]] == model.probe_points
    assert d["probe_points"][-1]["shape"] == [64, 1, 1]  # 512 × 0.125, 8→8→4→2→1


@pytest.mark.parametrize("arch", ["mlp", "vgg11", "resnet18"])
def test_channels_last(arch):
    model = small(arch, (3, 32, 32)).eval()
    x = torch.randn(2, 3, 32, 32)
    ref = model(x)
    model = model.to(memory_format=torch.channels_last)
    out = model(x.to(memory_format=torch.channels_last))
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5)


def test_unknown_arch():
    with pytest.raises(ValueError, match="unknown arch"):
        build_model(cfg("vgg99"), (3, 32, 32), 10)


def test_layers_slice_freezes_first_k():
    model = small("vgg11", (3, 32, 32))
    for p in model.layers[:3].parameters():
        p.requires_grad_(False)
    model(torch.randn(2, 3, 32, 32)).sum().backward()
    assert all(p.grad is None for p in model.layers[:3].parameters())
    assert all(p.grad is not None for p in model.layers[3:].parameters())
