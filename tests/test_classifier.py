"""The domain classifier: training, the weight cache, the feature function, the command line.

The fast tests train for 150 steps (well above chance, far from the real
classifier), and check the shipped default-recipe weights' accuracy on the full
test split (the ≥ 91% that ``FID (domain classifier)`` relies on); the slow
test retrains the default recipe and checks it reproduces the shipped arrays.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ganjax.errors import ConfigError, DataError
from ganjax.metrics import classifier
from tests.conftest import QUICK_CLASSIFIER_STEPS as QUICK_STEPS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = {**os.environ, "JAX_PLATFORMS": "cpu", "XLA_FLAGS": "", "PYTHONUNBUFFERED": "1"}


@pytest.fixture(scope="module")
def quick(quick_classifier):
    """``(cache_dir, module, variables, info)`` of the session's quickly trained classifier (conftest)."""
    return quick_classifier


@pytest.fixture(scope="module")
def test_images(fashion_data_dir):
    from ganjax.data.images import load_images

    images, labels = load_images("fashion_mnist", split="test", data_dir=fashion_data_dir)
    return images[:1000], labels[:1000]


def _random_classifier(seed: int = 0):
    module = classifier.ClassifierCNN()
    return module, module.init(jax.random.key(seed), jnp.zeros((1, 28, 28, 1)))


# ---------------------------------------------------------------------------
# Training and the cache.


def test_quick_training_learns_and_is_cached(quick):
    cache_dir, module, variables, info = quick
    path = os.path.join(cache_dir, "classifier_fashion_mnist_v1.npz")
    assert os.path.isfile(path)
    assert [f for f in os.listdir(cache_dir)] == ["classifier_fashion_mnist_v1.npz"]  # no temporary left over
    assert info["test_accuracy"] > 0.6, info  # chance is 0.1
    assert info["dataset"] == "fashion_mnist" and info["num_steps"] == QUICK_STEPS and info["seed"] == 0
    # Not the default recipe, so not the standard extractor's name.
    assert info["name"] == f"classifier_fashion_mnist_v1_{QUICK_STEPS}steps_seed0"
    assert len(info["sha256"]) == 64
    assert classifier.classifier_name("fashion_mnist") == "classifier_fashion_mnist_v1"


def test_cache_round_trip_gives_identical_features(quick, test_images):
    cache_dir, module, variables, info = quick
    module2, variables2, info2 = classifier.load_classifier("fashion_mnist", cache_dir=cache_dir,
                                                            train_if_missing=False)
    assert info2 == info
    assert module2 == module
    images, _ = test_images
    f1, p1 = classifier.make_feature_fn(module, variables)(images)
    f2, p2 = classifier.make_feature_fn(module2, variables2)(images)
    np.testing.assert_array_equal(f1, f2)
    np.testing.assert_array_equal(p1, p2)


def test_saving_is_deterministic(quick, tmp_path):
    cache_dir, _, variables, info = quick
    saved = {k: v for k, v in info.items() if k not in ("sha256", "arrays_sha256")}
    classifier.save_classifier(str(tmp_path / "a.npz"), variables, saved)
    classifier.save_classifier(str(tmp_path / "b.npz"), variables, saved)
    a, b = (tmp_path / "a.npz").read_bytes(), (tmp_path / "b.npz").read_bytes()
    assert a == b == open(os.path.join(cache_dir, "classifier_fashion_mnist_v1.npz"), "rb").read()


