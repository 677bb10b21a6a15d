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

They live in the registry :data:`TOY_DATASETS`; :func:`register_dataset`
(also ``ganjax.register_dataset``) adds a researcher's own distribution: a
builder ``builder(**config.data) -> ToyDistribution`` and the data kind that
decides its evaluation metrics.
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from ganjax.data.batches import dataset_options
from ganjax.registry import Registry, RegistrationError, describe, same_definition


@dataclasses.dataclass(frozen=True)
class ToyDistribution:
    """A synthetic distribution that is sampled inside the jitted train step.

    Attributes:
      name: registry name.
      example_shape: shape of one example, e.g. ``(100,)`` or ``(2,)``.
      sample: ``sample(key, n) -> [n, *example_shape]`` float32, jittable.
      sample_labelled: ``sample_labelled(key, n) -> (x [n, *example_shape], labels int32 [n])``
        for distributions with classes (mixtures: the mode index), jittable;
        ``sample(key, n)`` is its ``x``. None: no labels.
      num_classes: the number of classes of ``sample_labelled`` (0: no labels).
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
    sample_labelled: Callable[[jax.Array, int], tuple[jax.Array, jax.Array]] | None = None
    num_classes: int = 0


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
    """An equal-weight isotropic Gaussian mixture with the given centres; a point's class is its mode's index."""
    centres = jnp.asarray(modes)

    def sample_labelled(key: jax.Array, n: int) -> tuple[jax.Array, jax.Array]:
        k_mode, k_noise = jax.random.split(key)
        idx = jax.random.randint(k_mode, (n,), 0, centres.shape[0])
        noise = jax.random.normal(k_noise, (n, centres.shape[1]), jnp.float32)
        return centres[idx] + std * noise, idx.astype(jnp.int32)

    return ToyDistribution(name, (modes.shape[1],), lambda key, n: sample_labelled(key, n)[0], modes=modes,
                           mode_std=std, sample_labelled=sample_labelled, num_classes=int(modes.shape[0]))


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
    replacement (indices from ``key``), with their labels if ``dist`` has
    them. ``num_examples = 0`` returns ``dist``.
    """
    from ganjax.errors import ConfigError

    if not (isinstance(num_examples, int) and not isinstance(num_examples, bool) and num_examples >= 0):
        raise ConfigError(f"config.data.num_examples must be an integer >= 0 (0 = fresh draws), "
                          f"got {num_examples!r}")
    if not (isinstance(sample_seed, int) and not isinstance(sample_seed, bool)):
        raise ConfigError(f"config.data.sample_seed must be an integer, got {sample_seed!r}")
    if num_examples == 0:
        return dist
    if dist.sample_labelled is None:
        points, labels = np.asarray(dist.sample(jax.random.key(sample_seed), num_examples)), None
    else:
        points, labels = map(np.asarray, dist.sample_labelled(jax.random.key(sample_seed), num_examples))

    def sample_labelled(key: jax.Array, n: int) -> tuple[jax.Array, jax.Array | None]:
        idx = jax.random.randint(key, (n,), 0, num_examples)
        return jnp.asarray(points)[idx], None if labels is None else jnp.asarray(labels)[idx]

    return dataclasses.replace(dist, sample=lambda key, n: sample_labelled(key, n)[0],
                               sample_labelled=None if labels is None else sample_labelled)


TOY_KINDS = {  # data kind → the ToyDistribution fields its evaluation metrics need
    "mixture": ("modes", "mode_std"),
    "gaussian_1d": ("mean", "std"),
}
BUILDER_SIGNATURE = "builder(**options) -> ToyDistribution, options being the config's data block"


@dataclasses.dataclass(frozen=True)
class ToyDataset:
    """A registered toy dataset: ``builder(**options) -> ToyDistribution`` and its data ``kind``."""

    builder: Callable[..., ToyDistribution]
    kind: str


