"""Image datasets: config.data.image_size/crop, TFDS datasets through tfds.testing.mock_data, folder:PATH.

tfds 4.9.10's wheel bundles no mock metadata (``tensorflow_datasets/testing/metadata``
is absent), so ``mock_data`` runs in ``USE_CODE`` mode: features come from each
builder's code (e.g. celeb_a 218x178x3, cats_vs_dogs of random sizes 5..49),
split names are unknown (any split is accepted) and every split yields the same
``num_examples`` deterministic random examples. Nothing touches the network.
"""

import os

import numpy as np
import pytest
from PIL import Image

from ganjax.data import make_dataset
from ganjax.data.images import load_images
from ganjax.data.preprocess import ImageOptions, center_crop_box, image_options, preprocess_image
from ganjax.errors import ConfigError, DataError

N = 5  # mock examples per split


@pytest.fixture
def mock_tfds(tmp_path):
    """TFDS mocked (random examples from the builders' code); yields the data dir ganjax caches in."""
    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(num_examples=N, data_dir=str(tmp_path / "no_metadata")):
        yield str(tmp_path / "data")


def _offline(monkeypatch):
    import tensorflow_datasets as tfds

    def fail(self, *args, **kwargs):
        raise ConnectionError("no network")

    monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare", fail)


def _cache_files(data_dir):
    return sorted(os.listdir(os.path.join(data_dir, "ganjax_cache")))


# ---------------------------------------------------------------------------
# Options and the crop/resize itself.


def test_center_crop_geometry_on_a_known_pattern():
    h, w = 6, 10
    rows, cols = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    image = np.stack([rows * 10, cols * 10, np.full((h, w), 7)], axis=-1).astype(np.uint8)  # [6, 10, 3]
    assert center_crop_box(h, w) == (0, 2, 6) and center_crop_box(9, 4) == (2, 0, 4)
    crop = preprocess_image(image, ImageOptions(crop="center"))
    assert crop.shape == (6, 6, 3)
    assert np.array_equal(crop[..., 1], (np.arange(2, 8) * 10)[None].repeat(6, 0))  # columns 2..7 kept
    assert np.array_equal(crop[..., 0], image[:, 2:8, 0])
    tall = preprocess_image(image.transpose(1, 0, 2), ImageOptions(crop="center"))  # [10, 6] → rows 2..7
    assert np.array_equal(tall[..., 1], (np.arange(2, 8) * 10)[:, None].repeat(6, 1))
    assert np.array_equal(preprocess_image(image, ImageOptions()), image)


def test_resize_is_antialiased_and_deterministic():
    checker = (np.indices((64, 64)).sum(0) % 2 * 255).astype(np.uint8)[..., None]  # [64, 64, 1]
    small = preprocess_image(checker, ImageOptions(image_size=8))
    assert small.shape == (8, 8, 1) and small.dtype == np.uint8
    assert np.all(np.abs(small.astype(int) - 127) <= 2), "downscaling must average, not alias to 0/255"
    assert np.array_equal(small, preprocess_image(checker, ImageOptions(image_size=8)))
    flat = np.full((30, 50, 4), 200, np.uint8)  # any channel count
    assert np.all(preprocess_image(flat, ImageOptions(image_size=16, crop="center")) == 200)
    up = preprocess_image(checker[:4, :4], ImageOptions(image_size=12))
    assert up.shape == (12, 12, 1) and 0 < up.mean() < 255


def test_image_options_validation():
    assert image_options({"image_size": 64, "crop": "center"}, "celeb_a") == ImageOptions(64, "center")
    assert image_options(None, "cifar10") == ImageOptions(0, "none")
    assert ImageOptions(64, "center").tag() == "-64px-center" and ImageOptions().tag() == ""
    with pytest.raises(ConfigError, match=r"unknown config.data key 'size' for image dataset 'cifar10'; "
                                          r"valid keys: image_size, crop"):
        image_options({"size": 32}, "cifar10")
    with pytest.raises(ConfigError, match=r"unknown config.data.crop 'middle'; valid choices: center, none"):
        image_options({"crop": "middle"}, "celeb_a")
    for bad in (-1, 32.0, "64", True):
        with pytest.raises(ConfigError, match=r"config.data.image_size must be an integer >= 0"):
            image_options({"image_size": bad}, "celeb_a")
    with pytest.raises(ConfigError, match=r"unknown config.data key 'std'"):
        make_dataset("idx:/nowhere", {"std": 1.0})  # before anything is read


