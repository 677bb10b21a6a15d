"""Intra-class FID and class agreement of class-conditional runs."""

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
