"""Image datasets: TensorFlow Datasets (with offline preparation), IDX folders, image folders.

``load_images(name, split, data_dir, options)`` returns uint8 ``[N, H, W, C]``
images and int64 ``[N]`` labels for:

* ``mnist``, ``fashion_mnist``, ``cifar10``, ``celeb_a``, ``cats_vs_dogs`` and
  any other TFDS dataset with a uint8 ``image`` feature, prepared in the TFDS
  data dir (``config.data_dir``, else ``$TFDS_DATA_DIR``, else
  ``~/tensorflow_datasets``). Labels are the scalar ``label`` feature, else 0.
* ``idx:PATH`` — a folder of MNIST-format IDX files
  (``train-images-idx3-ubyte[.gz]``, ``train-labels-idx1-ubyte[.gz]``,
  ``t10k-…`` for ``split='test'``), read directly;
* ``folder:PATH`` — PNG/JPEG files below PATH (:mod:`ganjax.data.folder`).

``options`` (``config.data.image_size``, ``config.data.crop``; see
:mod:`ganjax.data.preprocess`) crop and resize every image once at load time;
variable-size datasets (``cats_vs_dogs``) need ``image_size > 0``. Images are
decoded and preprocessed in batches and written straight into the cache, so
full-size images are never all in memory.

Cache. The result is saved as ``.npy`` in ``<data_dir>/ganjax_cache/``
(``<name>-<version>-<split>[-<size>px-<crop>]-{images,labels}.npy``; the
suffix is absent for native size without crop), so later runs load in well
under a second.

Offline. TFDS downloads and prepares a dataset on first use. Without internet,
the download fails and the error names the files to put in TFDS's manual
download dir ``<data_dir>/downloads/manual/`` (the names and URLs of TFDS's
registered checksums for that builder), or the prepared TFDS folder
``<name>/<version>/`` to copy into the data dir. MNIST and Fashion-MNIST are
instead prepared from local IDX files: TFDS's own builders download the four
IDX files and check registered checksums; ganjax prepares the *same* TFDS
dataset (same name, version, features and split sizes, in the standard
``<data_dir>/fashion_mnist/3.0.1`` layout) with a subclass of TFDS's builder
whose only change is that it reads the IDX files from a local folder instead
of downloading them: for Fashion-MNIST, ``$GANJAX_FASHION_MNIST_DIR`` or the
Debian package ``dataset-fashion-mnist``'s ``/usr/share/datasets/fashion-mnist/``;
for MNIST, ``$GANJAX_MNIST_DIR``. (Debian recompresses the .gz files, so their
bytes, not their contents, differ from upstream and TFDS's checksums cannot be
used.)
"""

from __future__ import annotations

import functools
import gzip
import logging
import os
import tempfile
from typing import Any, Mapping

import numpy as np

from ganjax import storage
from ganjax.data.folder import folder_classes, folder_fingerprint, load_image_folder
from ganjax.data.preprocess import (ImageOptions, RowWriter, image_options, preprocess_image, preprocess_stack,
                                    save_atomic)
from ganjax.errors import ConfigError, DataError

log = logging.getLogger("ganjax")

IDX_PREFIX, FOLDER_PREFIX = "idx:", "folder:"
CHUNK = 512  # fixed-size images decoded per batch
DATASET_CHOICES = ("gaussian_1d, ring_2d, grid_2d, mnist, fashion_mnist, cifar10, celeb_a, cats_vs_dogs, "
                   "another TFDS image dataset name, idx:PATH, folder:PATH")


def dataset_choices() -> str:
    """:data:`DATASET_CHOICES`, then the toy datasets registered with ``ganjax.register_dataset``, if any."""
    from ganjax.data.toy import TOY_DATASETS

    registered = TOY_DATASETS.user_names
    return DATASET_CHOICES + (f"; registered: {', '.join(registered)}" if registered else "")

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


def _download_files(builder) -> str:
    """The files TFDS's builder downloads, as ``'NAME (from URL), …'`` (from its registered checksums)."""
    try:
        infos = dict(builder.url_infos or {})
    except Exception:  # noqa: BLE001 - builders without a checksums file
        infos = {}
    if not infos:
        return f"the files TFDS's {builder.name} builder downloads"
    return ", ".join(f"{info.filename or url} (from {url})" for url, info in sorted(infos.items()))


