"""Discriminator regularisers: gradient penalties.

A penalty is ``penalty(d_fn, real, fake, key, shard=None) -> scalar`` where
``d_fn(x [B, ...]) -> logits [B]`` is the discriminator with its parameters
closed over (so the penalty is differentiable w.r.t. them), ``real`` and
``fake`` are ``[B, ...]`` batches, ``key`` is a PRNG key and ``shard`` (a
:class:`ganjax.shard.Shard`, default: the whole batch on one device) says how
this device's examples sit in the global batch, so random draws and batch
statistics are those of the global batch. The train step adds
``penalty_weight * penalty`` to the discriminator loss.

============  =====================================================================
name          value
============  =====================================================================
``none``      0
``wgan_gp``   E[(‖∇D(x̂)‖₂ − 1)²], x̂ = εx + (1−ε)G(z), ε ~ U[0,1] per example
              (Gulrajani et al. 2017)
``dragan``    E[(‖∇D(x̂)‖₂ − 1)²], x̂ = x + α·(x + δ − x), δ = 0.5·std(x)·U[0,1],
              α ~ U[0,1] per example (Kodali et al. 2017; compare_gan's form)
``r1``        ½·E[‖∇D(x)‖²] on real data (Mescheder et al. 2018: penalty_weight = γ)
``r2``        ½·E[‖∇D(G(z))‖²] on generated data
============  =====================================================================

Gradients are per example: ``∇`` of ``sum(d_fn(x))`` w.r.t. ``x``, which is the
per-example input gradient whenever D treats examples independently (no
BatchNorm in D). Weight clipping for ``wasserstein`` is an optimizer option
(``optimizer_d.clip_value``), see :mod:`ganjax.optim`.

Penalties live in the registry :data:`PENALTIES`; :func:`register_penalty`
(also ``ganjax.register_penalty``) adds one, checking its signature.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

from ganjax.registry import Registry, RegistrationError, accepts, describe
from ganjax.shard import Shard, single

Array = jax.Array
DFn = Callable[[Array], Array]
Penalty = Callable[..., Array]


def _per_example_sq_norm(d_fn: DFn, x: Array) -> Array:
    """‖∂ sum(D(x)) / ∂x_i‖² for each example i: ``[B]``."""
    grads = jax.grad(lambda inp: jnp.sum(d_fn(inp).astype(jnp.float32)))(x)
    return jnp.sum(jnp.square(grads.reshape(grads.shape[0], -1)), axis=1)


def _unit_norm_penalty(d_fn: DFn, x_hat: Array) -> Array:
    # sqrt(0) has an infinite derivative; the epsilon keeps the gradient finite
    # when D is locally flat (as at initialisation of some nets).
    norms = jnp.sqrt(_per_example_sq_norm(d_fn, x_hat) + 1e-12)
    return jnp.mean(jnp.square(norms - 1.0))


def _per_example_uniform(key: Array, x: Array, shard: Shard) -> Array:
    """U[0,1] of shape ``[B, 1, ..., 1]`` broadcastable against ``x``."""
    return shard.uniform(key, (1,) * (x.ndim - 1), x.dtype)


def no_penalty(d_fn: DFn, real: Array, fake: Array, key: Array, shard: Shard | None = None) -> Array:
    del d_fn, real, fake, key, shard
    return jnp.zeros((), jnp.float32)


def wgan_gp(d_fn: DFn, real: Array, fake: Array, key: Array, shard: Shard | None = None) -> Array:
    shard = shard or single(real.shape[0])
    eps = _per_example_uniform(key, real, shard)
    return _unit_norm_penalty(d_fn, eps * real + (1.0 - eps) * fake)


def dragan(d_fn: DFn, real: Array, fake: Array, key: Array, shard: Shard | None = None) -> Array:
    del fake
    shard = shard or single(real.shape[0])
    k_alpha, k_delta = jax.random.split(key)
    # std over the whole global batch, as on one device.
    mean, mean_sq = shard.mean(real), shard.mean(jnp.square(real))
    std = jnp.sqrt(jnp.maximum(mean_sq - jnp.square(mean), 0.0))
    delta = 0.5 * std * shard.uniform(k_delta, real.shape[1:], real.dtype)
    alpha = _per_example_uniform(k_alpha, real, shard)
    return _unit_norm_penalty(d_fn, real + alpha * delta)


def r1(d_fn: DFn, real: Array, fake: Array, key: Array, shard: Shard | None = None) -> Array:
    del fake, key, shard
    return 0.5 * jnp.mean(_per_example_sq_norm(d_fn, real))


def r2(d_fn: DFn, real: Array, fake: Array, key: Array, shard: Shard | None = None) -> Array:
    del real, key, shard
    return 0.5 * jnp.mean(_per_example_sq_norm(d_fn, fake))


SIGNATURE = ("penalty(d_fn, real [B, ...], fake [B, ...], key, shard=None) -> scalar, "
             "with d_fn(x [B, ...]) -> logits [B]")


def _check_penalty(name: str, fn: object) -> None:
    """Refuses a penalty that cannot be called as ``fn(d_fn, real, fake, key, shard)``."""
    if not callable(fn) or not accepts(fn, 5):
        raise RegistrationError(f"penalty {name!r}: {describe(fn)} has the wrong signature; expected {SIGNATURE}")


PENALTIES: Registry[Penalty] = Registry("penalty", _check_penalty)


def register_penalty(name: str, fn: Penalty | None = None, *, override: bool = False):
    """Registers ``fn`` as penalty ``name``; without ``fn``, a decorator.

    ``fn(d_fn, real, fake, key, shard=None) -> scalar`` (see the module
    docstring); the train step adds ``penalty_weight * fn(...)`` to D's loss.

    Raises:
      RegistrationError: a wrong signature, or ``name`` taken (unless ``override``).
    """
    return PENALTIES.register(name, fn, override=override)


for _name, _fn in (("none", no_penalty), ("wgan_gp", wgan_gp), ("dragan", dragan), ("r1", r1), ("r2", r2)):
    register_penalty(_name, _fn)
PENALTIES.mark_builtin()


def get_penalty(name: str) -> Penalty:
    """Looks up a penalty by name; unknown names raise ``ConfigError`` listing built-in and registered names."""
    return PENALTIES.lookup(name)
