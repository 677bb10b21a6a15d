"""Fréchet distance between Gaussians fitted to features (the "F" of FID).

``FD = ‖μ1 − μ2‖² + tr Σ1 + tr Σ2 − 2 tr √(Σ1 Σ2)``.

pytorch-fid and TF-GAN evaluate ``tr √(Σ1 Σ2)`` with ``scipy.linalg.sqrtm`` of
the non-symmetric product, which returns complex noise (and, on
rank-deficient covariances — fewer samples than feature dimensions — can
return garbage or NaN). Here everything is float64 and symmetric: with
``S = √Σ1`` (eigendecomposition, negative round-off eigenvalues clipped),
``Σ1 Σ2`` is similar to the symmetric positive semi-definite ``S Σ2 S``, so
``tr √(Σ1 Σ2) = Σ √λᵢ(S Σ2 S)``. The result is finite and ≥ 0 for any PSD
inputs.
"""

from __future__ import annotations

import numpy as np

from ganjax.errors import ConfigError


def feature_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean ``[D]`` and unbiased covariance ``[D, D]`` (float64) of ``features [N, D]``."""
    f = np.asarray(features, np.float64)
    if f.ndim != 2 or f.shape[0] < 2:
        raise ConfigError(f"features must be [N >= 2, D], got shape {f.shape}")
    return f.mean(axis=0), np.cov(f, rowvar=False).reshape(f.shape[1], f.shape[1])


def _psd_sqrt(sigma: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh((sigma + sigma.T) / 2.0)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2), in float64.

    Args:
      mu1, mu2: means ``[D]``.
      sigma1, sigma2: covariances ``[D, D]`` (symmetric positive semi-definite;
        may be singular).

    Returns:
      The distance, a finite float ≥ 0.
    """
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    sigma1, sigma2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    d = mu1.shape[0]
    shapes = (mu1.shape, mu2.shape, sigma1.shape, sigma2.shape)
    if shapes != ((d,), (d,), (d, d), (d, d)):
        raise ConfigError(f"frechet_distance needs means [D] and covariances [D, D], got shapes {shapes}")
    if not all(np.all(np.isfinite(a)) for a in (mu1, mu2, sigma1, sigma2)):
        raise ConfigError("frechet_distance got non-finite statistics (NaN/Inf in the features?)")
    s1 = _psd_sqrt(sigma1)
    m = s1 @ ((sigma2 + sigma2.T) / 2.0) @ s1
    tr_covmean = float(np.sum(np.sqrt(np.clip(np.linalg.eigvalsh((m + m.T) / 2.0), 0.0, None))))
    diff = mu1 - mu2
    fd = float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * tr_covmean)
    return max(fd, 0.0)


def frechet_distance_of_features(f1: np.ndarray, f2: np.ndarray) -> float:
    """FD between Gaussians fitted to two feature sets ``[N1, D]`` and ``[N2, D]``."""
    return frechet_distance(*feature_statistics(f1), *feature_statistics(f2))
