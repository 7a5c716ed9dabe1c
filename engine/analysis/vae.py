"""A variational autoencoder on the hidden layers of the representation-forgetting networks.

The thesis's third model (3.3, G_VAE; Kingma & Welling 2014) shares the autoencoder's
architecture except that its bottleneck is a Gaussian latent trained with the ELBO. Here the
autoencoder-shaped :class:`~engine.models.ProbedModel` is built first (same widths, same seeded
initialisation) and its narrowest layer is then turned into :class:`GaussianLatent`:

* the bottleneck's own linear layer gives the posterior mean μ, a new linear head gives
  log σ² (zero-initialised, so q(z|x) starts at the prior's variance and the shared layers keep
  the autoencoder's initialisation draw for draw);
* training samples z = μ + σ·ε (:func:`reparameterise`) and minimises
  ``reconstruction + β·KL(q(z|x) ‖ N(0, I))`` per image (:func:`loss`);
* ``forward`` (and so every activation the probes and CKA read) passes the mean μ: the
  representation of an image is then a function of the image and the weights only, so a frozen
  probe's accuracy and the CKA drift move only when the network changes, not with sampling noise.

Reconstruction: the negative log-likelihood of a Gaussian decoder N(x̂, I) without its constant,
½‖x − x̂‖² summed over pixels. The benchmarks' pixels are standardised (unit variance per
channel), so unit decoder variance is the data's own scale; a Bernoulli decoder would need
pixels in [0, 1].

β: the thesis says only that G_VAE "uses ELBO" and gives no β, i.e. the plain ELBO, β = 1.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from engine.models import ProbedModel

__all__ = [
    "GaussianLatent",
    "elbo_terms",
    "kl_to_standard_normal",
    "loss",
    "make_vae",
    "reparameterise",
]


class GaussianLatent(nn.Module):
    """q(z|x) = N(μ, diag σ²) over a bottleneck: μ from ``mu`` (the replaced layer's linear
    map), log σ² from a new linear head. ``forward`` returns μ (no activation: a mean is
    unconstrained)."""

    def __init__(self, mu: nn.Linear):
        super().__init__()
        self.mu = mu
        self.logvar = nn.Linear(mu.in_features, mu.out_features, device=mu.weight.device)
        nn.init.zeros_(self.logvar.weight)
        nn.init.zeros_(self.logvar.bias)

    def stats(self, h: Tensor) -> tuple[Tensor, Tensor]:
        """(μ, log σ²) of the rows of ``h``."""
        h = h.flatten(1)
        return self.mu(h), self.logvar(h)

    def forward(self, h: Tensor) -> Tensor:
        return self.mu(h.flatten(1))


def make_vae(model: ProbedModel, bottleneck: int) -> ProbedModel:
    """Turn hidden layer ``bottleneck`` (a DenseLayer) of ``model`` into the Gaussian latent, in
    place; ``model`` should have a head back to the input size."""
    layer = model.layers[bottleneck]
    if not isinstance(getattr(layer, "linear", None), nn.Linear):
        raise ValueError(f"layer {bottleneck} has no linear map to become the Gaussian latent")
    model.layers[bottleneck] = GaussianLatent(layer.linear)
    return model


def reparameterise(mu: Tensor, logvar: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """z = μ + σ·ε with ε ~ N(0, I): a sample of q(z|x) that gradients pass through."""
    eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
    return mu + torch.exp(0.5 * logvar) * eps


def kl_to_standard_normal(mu: Tensor, logvar: Tensor) -> Tensor:
    """KL(N(μ, diag σ²) ‖ N(0, I)) of each row, closed form: ½ Σ (μ² + σ² − 1 − log σ²)."""
    return 0.5 * (mu.square() + logvar.exp() - 1.0 - logvar).sum(1)


def elbo_terms(
    model: ProbedModel, x: Tensor, generator: torch.Generator | None = None
) -> tuple[Tensor, Tensor]:
    """Per image: reconstruction NLL (½‖x − x̂‖², x̂ decoded from a sampled z) and KL."""
    h, kl = x, None
    for layer in model.layers:
        if isinstance(layer, GaussianLatent):
            mu, logvar = layer.stats(h)
            kl = kl_to_standard_normal(mu, logvar)
            h = reparameterise(mu, logvar, generator)
        else:
            h = layer(h)
    if kl is None:
        raise ValueError("the model has no GaussianLatent layer (see make_vae)")
    recon = 0.5 * (model.head(model.neck(h)) - x.flatten(1)).square().sum(1)
    return recon, kl


def loss(
    model: ProbedModel, x: Tensor, beta: float = 1.0, generator: torch.Generator | None = None
) -> Tensor:
    """The negative ELBO with a β-weighted KL, averaged over the batch."""
    recon, kl = elbo_terms(model, x, generator)
    return (recon + beta * kl).mean()
