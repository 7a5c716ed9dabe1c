"""Linear probes, tunnel start, κ and ρ (engine.analysis.probes; thesis 5.2, 5.3.2, 6.3.3)."""

import pytest
import torch

from engine.analysis.probes import compression_kappa, ood_loss_rho, train_probes, tunnel_start


def _clusters(n, n_classes, dim, seed, spread=0.3):
    """Gaussian blobs around well separated centres: linearly separable with high margin."""
    g = torch.Generator().manual_seed(seed)
    centres = 4.0 * torch.eye(n_classes, dim)
    y = torch.arange(n) % n_classes
    x = centres[y] + spread * torch.randn(n, dim, generator=g)
    return x, y


def _noise(n, dim, seed):
    return torch.randn(n, dim, generator=torch.Generator().manual_seed(seed))


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    # Tiny tensors: intra-op threads only add synchronisation (and stall on a busy 2-core box).
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def data():
    x_tr, y_tr = _clusters(300, 3, 8, seed=1)
    x_te, y_te = _clusters(300, 3, 8, seed=2)
    acts_tr = [x_tr, _noise(300, 16, 3), x_tr[:, :3] * 1e4 + 7.0]
    acts_te = [x_te, _noise(300, 16, 4), x_te[:, :3] * 1e4 + 7.0]
    return acts_tr, y_tr, acts_te, y_te


def _probe(acts_tr, y_tr, acts_te, y_te, n_classes=3, **kw):
    # Smaller batches than the thesis's 512 so that 300 samples still give 200 Adam steps.
    kw.setdefault("epochs", 20)
    kw.setdefault("batch_size", 32)
    return train_probes(acts_tr, y_tr, acts_te, y_te, n_classes, **kw)


def test_separable_layer_reaches_full_accuracy_noise_layer_is_chance(data):
    out = _probe(*data)
    assert set(out) == {"train_acc", "test_acc"}
    assert len(out["train_acc"]) == len(out["test_acc"]) == 3
    assert all(isinstance(a, float) for a in out["test_acc"])
    assert out["train_acc"][0] == 1.0
    assert out["test_acc"][0] == 1.0
    # Pure noise: the probe may memorise the train split but cannot beat chance (1/3) on test.
    assert out["test_acc"][1] < 0.45


def test_standardisation_makes_probes_scale_free(data):
    # Layer 2 is layer 0's first three features scaled by 1e4 and shifted: after per-feature
    # standardisation it trains as easily as an unscaled layer.
    out = _probe(*data)
    assert out["test_acc"][2] == 1.0


def test_probes_trained_together_equal_probes_trained_alone(data):
    acts_tr, y_tr, acts_te, y_te = data
    together = _probe(acts_tr, y_tr, acts_te, y_te, seed=5)
    for i in range(len(acts_tr)):
        alone = _probe([acts_tr[i]], y_tr, [acts_te[i]], y_te, seed=5)
        assert alone["train_acc"][0] == pytest.approx(together["train_acc"][i], abs=1e-12)
        assert alone["test_acc"][0] == pytest.approx(together["test_acc"][i], abs=1e-12)


def test_deterministic_for_a_seed(data):
    a = _probe(*data, seed=3)
    b = _probe(*data, seed=3)
    assert a == b


def test_conv_shaped_acts_are_flattened(data):
    acts_tr, y_tr, acts_te, y_te = data
    flat = _probe(acts_tr[:1], y_tr, acts_te[:1], y_te)
    conv = _probe(
        [acts_tr[0].reshape(300, 2, 2, 2)], y_tr, [acts_te[0].reshape(300, 2, 2, 2)], y_te
    )
    assert conv == flat


def test_thesis_default_hyperparameters_learn():
    # Adam, lr 1e-3, 30 epochs, batch 512 (thesis 5.8.1): 4 steps per epoch on 2048 samples.
    x_tr, y_tr = _clusters(2048, 3, 8, seed=1)
    x_te, y_te = _clusters(600, 3, 8, seed=2)
    out = train_probes([x_tr], y_tr, [x_te], y_te, 3)
    assert out["test_acc"][0] == 1.0


