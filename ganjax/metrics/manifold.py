"""k-NN manifold metrics on features.

* Improved precision and recall (Kynkäänniemi et al. 2019, k = 3): each set's
  manifold is the union of balls around its points with radius the distance
  to the point's k-th nearest neighbour in the same set. Precision = fraction
  of fake points inside the real manifold; recall = fraction of real points
  inside the fake manifold.
* Density and coverage (Naeem et al. 2020, k = 5): density =
  ``1/(k M) Σ_j Σ_i 1[f_j ∈ B(r_i, NND_k(r_i))]`` (can exceed 1);
  coverage = fraction of real balls that contain at least one fake point.

Distances are Euclidean, computed in float64 in row blocks so 10k × 10k sets
fit in memory.
"""

from __future__ import annotations

import numpy as np

from ganjax.errors import ConfigError

_BLOCK = 1024


def _sq_norms(x: np.ndarray) -> np.ndarray:
    return np.einsum("ij,ij->i", x, x)


def pairwise_distances(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Euclidean distances ``[N, M]`` between ``x [N, D]`` and ``y [M, D]``."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    d2 = _sq_norms(x)[:, None] + _sq_norms(y)[None, :] - 2.0 * x @ y.T
    return np.sqrt(np.clip(d2, 0.0, None))


def knn_radii(x: np.ndarray, k: int) -> np.ndarray:
    """Distance of each row of ``x [N, D]`` to its k-th nearest other row, ``[N]``."""
    x = np.asarray(x, np.float64)
    if not 1 <= k < x.shape[0]:
        raise ConfigError(f"k must be in [1, {x.shape[0] - 1}] for {x.shape[0]} points, got {k}")
    radii = np.empty(x.shape[0])
    for start in range(0, x.shape[0], _BLOCK):
        d = pairwise_distances(x[start:start + _BLOCK], x)
        # Index k, not k - 1: column 0 of the sorted row is the point itself (distance 0).
        radii[start:start + _BLOCK] = np.partition(d, k, axis=1)[:, k]
    return radii


def _ball_counts(points: np.ndarray, centres: np.ndarray, radii: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each point, how many balls contain it; for each ball, whether any point is in it."""
    counts = np.zeros(points.shape[0], np.int64)
    covered = np.zeros(centres.shape[0], bool)
    for start in range(0, points.shape[0], _BLOCK):
        inside = pairwise_distances(points[start:start + _BLOCK], centres) <= radii[None, :]
        counts[start:start + _BLOCK] = inside.sum(axis=1)
        covered |= inside.any(axis=0)
    return counts, covered


def _check(real: np.ndarray, fake: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
        raise ConfigError(f"need feature sets [N, D] of equal D, got {real.shape} and {fake.shape}")
    return real, fake


def precision_recall(real: np.ndarray, fake: np.ndarray, k: int = 3) -> dict[str, float]:
    """Improved precision and recall of ``fake [M, D]`` against ``real [N, D]``."""
    real, fake = _check(real, fake)
    fake_in_real, _ = _ball_counts(fake, real, knn_radii(real, k))
    real_in_fake, _ = _ball_counts(real, fake, knn_radii(fake, k))
    return {"precision": float(np.mean(fake_in_real > 0)), "recall": float(np.mean(real_in_fake > 0))}


def density_coverage(real: np.ndarray, fake: np.ndarray, k: int = 5) -> dict[str, float]:
    """Density and coverage of ``fake [M, D]`` against ``real [N, D]``."""
    real, fake = _check(real, fake)
    counts, covered = _ball_counts(fake, real, knn_radii(real, k))
    return {"density": float(counts.sum() / (k * fake.shape[0])), "coverage": float(covered.mean())}
