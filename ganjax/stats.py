"""The spread of a result over seeds: one definition for sweep summaries and experiment tables.

Every ``mean ± std`` that ganjax reports over repeated runs (seeds) uses the
sample standard deviation, ``ddof=1`` — the unbiased-variance estimate of the
spread of one more run. With 2–3 seeds the population form (``ddof=0``)
would understate it by up to √2. One value says nothing about the spread:
its std is reported as 0 and tables print no ``±`` for it.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np


def seed_std(values: Sequence[float] | np.ndarray, axis: int | None = None) -> float | np.ndarray:
    """The sample standard deviation (``ddof=1``) of ``values`` over seeds.

    Args:
      values: one value per seed (``axis=None``: all values), or an array whose
        ``axis`` indexes the seeds.
      axis: the seed axis, or None for all values.

    Returns:
      A float (``axis=None``) or an array without ``axis``: NaN for no value,
      0 for one value, else ``std(values, ddof=1)``.
    """
    x = np.asarray(values, np.float64)
    n = x.size if axis is None else x.shape[axis]
    if n == 0:
        return math.nan if axis is None else np.full(np.delete(x.shape, axis), math.nan)
    if n == 1:
        return 0.0 if axis is None else np.zeros(np.delete(x.shape, axis))
    std = x.std(axis=axis, ddof=1)
    return float(std) if axis is None else std
