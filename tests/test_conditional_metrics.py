"""Intra-class FID and class agreement of class-conditional runs."""

import dataclasses

import flax.linen as nn
import jax.numpy as jnp
import numpy as np
import pytest

from ganjax.data import Dataset
from ganjax.errors import ConfigError
from ganjax.metrics import frechet
from ganjax.metrics.evaluator import (EvalData, Evaluator, class_agreement, default_eval_config, intra_fid,
                                      resolve_metrics, validate_eval_config)


def test_intra_fid_is_the_mean_of_per_class_fids():
    rng = np.random.default_rng(0)
    real = rng.normal(size=(300, 3))
    real_labels = np.repeat([0, 1, 2], 100)
    fake = rng.normal(size=(90, 3)) + np.repeat([[0.0], [1.0], [3.0]], 30, axis=0)
    labels = np.repeat([0, 1, 2], 30)
    by_class = [frechet.frechet_distance_of_features(real[real_labels == c], fake[labels == c]) for c in range(3)]
    got = intra_fid(EvalData(np.zeros(90), fake_features=fake, real_features=real, labels=labels,
                             real_labels=real_labels))["intra_fid"]
    np.testing.assert_allclose(got, np.mean(by_class), rtol=1e-12)
    # A shift of 3 in every coordinate adds 3 * 3² = 27 to class 2's FID: the mean sees it.
    assert by_class[2] > 25 and got > by_class[0] + 8


def test_class_agreement_counts_argmax_matches():
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8], [0.3, 0.4, 0.3], [0.5, 0.25, 0.25]])
    got = class_agreement(EvalData(np.zeros(4), fake_probs=probs, labels=np.array([0, 2, 0, 1])))
    assert got == {"class_agreement": 0.5}


def test_conditional_metrics_only_for_conditional_runs_and_agreement_only_with_the_classifier():
    assert "intra_fid" not in resolve_metrics("auto", "image")
    assert {"intra_fid", "class_agreement"} <= set(resolve_metrics("auto", "image", conditional=True))
    with pytest.raises(ConfigError, match=r"metric 'intra_fid' needs a class-conditional run"):
        resolve_metrics("fid,intra_fid", "image")
    e = default_eval_config()
    e.features = "inception"
    assert "class_agreement" not in validate_eval_config(e, "image", True)
    assert "intra_fid" in validate_eval_config(e, "image", True)
    e.metrics = "class_agreement"
    with pytest.raises(ConfigError, match=r"needs eval.features='classifier'"):
        validate_eval_config(e, "image", True)


def test_real_images_with_their_labels_agree_and_score_a_low_intra_fid(fashion_data_dir, classifier_cache):
    """Real test images scored as if generated for their true classes vs for shuffled classes (negative control)."""
    from ganjax.data.images import load_images

    e = default_eval_config()
    e.metrics, e.num_samples, e.cache_dir = "intra_fid,class_agreement", 1000, classifier_cache
    evaluator = Evaluator(e, Dataset("fashion_mnist", (28, 28, 1)), "fashion_mnist", fashion_data_dir, 0,
                          num_classes=10)
    assert evaluator.protocol()["labels"] == "balanced over 10 classes"
    np.testing.assert_array_equal(np.bincount(evaluator.labels()), [100] * 10)
    test, labels = load_images("fashion_mnist", "test", fashion_data_dir)
    images, labels = test[:1000].astype(np.float32) / 127.5 - 1.0, labels[:1000]
    right = evaluator.score(images, labels)
    wrong = evaluator.score(images, np.random.default_rng(0).permutation(10)[labels])
    assert right["class_agreement"] > 0.6 and wrong["class_agreement"] < 0.3, (right, wrong)
    assert 3 * right["intra_fid"] < wrong["intra_fid"], (right, wrong)


