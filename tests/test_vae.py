"""The VAE of the representation-forgetting experiment (engine.analysis.vae): its KL against the
closed form, its loss on a small task, and that it shares the autoencoder's initialisation."""

from __future__ import annotations

import math

import pytest
import torch

from engine.analysis import vae
from engine.analysis.activations import collect
from engine.kinds import repforget as rf


def test_kl_matches_the_closed_form_by_hand():
    # Per dimension ½(μ² + σ² − 1 − log σ²) with μ = 0.5, σ² = 2: ½(0.25 + 2 − 1 − ln 2).
    mu = torch.full((3, 8), 0.5)
    logvar = torch.full((3, 8), math.log(2.0))
    by_hand = 8 * 0.5 * (1.25 - math.log(2.0))  # 2.2274112…
    assert vae.kl_to_standard_normal(mu, logvar).tolist() == pytest.approx([by_hand] * 3)


def test_kl_is_zero_at_the_prior_and_positive_elsewhere():
    torch.manual_seed(0)
    mu, logvar = torch.randn(200, 8) * 2, torch.randn(200, 8) * 2
    kl = vae.kl_to_standard_normal(mu, logvar)
    assert (kl > 0).all()
    ref = torch.distributions.kl_divergence(
        torch.distributions.Normal(mu, (0.5 * logvar).exp()), torch.distributions.Normal(0.0, 1.0)
    ).sum(1)
    assert kl.tolist() == pytest.approx(ref.tolist(), rel=1e-5)
    assert vae.kl_to_standard_normal(torch.zeros(2, 8), torch.zeros(2, 8)).tolist() == [0.0, 0.0]


def test_reparameterised_samples_have_the_posterior_moments_and_pass_gradients():
    mu = torch.tensor([[1.0, -2.0]], requires_grad=True)
    logvar = torch.tensor([[math.log(4.0), 0.0]], requires_grad=True)
    gen = torch.Generator().manual_seed(0)
    z = vae.reparameterise(mu.expand(20_000, 2), logvar.expand(20_000, 2), gen)
    assert z.mean(0).tolist() == pytest.approx([1.0, -2.0], abs=0.05)
    assert z.std(0).tolist() == pytest.approx([2.0, 1.0], abs=0.05)
    z.sum().backward()
    assert mu.grad.tolist() == [[20_000.0, 20_000.0]]
    assert logvar.grad.abs().sum() > 0


def _spec(**over) -> rf.Spec:
    return rf.Spec(hidden="16,4,16", **over)


def test_the_vae_shares_the_autoencoders_layers_and_initialisation():
    spec = _spec()
    ae = rf.build("autoencoder", spec, (1, 8, 8), 10, seed=3)
    model = rf.build("vae", spec, (1, 8, 8), 10, seed=3)
    assert model.probe_points == ae.probe_points == ["fc1", "fc2", "fc3"]
    latent = model.layers[1]
    assert isinstance(latent, vae.GaussianLatent) and latent.mu.out_features == 4
    shared = {k: v for k, v in model.state_dict().items() if "logvar" not in k}
    renamed = {k.replace(".mu.", ".linear."): v for k, v in shared.items()}
    assert renamed.keys() == ae.state_dict().keys()
    assert all(torch.equal(v, ae.state_dict()[k]) for k, v in renamed.items())
    # log σ² starts at 0: q(z|x) has the prior's variance whatever x is.
    assert latent.logvar.weight.abs().sum() == 0 and latent.logvar.bias.abs().sum() == 0


def test_activations_are_read_at_the_mean():
    model = rf.build("vae", _spec(), (1, 8, 8), 10, seed=0)
    x = torch.randn(30, 1, 8, 8)
    with torch.no_grad():
        model.layers[1].logvar.bias.fill_(3.0)  # wide posterior: a sample would differ a lot
        mu, _ = model.layers[1].stats(model.layers[0](x))
    first, second = collect(model, x), collect(model, x)
    assert torch.equal(first[1], mu)
    assert all(torch.equal(a, b) for a, b in zip(first, second, strict=True))


def test_vae_loss_decreases_on_a_small_task():
    torch.manual_seed(0)
    # Images on a 2-D manifold in 64 pixels: something a 4-unit latent can learn.
    coords = torch.randn(512, 2)
    x = torch.tanh(coords @ torch.randn(2, 64)).reshape(512, 1, 8, 8)
    spec = _spec(
        train={"optimizer": "adam", "epochs": 20, "batch_size": 64, "lr": 3e-3, "device": "cpu"}
    )
    model = rf.build("vae", spec, (1, 8, 8), 10, seed=0)
    loss_fn = rf.objective("vae", spec)

    def mean_loss() -> float:
        with torch.no_grad():
            return loss_fn(model, x, torch.Generator().manual_seed(1)).item()

    before = mean_loss()
    steps = rf.train_generative(model, x, loss_fn, spec.train, 0)
    after = mean_loss()
    assert steps == 20 * 8
    assert after < 0.5 * before
    with torch.no_grad():
        recon, kl = vae.elbo_terms(model, x, torch.Generator().manual_seed(1))
    assert (kl >= 0).all() and kl.mean() > 0.5  # the latent is used, not collapsed to the prior


def test_elbo_needs_a_gaussian_latent():
    ae = rf.build("autoencoder", _spec(), (1, 8, 8), 10, seed=0)
    with pytest.raises(ValueError, match="GaussianLatent"):
        vae.elbo_terms(ae, torch.zeros(2, 1, 8, 8))
