"""Evaluation during training and post hoc (``ganjax.evaluate``), protocol recorded."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from ganjax.errors import ConfigError
from ganjax.metrics.evaluator import PROTOCOL_KEYS, resolve_metrics
from ganjax.trainer import train_and_evaluate
from ganjax.writers import read_jsonl
from tests.conftest import ROOT, load_config


def eval_rows(workdir, name="metrics.jsonl"):
    return [r for r in read_jsonl(os.path.join(workdir, name)) if "generator" in r]


def test_gaussian_1d_run_logs_raw_and_ema_scores_with_protocol(tmp_path):
    c = load_config("gaussian_1d", "quick")
    c.eval_every = 20
    workdir = str(tmp_path / "g")
    train_and_evaluate(c, workdir)
    rows = eval_rows(workdir)
    assert [(r["step"], r["generator"]) for r in rows] == [(20, "raw"), (20, "ema"), (40, "raw"), (40, "ema")]
    for r in rows:
        assert set(PROTOCOL_KEYS) <= set(r)
        assert r["num_samples"] == 100 and r["features"] == "none"
        assert 0.0 <= r["ks"] <= 1.0 and np.isfinite(r["gen_mean"])


def test_mixture_run_scores_mode_coverage(tmp_path):
    c = load_config("ring_2d", "quick")
    c.eval.num_samples = 300
    workdir = str(tmp_path / "r")
    train_and_evaluate(c, workdir)
    rows = eval_rows(workdir)
    assert {r["generator"] for r in rows} == {"raw", "ema"}
    assert all(r["num_modes"] == 8 and 0 <= r["modes"] <= 8 and r["num_samples"] == 300 for r in rows)


def test_metric_names_are_checked_against_the_data_kind():
    assert resolve_metrics("auto", "mixture") == ["mode_coverage"]
    assert resolve_metrics("fid, kid", "image") == ["fid", "kid"]
    with pytest.raises(ConfigError, match=r"unknown metric 'fdi'.*fid"):
        resolve_metrics("fdi", "image")
    with pytest.raises(ConfigError, match="does not apply to mixture data"):
        resolve_metrics("fid", "mixture")


def test_bad_eval_config_is_refused_before_training(tmp_path):
    c = load_config("gaussian_1d", "quick")
    c.eval.metrics = "mode_coverage"
    workdir = tmp_path / "bad"
    with pytest.raises(ConfigError, match="does not apply to gaussian_1d"):
        train_and_evaluate(c, str(workdir))
    assert not (workdir / "config.json").exists()


def test_evaluate_cli_scores_every_checkpoint_post_hoc(tmp_path):
    c = load_config("gaussian_1d", "quick")
    c.eval_every = 0
    workdir = str(tmp_path / "g")
    train_and_evaluate(c, workdir)
    assert not eval_rows(workdir)
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    run = subprocess.run([sys.executable, "-m", "ganjax.evaluate", f"--workdir={workdir}", "--all",
                          "--num_samples=50"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    rows = eval_rows(workdir, "eval.jsonl")
    assert sorted({r["step"] for r in rows}) == [20, 40]
    assert all(r["num_samples"] == 50 for r in rows)
    assert "step 40 ema" in run.stdout
    bad = subprocess.run([sys.executable, "-m", "ganjax.evaluate", f"--workdir={workdir}", "--metrics=fid"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert "does not apply to gaussian_1d data; valid for it: gaussian_1d" in bad.stderr


def test_image_run_scores_with_the_domain_classifier_and_post_hoc_agrees(tmp_path, fashion_data_dir,
                                                                          quick_classifier, classifier_cache):
    """Fashion-MNIST MLP GAN: every image metric during training, real features cached once,
    and ``ganjax.evaluate`` on the last checkpoint reproduces the in-training scores."""
    _, _, _, info = quick_classifier
    cache = classifier_cache
    c = load_config("fashion_mnist_mlp", "quick")
    c.data_dir = fashion_data_dir
    c.eval_every = 10
    c.eval.num_samples = 200
    c.eval.cache_dir = cache
    workdir = str(tmp_path / "fm")
    train_and_evaluate(c, workdir)
    rows = eval_rows(workdir)
    assert [(r["step"], r["generator"]) for r in rows] == [(10, "raw"), (10, "ema"), (20, "raw"), (20, "ema")]
    for r in rows:
        assert (r["features"], r["weights_sha256"], r["resize"], r["split"], r["num_samples"]) == (
            info["name"], info["sha256"], "none", "train", 200)
        assert r["fid"] > 0 and np.isfinite(r["kid"]) and r["kid_stderr"] > 0
        assert 1.0 <= r["is"] <= 10.0
        assert 1 <= r["classes"] <= 10 and 0.0 <= r["class_kl"] <= np.log(10) + 1e-9
        assert all(0.0 <= r[k] <= 1.0 for k in ("precision", "recall", "coverage")) and r["density"] >= 0
    assert len(os.listdir(os.path.join(cache, "real_stats"))) == 1  # real features computed once for the run

    env = {**os.environ, "JAX_PLATFORMS": "cpu", "XLA_FLAGS": ""}
    run = subprocess.run([sys.executable, "-m", "ganjax.evaluate", f"--workdir={workdir}"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    post = eval_rows(workdir, "eval.jsonl")
    assert [(r["step"], r["generator"]) for r in post] == [(20, "raw"), (20, "ema")]
    for during, after in zip(rows[2:], post):
        for key in ("fid", "kid", "is", "classes", "class_kl", "precision", "recall", "density", "coverage"):
            assert after[key] == pytest.approx(during[key], rel=1e-4, abs=1e-6), key


def test_domain_classifier_fid_orders_test_half_classes_and_noise(fashion_data_dir, quick_classifier):
    """experiments/fid_sanity.py's claim at a small scale: test split ≪ half the classes ≪ noise."""
    from experiments.fid_sanity import candidate_sets, fid_table
    from ganjax.data.images import load_images
    from ganjax.metrics import classifier

    _, module, variables, _ = quick_classifier
    train, labels = load_images("fashion_mnist", "train", fashion_data_dir)
    test, _ = load_images("fashion_mnist", "test", fashion_data_dir)
    reference, sets = candidate_sets(train, labels, test, num=2000, seed=0)
    fid = fid_table(classifier.make_feature_fn(module, variables), reference, sets)
    floor = max(fid["train (disjoint)"], fid["test"])  # both sampling noise around the same distribution
    assert 0 < floor and 10 * floor < fid["train, classes 0-4"] < fid["noise"], fid
    assert fid["noise"] > 2 * fid["train, classes 0-4"], fid