def class_prototypes(table: np.ndarray) -> nn.Module:
    """A conditional "generator" returning ``table[label]`` ``[C, H, W, 1]`` per row (z only sets the batch)."""

    class ClassPrototypes(nn.Module):
        @nn.compact
        def __call__(self, z, train: bool = True, labels=None):
            return self.param("table", lambda _: jnp.asarray(table))[labels] + 0.0 * z[:, :1, None, None]

    return ClassPrototypes()


def test_a_runs_class_agreement_scores_each_sample_against_the_class_it_was_generated_for(
        fashion_data_dir, classifier_cache):
    """The whole evaluation path (noise, labels, batched generation, classifier): with a generator that
    returns one real test image per requested class, class agreement is the fraction of those 10
    prototypes the classifier gets right, computed here independently. The eval batch (300) divides
    neither the sample count (1,000) nor a class block (100): labels drawn per batch instead of for
    the whole set (the bug this guards against) scored 0.09 on a well-conditioned run."""
    from ganjax import config as config_lib
    from ganjax.data.images import load_images
    from ganjax.metrics import classifier
    from ganjax.train import init_state

    test, test_labels = load_images("fashion_mnist", "test", fashion_data_dir)
    first = [int(np.argmax(test_labels == c)) for c in range(10)]
    table = test[first].astype(np.float32) / 127.5 - 1.0
    module, variables, _ = classifier.load_classifier("fashion_mnist", fashion_data_dir, classifier_cache)
    logits, _ = module.apply(variables, jnp.asarray(table), train=False)
    predicted = np.argmax(np.asarray(logits), axis=-1)
    expected = float(np.mean(predicted == np.arange(10)))  # balanced classes: 100 samples per prototype
    assert expected >= 0.7, predicted  # the prototypes are mostly recognised, so chance (0.1) is far off

    c = config_lib.load_config_file("configs/cgan_fashion_mnist_mlp.py", "quick")
    c.eval.metrics, c.eval.num_samples, c.eval.batch_size, c.eval.ema = "class_agreement", 1000, 300, False
    c.eval.cache_dir = classifier_cache
    dataset = Dataset("fashion_mnist", (28, 28, 1), num_classes=10)
    _, gan = config_lib.build(c, dataset)
    gan = dataclasses.replace(gan, generator=class_prototypes(table))
    state = init_state(gan, 0)
    evaluator = Evaluator(c.eval, dataset, "fashion_mnist", fashion_data_dir, 0, num_classes=10)
    [row] = evaluator(gan, state)
    assert row["class_agreement"] == pytest.approx(expected, abs=1e-12), (row, predicted)


@pytest.mark.slow
def test_cgan_config_follows_its_labels_after_3_epochs(fashion_data_dir, tmp_path):
    """The README's cGAN claim: ``configs/cgan_fashion_mnist_mlp.py`` trained 3 epochs on real Fashion-MNIST
    makes samples that the shipped domain classifier (91.7% on real test images) assigns to their requested
    class at least 70% of the time (chance: 10%; a G that ignores its labels scored 0.10 here)."""
    from ganjax.trainer import train_and_evaluate
    from ganjax.writers import read_jsonl
    from tests.conftest import load_config

    c = load_config("cgan_fashion_mnist_mlp")
    c.data_dir = fashion_data_dir
    c.num_steps = 3 * (60_000 // c.batch_size)
    c.eval_every, c.checkpoint_every, c.sample_every, c.log_every = c.num_steps, c.num_steps, 0, c.num_steps
    c.eval.metrics, c.eval.ema = "fid,class_agreement", False
    c.eval.cache_dir = str(tmp_path / "cache")  # empty: the shipped classifier weights are used
    train_and_evaluate(c, str(tmp_path / "run"))
    rows = read_jsonl(str(tmp_path / "run" / "metrics.jsonl"))
    [row] = [r for r in rows if r.get("generator") == "raw" and r["step"] == c.num_steps]
    assert row["num_samples"] == 10_000 and row["features"] == "classifier_fashion_mnist_v1"
    assert row["class_agreement"] >= 0.70, row