def test_training_is_deterministic_given_seed(fashion_data_dir):
    v1, acc1 = classifier.train_classifier("fashion_mnist", fashion_data_dir, num_steps=10, seed=3)
    v2, acc2 = classifier.train_classifier("fashion_mnist", fashion_data_dir, num_steps=10, seed=3)
    assert acc1 == acc2
    jax.tree_util.tree_map(np.testing.assert_array_equal, v1, v2)


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty"])
def test_corrupt_cache_is_a_data_error_naming_the_file(quick, tmp_path, damage):
    cache_dir, *_ = quick
    good = open(os.path.join(cache_dir, "classifier_fashion_mnist_v1.npz"), "rb").read()
    path = tmp_path / "classifier_fashion_mnist_v1.npz"
    path.write_bytes({"garbage": b"not a zip file" * 100, "truncated": good[:len(good) // 2], "empty": b""}[damage])
    with pytest.raises(DataError) as e:
        classifier.load_classifier("fashion_mnist", cache_dir=str(tmp_path))
    message = str(e.value)
    assert str(path) in message and "delete it" in message
    assert "python -m ganjax.metrics.classifier --dataset=fashion_mnist" in message
    assert "\n" not in message


def test_cache_of_the_wrong_network_is_a_data_error(quick, tmp_path):
    _, _, variables, info = quick
    params = dict(variables["params"])
    params.pop("Conv_1")
    path = tmp_path / "classifier_fashion_mnist_v1.npz"
    classifier.save_classifier(str(path), {"params": params}, {k: v for k, v in info.items() if k != "sha256"})
    with pytest.raises(DataError, match="damaged"):
        classifier.load_classifier("fashion_mnist", cache_dir=str(tmp_path))


def test_missing_cache_without_training_names_the_command(tmp_path):
    # MNIST: ganjax ships no weights for it (Fashion-MNIST's are shipped, see below).
    with pytest.raises(DataError) as e:
        classifier.load_classifier("mnist", cache_dir=str(tmp_path), train_if_missing=False)
    message = str(e.value)
    assert os.path.join(str(tmp_path), "classifier_mnist_v1.npz") in message
    assert "python -m ganjax.metrics.classifier --dataset=mnist" in message
    assert not os.listdir(tmp_path)


# ---------------------------------------------------------------------------
# The shipped Fashion-MNIST weights (the default recipe).


def test_arrays_digest_ignores_info_and_sees_every_array_change():
    flat = {("params", "a"): np.arange(6, dtype=np.float32).reshape(2, 3), ("params", "b"): np.ones(3, np.float32)}
    digest = classifier.weights_file.arrays_sha256(flat)
    # An independent digest: name, dtype, shape, bytes, in sorted order.
    import hashlib
    import json
    h = hashlib.sha256()
    for name in ("params/a", "params/b"):
        array = flat[tuple(name.split("/"))]
        h.update(json.dumps([name, array.dtype.str, list(array.shape)]).encode())
        h.update(array.tobytes())
    assert digest == h.hexdigest()
    assert classifier.weights_file.arrays_sha256(dict(reversed(list(flat.items())))) == digest
    changed = {**flat, ("params", "b"): np.array([1, 1, np.nextafter(np.float32(1), np.float32(2))], np.float32)}
    assert classifier.weights_file.arrays_sha256(changed) != digest
    reshaped = {**flat, ("params", "a"): flat[("params", "a")].reshape(3, 2)}
    assert classifier.weights_file.arrays_sha256(reshaped) != digest


def test_shipped_weights_reach_91_percent_on_the_test_split(fashion_data_dir, tmp_path):
    from ganjax.data.images import load_images

    # An empty cache: the default recipe comes from the package, without training.
    module, variables, info = classifier.load_classifier("fashion_mnist", fashion_data_dir, str(tmp_path),
                                                         train_if_missing=False)
    assert not os.listdir(tmp_path)
    assert info["name"] == "classifier_fashion_mnist_v1"
    assert (info["num_steps"], info["seed"]) == (classifier.DEFAULT_STEPS, classifier.DEFAULT_SEED)
    assert info["arrays_sha256"] == classifier.SHIPPED_ARRAYS_SHA256["fashion_mnist"]
    images, labels = load_images("fashion_mnist", split="test", data_dir=fashion_data_dir)
    assert len(labels) == 10_000
    accuracy = classifier.evaluate_accuracy(module, variables, images, labels)
    assert accuracy >= 0.91
    assert accuracy == pytest.approx(info["test_accuracy"], abs=1e-4)  # the recorded number is this one


def test_shipped_weights_that_differ_from_the_pin_are_refused(tmp_path, monkeypatch):
    path = classifier.shipped_path("fashion_mnist")
    flat, info = classifier.weights_file.load(path)
    key = sorted(flat)[0]
    flat[key] = flat[key].copy()
    flat[key].flat[0] += 1.0
    from flax import traverse_util

    classifier.save_classifier(str(tmp_path / os.path.basename(path)), traverse_util.unflatten_dict(flat), info)
    monkeypatch.setattr(classifier, "SHIPPED_DIR", str(tmp_path))
    with pytest.raises(DataError, match="not the pinned .*reinstall ganjax"):
        classifier.read_shipped("fashion_mnist")
    with pytest.raises(DataError, match="not the pinned"):
        classifier.load_classifier("fashion_mnist", cache_dir=str(tmp_path / "empty"), train_if_missing=False)


def test_unknown_dataset_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cifar10.*fashion_mnist, mnist"):
        classifier.load_classifier("cifar10", cache_dir=str(tmp_path))
    with pytest.raises(ConfigError, match="cifar10"):
        classifier.train_classifier("cifar10", None, num_steps=1)


# ---------------------------------------------------------------------------
# The feature function.


def test_padding_of_the_last_batch_does_not_change_results():
    module, variables = _random_classifier()
    images = np.random.default_rng(0).integers(0, 256, (250, 28, 28, 1), dtype=np.uint8)
    f_div, p_div = classifier.make_feature_fn(module, variables, batch_size=50)(images)  # 5 full batches
    f_pad, p_pad = classifier.make_feature_fn(module, variables, batch_size=64)(images)  # last: 58 + 6 padding
    f_one, p_one = classifier.make_feature_fn(module, variables, batch_size=500)(images)  # 250 + 250 padding
    assert f_div.shape == (250, 128) and p_div.shape == (250, 10)
    assert f_div.dtype == p_div.dtype == np.float64
    # Another batch size is another float32 GEMM shape, so XLA:CPU may sum in another order: up to a few
    # 1e-6 apart on some CPUs (2.7e-6 seen). Padding leaking into a row would change it by orders more.
    for f, p in ((f_pad, p_pad), (f_one, p_one)):
        np.testing.assert_allclose(f, f_div, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(p, p_div, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(p_div.sum(axis=1), 1.0, atol=1e-6)


def test_input_conversions():
    module, variables = _random_classifier()
    fn = classifier.make_feature_fn(module, variables, batch_size=16)
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (20, 28, 28, 1), dtype=np.uint8)
    f_uint8, _ = fn(images)
    as_float = images.astype(np.float32) / 127.5 - 1.0
    np.testing.assert_allclose(fn(as_float)[0], f_uint8, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(fn(np.repeat(as_float, 3, axis=-1))[0], f_uint8, rtol=1e-5, atol=1e-6)  # RGB: mean
    # 32×32 is resized bilinearly to 28×28; a constant image stays constant.
    const = np.full((4, 32, 32, 1), 0.25, np.float32)
    np.testing.assert_allclose(fn(const)[0], fn(np.full((4, 28, 28, 1), 0.25, np.float32))[0], rtol=1e-5, atol=1e-6)
    assert fn(rng.uniform(-1, 1, (5, 64, 64, 3)).astype(np.float32))[0].shape == (5, 128)
    with pytest.raises(DataError, match="C = 1"):
        fn(np.zeros((2, 28, 28, 2), np.float32))
    with pytest.raises(DataError, match="shape"):
        fn(np.zeros((2, 28, 28), np.float32))


def test_features_separate_classes(quick, test_images):
    """The trained classifier's softmax agrees with its recorded accuracy on test images."""
    _, module, variables, info = quick
    images, labels = test_images
    _, probs = classifier.make_feature_fn(module, variables)(images)
    assert abs(np.mean(probs.argmax(axis=1) == labels) - info["test_accuracy"]) < 0.05


# ---------------------------------------------------------------------------
# The command line.


def _cli(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "ganjax.metrics.classifier", *args], cwd=ROOT, env=ENV,
                          capture_output=True, text=True, timeout=timeout)


def test_cli_trains_and_caches(fashion_data_dir, tmp_path):
    proc = _cli("--dataset=fashion_mnist", f"--data_dir={fashion_data_dir}", "--num_steps=20",
                f"--cache_dir={tmp_path}")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("classifier_fashion_mnist_v1_20steps_seed0: test accuracy")
    assert str(tmp_path / "classifier_fashion_mnist_v1.npz") in lines[0]
    _, _, info = classifier.load_classifier("fashion_mnist", cache_dir=str(tmp_path), train_if_missing=False)
    assert info["num_steps"] == 20


def test_cli_unknown_dataset_is_one_line_exit_2(tmp_path):
    proc = _cli("--dataset=cifar10", f"--cache_dir={tmp_path}")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "cifar10" in lines[0] and "fashion_mnist" in lines[0], proc.stderr
    assert not os.listdir(tmp_path)


def test_cli_unreadable_data_is_one_error_line_exit_2(tmp_path):
    """The real path, no stub: GANJAX_FASHION_MNIST_DIR holds four .gz files that are not IDX files, so
    preparing the TFDS dataset fails in ganjax's IDX reader (a missing dataset instead fails only after
    TFDS's download retries: minutes offline). One error line, exit 2, no cache written."""
    import gzip

    idx = tmp_path / "idx"
    idx.mkdir()
    for split_files in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                        "t10k-labels-idx1-ubyte"):
        (idx / f"{split_files}.gz").write_bytes(gzip.compress(b"not an IDX file\n"))
    proc = subprocess.run([sys.executable, "-m", "ganjax.metrics.classifier", "--dataset=fashion_mnist",
                           f"--data_dir={tmp_path / 'tfds'}", f"--cache_dir={tmp_path / 'cache'}"], cwd=ROOT,
                          env={**ENV, "GANJAX_FASHION_MNIST_DIR": str(idx)}, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("ganjax: error:")]
    assert len(errors) == 1, proc.stderr
    assert re.fullmatch(r"ganjax: error: \S+/(train|t10k)-(images|labels)-idx[13]-ubyte is not an IDX file "
                        r"\(bad magic number\)", errors[0]), proc.stderr
    assert proc.stderr.rstrip().endswith(errors[0])
    assert not (tmp_path / "cache").exists()


# ---------------------------------------------------------------------------
# The real thing.


@pytest.mark.slow
def test_default_training_reproduces_the_shipped_weights(fashion_data_dir):
    """Retraining the default recipe gives the shipped arrays bit for bit (same jax version and CPU
    instruction set; XLA may round differently on another ISA, and then this names the digests)."""
    start = time.time()
    variables, accuracy = classifier.train_classifier("fashion_mnist", fashion_data_dir)
    print(f"default classifier: test accuracy {accuracy:.4f} in {time.time() - start:.0f}s")
    assert accuracy >= 0.91
    from flax import traverse_util

    flat = {k: np.asarray(v, np.float32) for k, v in traverse_util.flatten_dict(dict(variables)).items()}
    assert classifier.weights_file.arrays_sha256(flat) == classifier.SHIPPED_ARRAYS_SHA256["fashion_mnist"]
