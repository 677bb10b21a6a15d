"""BigGAN's orthogonal regularisation of the generator's weights (Brock et al. 2018, eq. 3).

``R(θ) = Σ_W ‖WᵀW ⊙ (1 − I)‖²_F`` over every conv and dense kernel ``W`` of
G (a parameter named ``kernel``, viewed as the matrix ``[fan_in, out]``, so
``WᵀW`` is the ``[out, out]`` Gram matrix of its filters), leaving out the
diagonal: filters are pushed towards orthogonality, not unit norm. Biases,
BatchNorm parameters and embeddings (BigGAN's shared class embedding) are not
regularised. G minimises ``loss + ortho_reg · R`` (config key ``ortho_reg``,
0 = off).

BigGAN-PyTorch's ``utils.ortho(model, strength)`` adds ``strength · 2 (WWᵀ ⊙
(1 − I)) W`` to the gradient, half of ``∇‖WWᵀ ⊙ (1 − I)‖²_F = 4 (WWᵀ ⊙ (1 − I))
W``: its ``G_ortho = 1e-4`` is ``ortho_reg = 5e-5`` here.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

Array = jax.Array


def off_diagonal_gram(w: Array) -> Array:
    """``‖WᵀW ⊙ (1 − I)‖²_F`` of a kernel ``[..., out]`` viewed as ``W [prod(...), out]``; a ``[]`` float32."""
    m = w.reshape(-1, w.shape[-1]).astype(jnp.float32)
    gram = m.T @ m
    return jnp.sum(jnp.square(gram)) - jnp.sum(jnp.square(jnp.diagonal(gram)))


def kernels(params: Any) -> list[Array]:
    """The leaves of ``params`` named ``kernel`` (conv and dense weights)."""
    leaves = jax.tree_util.tree_leaves_with_path(params)
    return [leaf for path, leaf in leaves if getattr(path[-1], "key", None) == "kernel"]


def orthogonal_penalty(params: Any) -> Array:
    """``Σ_W ‖WᵀW ⊙ (1 − I)‖²_F`` over the kernels of ``params``; a ``[]`` float32."""
    return sum((off_diagonal_gram(w) for w in kernels(params)), jnp.zeros((), jnp.float32))