def test_ood_probes_are_trained_on_the_ood_split(data):
    acts_tr, y_tr, acts_te, y_te = data
    xo_tr, yo_tr = _clusters(200, 5, 8, seed=11)
    xo_te, yo_te = _clusters(200, 5, 8, seed=12)
    ood = (
        [xo_tr, _noise(200, 16, 13), xo_tr[:, :3]],
        yo_tr,
        [xo_te, _noise(200, 16, 14), xo_te[:, :3]],
        yo_te,
        5,
    )
    out = _probe(acts_tr, y_tr, acts_te, y_te, ood=ood)
    assert set(out) == {"train_acc", "test_acc", "ood_train_acc", "ood_acc"}
    assert len(out["ood_acc"]) == 3
    assert out["ood_acc"][0] == 1.0
    assert out["ood_acc"][1] < 0.35  # chance is 0.2
    # Classes 3 and 4 have their centres outside the first three features: not separable there.
    assert out["ood_acc"][2] < 0.9
    # The in-distribution results do not depend on the OOD probes.
    assert out["test_acc"] == _probe(acts_tr, y_tr, acts_te, y_te)["test_acc"]


def test_bad_input_raises(data):
    acts_tr, y_tr, acts_te, y_te = data
    with pytest.raises(ValueError, match="non-empty"):
        train_probes([], y_tr, [], y_te, 3)
    with pytest.raises(ValueError, match="layers"):
        train_probes(acts_tr, y_tr, acts_te[:2], y_te, 3, epochs=1)
    with pytest.raises(ValueError, match="labels"):
        train_probes(acts_tr, y_tr[:-1], acts_te, y_te, 3, epochs=1)
    with pytest.raises(ValueError, match="class indices"):
        train_probes(acts_tr, y_tr, acts_te, y_te, 2, epochs=1)
    with pytest.raises(ValueError, match="epochs"):
        train_probes(acts_tr, y_tr, acts_te, y_te, 3, epochs=0)
    with pytest.raises(ValueError, match="ood"):
        train_probes(acts_tr, y_tr, acts_te, y_te, 3, epochs=1, ood=(acts_tr, y_tr))


# ------------------------------------------------------------------------- tunnel, κ, ρ


def test_tunnel_start_follows_table_5_2_1_definition():
    # With the default input_acc = 0 the gain is the accuracy itself: a share of the best.
    curve = [0.2, 0.5, 0.9, 0.96, 0.97, 1.0]
    assert tunnel_start(curve) == 3  # first ≥ 0.95 × 1.0
    assert tunnel_start(curve, fraction=0.98) == 5  # 0.97 < 0.98
    assert tunnel_start(curve, fraction=1.0) == 5
    # The best probe, not the last one, sets the target: 0.95 × 1.0, not 0.95 × 0.8.
    assert tunnel_start([0.5, 0.9, 1.0, 0.8]) == 2
    # Exactly at the threshold counts, despite 0.95 × 0.8 rounding above 0.76.
    assert tunnel_start([0.3, 0.76, 0.79, 0.8]) == 1


def test_tunnel_start_measures_the_gain_over_the_input_probe():
    # Nearly separable input (issue 16: split-mnist5k, probes 0.914 → 0.937): every layer holds
    # > 95 % of the best accuracy, so a share of the best says "layer 1"; the gain says layer 5.
    curve = [0.914, 0.925, 0.931, 0.935, 0.937, 0.937]
    assert tunnel_start(curve) == 0
    # gain 0.937 − 0.905 = 0.032; 0.905 + 0.95 × 0.032 = 0.9354 → index 4
    assert tunnel_start(curve, 0.95, input_acc=0.905) == 4
    # 0.905 + 0.5 × 0.032 = 0.921 → index 1;  0.905 + 0.8 × 0.032 = 0.9306 → index 2
    assert tunnel_start(curve, 0.5, input_acc=0.905) == 1
    assert tunnel_start(curve, 0.8, input_acc=0.905) == 2
    # From below the input accuracy, too: 0.2 + 0.5 × (1.0 − 0.2) = 0.6 → index 2
    assert tunnel_start([0.1, 0.5, 0.6, 1.0], 0.5, input_acc=0.2) == 2
    # The best probe, not the last, ends the gain: 0.5 + 0.9 × 0.4 = 0.86 → index 2
    assert tunnel_start([0.6, 0.8, 0.9, 0.7], 0.9, input_acc=0.5) == 2


def test_tunnel_start_is_layer_0_when_no_probe_beats_the_input():
    assert tunnel_start([0.5, 0.6, 0.55], input_acc=0.7) == 0
    assert tunnel_start([0.5, 0.6, 0.55], input_acc=0.6) == 0  # no gain at all
    assert tunnel_start([0.0, 0.0]) == 0


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), None, "high"])
def test_bad_input_acc_raises(bad):
    with pytest.raises(ValueError, match=r"^input_acc must be a finite accuracy; got "):
        tunnel_start([0.5, 1.0], input_acc=bad)