def test_config_validate_checks_image_options_before_loading():
    from ganjax import config as config_lib

    c = config_lib.base_config()
    c.dataset = "celeb_a"
    c.data.image_size = 64
    c.data.crop = "centre"
    with pytest.raises(ConfigError, match=r"unknown config.data.crop 'centre'; valid choices: center, none"):
        config_lib.validate(c)
    c.data.crop = "center"
    config_lib.validate(c)
    c.dataset = "ring_2d"  # toy datasets keep their own options
    c.data = {"radius": 3.0}
    config_lib.validate(c)


# ---------------------------------------------------------------------------
# TFDS datasets (mocked).


def test_cifar10_native_resized_and_cached(mock_tfds, monkeypatch):
    x, y = load_images("cifar10", "train", mock_tfds)
    assert x.shape == (N, 32, 32, 3) and x.dtype == np.uint8
    assert y.dtype == np.int64 and y.shape == (N,) and np.all((0 <= y) & (y < 10))
    small, y16 = load_images("cifar10", "train", mock_tfds, {"image_size": 16})
    assert small.shape == (N, 16, 16, 3) and np.array_equal(y16, y)
    assert np.array_equal(small[2], preprocess_image(x[2], ImageOptions(16)))
    assert _cache_files(mock_tfds) == [f"cifar10-3.0.2-train{tag}-{kind}.npy"
                                       for tag in ("-16px-none", "") for kind in ("images", "labels")]
    ds = make_dataset("cifar10", {"image_size": 16}, data_dir=mock_tfds)
    assert ds.example_shape == (16, 16, 3) and ds.image_options == ImageOptions(16)


def test_celeb_a_center_crop_64_and_cache_reused_offline(mock_tfds, monkeypatch):
    native, labels = load_images("celeb_a", "train", mock_tfds)
    assert native.shape == (N, 218, 178, 3) and np.all(labels == 0)  # celeb_a has no label feature
    x, _ = load_images("celeb_a", "train", mock_tfds, {"image_size": 64, "crop": "center"})
    assert x.shape == (N, 64, 64, 3) and x.dtype == np.uint8
    expected = [preprocess_image(native[i, 20:198], ImageOptions(64)) for i in range(N)]  # 218 → rows 20..197
    assert np.array_equal(x, np.stack(expected))
    cache = os.path.join(mock_tfds, "ganjax_cache", "celeb_a-2.1.0-train-64px-center-images.npy")
    assert np.array_equal(np.load(cache), x)
    _offline(monkeypatch)  # a cache hit needs neither TFDS data nor the network
    again, _ = load_images("celeb_a", "train", mock_tfds, {"image_size": 64, "crop": "center"})
    assert np.array_equal(again, x)


def test_cats_vs_dogs_variable_sizes_need_image_size(mock_tfds):
    with pytest.raises(ConfigError, match=r"'cats_vs_dogs' has images of varying size \(None, None, 3\); "
                                          r"set config.data.image_size"):
        load_images("cats_vs_dogs", "train", mock_tfds)
    x, y = load_images("cats_vs_dogs", "train", mock_tfds, {"image_size": 24, "crop": "center"})
    assert x.shape == (N, 24, 24, 3) and x.dtype == np.uint8 and np.all((y == 0) | (y == 1))
    assert len(np.unique(x.reshape(N, -1), axis=0)) == N


def test_another_tfds_dataset_by_name(mock_tfds):
    x, y = load_images("svhn_cropped", "test", mock_tfds, {"image_size": 16, "crop": "center"})
    assert x.shape == (N, 16, 16, 3) and np.all((0 <= y) & (y < 10))
    assert "svhn_cropped-3.1.0-test-16px-center-images.npy" in _cache_files(mock_tfds)


