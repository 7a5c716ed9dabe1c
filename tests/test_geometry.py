"""Class variances, weight change, singular alignment, norms, 2-D projection
(engine.analysis.geometry; thesis 5.13, Fig. 5.3.1, 6.3.2)."""

import math

import numpy as np
import pytest
import torch

from engine.analysis import geometry
from engine.analysis.geometry import (
    class_variances,
    layer_weights,
    logits_norm,
    project_2d,
    singular_alignment,
    weight_change,
    weight_norms,
)

# ------------------------------------------------------------------------ class variances

# Class "0": (0,0), (2,0)          → μ = (1,0), mean squared distance (1+1)/2 = 1
# Class "3": (0,4), (0,6), (0,8)   → μ = (0,6), mean squared distance (4+0+4)/3 = 8/3
# Class "7": (5,0)                 → μ = (5,0), 0
# intra = (1 + 8/3 + 0)/3 = 11/9
# inter = 1/(3·2) · 2 · (‖μ0−μ3‖² + ‖μ0−μ7‖² + ‖μ3−μ7‖²) = (37 + 16 + 61)/3 = 38
POINTS = torch.tensor([[0.0, 0], [2, 0], [0, 4], [0, 6], [0, 8], [5, 0]], dtype=torch.float64)
LABELS = torch.tensor([0, 0, 3, 3, 3, 7])


def test_class_variances_hand_computed():
    out = class_variances([POINTS, 2 * POINTS], LABELS)
    assert set(out) == {"intra", "inter"}
    assert out["intra"] == pytest.approx([11 / 9, 4 * 11 / 9])
    assert out["inter"] == pytest.approx([38.0, 4 * 38.0])


def test_class_variances_single_tensor_two_classes_and_invariances():
    two = class_variances(POINTS[:5].numpy(), LABELS[:5].numpy())
    assert two["intra"] == pytest.approx([(1 + 8 / 3) / 2])
    assert two["inter"] == pytest.approx([37.0])
    # Translating every representation changes neither; conv-shaped acts are flattened.
    moved = class_variances([(POINTS + 100.0).reshape(6, 2, 1, 1)], LABELS)
    assert moved["intra"] == pytest.approx([11 / 9])
    assert moved["inter"] == pytest.approx([38.0])


def test_class_variances_match_the_formula_literally():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(40, 5, generator=g, dtype=torch.float64)
    y = torch.randint(0, 4, (40,), generator=g)
    mus = [x[y == j].mean(0) for j in range(4)]
    intra = sum(((x[y == j] - mus[j]) ** 2).sum(1).mean() for j in range(4)) / 4
    inter = sum(((mus[j] - mus[k]) ** 2).sum() for j in range(4) for k in range(4) if k != j)
    inter = inter / (4 * 3)
    out = class_variances([x], y)
    assert out["intra"][0] == pytest.approx(float(intra), rel=1e-12)
    assert out["inter"][0] == pytest.approx(float(inter), rel=1e-12)


def test_class_variances_bad_input():
    with pytest.raises(ValueError, match="two classes"):
        class_variances([POINTS], torch.zeros(6, dtype=torch.long))
    with pytest.raises(ValueError, match="rows"):
        class_variances([POINTS[:4]], LABELS)
    with pytest.raises(ValueError, match="non-empty"):
        class_variances([], LABELS)


# --------------------------------------------------------------------------- weight change


def _state():
    return {
        "fc1.weight": torch.zeros(2, 3),
        "fc1.bias": torch.zeros(2),
        "bn.weight": torch.ones(2),  # 1-D: a normalisation scale, not a layer weight
        "conv.weight": torch.zeros(2, 3, 3, 3),
        "fc2.weight": torch.zeros(4, 2),
    }


def test_weight_change_zero_for_identical_states():
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    sd = model.state_dict()
    assert weight_change(sd, sd) == {"0": 0.0, "2": 0.0}


def test_weight_change_hand_made_difference():
    a, b = _state(), _state()
    b["fc1.weight"][1, 2] = 3.0  # ‖Δ‖ = 3 over 6 weights
    b["fc1.bias"] += 10.0  # biases are not part of the measure
    b["bn.weight"] += 10.0
    b["conv.weight"] += 0.5  # every one of 54 weights moves by 0.5 → RMS 0.5
    b["fc2.weight"] -= 1.0
    out = weight_change(a, b)
    assert list(out) == ["fc1", "conv", "fc2"]
    assert out["fc1"] == pytest.approx(3 / math.sqrt(6))
    assert out["conv"] == pytest.approx(0.5)
    assert out["fc2"] == pytest.approx(1.0)


def test_weight_change_rejects_different_models():
    a, b = _state(), _state()
    b["fc2.weight"] = torch.zeros(4, 3)
    with pytest.raises(ValueError, match="shapes"):
        weight_change(a, b)
    del b["fc2.weight"]
    with pytest.raises(ValueError, match="different layers"):
        weight_change(a, b)


def test_layer_weights_keeps_matrices_and_kernels_in_order():
    assert list(layer_weights(_state())) == ["fc1", "conv", "fc2"]


# ------------------------------------------------------------------------------ alignment


def _orthogonal(d, seed):
    q, _ = torch.linalg.qr(torch.randn(d, d, generator=torch.Generator().manual_seed(seed)))
    return q.double()


S = torch.tensor([5.0, 4.0, 3.0, 2.0, 1.5, 1.0], dtype=torch.float64)


