"""Inception Score (Salimans et al. 2016) from class probabilities.

``IS = exp(E_x KL(p(y|x) ‖ p(y)))``, computed on ``splits`` (10) equal
chunks; the mean and std over chunks are reported, as in the original code.
With a domain classifier's softmax this is the "classifier score".

:func:`class_coverage` reads the same probabilities as a mode count: the
classes the generator's samples are assigned to, and how far that histogram
is from uniform (the Stacked-MNIST protocol of VEEGAN'17 / PacGAN'18, here on
the domain classifier's classes).
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


CLASS_MIN_SHARE = 0.1  # a class is covered by >= 10% of its uniform share of the samples (1% for 10 classes)


def class_coverage(probs: np.ndarray, min_share: float = CLASS_MIN_SHARE) -> dict[str, float]:
    """Classes covered and the class histogram's KL to uniform, from ``probs [N, K]``.

    Each sample is assigned its argmax class; ``q`` is the histogram of those
    classes over the ``N`` samples. Returns ``classes``, the number of classes
    with ``q_k >= min_share / K``, and ``class_kl`` = KL(q ‖ uniform) =
    ``log K − H(q)`` (0 for a perfectly balanced generator, ``log K`` when
    every sample falls in one class).
    """
    p = np.asarray(probs, np.float64)
    if p.ndim != 2 or p.shape[0] < 1 or p.shape[1] < 2:
        raise ConfigError(f"class_coverage needs probabilities [N >= 1, K >= 2], got {p.shape}")
    k = p.shape[1]
    q = np.bincount(p.argmax(axis=1), minlength=k) / p.shape[0]
    nonzero = q[q > 0]
    return {"classes": int((q >= min_share / k).sum()), "class_kl": float(np.log(k) + (nonzero * np.log(nonzero)).sum())}