def _missing_data_message(name: str, data_dir: str, cause: str, builder=None) -> str:
    """What to do when ``name`` is not prepared and cannot be downloaded (one line)."""
    head = f"dataset {name!r} is not prepared in {data_dir} and could not be downloaded ({cause}); "
    if name in LOCAL_DIRS:
        env, default = LOCAL_DIRS[name]
        files = ", ".join(s + ".gz" for stems in IDX_FILES.values() for s in stems)
        debian = " (`apt-get install dataset-fashion-mnist` puts them in " + default + ")" if default else ""
        return head + f"put {files} in a folder and set ${env} to it{debian}, or run once with internet access"
    if builder is None:
        return head + f"run once with internet access, or copy a prepared TFDS folder {name}/ into {data_dir}"
    manual = os.path.join(data_dir, "downloads", "manual")
    prepared = os.path.relpath(str(builder.data_dir), str(builder.data_dir_root)) + "/"
    return head + (f"put {_download_files(builder)} into {manual}/ (TFDS's manual download dir), "
                   f"or copy a prepared TFDS folder {prepared} into {data_dir}, or run once with internet access")


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


def array_cache_dir(data_dir: str) -> str:
    """Where the decoded arrays of ``data_dir``'s datasets are cached: ``<data_dir>/ganjax_cache``, or for a
    ``gs://`` data dir (which TFDS reads itself) the local folder ``<cache>/ganjax_cache/<scheme>/<bucket/path>``
    (``<cache>``: :func:`ganjax.metrics.weights_file.local_cache_dir`): the arrays are memory-mapped, which
    needs a local file."""
    if storage.is_remote(data_dir):
        from ganjax.metrics.weights_file import local_cache_dir

        return os.path.join(local_cache_dir(), "ganjax_cache", data_dir.replace("://", "/"))
    return os.path.join(data_dir, "ganjax_cache")


def _cache_paths(data_dir: str, name: str, version: str, split: str, tag: str = "") -> tuple[str, str]:
    """``<array_cache_dir>/<name>-<version>-<split><tag>-{images,labels}.npy`` (tag: the crop/size)."""
    stem = os.path.join(array_cache_dir(data_dir), f"{name.replace('/', '_')}-{version}-{split}{tag}")
    return stem + "-images.npy", stem + "-labels.npy"


@functools.lru_cache(maxsize=None)
def check_dataset_name(name: str) -> None:
    """Refuses (``ConfigError``, listing the built-in names) an image dataset name TFDS does not know.

    ``idx:`` and ``folder:`` names pass; a TFDS name is looked up in TFDS's
    local registry of builders (no network, no data), its ``/config`` and
    ``:version`` parts aside.
    """
    if name.startswith((IDX_PREFIX, FOLDER_PREFIX)):
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow_datasets as tfds

    try:
        tfds.builder_cls(name.split(":")[0].split("/")[0])
    except tfds.core.registered.DatasetNotFoundError:
        raise ConfigError(f"unknown dataset {name!r}; valid choices: {DATASET_CHOICES}") from None


def _open_builder(name: str, data_dir: str):
    """TFDS's builder for ``name`` (``ConfigError`` for unknown names)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow_datasets as tfds

    tfds.disable_progress_bar()
    try:
        return tfds.builder(name, data_dir=data_dir)
    except Exception as e:  # DatasetNotFoundError and friends
        if "not found" in str(e).lower():
            raise ConfigError(f"unknown dataset {name!r}; valid choices: {dataset_choices()}") from None
        raise DataError(f"cannot open TFDS dataset {name!r}: {str(e).splitlines()[0]}") from None


def _image_shape(builder, name: str, options: ImageOptions) -> tuple:
    """The ``image`` feature's shape, after checking it can be loaded with ``options``."""
    features = builder.info.features
    if "image" not in features.keys():
        raise DataError(f"dataset {name!r} has no 'image' feature (features: {', '.join(features.keys())}); "
                        f"ganjax loads image datasets")
    feature = features["image"]
    if np.dtype(feature.np_dtype) != np.uint8:
        raise DataError(f"dataset {name!r} has {np.dtype(feature.np_dtype)} images; ganjax loads uint8 images")
    shape = tuple(feature.shape)
    if options.image_size == 0 and None in shape[:2]:
        raise ConfigError(f"dataset {name!r} has images of varying size {shape}; set config.data.image_size "
                          f"(e.g. 64) to resize them to one size")
    return shape


def _prepare(builder, name: str, data_dir: str):
    """Downloads and prepares ``name`` if needed (offline: local IDX files or a clear error)."""
    if builder.is_prepared():
        return builder
    folder = _local_folder(name)
    if folder is not None:
        log.info("preparing TFDS %s %s in %s from local IDX files in %s", name, builder.info.version, data_dir, folder)
        builder = _local_builder_class(name, folder)(data_dir=data_dir)
        builder.download_and_prepare()
        return builder
    try:
        builder.download_and_prepare()
    except Exception as e:
        cause = f"{type(e).__name__}: {str(e).splitlines()[0][:120] if str(e) else ''}"
        raise DataError(_missing_data_message(name, data_dir, cause, builder)) from None
    return builder


def _tfds_split(builder, split: str):
    """``(dataset of {'image'[, 'label']}, number of examples or None)`` of ``split``, in TFDS's stored order."""
    features = builder.info.features
    keys = ["image"] + (["label"] if "label" in features.keys() and tuple(features["label"].shape) == () else [])
    ds = builder.as_dataset(split=split, shuffle_files=False).map(lambda ex: {k: ex[k] for k in keys})
    n = int(ds.cardinality())
    return ds, (n if n >= 0 else None)


