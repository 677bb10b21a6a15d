"""Inception Score (Salimans et al. 2016) from class probabilities.

``IS = exp(E_x KL(p(y|x) ‖ p(y)))``, computed on ``splits`` (10) equal
chunks; the mean and std over chunks are reported, as in the original code.
With a domain classifier's softmax this is the "classifier score".
"""

from __future__ import annotations

import numpy as np

from ganjax.errors import ConfigError


def inception_score(probs: np.ndarray, splits: int = 10) -> tuple[float, float]:
    """Mean and std of the Inception Score over ``splits`` chunks of ``probs [N, K]``."""
    p = np.asarray(probs, np.float64)
    if p.ndim != 2 or p.shape[0] < splits or splits < 1:
        raise ConfigError(f"inception_score needs probabilities [N >= splits, K], got {p.shape} "
                          f"with splits={splits}")
    scores = []
    for chunk in np.array_split(p, splits):
        marginal = chunk.mean(axis=0, keepdims=True)
        kl = np.where(chunk > 0, chunk * (np.log(np.maximum(chunk, 1e-300)) - np.log(np.maximum(marginal, 1e-300))), 0.0)
        scores.append(np.exp(kl.sum(axis=1).mean()))
    return float(np.mean(scores)), float(np.std(scores))
