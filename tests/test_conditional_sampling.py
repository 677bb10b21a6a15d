"""Sampling a class-conditional run: --labels, --per_class, the class-by-row grid, --truncation."""

import dataclasses
import os

import flax.linen as nn
import jax
import numpy as np
import pytest

from ganjax import config as config_lib
from ganjax import sampling
from ganjax.errors import ConfigError
from ganjax.models import GENERATORS, register_generator
from ganjax.trainer import train_and_evaluate
from tests.conftest import load_config
from tests.test_cli import run


class TruncatableIdentity(nn.Module):
    """A tiny generator that returns its noise (plus a zero-initialised layer), supporting truncation."""

    supports_truncation = True
    out_shape: tuple = (2,)

    @nn.compact
    def __call__(self, z, train: bool = True):
        return z + nn.Dense(2, kernel_init=nn.initializers.zeros)(z)


@pytest.fixture
def truncatable():
    register_generator("test_truncatable", TruncatableIdentity, override=True)
    yield "test_truncatable"
    GENERATORS.unregister("test_truncatable")


def ring(num_classes=8, generator="mlp"):
    c = load_config("ring_2d", "quick")
    c.model.num_classes = num_classes
    c.model.generator = generator
    if generator != "mlp":
        c.model.g = c.model.g.__class__()
        c.model.z_dim = 2
    return config_lib.build(c)[1]


def test_labels_and_per_class_are_checked_against_the_run():
    gan = ring()
    np.testing.assert_array_equal(sampling.requested_labels(gan, "3,3,7", None), [3, 3, 7])
    np.testing.assert_array_equal(sampling.requested_labels(gan, None, 2), [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5,
                                                                            6, 6, 7, 7])
    assert sampling.requested_labels(gan, None, None) is None
    with pytest.raises(ConfigError, match=r"label 8 in --labels is out of range: model.num_classes = 8, valid "
                                          r"labels 0..7"):
        sampling.requested_labels(gan, "3,8", None)
    with pytest.raises(ConfigError, match=r"must be a comma list of integer class labels"):
        sampling.requested_labels(gan, "3,x", None)
    with pytest.raises(ConfigError, match=r"not both"):
        sampling.requested_labels(gan, "1", 2)
    with pytest.raises(ConfigError, match=r"--per_class needs a class-conditional run"):
        sampling.requested_labels(ring(0), None, 2)
    with pytest.raises(ConfigError, match=r"--labels needs a class-conditional run"):
        sampling.requested_labels(ring(0), "1", None)


def test_class_rows_put_each_class_on_its_own_row():
    samples = np.arange(5, dtype=np.float32)[:, None, None, None] * np.ones((5, 2, 2, 1), np.float32) / 10
    tiles, width = sampling.class_rows(samples, np.array([7, 3, 7, 7, 3]))
    assert width == 3 and tiles.shape == (6, 2, 2, 1)
    # Row 0: class 7 (first seen) = samples 0, 2, 3; row 1: class 3 = samples 1, 4, then a blank tile.
    np.testing.assert_array_equal(tiles[:, 0, 0, 0], np.array([0.0, 0.2, 0.3, 0.1, 0.4, -1.0], np.float32))


def test_truncation_draws_truncated_normal_noise_for_generators_that_support_it(truncatable):
    gan = ring(0, generator=truncatable)
    z = np.asarray(sampling.sample_noise(gan, jax.random.key(0), 4000, 0.5, truncatable))
    assert np.abs(z).max() <= 0.5 and np.abs(z).max() > 0.45
    # The truncated normal's std on [-0.5, 0.5] is 0.2859 (vs 0.2887 for a uniform): a normal, cut.
    np.testing.assert_allclose(z.std(), 0.2859, atol=0.01)
    np.testing.assert_array_equal(sampling.sample_noise(gan, jax.random.key(0), 3), gan.sample_noise(jax.random.key(0), 3))
    with pytest.raises(ConfigError, match=r"--truncation must be > 0"):
        sampling.sample_noise(gan, jax.random.key(0), 3, 0.0, truncatable)
    with pytest.raises(ConfigError, match=r"--truncation truncates normal noise"):
        sampling.sample_noise(dataclasses.replace(gan, noise="uniform"), jax.random.key(0), 3, 0.5)
    with pytest.raises(ConfigError, match=r"generator 'mlp' does not support --truncation; generators that do: "
                                          r".*test_truncatable"):
        sampling.sample_noise(ring(), jax.random.key(0), 3, 0.5, "mlp")


def test_sample_cli_per_class_labels_and_refusals(tmp_path):
    c = load_config("ring_2d", "quick")
    c.model.num_classes, c.num_steps, c.eval_every = 8, 2, 0
    workdir = str(tmp_path / "w")
    train_and_evaluate(c, workdir)
    out = str(tmp_path / "s.npy")
    r = run("ganjax.sample", f"--workdir={workdir}", "--per_class=3", f"--out={out}")
    assert r.returncode == 0, r.stderr
    assert np.load(out).shape == (24, 2) and "wrote 24 samples" in r.stdout
    r = run("ganjax.sample", f"--workdir={workdir}", "--labels=2,9", f"--out={tmp_path / 'bad.png'}")
    assert r.returncode != 0 and not os.path.exists(tmp_path / "bad.png")
    assert r.stderr.strip().splitlines()[-1] == ("ganjax: error: label 9 in --labels is out of range: "
                                                 "model.num_classes = 8, valid labels 0..7")
    r = run("ganjax.sample", f"--workdir={workdir}", "--truncation=0.5", f"--out={tmp_path / 'bad.png'}")
    assert r.returncode != 0 and "generator 'mlp' does not support --truncation" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
