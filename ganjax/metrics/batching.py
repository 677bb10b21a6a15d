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


def map_batches(fn: Callable[[np.ndarray], Any], x: np.ndarray, batch_size: int) -> Any:
    """``fn`` over ``x [N, ...]`` in zero-padded batches of ``batch_size``.

    Args:
      fn: maps ``[batch_size, ...]`` to an array or a pytree of arrays, each
        with a leading axis of ``batch_size``.
      x: ``[N, ...]`` inputs, ``N >= 1``.
      batch_size: the one batch shape ``fn`` sees.

    Returns:
      ``fn``'s outputs for all of ``x``: numpy arrays ``[N, ...]`` in the same
      pytree structure, the padding rows removed.
    """
    x = np.asarray(x)
    n = x.shape[0]
    pad = (-n) % batch_size
    if pad:
        x = np.concatenate([x, np.zeros((pad, *x.shape[1:]), x.dtype)])
    outs = [fn(x[i:i + batch_size]) for i in range(0, len(x), batch_size)]
    return jax.tree.map(lambda *parts: np.concatenate([np.asarray(p) for p in parts])[:n], *outs)