def _tfds_batches(ds, fixed_size: bool, labels: list):
    """Yields uint8 image batches ``[b, H, W, C]`` of ``ds``; appends their labels (0 without a label).

    Fixed-size images come in batches of ``CHUNK``, variable-size ones one at a time.
    """
    import tensorflow_datasets as tfds

    for ex in tfds.as_numpy(ds.batch(CHUNK) if fixed_size else ds):
        batch = ex["image"] if fixed_size else ex["image"][None]
        labels.append(np.reshape(ex["label"], -1) if "label" in ex else np.zeros(len(batch), np.int64))
        yield batch


def _load_tfds(name: str, split: str, data_dir: str, options: ImageOptions) -> tuple[np.ndarray, np.ndarray]:
    builder = _open_builder(name, data_dir)
    shape = _image_shape(builder, name, options)
    version = str(builder.info.version)
    image_cache, label_cache = _cache_paths(data_dir, name, version, split, options.tag())
    if os.path.exists(image_cache) and os.path.exists(label_cache):
        return np.load(image_cache), np.load(label_cache)
    builder = _prepare(builder, name, data_dir)
    splits = list(builder.info.splits.keys())
    if splits and split not in splits:  # (split names are unknown only under tfds.testing.mock_data)
        raise ConfigError(f"unknown split {split!r} for dataset {name!r}; valid splits: {', '.join(splits)}")
    labels: list[np.ndarray] = []
    describe = lambda i: f"example {i} of {name} {split}"
    ds, count = _tfds_split(builder, split)
    with RowWriter(count, image_cache, describe) as writer:
        for batch in _tfds_batches(ds, None not in shape, labels):
            writer.add(batch if options.is_identity else np.stack([preprocess_image(x, options) for x in batch]))
        images = writer.finish()
    labels_array = np.concatenate(labels).astype(np.int64)
    save_atomic(label_cache, labels_array)
    log.info("cached %s %s %s as %s %s", name, version, split, images.shape, image_cache)
    return images, labels_array


def default_data_dir() -> str:
    """TFDS's default data dir: ``$TFDS_DATA_DIR`` or ``~/tensorflow_datasets``."""
    return os.environ.get("TFDS_DATA_DIR") or os.path.expanduser("~/tensorflow_datasets")


def source_version(name: str) -> str:
    """What identifies the contents behind ``name`` beyond its name: a ``folder:`` dataset's
    :func:`~ganjax.data.folder.folder_fingerprint` (``''`` for TFDS and IDX data)."""
    return folder_fingerprint(name[len(FOLDER_PREFIX):]) if name.startswith(FOLDER_PREFIX) else ""


def label_classes(name: str, labels: np.ndarray, data_dir: str | None = None) -> int:
    """How many classes the labels of dataset ``name`` have; 0 for a dataset without labels.

    TFDS: the ``num_classes`` of its scalar ``label`` feature (0 without one);
    ``idx:``: ``max(labels) + 1`` (its label files); ``folder:``: the number of
    class subfolders (0 if the images lie directly in the folder).
    ``labels`` are the loaded labels of the dataset.
    """
    if name.startswith(IDX_PREFIX):
        return int(labels.max()) + 1 if labels.size else 0
    if name.startswith(FOLDER_PREFIX):
        return len(folder_classes(name[len(FOLDER_PREFIX):]))
    features = _open_builder(name, data_dir or default_data_dir()).info.features
    label = features["label"] if "label" in features.keys() else None
    if label is None or tuple(label.shape) != () or not hasattr(label, "num_classes"):
        return 0
    return int(label.num_classes)


def load_images(name: str, split: str = "train", data_dir: str | None = None,
                options: ImageOptions | Mapping[str, Any] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Returns ``(images uint8 [N, H, W, C], labels int64 [N])`` (see module docstring).

    Args:
      name: a TFDS image dataset name, ``idx:PATH`` or ``folder:PATH``.
      split: e.g. ``'train'``, ``'test'``.
      data_dir: TFDS data dir, also holding ``ganjax_cache/`` (None: :func:`default_data_dir`).
      options: ``config.data`` (``image_size``, ``crop``) or :class:`ImageOptions`.
    """
    if not isinstance(options, ImageOptions):
        options = image_options(options, name)
    data_dir = data_dir or default_data_dir()
    if name.startswith(IDX_PREFIX):
        images, labels = load_idx_folder(name[len(IDX_PREFIX):], split)
        return preprocess_stack(images, options), labels
    if name.startswith(FOLDER_PREFIX):
        return load_image_folder(name[len(FOLDER_PREFIX):], split, options, array_cache_dir(data_dir))
    return _load_tfds(name, split, data_dir, options)