def test_offline_tfds_dataset_names_manual_dir_files_and_urls(tmp_path, monkeypatch):
    _offline(monkeypatch)
    data_dir = str(tmp_path / "tfds")
    manual = os.path.join(data_dir, "downloads", "manual")
    with pytest.raises(DataError) as e:
        load_images("cifar10", "train", data_dir)
    message = str(e.value)
    assert "\n" not in message and "ConnectionError: no network" in message
    assert f"put cifar-10-binary.tar.gz (from https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz) into {manual}/" \
        in message
    assert f"copy a prepared TFDS folder cifar10/3.0.2/ into {data_dir}" in message
    with pytest.raises(DataError, match=r"img_align_celeba\.zip \(from https://drive\.google\.com/.*downloads/manual"):
        load_images("celeb_a", "train", data_dir, {"image_size": 64, "crop": "center"})


def test_unknown_and_non_image_tfds_datasets(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown dataset 'cifar11'; valid choices: .*cifar10, celeb_a, "
                                          r"cats_vs_dogs.*folder:PATH"):
        load_images("cifar11", "train", str(tmp_path))
    with pytest.raises(DataError, match=r"dataset 'imdb_reviews' has no 'image' feature"):
        load_images("imdb_reviews", "train", str(tmp_path))


# ---------------------------------------------------------------------------
# folder:PATH.


def _write_folder(root):
    """cat/: two RGB PNGs (20x30, 30x20); dog/: a grayscale JPEG 40x40; root: an RGBA PNG 16x16."""
    rng = np.random.default_rng(0)
    (root / "cat").mkdir(parents=True)
    (root / "dog" / "deeper").mkdir(parents=True)
    Image.fromarray(rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)).save(root / "cat" / "a.png")
    Image.fromarray(rng.integers(0, 256, (30, 20, 3), dtype=np.uint8)).save(root / "cat" / "b.PNG")
    Image.fromarray(np.full((40, 40), 90, np.uint8)).save(root / "dog" / "deeper" / "c.jpg", quality=95)
    Image.fromarray(np.full((16, 16, 4), 250, np.uint8)).save(root / "d.png")
    (root / "notes.txt").write_text("not an image")


def test_folder_mixed_sizes_and_channels(tmp_path):
    folder = tmp_path / "imgs"
    _write_folder(folder)
    with pytest.raises(DataError, match=r"have different sizes \(cat/a.png: 20x30, cat/b.PNG: 30x20\); "
                                        r"set config.data.image_size"):
        load_images(f"folder:{folder}", data_dir=str(tmp_path / "dd"))
    x, y = load_images(f"folder:{folder}", data_dir=str(tmp_path / "dd"), options={"image_size": 8, "crop": "center"})
    assert x.shape == (4, 8, 8, 3) and x.dtype == np.uint8  # one grayscale image among RGB → all RGB
    assert y.tolist() == [1, 1, 0, 2]  # sorted paths cat/a, cat/b, d.png, dog/deeper/c; classes '', cat, dog
    assert np.all(np.abs(x[3].astype(int) - 90) <= 2) and np.all(x[2] == 250)  # gray → equal RGB; alpha dropped
    a = np.asarray(Image.open(folder / "cat" / "a.png"))
    assert np.array_equal(x[0], preprocess_image(a[:, 5:25], ImageOptions(8)))  # 20x30 → columns 5..24
    [cache] = [f for f in _cache_files(str(tmp_path / "dd")) if f.endswith("-images.npy")]
    assert cache.startswith("folder-imgs-") and cache.endswith("-8px-center-images.npy")
    os.remove(folder / "d.png")  # editing the folder invalidates the cache
    assert load_images(f"folder:{folder}", data_dir=str(tmp_path / "dd"), options={"image_size": 8})[0].shape[0] == 3


