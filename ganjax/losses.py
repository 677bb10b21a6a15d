"""GAN losses as pure functions of discriminator logits.

Each loss is a pair ``(d_loss, g_loss)``:

* ``d_loss(real_logits [B], fake_logits [B]) -> scalar`` — minimised by D.
* ``g_loss(fake_logits [B]) -> scalar`` — minimised by G.

Logits are the discriminator's raw, unbounded outputs. Every cross-entropy is
written with ``softplus`` (``-log sigmoid(x) = softplus(-x)``), so losses and
their gradients stay finite for any finite logit, e.g. ±1e4.

===================  ==========================================  ==============================
name                 D loss                                      G loss
===================  ==========================================  ==============================
``minimax``          softplus(-r) + softplus(f)                  -softplus(f)   (= log(1-D(G(z))))
``non_saturating``   softplus(-r) + softplus(f)                  softplus(-f)   (= -log D(G(z)))
``least_squares``    ½(r-1)² + ½f²                               ½(f-1)²
``wasserstein``      f - r                                       -f
``hinge``            relu(1-r) + relu(1+f)                       -f
===================  ==========================================  ==============================

(each term averaged over the batch). ``non_saturating``'s D loss is the sum of
the two binary cross-entropies, exactly as seed 002 (``error_real +
error_fake``) and seed 000 compute it. ``least_squares`` uses the a=0, b=c=1
coding of Mao et al. (2017) on the linear output. ``wasserstein`` needs a
Lipschitz constraint: weight clipping (``optimizer_d.clip_value``) or a
gradient penalty (``penalty='wgan_gp'``).
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import jax
import jax.numpy as jnp

from ganjax.errors import unknown_name

Array = jax.Array


@dataclasses.dataclass(frozen=True)
class GANLoss:
    """A GAN objective: the discriminator's and the generator's loss."""

    name: str
    d_loss: Callable[[Array, Array], Array]
    g_loss: Callable[[Array], Array]


def _mean(x: Array) -> Array:
    return jnp.mean(x.astype(jnp.float32))


def _bce_d_loss(real: Array, fake: Array) -> Array:
    """-log D(x) - log(1 - D(G(z))) with D = sigmoid(logit)."""
    return _mean(jax.nn.softplus(-real)) + _mean(jax.nn.softplus(fake))


LOSSES: dict[str, GANLoss] = {
    loss.name: loss
    for loss in (
        GANLoss("minimax", _bce_d_loss, lambda f: _mean(-jax.nn.softplus(f))),
        GANLoss("non_saturating", _bce_d_loss, lambda f: _mean(jax.nn.softplus(-f))),
        GANLoss(
            "least_squares",
            lambda r, f: 0.5 * _mean(jnp.square(r - 1.0)) + 0.5 * _mean(jnp.square(f)),
            lambda f: 0.5 * _mean(jnp.square(f - 1.0)),
        ),
        GANLoss("wasserstein", lambda r, f: _mean(f) - _mean(r), lambda f: -_mean(f)),
        GANLoss(
            "hinge",
            lambda r, f: _mean(jax.nn.relu(1.0 - r)) + _mean(jax.nn.relu(1.0 + f)),
            lambda f: -_mean(f),
        ),
    )
}


def get_loss(name: str) -> GANLoss:
    """Looks up a loss by name; unknown names raise ``ConfigError``."""
    if name not in LOSSES:
        raise unknown_name("loss", name, LOSSES)
    return LOSSES[name]
