"""What ``ganjax.sample`` generates from: class labels (``--labels``, ``--per_class``) and noise
(``--truncation``), checked against the GAN, and the class-by-row layout of the picture.

* ``--labels=3,3,7``: one sample per listed label; ``--per_class=K``: K samples of every class.
  Either needs a class-conditional run (``model.num_classes > 0``); a label outside
  ``0 … num_classes − 1`` is refused.
* ``--truncation=t``: the truncation trick (Brock et al. 2018): z from a standard normal truncated
  to ``[−t, t]`` (each coordinate redrawn until inside, i.e. the truncated normal), for generators
  whose class sets ``supports_truncation = True`` and whose noise is ``normal``.
* A picture of labelled image samples has one row per class (classes in order of first
  appearance, each row in the order given), shorter rows padded with blank tiles.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ganjax.errors import ConfigError
from ganjax.train import GAN


def parse_labels(text: str, num_classes: int) -> np.ndarray:
    """``'3,3,7'`` → int32 ``[3]``; refuses a non-integer or a label outside ``[0, num_classes)``."""
    if not num_classes:
        raise ConfigError("--labels needs a class-conditional run (model.num_classes > 0); this run is unconditional")
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts or not all(p.lstrip("-").isdigit() for p in parts):
        raise ConfigError(f"--labels={text!r} must be a comma list of integer class labels, e.g. --labels=3,3,7")
    labels = np.array([int(p) for p in parts], np.int32)
    bad = [int(x) for x in labels if not 0 <= x < num_classes]
    if bad:
        raise ConfigError(f"label {bad[0]} in --labels is out of range: model.num_classes = {num_classes}, "
                          f"valid labels 0..{num_classes - 1}")
    return labels


def requested_labels(gan: GAN, labels: str | None, per_class: int | None) -> np.ndarray | None:
    """The labels of the samples to draw: from ``--labels``, from ``--per_class`` (``[C · K]``: K of class 0,
    then K of class 1, …), or None (unconditional run, or neither flag: ``--num`` balanced samples)."""
    if labels and per_class:
        raise ConfigError("give --labels or --per_class, not both")
    if labels:
        return parse_labels(labels, gan.num_classes)
    if per_class is None:
        return None
    if not gan.num_classes:
        raise ConfigError("--per_class needs a class-conditional run (model.num_classes > 0); this run is "
                          "unconditional")
    if per_class <= 0:
        raise ConfigError(f"--per_class must be > 0, got {per_class}")
    return np.repeat(np.arange(gan.num_classes, dtype=np.int32), per_class)


def truncation_names() -> list[str]:
    """The registered generators that support the truncation trick."""
    from ganjax.models import GENERATORS

    return sorted(n for n in GENERATORS if getattr(GENERATORS[n], "supports_truncation", False))


def sample_noise(gan: GAN, key: jax.Array, n: int, truncation: float | None = None,
                 generator_name: str = "") -> jax.Array:
    """``[n, z_dim]`` noise: the GAN's own distribution, or with ``truncation = t > 0`` a standard normal
    truncated to ``[−t, t]`` (refused for generators without ``supports_truncation`` and non-normal noise)."""
    if truncation is None:
        return gan.sample_noise(key, n)
    if not getattr(type(gan.generator), "supports_truncation", False):
        raise ConfigError(f"generator {generator_name or type(gan.generator).__name__!r} does not support "
                          f"--truncation; generators that do: {', '.join(truncation_names()) or 'none'}")
    if gan.noise != "normal":
        raise ConfigError(f"--truncation truncates normal noise, but this run's model.noise is {gan.noise!r}")
    if not truncation > 0:
        raise ConfigError(f"--truncation must be > 0, got {truncation}")
    return jax.random.truncated_normal(key, -truncation, truncation, (n, gan.z_dim), jnp.float32)


def class_rows(samples: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, int]:
    """Images ``[N, H, W, C]`` of classes ``labels [N]`` → ``(tiles [R·W, H, W, C], W)``: one row of width
    ``W`` (the largest class count) per class in order of first appearance, blank tiles (−1) after."""
    classes = list(dict.fromkeys(int(x) for x in labels))
    rows = [samples[labels == c] for c in classes]
    width = max(len(r) for r in rows)
    blank = -np.ones((1, *samples.shape[1:]), samples.dtype)
    tiles = [np.concatenate([r] + [blank] * (width - len(r))) for r in rows]
    return np.concatenate(tiles), width
