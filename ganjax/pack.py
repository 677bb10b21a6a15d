"""PacGAN packing (Lin et al. 2018): D judges ``m`` samples at once.

With ``config.pack = m``, each D input is ``m`` examples of the same kind
(all real or all generated) concatenated along the last axis — the feature
axis of vectors, the channel axis of images: ``[b, *S, C] → [b/m, *S, m·C]``,
consecutive rows forming one pack. D is built for that packed shape; its
labels keep their meaning (a pack of real samples is real); penalties are
computed on the packed inputs. A batch of ``b`` examples per device must
divide by ``m`` (:func:`check_batch`). ``m = 1`` is no packing.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import jax
import jax.numpy as jnp

from ganjax.errors import ConfigError
from ganjax.shard import Shard

Array = jax.Array


def packed_shape(example_shape: Sequence[int], m: int) -> tuple[int, ...]:
    """The shape of one packed example: the last axis times ``m``."""
    *lead, last = example_shape
    return (*lead, last * m)


def pack(x: Array, m: int) -> Array:
    """``[b, *S, C]`` → ``[b/m, *S, m·C]``: rows ``m·i … m·i+m−1`` form pack ``i``.

    Channel ``k·C + c`` of pack ``i`` is channel ``c`` of example ``m·i + k``.
    ``m = 1`` returns ``x`` itself.
    """
    if m == 1:
        return x
    b, *rest = x.shape
    grouped = jnp.moveaxis(x.reshape(b // m, m, *rest), 1, -2)  # [b/m, *S, m, C]
    return grouped.reshape(b // m, *packed_shape(rest, m))


def check_batch(batch: int, m: int, where: str = "per device") -> None:
    """Refuses a batch that does not divide into packs of ``m``."""
    if batch % m:
        raise ConfigError(f"pack={m} needs a batch divisible by {m}, but the batch {where} is {batch}; "
                          f"use a batch_size that is a multiple of {m} (times the device count when parallel)")


def packed_shard(shard: Shard, m: int) -> Shard:
    """The :class:`Shard` of the packed batch: ``b/m`` packs per device (``shard`` itself for ``m = 1``)."""
    return shard if m == 1 else dataclasses.replace(shard, local_batch=shard.local_batch // m)
