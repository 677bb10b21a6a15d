"""Kernel Inception Distance (Bińkowski et al. 2018).

Unbiased estimate of MMD² with the cubic polynomial kernel
``k(x, y) = (xᵀy / d + 1)³``, averaged over random subsets of at most
``subset_size`` (1000) samples per set; the spread over subsets gives the
standard error. Unlike FID, the estimator is unbiased: two samples of the
same distribution score 0 in expectation.
"""

from __future__ import annotations

import numpy as np

from ganjax.errors import ConfigError


def polynomial_kernel(x: np.ndarray, y: np.ndarray, degree: int = 3, coef0: float = 1.0) -> np.ndarray:
    """``(x yᵀ / d + coef0) ** degree`` for ``x [N, d]``, ``y [M, d]`` → ``[N, M]`` (float64)."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    return (x @ y.T / x.shape[1] + coef0) ** degree


def mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD² between samples ``x [m, d]`` and ``y [n, d]`` (cubic kernel)."""
    m, n = x.shape[0], y.shape[0]
    kxx, kyy, kxy = polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y)
    sxx = (kxx.sum() - np.trace(kxx)) / (m * (m - 1))
    syy = (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
    return float(sxx + syy - 2.0 * kxy.mean())


def kernel_inception_distance(real: np.ndarray, fake: np.ndarray, subset_size: int = 1000,
                              num_subsets: int = 100, seed: int = 0) -> dict[str, float]:
    """KID of two feature sets ``[N1, D]``, ``[N2, D]``.

    Returns:
      ``{'kid': mean over subsets, 'kid_std': their std, 'kid_stderr': std /
      √num_subsets, 'kid_subset_size': the size used}``.
    """
    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
        raise ConfigError(f"KID needs feature sets [N, D] of equal D, got {real.shape} and {fake.shape}")
    size = min(subset_size, real.shape[0], fake.shape[0])
    if size < 2 or num_subsets < 1:
        raise ConfigError(f"KID needs >= 2 samples per set and num_subsets >= 1, got subset size {size}, "
                          f"num_subsets {num_subsets}")
    rng = np.random.default_rng(seed)
    values = np.array([
        mmd2_unbiased(real[rng.choice(real.shape[0], size, replace=False)],
                      fake[rng.choice(fake.shape[0], size, replace=False)])
        for _ in range(num_subsets)])
    std = float(values.std(ddof=1)) if num_subsets > 1 else 0.0
    return {"kid": float(values.mean()), "kid_std": std, "kid_stderr": std / np.sqrt(num_subsets),
            "kid_subset_size": int(size)}
