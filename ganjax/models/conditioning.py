"""Class conditioning, as small composable Linen modules (see docs/architectures.md, "Class conditioning").

* :class:`ConditionalBatchNorm` — BatchNorm without its own affine, then a
  per-class scale and shift: ``γ[y] · x̂ + β[y]`` (de Vries et al. 2017; the
  generator of Miyato & Koyama 2018). ``γ`` starts at 1 and ``β`` at 0, so at
  initialisation it is plain BatchNorm for every class.
* :class:`LinearConditionalBatchNorm` — BigGAN's (Brock et al. 2018) cBN:
  ``(1 + gain(c)) · x̂ + bias(c)`` with linear, bias-free (optionally
  spectrally normalised) heads of a conditioning vector ``c``. With
  :func:`hierarchical_z` and :func:`block_conditions`, ``c`` is a block's
  ``[shared class embedding, z chunk]`` (shared embedding + skip-z).
* :class:`ClassProjection` and :func:`projection_logits` — the projection
  discriminator's head (Miyato & Koyama 2018):
  ``logit = ψ(φ(x)) + ⟨embed(y), φ(x)⟩``, the embedding spectrally normalised
  when D is.

Labels are int32 ``[B]`` class indices in ``[0, num_classes)``.
"""

from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
from flax import linen as nn

from ganjax.errors import ConfigError
from ganjax.models.layers import Dense, DNorm, kernel_init, logits, spectral_normalize

Array = jax.Array


def uses_labels(who: str, num_classes: int, labels: Array | None) -> bool:
    """Whether a module with ``num_classes`` is called conditionally with ``labels``.

    ``num_classes = 0`` and no labels: unconditional (False). ``num_classes > 0``
    and labels: conditional (True). Anything else is a ConfigError naming ``who``.
    """
    if num_classes == 0 and labels is None:
        return False
    if num_classes > 0 and labels is not None:
        return True
    if labels is None:
        raise ConfigError(f"{who} has num_classes={num_classes} but was called without labels")
    raise ConfigError(f"{who} was given labels but has num_classes=0; set model.num_classes to the number of classes")


def _per_example(v: Array, ndim: int) -> Array:
    """``[B, C]`` → ``[B, 1, …, 1, C]`` broadcasting against a rank-``ndim`` ``[B, …, C]`` tensor."""
    return v.reshape((v.shape[0],) + (1,) * (ndim - 2) + (v.shape[-1],))


def _standardize(x: Array, train: bool, momentum: float, epsilon: float, dtype: jnp.dtype,
                 axis_name: str | None) -> Array:
    """BatchNorm with no scale or shift of its own (statistics over all axes but the last)."""
    return nn.BatchNorm(use_running_average=not train, momentum=momentum, epsilon=epsilon, use_scale=False,
                        use_bias=False, dtype=dtype, axis_name=axis_name)(x)


class ConditionalBatchNorm(nn.Module):
    """``x [B, …, C]``, ``labels [B]`` → ``γ[labels] · BN(x) + β[labels]``, the same shape.

    Parameters ``gamma`` and ``beta``, ``[num_classes, C]``, initialised to 1
    and 0; running statistics in ``batch_stats`` as ``nn.BatchNorm``'s
    (``momentum``: the fraction of the running average kept).
    """

    num_classes: int
    momentum: float = 0.9
    epsilon: float = 1e-5
    dtype: jnp.dtype = jnp.float32
    axis_name: str | None = None

    @nn.compact
    def __call__(self, x: Array, labels: Array, train: bool = True) -> Array:
        c = x.shape[-1]
        gamma = self.param("gamma", nn.initializers.ones, (self.num_classes, c), jnp.float32)
        beta = self.param("beta", nn.initializers.zeros, (self.num_classes, c), jnp.float32)
        h = _standardize(x, train, self.momentum, self.epsilon, self.dtype, self.axis_name)
        scale = _per_example(gamma[labels], x.ndim).astype(h.dtype)
        shift = _per_example(beta[labels], x.ndim).astype(h.dtype)
        return h * scale + shift


