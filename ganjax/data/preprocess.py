"""Image preprocessing options (``config.data.image_size``, ``config.data.crop``) and their application.

Every loader of real images (training data, the evaluator's real split)
applies the same :class:`ImageOptions` with :func:`preprocess_image`, once at
load time:

1. ``crop='center'``: the largest centred square (``side = min(H, W)``, top
   ``(H - side) // 2``, left ``(W - side) // 2``);
2. ``image_size > 0``: resize to ``image_size × image_size`` with Pillow's
   bilinear filter, which is antialiased when downscaling (its kernel widens
   with the scale factor, as ``torchvision.transforms.Resize(antialias=True)``)
   and deterministic. Each channel is resized on its own, so any channel count
   works.

:class:`RowWriter` stacks preprocessed images into uint8 ``[N, H, W, C]``,
optionally straight into an ``.npy`` file, so the full-size originals are
never held all at once.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from typing import Any, Callable, Mapping

import numpy as np

from ganjax.data.batches import dataset_options
from ganjax.errors import ConfigError, DataError, unknown_name

CROPS = ("none", "center")
IMAGE_OPTION_KEYS = ("image_size", "crop")


@dataclasses.dataclass(frozen=True)
class ImageOptions:
    """How real images are cropped and resized at load time.

    Attributes:
      image_size: output side in pixels; 0 keeps the native size (which must
        then be the same for every image).
      crop: ``'none'`` or ``'center'`` (the centred square, before resizing).
    """

    image_size: int = 0
    crop: str = "none"

    @property
    def is_identity(self) -> bool:
        """True when images pass through unchanged."""
        return self.image_size == 0 and self.crop == "none"

    def tag(self) -> str:
        """``''`` for the identity, else e.g. ``'-64px-center'``: part of cache file names."""
        if self.is_identity:
            return ""
        return f"-{self.image_size or 'native'}{'px' if self.image_size else ''}-{self.crop}"

    def output_hw(self, height: int, width: int) -> tuple[int, int]:
        """The ``(H, W)`` an image of ``height × width`` has after preprocessing."""
        if self.image_size:
            return self.image_size, self.image_size
        if self.crop == "center":
            side = min(height, width)
            return side, side
        return height, width


def image_options(options: Mapping[str, Any] | None, dataset: str) -> ImageOptions:
    """Validates ``config.data`` for an image dataset; raises ``ConfigError`` naming the bad key or value."""
    options = dataset_options(options)  # without the batch-serving keys (on_device, prefetch)
    for key in options:
        if key not in IMAGE_OPTION_KEYS:
            raise ConfigError(f"unknown config.data key {key!r} for image dataset {dataset!r}; valid keys: "
                              f"{', '.join(IMAGE_OPTION_KEYS)} (other keys are toy-dataset options)")
    size = options.get("image_size", 0)
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise ConfigError(f"config.data.image_size must be an integer >= 0 (0 = native size), got {size!r}")
    crop = options.get("crop", "none")
    if crop not in CROPS:
        raise unknown_name("config.data.crop", crop, CROPS)
    return ImageOptions(image_size=size, crop=crop)


def center_crop_box(height: int, width: int) -> tuple[int, int, int]:
    """``(top, left, side)`` of the centred square of a ``height × width`` image."""
    side = min(height, width)
    return (height - side) // 2, (width - side) // 2, side


def preprocess_image(image: np.ndarray, options: ImageOptions) -> np.ndarray:
    """Crops and resizes one uint8 image ``[H, W, C]`` → ``[H', W', C]`` (see module docstring)."""
    if options.crop == "center":
        top, left, side = center_crop_box(*image.shape[:2])
        image = image[top:top + side, left:left + side]
    size = options.image_size
    if size and image.shape[:2] != (size, size):
        from PIL import Image

        image = np.stack([np.asarray(Image.fromarray(np.ascontiguousarray(image[..., c]))
                                     .resize((size, size), Image.Resampling.BILINEAR))
                          for c in range(image.shape[-1])], axis=-1)
    return np.ascontiguousarray(image, np.uint8)


class RowWriter:
    """Collects uint8 rows ``[b, H, W, C]`` into one ``[count, H, W, C]`` array.

    With ``path``, the rows go straight into that ``.npy`` file (written under
    a temporary name and renamed when complete), so memory holds one batch at
    a time until :meth:`finish` loads the result. With ``count=None`` (size not
    known in advance) the rows are concatenated in memory.

    Args:
      count: number of rows expected (or None).
      path: ``.npy`` file to write (or None: in memory).
      describe: ``describe(i)`` names row ``i`` in error messages.
    """

    def __init__(self, count: int | None, path: str | None, describe: Callable[[int], str]):
        self.count, self.path, self.describe = count, path, describe
        self.filled = 0
        self._out: np.ndarray | None = None
        self._parts: list[np.ndarray] = []
        self._tmp: str | None = None

    def _allocate(self, row_shape: tuple[int, ...]) -> None:
        shape = (self.count, *row_shape)
        if self.path is None:
            self._out = np.empty(shape, np.uint8)
            return
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        fd, self._tmp = tempfile.mkstemp(dir=os.path.dirname(self.path), suffix=".npy")
        os.close(fd)
        self._out = np.lib.format.open_memmap(self._tmp, mode="w+", dtype=np.uint8, shape=shape)

    def add(self, rows: np.ndarray) -> None:
        """Appends ``rows [b, H, W, C]`` (every row must have the first row's shape)."""
        first = self._out if self._out is not None else (self._parts[0] if self._parts else None)
        if first is None:
            if self.count is not None:
                self._allocate(rows.shape[1:])
            first = rows
        if rows.shape[1:] != first.shape[1:]:
            raise DataError(f"{self.describe(self.filled)} has shape {rows.shape[1:]} after preprocessing, "
                            f"earlier images {first.shape[1:]}; set config.data.image_size to give all one size")
        if self.count is None:
            self._parts.append(np.asarray(rows, np.uint8))
        else:
            if self.filled + len(rows) > self.count:
                raise DataError(f"{self.describe(self.filled)}: more images than the {self.count} announced")
            self._out[self.filled:self.filled + len(rows)] = rows
        self.filled += len(rows)

    def finish(self) -> np.ndarray:
        """The stacked uint8 ``[N, H, W, C]`` (also saved at ``path`` when given)."""
        if self.filled == 0:
            raise DataError("no images to load")
        if self.count is None:
            out = np.concatenate(self._parts)
            if self.path is not None:
                save_atomic(self.path, out)
            return out
        if self.filled != self.count:
            self.discard()
            raise DataError(f"got {self.filled} images, expected {self.count}")
        if self.path is None:
            return self._out
        self._out.flush()
        del self._out
        os.replace(self._tmp, self.path)
        self._tmp = None
        return np.load(self.path)

    def __enter__(self) -> "RowWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.discard()

    def discard(self) -> None:
        """Removes a half-written temporary file (after an error)."""
        self._out = None
        if self._tmp and os.path.exists(self._tmp):
            os.remove(self._tmp)


def save_atomic(path: str, array: np.ndarray) -> None:
    """``np.save`` to ``path`` via a temporary file in the same folder and a rename."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), suffix=".npy")
    with os.fdopen(fd, "wb") as f:
        np.save(f, array)
    os.replace(tmp, path)


def preprocess_stack(images: np.ndarray, options: ImageOptions, chunk: int = 1024) -> np.ndarray:
    """:func:`preprocess_image` over uint8 ``[N, H, W, C]`` in chunks → ``[N, H', W', C]``."""
    if options.is_identity:
        return images
    with RowWriter(len(images), None, lambda i: f"image {i}") as writer:
        for start in range(0, len(images), chunk):
            writer.add(np.stack([preprocess_image(x, options) for x in images[start:start + chunk]]))
        return writer.finish()