def test_tunnel_start_reproduces_mlp_row_of_table_5_2_1():
    # MLP, 13 layers, CIFAR-10: the tunnel starts at layer 4 (31%) at 0.95 and 5 (38%) at 0.98.
    curve = [0.30, 0.40, 0.45, 0.50, 0.515, 0.52, 0.52, 0.52, 0.52, 0.52, 0.52, 0.52, 0.52]
    assert tunnel_start(curve, 0.95) + 1 == 4
    assert tunnel_start(curve, 0.98) + 1 == 5
    assert round((tunnel_start(curve, 0.95) + 1) / 13, 2) == 0.31


def test_compression_kappa_follows_6_3_3():
    curve = [0.1, 0.5, 0.95, 0.99, 1.0, 0.98]
    assert compression_kappa(curve) == pytest.approx(4 / 6)  # η = 0.99 of the best (1.0)
    assert compression_kappa(curve, eta=0.95) == pytest.approx(3 / 6)
    assert compression_kappa(curve, depth=12) == pytest.approx(4 / 12)
    assert compression_kappa(curve, layer_numbers=[2, 4, 6, 8, 10, 12]) == pytest.approx(8 / 12)
    # The thesis's example: ResNet-18 peaking at its 12th of 18 layers gives κ = 67%.
    resnet18 = [0.1 + 0.07 * i for i in range(11)] + [0.9] * 7
    assert compression_kappa(resnet18) == pytest.approx(12 / 18)
    assert round(compression_kappa(resnet18), 2) == 0.67
    # One probed layer of a one-layer network: it is the first to reach the best, κ = 1/1.
    assert compression_kappa([0.7]) == 1.0
    # Best in the middle and a drop after it: the first layer reaching η × best counts.
    assert compression_kappa([0.3, 0.8, 0.6, 0.79], eta=0.98) == pytest.approx(2 / 4)


def test_ood_loss_rho_follows_6_3_3():
    assert ood_loss_rho([0.3, 0.6, 0.5, 0.45]) == pytest.approx(0.25)
    assert ood_loss_rho([0.2, 0.4, 0.6]) == 0.0  # best at the last layer: no loss
    assert ood_loss_rho([0.0, 0.0]) == 0.0
    # (0.8 − 0.2) / 0.8: the loss is relative to the best layer, not to the last one.
    assert ood_loss_rho([0.5, 0.8, 0.2]) == pytest.approx(0.75)


@pytest.mark.parametrize("fraction", [0.0, -0.1, 1.5, float("nan")])
def test_bad_fraction_raises(fraction):
    with pytest.raises(ValueError, match=r"^fraction must be in \(0, 1\]"):
        tunnel_start([0.5, 1.0], fraction)
    with pytest.raises(ValueError, match=r"^eta must be in \(0, 1\]"):
        compression_kappa([0.5, 1.0], eta=fraction)


@pytest.mark.parametrize(
    "fn, name",
    [(tunnel_start, "probe_acc"), (compression_kappa, "probe_acc"), (ood_loss_rho, "ood_acc")],
)
def test_empty_or_bad_curves_raise_naming_the_argument(fn, name):
    with pytest.raises(ValueError, match=f"^{name} must be a non-empty sequence"):
        fn([])
    with pytest.raises(ValueError, match=f"^{name} must hold finite numbers"):
        fn([0.5, float("nan")])


def test_bad_depth_or_layer_numbers_raise():
    with pytest.raises(ValueError, match="^depth must be ≥ the deepest probed layer"):
        compression_kappa([0.5, 1.0, 1.0], depth=2)
    with pytest.raises(ValueError, match="^layer_numbers has 1 entries"):
        compression_kappa([0.5, 1.0], layer_numbers=[1])


def test_a_frozen_probe_scores_like_the_layer_probe_it_equals():
    # fit_probe is train_probes for one layer: same accuracy on its own training split.
    import torch

    from engine.analysis.probes import fit_probe, train_probes

    g = torch.Generator().manual_seed(0)
    x = torch.randn(300, 12, generator=g)
    y = (x[:, 0] + 0.3 * x[:, 1] > 0).long()
    probe = fit_probe(x, y, 2, epochs=30, lr=0.05, batch_size=64, seed=0)
    assert probe.accuracy(x, y) > 0.9
    layer = train_probes([x], y, [x], y, n_classes=2, epochs=30, lr=0.05, batch_size=64, seed=0)
    assert probe.accuracy(x, y) == layer["train_acc"][0]
    # Frozen: a shifted copy of the features is scored with the old standardisation.
    assert probe.accuracy(x + 5.0, y) < probe.accuracy(x, y)