class LinearConditionalBatchNorm(nn.Module):
    """``x [B, …, C]``, ``cond [B, D]`` → ``(1 + gain(cond)) · BN(x) + bias(cond)``, the same shape.

    ``gain`` and ``bias`` are bias-free Dense layers ``D → C`` (submodules of
    those names), spectrally normalised when ``spectral`` (BigGAN's G has
    spectral norm everywhere).
    """

    spectral: bool = False
    weight_init: str = "orthogonal"
    momentum: float = 0.9
    epsilon: float = 1e-4
    dtype: jnp.dtype = jnp.float32
    axis_name: str | None = None

    @nn.compact
    def __call__(self, x: Array, cond: Array, train: bool = True) -> Array:
        c = x.shape[-1]
        head = lambda name: Dense(c, self.weight_init, self.dtype, use_bias=False, spectral=self.spectral,
                                  name=name)(cond, train)
        gain, bias = head("gain"), head("bias")
        h = _standardize(x, train, self.momentum, self.epsilon, self.dtype, self.axis_name)
        return h * (1 + _per_example(gain, x.ndim)) + _per_example(bias, x.ndim)


def hierarchical_z(z: Array, num_blocks: int) -> tuple[Array, list[Array]]:
    """BigGAN's skip-z: ``z [B, z_dim]`` → ``(z₀ [B, k], [z₁ … z_n] each [B, k])``, ``k = z_dim / (n + 1)``.

    ``z₀`` feeds the first dense layer, ``z_i`` the conditional BatchNorms of
    block ``i``. A ``z_dim`` that ``n + 1`` does not divide is a ConfigError.
    """
    z_dim = z.shape[-1]
    if z_dim % (num_blocks + 1):
        raise ConfigError(f"model.z_dim = {z_dim} cannot be split into {num_blocks + 1} equal chunks (hierarchical "
                          f"z over {num_blocks} blocks); use a multiple of {num_blocks + 1}")
    chunks = jnp.split(z, num_blocks + 1, axis=-1)
    return chunks[0], chunks[1:]


def block_conditions(z_chunks: Sequence[Array], shared: Array | None) -> list[Array]:
    """Each block's conditioning vector: ``[shared [B, E], z_i [B, k]]`` → ``[B, E + k]``, or ``z_i`` alone
    for an unconditional generator (``shared`` None)."""
    if shared is None:
        return list(z_chunks)
    return [jnp.concatenate([shared.astype(z.dtype), z], axis=-1) for z in z_chunks]


class ClassProjection(nn.Module):
    """The class term of a projection discriminator: ``φ [B, C]``, ``labels [B]`` → ``⟨E[labels], φ⟩`` ``[B]``.

    ``embedding`` is a ``[num_classes, C]`` parameter (initialised as a
    kernel with ``weight_init``), divided by its spectral norm when
    ``spectral`` (power-iteration vector in the ``spectral`` collection).
    """

    num_classes: int
    spectral: bool = False
    weight_init: str = "glorot_uniform"
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, phi: Array, labels: Array, train: bool = True) -> Array:
        table = self.param("embedding", kernel_init(self.weight_init), (self.num_classes, phi.shape[-1]),
                           jnp.float32)
        if self.spectral:
            table = spectral_normalize(self, table, train)
        return jnp.sum(table[labels].astype(self.dtype) * phi.astype(self.dtype), axis=-1).astype(jnp.float32)


def projection_logits(nrm: DNorm, phi: Array, labels: Array | None, num_classes: int, who: str) -> Array:
    """A discriminator's logits ``[B]`` from its pooled features ``φ [B, C]``: ``ψ(φ)``, plus
    ``⟨embed(y), φ⟩`` (:class:`ClassProjection`) when called with labels.

    ``ψ`` is ``nrm.dense(1)`` (so an unconditional call is exactly the plain
    head); the embedding is spectrally normalised iff ``nrm.norm == 'spectral'``.
    """
    out = logits(nrm.dense(1)(phi))
    if not uses_labels(who, num_classes, labels):
        return out
    return out + ClassProjection(num_classes, nrm.norm == "spectral", nrm.weight_init, nrm.dtype)(
        phi, labels, nrm.train)