def test_alignment_is_one_for_aligned_layers():
    u1, v1, u2 = _orthogonal(6, 0), _orthogonal(6, 1), _orthogonal(6, 2)
    w1 = u1 @ torch.diag(S) @ v1.T
    w2 = u2 @ torch.diag(S) @ u1.T  # right singular vectors of W2 = left ones of W1
    assert singular_alignment([w1, w2], k=3) == pytest.approx([1.0])
    assert singular_alignment([w1, w2], k=15) == pytest.approx([1.0])  # k capped at rank 6
    assert singular_alignment([w1, w2], k=3, mode="subspace") == pytest.approx([1.0])
    # With representations: A_1 = Q Σ U1ᵀ (samples as rows) has principal directions U1.
    q, _ = torch.linalg.qr(torch.randn(20, 6, generator=torch.Generator().manual_seed(3)))
    a1 = q.double() @ torch.diag(S) @ u1.T
    assert singular_alignment([w1, w2], k=3, reps=[a1, a1]) == pytest.approx([1.0])


def test_alignment_is_zero_for_orthogonal_layers():
    e = torch.eye(8, dtype=torch.float64)
    w1 = e[:, :3] @ torch.diag(S[:3]) @ e[:3]  # writes only into e1..e3
    w2 = torch.diag(S[:3]) @ e[3:6]  # reads only from e4..e6
    assert singular_alignment([w1, w2], k=3) == pytest.approx([0.0], abs=1e-12)
    assert singular_alignment([w1, w2], k=3, mode="subspace") == pytest.approx([0.0], abs=1e-12)


def test_alignment_from_state_dict_conv_and_mismatched_widths():
    u1, v1, u2 = _orthogonal(6, 0), _orthogonal(6, 1), _orthogonal(6, 2)
    w1 = u1 @ torch.diag(S) @ v1.T
    w2 = u2 @ torch.diag(S) @ u1.T
    # A 3×3 kernel whose centre tap is the matrix acts as that matrix on constant inputs.
    k2 = torch.zeros(6, 6, 3, 3, dtype=torch.float64)
    k2[:, :, 1, 1] = w2
    state = {"a.weight": w1, "a.bias": torch.zeros(6), "b.weight": k2, "c.weight": torch.ones(2, 5)}
    out = singular_alignment(state, k=3)
    assert out[0] == pytest.approx(1.0)
    assert math.isnan(out[1])  # 6 outputs feed a 5-wide layer: undefined
    with pytest.raises(ValueError, match="two layers"):
        singular_alignment([w1])
    with pytest.raises(ValueError, match="mode"):
        singular_alignment([w1, w2], mode="cosine")


# -------------------------------------------------------------------------------- norms


def test_weight_norms_and_logits_norm():
    state = {
        "a.weight": torch.tensor([[3.0, 4.0]]),
        "b.weight": torch.diag(torch.tensor([3.0, 1.0])),
    }
    assert weight_norms(state) == pytest.approx({"a": 5.0, "b": math.sqrt(10)})
    assert weight_norms(state, ord="spectral") == pytest.approx({"a": 5.0, "b": 3.0})
    logits = torch.tensor([[3.0, 4.0], [0.0, 0.0]])
    assert logits_norm(logits) == pytest.approx(5.0)
    assert logits_norm(logits, reduction="mean") == pytest.approx(2.5)
    with pytest.raises(ValueError, match="ord"):
        weight_norms(state, ord="nuc")
    with pytest.raises(ValueError, match="reduction"):
        logits_norm(logits, reduction="sum")


# ----------------------------------------------------------------------------- projection


def _low_rank_data(n, p, seed):
    g = torch.Generator().manual_seed(seed)
    scales = torch.linspace(3.0, 0.1, p)
    return (torch.randn(n, p, generator=g) * scales).double() + 2.0


def _assert_equal_up_to_sign(a, b, atol):
    for j in range(2):
        assert min(np.abs(a[:, j] - b[:, j]).max(), np.abs(a[:, j] + b[:, j]).max()) < atol


def test_pca_matches_sklearn_up_to_sign():
    from sklearn.decomposition import PCA

    x = _low_rank_data(50, 6, seed=0)
    ours = project_2d(x)
    ref = PCA(n_components=2, svd_solver="full").fit_transform(x.numpy())
    assert ours.shape == (50, 2) and ours.dtype == np.float64
    _assert_equal_up_to_sign(ours, ref, atol=1e-9)


def test_pca_sign_is_deterministic():
    x = _low_rank_data(30, 5, seed=1)
    a = project_2d(x)
    # Reordering samples permutes rows but leaves the directions (and their signs) unchanged.
    perm = torch.randperm(30, generator=torch.Generator().manual_seed(0))
    assert np.allclose(project_2d(x[perm]), a[perm.numpy()])
    assert np.array_equal(project_2d(x), a)


def test_pca_lowrank_path_for_large_inputs(monkeypatch):
    monkeypatch.setattr(geometry, "_EXACT_PCA_MAX", 10)
    x = _low_rank_data(60, 20, seed=2)
    approx = project_2d(x, seed=0)
    assert np.array_equal(approx, project_2d(x, seed=0))
    monkeypatch.setattr(geometry, "_EXACT_PCA_MAX", 10_000)
    _assert_equal_up_to_sign(approx, project_2d(x), atol=1e-4)  # randomised: close, not exact


def test_project_2d_bad_method_and_missing_umap():
    x = _low_rank_data(10, 3, seed=0)
    with pytest.raises(ValueError, match="method"):
        project_2d(x, method="tsne")
    try:
        import umap  # noqa: F401
    except ImportError:
        with pytest.raises(ValueError, match="umap-learn"):
            project_2d(x, method="umap")
    else:
        assert project_2d(x, method="umap").shape == (10, 2)
