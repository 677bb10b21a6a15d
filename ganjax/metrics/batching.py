"""Running a fixed-shape function over an array of any length.

Feature extractors and generators are jitted for one batch shape; running
them on ``N`` examples pads the last batch with zeros (so one program
compiles, whatever ``N``), dispatches every batch before reading any result
back (JAX runs them asynchronously), and trims the padding off the outputs.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import numpy as np


def map_batches(fn: Callable[[Any], Any], x: Any, batch_size: int) -> Any:
    """``fn`` over ``x [N, ...]`` (or a pytree of such arrays) in zero-padded batches of ``batch_size``.

    Args:
      fn: maps ``[batch_size, ...]`` (a pytree like ``x`` of such arrays) to
        an array or a pytree of arrays, each with a leading axis of ``batch_size``.
      x: ``[N, ...]`` inputs, ``N >= 1``; or a pytree of arrays that share
        the leading ``N`` (e.g. noise and the labels it is generated for),
        batched together row for row.
      batch_size: the one batch shape ``fn`` sees.

    Returns:
      ``fn``'s outputs for all of ``x``: numpy arrays ``[N, ...]`` in the same
      pytree structure, the padding rows removed.
    """
    leaves, treedef = jax.tree.flatten(x)
    leaves = [np.asarray(leaf) for leaf in leaves]
    n = leaves[0].shape[0]
    if any(leaf.shape[0] != n for leaf in leaves):
        raise ValueError(f"map_batches: inputs of different lengths {[leaf.shape[0] for leaf in leaves]}")
    pad = (-n) % batch_size
    if pad:
        leaves = [np.concatenate([leaf, np.zeros((pad, *leaf.shape[1:]), leaf.dtype)]) for leaf in leaves]
    outs = [fn(jax.tree.unflatten(treedef, [leaf[i:i + batch_size] for leaf in leaves]))
            for i in range(0, n + pad, batch_size)]
    return jax.tree.map(lambda *parts: np.concatenate([np.asarray(p) for p in parts])[:n], *outs)