def _check_toy(name: str, entry: Any) -> None:
    if not isinstance(entry, ToyDataset):
        raise RegistrationError(f"dataset {name!r}: expected a ToyDataset(builder, kind), got {entry!r}")
    if entry.kind not in TOY_KINDS:
        raise RegistrationError(f"dataset {name!r}: unknown kind {entry.kind!r}; valid choices: "
                                f"{', '.join(TOY_KINDS)}")
    if not callable(entry.builder):
        raise RegistrationError(f"dataset {name!r}: {describe(entry.builder)} is not callable; "
                                f"expected {BUILDER_SIGNATURE}")
    try:
        inspect.signature(entry.builder).bind()
    except TypeError:
        raise RegistrationError(f"dataset {name!r}: {describe(entry.builder)} needs positional arguments; "
                                f"expected {BUILDER_SIGNATURE} (every option with a default)") from None
    except ValueError:
        pass


TOY_DATASETS: Registry[ToyDataset] = Registry(
    "toy dataset", _check_toy, lambda a, b: a.kind == b.kind and same_definition(a.builder, b.builder))


def register_dataset(name: str, builder: Callable[..., ToyDistribution] | None = None, *, kind: str,
                     override: bool = False):
    """Registers a toy distribution as ``dataset = name``; without ``builder``, a decorator.

    ``builder(**options)`` gets the config's ``data`` block as keyword
    options and returns a :class:`ToyDistribution` whose ``sample(key, n)`` is
    jittable (it runs inside the train step). ``kind`` picks the evaluation
    metrics: ``'mixture'`` (the distribution must set ``modes`` and
    ``mode_std``) or ``'gaussian_1d'`` (``mean`` and ``std``). Returns ``builder``.

    Raises:
      RegistrationError: a bad kind or builder, or ``name`` taken (unless ``override``).
    """
    if builder is None:
        return lambda b: register_dataset(name, b, kind=kind, override=override)
    TOY_DATASETS.register(name, ToyDataset(builder, kind), override=override)
    return builder


register_dataset("gaussian_1d", gaussian_1d, kind="gaussian_1d")
register_dataset("ring_2d", lambda num_modes=8, radius=2.0, std=0.02: mixture(
    "ring_2d", ring_modes(num_modes, radius), std), kind="mixture")
register_dataset("grid_2d", lambda side=5, spacing=2.0, std=0.05: mixture(
    "grid_2d", grid_modes(side, spacing), std), kind="mixture")
TOY_DATASETS.mark_builtin()


def make_toy(name: str, **options) -> ToyDistribution:
    """Builds a toy distribution by name with keyword options.

    Args:
      name: a name in ``TOY_DATASETS``.
      **options: ``gaussian_1d``: mean, std, length, sort; ``ring_2d``:
        num_modes, radius, std; ``grid_2d``: side, spacing, std; a registered
        dataset: its builder's keyword arguments; every toy: num_examples,
        sample_seed (:func:`finite_sample`).
    """
    from ganjax.errors import ConfigError

    entry = TOY_DATASETS.lookup(name)
    options = dataset_options(options)  # without the batch-serving keys (on_device, prefetch)
    finite = {k: options.pop(k) for k in ("num_examples", "sample_seed") if k in options}
    try:
        toy = entry.builder(**options)
    except TypeError as e:
        raise ConfigError(f"bad options {sorted(options)} for dataset {name!r}: {e}") from None
    if not isinstance(toy, ToyDistribution):
        raise ConfigError(f"dataset {name!r}: its builder returned {type(toy).__name__}, not a ToyDistribution")
    missing = [f for f in TOY_KINDS[entry.kind] if getattr(toy, f) is None]
    if missing:
        raise ConfigError(f"dataset {name!r} is registered as kind {entry.kind!r}, but its ToyDistribution lacks "
                          f"{', '.join(missing)}")
    return finite_sample(toy, **finite)
