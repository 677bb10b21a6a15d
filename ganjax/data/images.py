"""Image datasets: TensorFlow Datasets (with offline preparation) and IDX folders.

``load_images(name, split, data_dir)`` returns uint8 ``[N, H, W, C]`` images
and int64 ``[N]`` labels for:

* ``mnist``, ``fashion_mnist`` and any other TFDS image dataset with
  fixed-size images, prepared in the TFDS data dir (``config.data_dir``, else
  ``$TFDS_DATA_DIR``, else ``~/tensorflow_datasets``);
* ``idx:PATH`` — a folder of MNIST-format IDX files
  (``train-images-idx3-ubyte[.gz]``, ``train-labels-idx1-ubyte[.gz]``,
  ``t10k-…`` for ``split='test'``), read directly.

Offline preparation. TFDS's own ``fashion_mnist``/``mnist`` builders download
the four IDX files and check registered checksums. On a machine without
internet, ganjax prepares the *same* TFDS dataset (same name, version,
features and split sizes, in the standard ``<data_dir>/fashion_mnist/3.0.1``
layout) with a subclass of TFDS's builder whose only change is that it reads
the IDX files from a local folder instead of downloading them: for
Fashion-MNIST, ``$GANJAX_FASHION_MNIST_DIR`` or the Debian package
``dataset-fashion-mnist``'s ``/usr/share/datasets/fashion-mnist/``; for MNIST,
``$GANJAX_MNIST_DIR``. (Debian recompresses the .gz files, so their bytes, not
their contents, differ from upstream and TFDS's checksums cannot be used.)
Prepared datasets are also cached as ``.npy`` arrays in
``<data_dir>/ganjax_cache/`` so later runs load in well under a second.
"""

from __future__ import annotations

import gzip
import logging
import os
import tempfile

import numpy as np

from ganjax.errors import ConfigError, DataError

log = logging.getLogger("ganjax")

IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
LOCAL_DIRS = {  # dataset → (environment variable, default folder or None)
    "fashion_mnist": ("GANJAX_FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist"),
    "mnist": ("GANJAX_MNIST_DIR", None),
}
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
               0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


def read_idx(path: str) -> np.ndarray:
    """Parses one IDX file (raw or .gz) into an array of its declared shape."""
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as e:
        raise DataError(f"cannot read IDX file {path}: {e}") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise DataError(f"{path} is not an IDX file (bad magic number)")
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{path} is truncated (header of {ndim} dimensions incomplete)")
    shape = tuple(int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_IDX_DTYPES[data[2]])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(data) - header != expected:
        raise DataError(f"{path} is truncated or corrupt: {len(data) - header} data bytes, "
                        f"its header {shape} needs {expected}")
    return np.frombuffer(data, dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def _find(folder: str, stem: str) -> str | None:
    for candidate in (stem, stem + ".gz"):
        path = os.path.join(folder, candidate)
        if os.path.exists(path):
            return path
    return None


def _idx_paths(folder: str, split: str) -> tuple[str, str]:
    if split not in IDX_FILES:
        raise ConfigError(f"unknown split {split!r} for IDX data; valid splits: {', '.join(IDX_FILES)}")
    paths = [_find(folder, stem) for stem in IDX_FILES[split]]
    if None in paths:
        missing = [stem for stem, p in zip(IDX_FILES[split], paths) if p is None]
        raise DataError(f"{folder} lacks {', '.join(m + '[.gz]' for m in missing)} (MNIST-format IDX files)")
    return paths[0], paths[1]


def load_idx_folder(folder: str, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """Images uint8 ``[N, H, W, 1]`` and labels int64 ``[N]`` from an IDX folder."""
    if not os.path.isdir(folder):
        raise DataError(f"IDX folder {folder!r} does not exist")
    image_path, label_path = _idx_paths(folder, split)
    images, labels = read_idx(image_path), read_idx(label_path)
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4 or images.dtype != np.uint8:
        raise DataError(f"{image_path} holds {images.dtype} {images.shape}, expected uint8 images [N, H, W]")
    if labels.shape[0] != images.shape[0]:
        raise DataError(f"{label_path} has {labels.shape[0]} labels for {images.shape[0]} images")
    return images, labels.astype(np.int64)


def _local_folder(name: str) -> str | None:
    """The local IDX folder for ``name`` if one is configured and complete."""
    if name not in LOCAL_DIRS:
        return None
    env, default = LOCAL_DIRS[name]
    folder = os.environ.get(env) or default
    if folder and all(_find(folder, s) for stems in IDX_FILES.values() for s in stems):
        return folder
    return None


def _missing_data_message(name: str, data_dir: str, cause: str) -> str:
    if name in LOCAL_DIRS:
        env, default = LOCAL_DIRS[name]
        files = ", ".join(s + ".gz" for stems in IDX_FILES.values() for s in stems)
        debian = " (`apt-get install dataset-fashion-mnist` puts them in " + default + ")" if default else ""
        return (f"dataset {name!r} is not prepared in {data_dir} and could not be downloaded ({cause}); "
                f"put {files} in a folder and set ${env} to it{debian}, or run once with internet access")
    return (f"dataset {name!r} is not prepared in {data_dir} and could not be downloaded ({cause}); "
            f"run once with internet access, or copy a prepared TFDS folder {name}/ into {data_dir}")


def _local_builder_class(name: str, folder: str):
    """TFDS's own builder for ``name`` with downloads replaced by a local IDX folder."""
    import tensorflow_datasets as tfds

    parents = {"mnist": tfds.image_classification.MNIST, "fashion_mnist": tfds.image_classification.FashionMNIST}

    class LocalIdxBuilder(parents[name], skip_registration=True):
        def _split_generators(self, dl_manager):
            del dl_manager
            extracted = tempfile.mkdtemp(prefix=f"ganjax_{name}_")
            paths = {}
            for split, stems in IDX_FILES.items():
                for kind, stem in zip(("data", "labels"), stems):
                    source, target = _find(folder, stem), os.path.join(extracted, stem)
                    opener = gzip.open if source.endswith(".gz") else open
                    with opener(source, "rb") as src, open(target, "wb") as dst:
                        dst.write(src.read())
                    paths[f"{split}_{kind}"] = target
            return [
                tfds.core.SplitGenerator(name=split, gen_kwargs=dict(
                    num_examples=int(read_idx(paths[f"{split}_labels"]).shape[0]),
                    data_path=paths[f"{split}_data"], label_path=paths[f"{split}_labels"]))
                for split in IDX_FILES
            ]

    LocalIdxBuilder.name = name
    return LocalIdxBuilder


def _cache_paths(data_dir: str, name: str, version: str, split: str) -> tuple[str, str]:
    stem = os.path.join(data_dir, "ganjax_cache", f"{name}-{version}-{split}")
    return stem + "-images.npy", stem + "-labels.npy"


def _save_atomic(path: str, array: np.ndarray) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), suffix=".npy")
    with os.fdopen(fd, "wb") as f:
        np.save(f, array)
    os.replace(tmp, path)


