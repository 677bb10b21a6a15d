"""Data: IDX parsing, offline TFDS preparation of real Fashion-MNIST, resumable batches, toys."""

import gzip
import os
import time

import jax
import numpy as np
import pytest

from ganjax.data import make_dataset
from ganjax.data.batches import BatchStream, batch_indices, batches_per_epoch
from ganjax.data.images import load_idx_folder, load_images, read_idx
from ganjax.data.toy import grid_modes, make_toy, ring_modes
from ganjax.errors import ConfigError, DataError
from tests.conftest import FASHION_DIR


def write_idx(path, array, gz=False):
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    data = header + array.astype(np.uint8).tobytes()
    with (gzip.open if gz else open)(path, "wb") as f:
        f.write(data)


@pytest.mark.parametrize("gz", [False, True])
def test_idx_folder_roundtrip(tmp_path, gz):
    images = np.random.default_rng(0).integers(0, 256, (5, 4, 3), dtype=np.uint8)
    labels = np.arange(5, dtype=np.uint8)
    suffix = ".gz" if gz else ""
    write_idx(tmp_path / f"train-images-idx3-ubyte{suffix}", images, gz)
    write_idx(tmp_path / f"train-labels-idx1-ubyte{suffix}", labels, gz)
    x, y = load_idx_folder(str(tmp_path), "train")
    assert x.shape == (5, 4, 3, 1) and np.array_equal(x[..., 0], images)
    assert y.dtype == np.int64 and np.array_equal(y, labels)
    x2, _ = load_images(f"idx:{tmp_path}")
    assert np.array_equal(x, x2)
    x3, _ = load_images(f"idx:{tmp_path}", options={"image_size": 2, "crop": "center"})
    assert x3.shape == (5, 2, 2, 1) and x3.dtype == np.uint8


def test_truncated_and_garbage_idx_files_are_clear_errors(tmp_path):
    write_idx(tmp_path / "ok", np.zeros((3, 2, 2)))
    data = open(tmp_path / "ok", "rb").read()
    open(tmp_path / "short", "wb").write(data[:-3])
    open(tmp_path / "garbage", "wb").write(os.urandom(64))
    with pytest.raises(DataError, match="truncated or corrupt"):
        read_idx(str(tmp_path / "short"))
    with pytest.raises(DataError, match="not an IDX file"):
        read_idx(str(tmp_path / "garbage"))


def test_missing_idx_folder_and_split(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_images(f"idx:{tmp_path / 'nope'}")
    with pytest.raises(DataError, match="lacks train-images-idx3-ubyte"):
        load_images(f"idx:{tmp_path}")
    with pytest.raises(ConfigError, match="unknown split 'validation'.*train, test"):
        load_idx_folder(str(tmp_path), "validation")


def test_fashion_mnist_prepared_offline_equals_the_idx_files(fashion_data_dir):
    x, y = load_images("fashion_mnist", "train", fashion_data_dir)
    xt, yt = load_images("fashion_mnist", "test", fashion_data_dir)
    assert x.shape == (60000, 28, 28, 1) and x.dtype == np.uint8
    assert xt.shape == (10000, 28, 28, 1)
    raw, raw_labels = load_idx_folder(FASHION_DIR, "train")
    # TFDS stores examples in its own shuffled order: compare as multisets of (image, label).
    key = lambda imgs, labs: sorted(zip(labs.tolist(), map(bytes, imgs.reshape(len(imgs), -1))))
    assert key(x, y) == key(raw, raw_labels)
    assert os.path.isdir(os.path.join(fashion_data_dir, "fashion_mnist", "3.0.1"))
    t0 = time.perf_counter()
    load_images("fashion_mnist", "train", fashion_data_dir)
    assert time.perf_counter() - t0 < 2.0, "second load must come from the .npy cache"


def test_missing_fashion_mnist_says_which_files_where(tmp_path, monkeypatch):
    import tensorflow_datasets as tfds

    monkeypatch.setenv("GANJAX_FASHION_MNIST_DIR", str(tmp_path / "empty"))
    monkeypatch.setattr("ganjax.data.images.LOCAL_DIRS", {"fashion_mnist": ("GANJAX_FASHION_MNIST_DIR", None)})

    def offline(self, *args, **kwargs):
        raise ConnectionError("no network")

    monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare", offline)
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte\.gz.*GANJAX_FASHION_MNIST_DIR"):
        load_images("fashion_mnist", "train", str(tmp_path / "tfds"))


def test_unknown_tfds_name(tmp_path):
    with pytest.raises(ConfigError, match="unknown dataset 'no_such_data'; valid choices"):
        load_images("no_such_data", "train", str(tmp_path))


def test_batches_cover_each_epoch_once_and_resume_exactly():
    n, b = 103, 10
    assert batches_per_epoch(n, b) == 10
    epoch0 = np.concatenate([batch_indices(7, p, b, n) for p in range(10)])
    assert sorted(epoch0) == sorted(set(epoch0)) and len(epoch0) == 100
    assert not np.array_equal(batch_indices(7, 0, b, n), batch_indices(7, 10, b, n))
    images = np.arange(n)[:, None]
    straight = BatchStream(images, 7, b)
    seen = [straight.next() for _ in range(25)]
    resumed = BatchStream(images, 7, b, position=13)
    assert all(np.array_equal(seen[13 + i], resumed.next()) for i in range(12))
    with pytest.raises(ConfigError, match="batch_size must be in"):
        BatchStream(images, 0, 0)


def test_toy_distributions():
    ring = make_toy("ring_2d")
    x = np.asarray(ring.sample(jax.random.key(0), 4000))
    radii = np.linalg.norm(x, axis=1)
    assert abs(radii.mean() - 2.0) < 0.01 and ring_modes().shape == (8, 2)
    assert grid_modes().shape == (25, 2) and grid_modes().min() == -4.0
    g = make_toy("gaussian_1d")
    v = np.asarray(g.sample(jax.random.key(1), 200))
    assert v.shape == (200, 100) and np.all(np.diff(v, axis=1) >= 0)
    assert abs(v.mean() - 4.0) < 0.05 and abs(v.std() - 1.5) < 0.05
    with pytest.raises(ConfigError, match="unknown toy dataset"):
        make_toy("moons")
    with pytest.raises(ConfigError, match="unknown config.data key 'std' for image dataset 'idx:/x'"):
        make_dataset("idx:/x", {"std": 1.0})