def test_folder_all_grayscale_native_size_and_cache(tmp_path, monkeypatch):
    folder = tmp_path / "gray"
    folder.mkdir()
    for i in range(3):
        Image.fromarray(np.full((12, 10), 40 * i, np.uint8)).save(folder / f"{i}.png")
    dd = str(tmp_path / "dd")
    x, y = load_images(f"folder:{folder}", data_dir=dd)
    assert x.shape == (3, 12, 10, 1) and [int(v[0, 0, 0]) for v in x] == [0, 40, 80] and np.all(y == 0)
    monkeypatch.setattr("ganjax.data.folder._read", lambda *a: pytest.fail("second load must hit the cache"))
    assert np.array_equal(load_images(f"folder:{folder}", data_dir=dd)[0], x)
    monkeypatch.undo()
    ds = make_dataset(f"folder:{folder}", {"crop": "center"}, data_dir=dd)
    assert ds.example_shape == (10, 10, 1)


def test_folder_errors(tmp_path):
    dd = str(tmp_path / "dd")
    with pytest.raises(DataError, match=r"image folder '.*nope' does not exist"):
        load_images(f"folder:{tmp_path / 'nope'}", data_dir=dd)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("x")
    with pytest.raises(DataError, match=r"holds no .png/.jpg/.jpeg files"):
        load_images(f"folder:{tmp_path / 'empty'}", data_dir=dd)
    bad = tmp_path / "bad"
    bad.mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(bad / "ok.png")
    (bad / "broken.jpg").write_bytes(os.urandom(300))
    with pytest.raises(DataError, match=r"cannot read image .*bad/broken.jpg: UnidentifiedImageError"):
        load_images(f"folder:{bad}", data_dir=dd)
    os.remove(bad / "broken.jpg")
    good = open(bad / "ok.png", "rb").read()
    (bad / "truncated.png").write_bytes(good[:len(good) // 2])  # a valid header, data cut off
    with pytest.raises(DataError, match=r"cannot read image .*bad/truncated.png"):
        load_images(f"folder:{bad}", data_dir=dd)
    assert not os.path.exists(os.path.join(dd, "ganjax_cache")) or not any(
        f.endswith("-images.npy") for f in os.listdir(os.path.join(dd, "ganjax_cache")))
    with pytest.raises(ConfigError, match=r"unknown split 'test' for image folder .*valid splits: train"):
        load_images(f"folder:{bad}", "test", data_dir=dd)


# ---------------------------------------------------------------------------
# The evaluator's real images get the training preprocessing.


def test_evaluator_real_features_use_the_training_preprocessing(tmp_path, monkeypatch):
    from ganjax.metrics import evaluator as evaluator_lib

    folder = tmp_path / "imgs"
    _write_folder(folder)
    seen = []

    def fn(images):
        seen.append(images.shape)
        return images.reshape(len(images), -1)[:, :4], np.full((len(images), 2), 0.5)

    probe = lambda name, options, example_shape: evaluator_lib.FeatureExtractor("probe", "0" * 64, "none", fn)
    monkeypatch.setitem(evaluator_lib.EXTRACTORS, "probe", probe)
    e = evaluator_lib.default_eval_config()
    e.features, e.num_samples, e.cache_dir = "probe", 4, str(tmp_path / "cache")
    dd = str(tmp_path / "dd")
    ds = make_dataset(f"folder:{folder}", {"image_size": 8, "crop": "center"}, data_dir=dd)
    evaluator_lib.Evaluator(e, ds, ds.name, dd, seed=0).prepare()
    assert seen == [(4, 8, 8, 3)]  # the real split at the training resolution
    evaluator_lib.real_features(ds.name, "train", 4, probe(0, 0, 0), dd, e.cache_dir, ImageOptions(6, "center"))
    assert seen[-1] == (4, 6, 6, 3)  # other options: another cache entry, other images
    os.remove(folder / "d.png")
    evaluator_lib.Evaluator(e, ds, ds.name, dd, seed=0).prepare()
    assert seen[-1] == (3, 8, 8, 3)  # an edited folder: its real features are recomputed