def _load_tfds(name: str, split: str, data_dir: str) -> tuple[np.ndarray, np.ndarray]:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow_datasets as tfds

    tfds.disable_progress_bar()
    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except Exception as e:  # DatasetNotFoundError and friends
        if "not found" in str(e).lower():
            raise ConfigError(f"unknown dataset {name!r}; valid choices: gaussian_1d, ring_2d, grid_2d, "
                              f"mnist, fashion_mnist, idx:PATH, or a TFDS image dataset name") from None
        raise DataError(f"cannot open TFDS dataset {name!r}: {str(e).splitlines()[0]}") from None
    version = str(builder.info.version)
    image_cache, label_cache = _cache_paths(data_dir, name, version, split)
    if os.path.exists(image_cache) and os.path.exists(label_cache):
        return np.load(image_cache), np.load(label_cache)
    if not builder.is_prepared():
        folder = _local_folder(name)
        if folder is not None:
            log.info("preparing TFDS %s %s in %s from local IDX files in %s", name, version, data_dir, folder)
            builder = _local_builder_class(name, folder)(data_dir=data_dir)
            builder.download_and_prepare()
        else:
            try:
                builder.download_and_prepare()
            except Exception as e:
                raise DataError(_missing_data_message(name, data_dir, f"{type(e).__name__}: "
                                                      f"{str(e).splitlines()[0][:120] if str(e) else ''}")) from None
    splits = list(builder.info.splits.keys())
    if split not in splits:
        raise ConfigError(f"unknown split {split!r} for dataset {name!r}; valid splits: {', '.join(splits)}")
    shape = builder.info.features["image"].shape
    if any(d is None for d in shape):
        raise DataError(f"dataset {name!r} has images of varying size {shape}; resizing is not supported yet")
    data = tfds.as_numpy(builder.as_dataset(split=split, batch_size=-1))
    images = np.asarray(data["image"], np.uint8)
    labels = np.asarray(data["label"], np.int64) if "label" in data else np.zeros(len(images), np.int64)
    _save_atomic(image_cache, images)
    _save_atomic(label_cache, labels)
    return images, labels


def default_data_dir() -> str:
    """TFDS's default data dir: ``$TFDS_DATA_DIR`` or ``~/tensorflow_datasets``."""
    return os.environ.get("TFDS_DATA_DIR") or os.path.expanduser("~/tensorflow_datasets")


def load_images(name: str, split: str = "train", data_dir: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Returns ``(images uint8 [N, H, W, C], labels int64 [N])`` (see module docstring)."""
    if name.startswith("idx:"):
        return load_idx_folder(name[len("idx:"):], split)
    return _load_tfds(name, split, data_dir or default_data_dir())
