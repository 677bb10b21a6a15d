"""``folder:PATH`` — a folder of PNG/JPEG images, searched recursively.

* Files ending in ``.png``, ``.jpg`` or ``.jpeg`` (any case) below PATH are
  read in sorted path order; other files are ignored.
* Channels: 1 (grayscale) if every image is grayscale (Pillow modes ``L``,
  ``1``, ``LA``, ``I``, ``F``, …), else 3 (every image converted to RGB;
  alpha is dropped). JPEG EXIF orientation is applied.
* Labels: the index of the image's first-level subfolder in sorted order
  (``PATH/cat/1.png`` → the class of ``cat``; images directly in PATH form
  the first class), so ImageNet-style class folders give class labels.
* ``config.data.image_size`` / ``crop`` apply as for every image dataset
  (:mod:`ganjax.data.preprocess`); with ``image_size=0`` every image must have
  the same size after cropping.
* The result is cached as ``.npy`` in ``<data_dir>/ganjax_cache/``, named by
  the folder's name, a digest of its file list (paths, sizes, modification
  times) and the options, so editing the folder invalidates the cache.

The folder has one split, ``train``.
"""

from __future__ import annotations

import hashlib
import os

import numpy as np

from ganjax.data.preprocess import ImageOptions, RowWriter, preprocess_image
from ganjax.errors import ConfigError, DataError

EXTENSIONS = (".png", ".jpg", ".jpeg")
_EXIF_ORIENTATION = 0x0112
_TRANSPOSED_ORIENTATIONS = (5, 6, 7, 8)  # EXIF orientations that swap width and height


def list_images(folder: str) -> list[str]:
    """Sorted paths (relative to ``folder``) of the PNG/JPEG files below it."""
    if not os.path.isdir(folder):
        raise DataError(f"image folder {folder!r} does not exist")
    found = []
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        found += [os.path.relpath(os.path.join(root, f), folder) for f in files
                  if f.lower().endswith(EXTENSIONS)]
    if not found:
        raise DataError(f"image folder {folder!r} holds no {'/'.join(EXTENSIONS)} files")
    return sorted(found)


def _header(path: str) -> tuple[bool, tuple[int, int]]:
    """``(is_grayscale, (height, width))`` of one image, reading only its header."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            width, height = img.size
            if img.getexif().get(_EXIF_ORIENTATION, 1) in _TRANSPOSED_ORIENTATIONS:
                width, height = height, width
            return Image.getmodebase(img.mode) == "L", (height, width)
    except Exception as e:  # noqa: BLE001 - Pillow raises many types for bad files
        raise DataError(f"cannot read image {path}: {type(e).__name__}: {e}") from None


def _read(path: str, grayscale: bool) -> np.ndarray:
    """One image as uint8 ``[H, W, 1]`` (grayscale) or ``[H, W, 3]``."""
    from PIL import Image, ImageOps

    try:
        with Image.open(path) as img:
            img = ImageOps.exif_transpose(img).convert("L" if grayscale else "RGB")
            array = np.asarray(img, np.uint8)
    except Exception as e:  # noqa: BLE001
        raise DataError(f"cannot read image {path}: {type(e).__name__}: {e}") from None
    return array[..., None] if grayscale else array


def folder_fingerprint(folder: str, paths: list[str] | None = None) -> str:
    """12 hex digits of sha256 over the image files' relative paths, sizes and modification times."""
    paths = list_images(folder) if paths is None else paths
    h = hashlib.sha256()
    for rel in paths:
        st = os.stat(os.path.join(folder, rel))
        h.update(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:12]


def _tops(paths: list[str]) -> list[str]:
    """Each image's first-level subfolder (``''`` for images directly in the folder)."""
    return [p.split(os.sep)[0] if os.sep in p else "" for p in paths]


def _labels(paths: list[str]) -> np.ndarray:
    tops = _tops(paths)
    index = {name: i for i, name in enumerate(sorted(set(tops)))}
    return np.array([index[t] for t in tops], np.int64)


def folder_classes(folder: str) -> list[str]:
    """The class names of a folder: its sorted first-level subfolders holding images (class ``i`` is the
    ``i``-th; ``''`` names the images directly in ``folder``); ``[]`` if it has no class subfolders."""
    names = sorted(set(_tops(list_images(folder))))
    return names if any(names) else []


def _check_sizes(folder: str, paths: list[str], sizes: list[tuple[int, int]], options: ImageOptions) -> None:
    out = [options.output_hw(*hw) for hw in sizes]
    for rel, hw, o in zip(paths, sizes, out):
        if o != out[0]:
            raise DataError(f"images in {folder!r} have different sizes ({paths[0]}: {sizes[0][0]}x{sizes[0][1]}, "
                            f"{rel}: {hw[0]}x{hw[1]}); set config.data.image_size to resize them to one size")


def load_image_folder(folder: str, split: str, options: ImageOptions, cache_dir: str | None
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Images uint8 ``[N, H, W, C]`` and labels int64 ``[N]`` of a folder (see module docstring).

    Args:
      folder: the folder (searched recursively).
      split: must be ``'train'``.
      options: crop/resize options.
      cache_dir: where the ``.npy`` cache goes (None: no cache).
    """
    if split != "train":
        raise ConfigError(f"unknown split {split!r} for image folder {folder!r}; valid splits: train")
    paths = list_images(folder)
    name = os.path.basename(os.path.normpath(folder)) or "root"
    stem = f"folder-{name}-{folder_fingerprint(folder, paths)}{options.tag()}"
    image_cache = os.path.join(cache_dir, stem + "-images.npy") if cache_dir else None
    labels = _labels(paths)
    if image_cache and os.path.exists(image_cache):
        return np.load(image_cache), labels
    headers = [_header(os.path.join(folder, p)) for p in paths]
    grayscale = all(gray for gray, _ in headers)
    _check_sizes(folder, paths, [hw for _, hw in headers], options)
    with RowWriter(len(paths), image_cache, lambda i: os.path.join(folder, paths[i])) as writer:
        for rel in paths:
            writer.add(preprocess_image(_read(os.path.join(folder, rel), grayscale), options)[None])
        return writer.finish(), labels
