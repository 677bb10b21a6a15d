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

Labels (class-conditional GANs, ``model.num_classes > 0``): image datasets
carry int32 ``labels [N]`` (TFDS ``label``, IDX label files, ``folder:``
class subfolders in sorted order), served with the images in the same seeded
batches; the toy mixtures label each point with its mode's index, drawn in the
step. ``Dataset.num_classes`` is 0 for a dataset without labels.
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
      labels: int32 ``[N]`` class labels of ``images`` (None: none, or toy data).
      num_classes: the number of classes of the labels (0: no labels; None:
        unknown, e.g. a dataset rebuilt from a checkpoint's shape alone).
    """

    name: str
    example_shape: tuple[int, ...]
    toy: ToyDistribution | None = None
    images: np.ndarray | None = None
    image_options: ImageOptions = ImageOptions()
    labels: np.ndarray | None = None
    num_classes: int | None = None

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
        return Dataset(name, toy.example_shape, toy=toy, num_classes=toy.num_classes if toy.sample_labelled else 0)
    from ganjax.data.images import label_classes, load_images

    preprocessing = image_options(options, name)
    images, labels = load_images(name, split=split, data_dir=data_dir, options=preprocessing)
    num_classes = label_classes(name, labels, data_dir)
    return Dataset(name, tuple(images.shape[1:]), images=images, image_options=preprocessing,
                   labels=labels.astype(np.int32) if num_classes else None, num_classes=num_classes)
