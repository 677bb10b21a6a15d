"""GAN losses as pure functions of discriminator logits.

Each loss is a pair ``(d_loss, g_loss)``:

* ``d_loss(real_logits [B], fake_logits [B]) -> scalar`` — minimised by D.
* ``g_loss(fake_logits [B]) -> scalar`` — minimised by G; or
  ``g_loss(real_logits [B], fake_logits [B]) -> scalar`` for losses in which
  G's objective also depends on D's verdict on real data (the relativistic
  losses). A two-argument ``g_loss`` is how a loss declares that need: only
  then does the train step evaluate D on the real batch in G's update
  (:attr:`GANLoss.g_uses_real`).

Losses live in the registry :data:`LOSSES`; :func:`register_loss` (also
``ganjax.register_loss``) adds one, built-in or a researcher's own, with the
same signature checks.

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
``rsgan``            softplus(-(r-f))                            softplus(-(f-r))
``ragan``            softplus(-(r-f̄)) + softplus(f-r̄)            softplus(-(f-r̄)) + softplus(r-f̄)
``ralsgan``          (r-f̄-1)² + (f-r̄+1)²                         (f-r̄-1)² + (r-f̄+1)²
===================  ==========================================  ==============================

(each term averaged over the batch). ``non_saturating``'s D loss is the sum of
the two binary cross-entropies, exactly as seed 002 (``error_real +
error_fake``) and seed 000 compute it. ``least_squares`` uses the a=0, b=c=1
coding of Mao et al. (2017) on the linear output. ``wasserstein`` needs a
Lipschitz constraint: weight clipping (``optimizer_d.clip_value``) or a
gradient penalty (``penalty='wgan_gp'``).

The relativistic losses are those of Jolicoeur-Martineau (2018), "The
relativistic discriminator: a key element missing from standard GAN": ``rsgan``
pairs the i-th real with the i-th generated example (RSGAN); ``ragan`` and
``ralsgan`` compare each example with the batch mean of the other kind,
r̄ = mean(r), f̄ = mean(f) (RaSGAN, and RaLSGAN as the paper writes it, without
a ½). With data parallelism (``parallel`` != ``none``) r̄ and f̄ are the means
over this device's examples.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import jax
import jax.numpy as jnp

from ganjax.registry import Registry, RegistrationError, accepts, describe, same_definition

Array = jax.Array
DLoss = Callable[[Array, Array], Array]
GLoss = Callable[..., Array]  # (fake_logits) or (real_logits, fake_logits)

D_SIGNATURE = "d_loss(real_logits [B], fake_logits [B]) -> scalar"
G_SIGNATURE = "g_loss(fake_logits [B]) -> scalar, or g_loss(real_logits [B], fake_logits [B]) -> scalar"


@dataclasses.dataclass(frozen=True)
class GANLoss:
    """A GAN objective: the discriminator's and the generator's loss.

    Attributes:
      name: the registry name.
      d_loss: ``d_loss(real_logits [B], fake_logits [B]) -> scalar``.
      g_loss: ``g_loss(fake_logits [B]) -> scalar`` or
        ``g_loss(real_logits [B], fake_logits [B]) -> scalar``.
      g_uses_real: whether ``g_loss`` takes the real logits too (derived
        from its signature: it cannot be called with one argument).
    """

    name: str
    d_loss: DLoss
    g_loss: GLoss
    g_uses_real: bool = dataclasses.field(init=False)

    def __post_init__(self):
        for part, fn, n, expected in (("d_loss", self.d_loss, (2,), D_SIGNATURE),
                                      ("g_loss", self.g_loss, (1, 2), G_SIGNATURE)):
            if not callable(fn) or not any(accepts(fn, k) for k in n):
                raise RegistrationError(f"loss {self.name!r}: {part} {describe(fn)} has the wrong signature; "
                                        f"expected {expected}")
        object.__setattr__(self, "g_uses_real", not accepts(self.g_loss, 1))


def _as_loss(name: str, entry: object) -> GANLoss:
    """A :class:`GANLoss` from a GANLoss, or from a class or object with ``d_loss`` and ``g_loss``."""
    if isinstance(entry, GANLoss):
        return entry if entry.name == name else GANLoss(name, entry.d_loss, entry.g_loss)
    d_loss, g_loss = getattr(entry, "d_loss", None), getattr(entry, "g_loss", None)
    if d_loss is None or g_loss is None:
        raise RegistrationError(f"loss {name!r}: register a GANLoss, a (d_loss, g_loss) pair, or a class with "
                                f"static methods {D_SIGNATURE} and {G_SIGNATURE}; got {describe(entry)}")
    return GANLoss(name, d_loss, g_loss)


def _same_loss(a: GANLoss, b: GANLoss) -> bool:
    return all(same_definition(x, y) for x, y in ((a.d_loss, b.d_loss), (a.g_loss, b.g_loss)))


LOSSES: Registry[GANLoss] = Registry("loss", _as_loss, _same_loss)


def register_loss(name: str, d_loss: DLoss | None = None, g_loss: GLoss | None = None, *,
                  override: bool = False):
    """Registers a GAN loss under ``name`` (as a call, or as a class decorator).

    As a call: ``register_loss("my_loss", d_loss, g_loss)``. As a decorator
    on a class (or any object) with ``d_loss`` and ``g_loss`` attributes::

        @ganjax.register_loss("my_loss")
        class MyLoss:
            def d_loss(real_logits, fake_logits): ...   # -> scalar
            def g_loss(fake_logits): ...                # or (real_logits, fake_logits)

    Signatures are checked here (``inspect.signature``): ``d_loss`` must take
    ``(real_logits, fake_logits)`` and ``g_loss`` ``(fake_logits)`` or
    ``(real_logits, fake_logits)``. Returns the :class:`GANLoss` (call form)
    or the decorated object.

    Raises:
      RegistrationError: a wrong signature, or ``name`` taken (unless ``override``).
    """
    if d_loss is None and g_loss is None:
        return LOSSES.register(name, override=override)
    if d_loss is None or g_loss is None:
        raise RegistrationError(f"register_loss({name!r}, ...) needs both d_loss and g_loss (or neither, as a "
                                f"decorator); expected {D_SIGNATURE} and {G_SIGNATURE}")
    loss = GANLoss(name, d_loss, g_loss)
    LOSSES.register(name, loss, override=override)
    return loss


def _mean(x: Array) -> Array:
    return jnp.mean(x.astype(jnp.float32))


def _bce_d_loss(real: Array, fake: Array) -> Array:
    """-log D(x) - log(1 - D(G(z))) with D = sigmoid(logit)."""
    return _mean(jax.nn.softplus(-real)) + _mean(jax.nn.softplus(fake))


register_loss("minimax", _bce_d_loss, lambda f: _mean(-jax.nn.softplus(f)))
register_loss("non_saturating", _bce_d_loss, lambda f: _mean(jax.nn.softplus(-f)))
register_loss("least_squares", lambda r, f: 0.5 * _mean(jnp.square(r - 1.0)) + 0.5 * _mean(jnp.square(f)),
              lambda f: 0.5 * _mean(jnp.square(f - 1.0)))
register_loss("wasserstein", lambda r, f: _mean(f) - _mean(r), lambda f: -_mean(f))
register_loss("hinge", lambda r, f: _mean(jax.nn.relu(1.0 - r)) + _mean(jax.nn.relu(1.0 + f)), lambda f: -_mean(f))


# Relativistic losses (Jolicoeur-Martineau 2018), registered exactly as a user would.
def _relativistic_bce(a: Array, b: Array) -> Array:
    """-log sigmoid(a - b): how strongly ``a`` is judged more real than ``b`` (``[B]`` → scalar)."""
    return _mean(jax.nn.softplus(-(a.astype(jnp.float32) - b.astype(jnp.float32))))


def _bar(x: Array) -> Array:
    """The batch mean of logits ``[B]``, kept as ``[]`` for broadcasting."""
    return jnp.mean(x.astype(jnp.float32))


@register_loss("rsgan")
class RSGAN:
    """RSGAN: D(x_r, x_f) = sigmoid(C(x_r) - C(x_f)) on pairs of real and generated examples."""

    @staticmethod
    def d_loss(real_logits: Array, fake_logits: Array) -> Array:
        return _relativistic_bce(real_logits, fake_logits)

    @staticmethod
    def g_loss(real_logits: Array, fake_logits: Array) -> Array:
        return _relativistic_bce(fake_logits, real_logits)


@register_loss("ragan")
class RaGAN:
    """RaSGAN: each example against the batch mean of the other kind, with the sigmoid cross-entropy."""

    @staticmethod
    def d_loss(real_logits: Array, fake_logits: Array) -> Array:
        return _relativistic_bce(real_logits, _bar(fake_logits)) + _relativistic_bce(_bar(real_logits), fake_logits)

    @staticmethod
    def g_loss(real_logits: Array, fake_logits: Array) -> Array:
        return _relativistic_bce(fake_logits, _bar(real_logits)) + _relativistic_bce(_bar(fake_logits), real_logits)


@register_loss("ralsgan")
class RaLSGAN:
    """RaLSGAN: the relativistic-average least-squares loss (targets +1 / -1 for the differences)."""

    @staticmethod
    def d_loss(real_logits: Array, fake_logits: Array) -> Array:
        r, f = real_logits.astype(jnp.float32), fake_logits.astype(jnp.float32)
        return _mean(jnp.square(r - _bar(f) - 1.0)) + _mean(jnp.square(f - _bar(r) + 1.0))

    @staticmethod
    def g_loss(real_logits: Array, fake_logits: Array) -> Array:
        r, f = real_logits.astype(jnp.float32), fake_logits.astype(jnp.float32)
        return _mean(jnp.square(f - _bar(r) - 1.0)) + _mean(jnp.square(r - _bar(f) + 1.0))


LOSSES.mark_builtin()


def get_loss(name: str) -> GANLoss:
    """Looks up a loss by name; unknown names raise ``ConfigError`` listing built-in and registered names."""
    return LOSSES.lookup(name)
