"""Datasets: built-in toy distributions and image datasets.

``make_dataset(config)`` resolves ``config.dataset``:

* ``gaussian_1d``, ``ring_2d``, ``grid_2d`` — toy distributions sampled inside
  the jitted step (options in ``config.data``), see :mod:`ganjax.data.toy`;
* ``mnist``, ``fashion_mnist``, ``cifar10``, ``celeb_a``, ``cats_vs_dogs`` or
  another TFDS image dataset by name, ``idx:PATH`` and ``folder:PATH`` —
  images held in memory as uint8 ``[N, H, W, C]`` and served in seeded,
  resumable batches, see :mod:`ganjax.data.images` and
  :mod:`ganjax.data.batches`. Their ``config.data`` options are exactly
  ``image_size`` and ``crop`` (:mod:`ganjax.data.preprocess`).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

import numpy as np

from ganjax.data.preprocess import ImageOptions, image_options
from ganjax.data.toy import TOY_DATASETS, ToyDistribution, make_toy


@dataclasses.dataclass(frozen=True)
class Dataset:
    """A resolved dataset: either a toy sampler or an in-memory image array.

    Attributes:
      name: the config's dataset name.
      example_shape: shape of one example (``(H, W, C)`` for images).
      toy: the toy distribution (None for image data).
      images: uint8 ``[N, H, W, C]`` training images (None for toy data).
      image_options: the crop/resize applied to every real image (the
        evaluator's real split uses the same).
    """

    name: str
    example_shape: tuple[int, ...]
    toy: ToyDistribution | None = None
    images: np.ndarray | None = None
    image_options: ImageOptions = ImageOptions()

    @property
    def is_toy(self) -> bool:
        return self.toy is not None


def image_options_of(name: str, options: Mapping[str, Any] | None) -> ImageOptions:
    """The validated :class:`ImageOptions` of an image dataset's ``config.data`` (identity for toys)."""
    return ImageOptions() if name in TOY_DATASETS else image_options(options, name)


def check_dataset_name(name: str) -> None:
    """Refuses (``ConfigError``) a dataset name that is neither built in, ``idx:``/``folder:``, nor known to TFDS."""
    if name not in TOY_DATASETS:
        from ganjax.data.images import check_dataset_name as check_image_dataset

        check_image_dataset(name)


def make_dataset(name: str, options: Mapping[str, Any] | None = None, data_dir: str | None = None,
                 split: str = "train") -> Dataset:
    """Builds the dataset named ``name`` (see module docstring); ``options`` is ``config.data``."""
    options = dict(options or {})
    if name in TOY_DATASETS:
        toy = make_toy(name, **options)
        return Dataset(name, toy.example_shape, toy=toy)
    from ganjax.data.images import load_images

    preprocessing = image_options(options, name)
    images, _ = load_images(name, split=split, data_dir=data_dir, options=preprocessing)
    return Dataset(name, tuple(images.shape[1:]), images=images, image_options=preprocessing)
