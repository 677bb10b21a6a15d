"""Where one device's examples sit in the global batch, and how randomness is split.

Key arrangement (what makes one step identical on 1, 4 or 8 devices): every
per-example random quantity — noise z, toy data, the penalties' ε/α/δ — is
drawn for the *global* batch from a key that is the same on every device, and
each device keeps its own contiguous slice (device ``i`` keeps rows
``[i·b, (i+1)·b)`` of ``b = B / n``). Only dropout masks use per-device keys,
``fold_in(key, axis_index)``. So for nets without dropout and with
synchronised (or no) BatchNorm, ``parallel='pmap'`` and ``'shard_map'`` on
``n`` devices compute the same step as ``parallel='none'`` on the whole batch,
up to float32 summation order.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp

Array = jax.Array

AXIS = "data"  # the name of the data-parallel device axis


@dataclasses.dataclass(frozen=True)
class Shard:
    """This device's share of a global batch.

    Attributes:
      local_batch: examples on this device, ``b``.
      num_shards: devices along the data axis, ``n`` (1 without parallelism).
      axis_name: the named data axis (None without parallelism).
    """

    local_batch: int
    num_shards: int = 1
    axis_name: str | None = None

    @property
    def global_batch(self) -> int:
        return self.local_batch * self.num_shards

    def index(self) -> Array | int:
        return 0 if self.axis_name is None else jax.lax.axis_index(self.axis_name)

    def take(self, x: Array) -> Array:
        """This device's rows of a global ``[B, ...]`` array: ``[b, ...]``."""
        if self.num_shards == 1:
            return x
        return jax.lax.dynamic_slice_in_dim(x, self.index() * self.local_batch, self.local_batch, axis=0)

    def uniform(self, key: Array, per_example: tuple[int, ...], dtype=jnp.float32) -> Array:
        """U[0, 1) of shape ``[b, *per_example]``, drawn for the global batch."""
        return self.take(jax.random.uniform(key, (self.global_batch, *per_example), dtype))

    def device_key(self, key: Array) -> Array:
        """A per-device key (dropout): ``fold_in(key, axis_index)``."""
        return key if self.axis_name is None else jax.random.fold_in(key, self.index())

    def mean(self, x: Array) -> Array:
        """The mean of ``x`` over the global batch (equal shards: mean of local means)."""
        return self.pmean(jnp.mean(x))

    def pmean(self, tree: Any) -> Any:
        return tree if self.axis_name is None else jax.lax.pmean(tree, self.axis_name)


def single(batch: int) -> Shard:
    """The whole batch on one device."""
    return Shard(batch)
