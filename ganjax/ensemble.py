"""An ensemble of K discriminators (``config.num_discriminators``).

Several discriminators make mode collapse costlier for G: a mode that one D
has stopped watching is still punished by the others (seed 001's "several
discriminators"; Durugkar et al. 2017, GMAN, with the mean as the combiner).
The K discriminators share the architecture; each is initialised from its own
key, and their parameters, optimizer states and mutable collections are stacked
along a leading axis ``[K, ...]``. Every D is updated with the configured loss
(and penalty) on the same real and generated batches; G minimises the mean of
its loss over the K discriminators; logged D metrics are means over K.

``K = 1`` keeps today's unstacked state and computation exactly: the helpers
below then call the function itself instead of its ``vmap``.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp

Array = jax.Array


def over_discriminators(fn: Callable, k: int, in_axes: Any = 0) -> Callable:
    """``fn`` for one D, mapped over the K stacked Ds (``fn`` itself when ``k == 1``).

    ``in_axes`` as in ``jax.vmap``: 0 for the stacked D arguments, None for
    arguments shared by all Ds (real and fake batches, keys).
    """
    return fn if k == 1 else jax.vmap(fn, in_axes=in_axes)


def init(init_one: Callable[[Array], Any], key: Array, k: int) -> Any:
    """``init_one(key)`` for one D, or the K stacked ``init_one(split(key, K)[i])``."""
    return init_one(key) if k == 1 else jax.vmap(init_one)(jax.random.split(key, k))


def mean(x: Array, k: int) -> Array:
    """The mean over the leading K axis of a stacked quantity (``x`` itself when ``k == 1``)."""
    return x if k == 1 else jnp.mean(x, axis=0)
