"""Metrics for the toy distributions.

* ``mode_coverage`` — VEEGAN'17 / PacGAN'18: a sample is *high quality* if it
  lies within 3σ of its nearest mode centre (σ = the component std); a mode
  is *captured* if at least one high-quality sample has it as nearest mode.
  Also the reverse KL ``KL(q ‖ p)`` between the distribution ``q`` of the
  high-quality samples over modes and the uniform target ``p`` (PacGAN).
* ``gaussian_1d_metrics`` — mean, std and Kolmogorov–Smirnov distance of
  generated values to the target N(mean, std).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import ndtr

from ganjax.errors import ConfigError


def mode_coverage(samples: np.ndarray, modes: np.ndarray, std: float, threshold: float = 3.0) -> dict[str, float]:
    """Modes captured, high-quality fraction and reverse KL over modes.

    Args:
      samples: ``[N, D]`` generated points (2,500 by default in the trainer).
      modes: ``[K, D]`` mode centres.
      std: the std of each mixture component.
      threshold: "high quality" radius in units of ``std``.

    Returns:
      ``{'modes': captured count, 'num_modes': K, 'high_quality': fraction
      in [0, 1], 'reverse_kl': KL(q ‖ uniform) in nats}``; with no
      high-quality sample, ``reverse_kl`` is ``inf``.
    """
    x, m = np.asarray(samples, np.float64), np.asarray(modes, np.float64)
    if x.ndim != 2 or m.ndim != 2 or x.shape[1] != m.shape[1] or x.shape[0] == 0:
        raise ConfigError(f"mode_coverage needs samples [N > 0, D] and modes [K, D], got {x.shape} and {m.shape}")
    d2 = ((x[:, None, :] - m[None, :, :]) ** 2).sum(-1)
    nearest = d2.argmin(axis=1)
    good = np.sqrt(d2[np.arange(x.shape[0]), nearest]) <= threshold * std
    counts = np.bincount(nearest[good], minlength=m.shape[0])
    if counts.sum() == 0:
        reverse_kl = math.inf
    else:
        q = counts / counts.sum()
        nz = q > 0
        reverse_kl = float(np.sum(q[nz] * np.log(q[nz] * m.shape[0])))
    return {"modes": int((counts > 0).sum()), "num_modes": int(m.shape[0]),
            "high_quality": float(good.mean()), "reverse_kl": reverse_kl}


def ks_distance_normal(values: np.ndarray, mean: float, std: float) -> float:
    """Kolmogorov–Smirnov statistic ``sup |F_n − Φ((x − mean)/std)|`` of ``values`` (any shape)."""
    x = np.sort(np.asarray(values, np.float64).ravel())
    n = x.size
    if n == 0 or not std > 0:
        raise ConfigError(f"KS distance needs values and std > 0, got {n} values and std={std}")
    cdf = ndtr((x - mean) / std)
    i = np.arange(1, n + 1)
    return float(max(np.max(i / n - cdf), np.max(cdf - (i - 1) / n)))


def gaussian_1d_metrics(values: np.ndarray, mean: float, std: float) -> dict[str, float]:
    """``{'gen_mean', 'gen_std', 'ks'}`` of generated values against N(mean, std)."""
    v = np.asarray(values, np.float64)
    return {"gen_mean": float(v.mean()), "gen_std": float(v.std()), "ks": ks_distance_normal(v, mean, std)}
