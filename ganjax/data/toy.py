"""Built-in toy distributions: jittable samplers, no files.

* ``gaussian_1d`` — seed 003: each example is a vector of ``length`` draws of
  N(mean, std), sorted ascending (the seed sorts them "so training is
  smoother"). ``length=1`` gives the plain per-sample 1-D problem of
  Goodfellow et al. (2014), Figure 1.
* ``ring_2d`` — 8 Gaussians evenly spaced on a circle of radius 2, std 0.02
  (VEEGAN'17 / PacGAN'18 "2D-ring").
* ``grid_2d`` — 25 Gaussians on the grid {-4, -2, 0, 2, 4}², std 0.05
  (VEEGAN'17 / PacGAN'18 "2D-grid").

Every toy takes ``num_examples`` (default 0: a fresh draw from the
distribution for every batch) and ``sample_seed``: with ``num_examples = N >
0`` the data set is one fixed sample of ``N`` points drawn once with
``key(sample_seed)``, and batches are drawn uniformly, with replacement, from
it — a finite training set, as PacGAN'18's 100,000 points (see
:func:`finite_sample`).
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np


@dataclasses.dataclass(frozen=True)
class ToyDistribution:
    """A synthetic distribution that is sampled inside the jitted train step.

    Attributes:
      name: registry name.
      example_shape: shape of one example, e.g. ``(100,)`` or ``(2,)``.
      sample: ``sample(key, n) -> [n, *example_shape]`` float32, jittable.
      modes: ``[M, D]`` mode centres for mixtures (None otherwise).
      mode_std: the std of each mixture component (None otherwise).
      mean: target mean for 1-D Gaussians (None otherwise).
      std: target std for 1-D Gaussians (None otherwise).
    """

    name: str
    example_shape: tuple[int, ...]
    sample: Callable[[jax.Array, int], jax.Array]
    modes: np.ndarray | None = None
    mode_std: float | None = None
    mean: float | None = None
    std: float | None = None


def ring_modes(num_modes: int = 8, radius: float = 2.0) -> np.ndarray:
    """Centres of the ring mixture, ``[num_modes, 2]``."""
    angles = 2.0 * np.pi * np.arange(num_modes) / num_modes
    return np.stack([radius * np.cos(angles), radius * np.sin(angles)], axis=1).astype(np.float32)


def grid_modes(side: int = 5, spacing: float = 2.0) -> np.ndarray:
    """Centres of the grid mixture, ``[side**2, 2]``, centred on the origin."""
    coords = (np.arange(side) - (side - 1) / 2.0) * spacing
    xs, ys = np.meshgrid(coords, coords, indexing="ij")
    return np.stack([xs.ravel(), ys.ravel()], axis=1).astype(np.float32)


def mixture(name: str, modes: np.ndarray, std: float) -> ToyDistribution:
    """An equal-weight isotropic Gaussian mixture with the given centres."""
    centres = jnp.asarray(modes)

    def sample(key: jax.Array, n: int) -> jax.Array:
        k_mode, k_noise = jax.random.split(key)
        idx = jax.random.randint(k_mode, (n,), 0, centres.shape[0])
        noise = jax.random.normal(k_noise, (n, centres.shape[1]), jnp.float32)
        return centres[idx] + std * noise

    return ToyDistribution(name, (modes.shape[1],), sample, modes=modes, mode_std=std)


def gaussian_1d(mean: float = 4.0, std: float = 1.5, length: int = 100,
                sort: bool = True) -> ToyDistribution:
    """Seed 003's data: vectors of ``length`` sorted draws of N(mean, std)."""

    def sample(key: jax.Array, n: int) -> jax.Array:
        x = mean + std * jax.random.normal(key, (n, length), jnp.float32)
        return jnp.sort(x, axis=1) if sort else x

    return ToyDistribution("gaussian_1d", (length,), sample, mean=mean, std=std)


def finite_sample(dist: ToyDistribution, num_examples: int = 0, sample_seed: int = 0) -> ToyDistribution:
    """``dist`` restricted to one fixed sample of ``num_examples`` points.

    The points are ``dist.sample(key(sample_seed), num_examples)``, drawn
    once; ``sample(key, n)`` then returns ``n`` of them chosen uniformly with
    replacement (indices from ``key``). ``num_examples = 0`` returns ``dist``.
    """
    from ganjax.errors import ConfigError

    if not (isinstance(num_examples, int) and not isinstance(num_examples, bool) and num_examples >= 0):
        raise ConfigError(f"config.data.num_examples must be an integer >= 0 (0 = fresh draws), "
                          f"got {num_examples!r}")
    if not (isinstance(sample_seed, int) and not isinstance(sample_seed, bool)):
        raise ConfigError(f"config.data.sample_seed must be an integer, got {sample_seed!r}")
    if num_examples == 0:
        return dist
    points = np.asarray(dist.sample(jax.random.key(sample_seed), num_examples))

    def sample(key: jax.Array, n: int) -> jax.Array:
        return jnp.asarray(points)[jax.random.randint(key, (n,), 0, num_examples)]

    return dataclasses.replace(dist, sample=sample)


def make_toy(name: str, **options) -> ToyDistribution:
    """Builds a toy distribution by name with keyword options.

    Args:
      name: one of ``TOY_DATASETS``.
      **options: ``gaussian_1d``: mean, std, length, sort; ``ring_2d``:
        num_modes, radius, std; ``grid_2d``: side, spacing, std; every toy:
        num_examples, sample_seed (:func:`finite_sample`).
    """
    from ganjax.errors import ConfigError, unknown_name

    builders: dict[str, Callable[..., ToyDistribution]] = {
        "gaussian_1d": gaussian_1d,
        "ring_2d": lambda num_modes=8, radius=2.0, std=0.02: mixture(
            "ring_2d", ring_modes(num_modes, radius), std),
        "grid_2d": lambda side=5, spacing=2.0, std=0.05: mixture(
            "grid_2d", grid_modes(side, spacing), std),
    }
    if name not in builders:
        raise unknown_name("toy dataset", name, builders)
    options = dict(options)
    finite = {k: options.pop(k) for k in ("num_examples", "sample_seed") if k in options}
    try:
        dist = builders[name](**options)
    except TypeError as e:
        raise ConfigError(f"bad options {sorted(options)} for dataset {name!r}: {e}") from None
    return finite_sample(dist, **finite)


TOY_DATASETS = ("gaussian_1d", "ring_2d", "grid_2d")
