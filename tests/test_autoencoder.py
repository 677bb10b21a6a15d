"""Seed 004: autoencoder pretraining (phase 1) and the generator on its decoder (phase 2)."""

import os
import shutil
import signal

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ganjax import config as config_lib
from ganjax import pretrain
from ganjax.data import Dataset
from ganjax.errors import ConfigError
from ganjax.models import build_generator
from ganjax.models.autoencoder import ConvAutoencoder
from ganjax.train import generate, init_state
from ganjax.trainer import Interrupted, load_for_inference, train_and_evaluate
from ganjax.writers import read_jsonl
from tests.conftest import assert_trees_close, load_config, override, trees_equal


@pytest.fixture(scope="module")
def fashion_images(fashion_data_dir):
    from ganjax.data.images import load_images

    return load_images("fashion_mnist", "train", fashion_data_dir)[0]


@pytest.fixture(scope="module")
def small_fashion(fashion_images):
    """256 real Fashion-MNIST training images as an in-memory dataset (fast runs)."""
    return Dataset("fashion_mnist", (28, 28, 1), images=fashion_images[:256])


def tiny(ae_steps: int, num_steps: int, **overrides):
    """The shipped config with narrow nets and batch 8: both phases in seconds."""
    c = load_config("ae_gan_fashion_mnist", "quick")
    c.batch_size = 8
    c.num_steps = num_steps
    c.log_every = 2
    c.checkpoint_every = 3
    c.sample_every = 0
    c.model.g.code_channels = 8
    c.model.g.widths = (8, 8)
    c.model.d.widths = (8, 8)
    c.pretrain.autoencoder_steps = ae_steps
    c.pretrain.batch_size = 8
    c.pretrain.encoder_widths = (8, 8)
    c.pretrain.log_every = 2
    c.pretrain.checkpoint_every = 3
    return override(c, overrides)


def pretrained_state(c, workdir, dataset):
    """Phase 1's stored state in ``workdir`` (what a rerun would restore)."""
    return pretrain.Pretrainer(c, workdir, dataset, lambda: "").state


def test_autoencoder_and_generator_share_one_decoder_definition():
    ae = ConvAutoencoder((28, 28, 1))
    ae_params = ae.init(jax.random.key(0), jnp.zeros((2, 28, 28, 1)))["params"]
    g = build_generator("ae_decoder", (28, 28, 1), {})
    g_params = g.init(jax.random.key(0), jnp.zeros((2, 100)), train=False)["params"]
    assert set(g_params) == {"mapping", "decoder"} and set(ae_params) == {"encoder", "decoder"}
    shapes = lambda t: jax.tree.map(jnp.shape, t)  # noqa: E731
    assert shapes(ae_params["decoder"]) == shapes(g_params["decoder"])
    assert g_params["mapping"]["kernel"].shape == (100, 7 * 7 * 128)  # the seed's Dense(128 * 7 * 7)
    code = ae.apply({"params": ae_params}, jnp.zeros((2, 28, 28, 1)), method=lambda m, x: m.encoder(x))
    assert code.shape == (2, 7, 7, 128)  # the seed's decoder Input(shape=(7, 7, 128))
    x = g.apply({"params": g_params}, jax.random.normal(jax.random.key(1), (3, 100)), train=False)
    assert x.shape == (3, 28, 28, 1) and float(jnp.max(jnp.abs(x))) <= 1.0


def test_autoencoder_phase_lowers_test_reconstruction_error(tmp_path, fashion_data_dir, fashion_images):
    """Phase 1 with the seed's architecture: test-set MSE after 40 steps is well below the initial one."""
    from ganjax.data.images import load_images

    c = load_config("ae_gan_fashion_mnist", "quick")
    c.data_dir = fashion_data_dir
    c.num_steps = 0
    c.pretrain.autoencoder_steps = 40
    c.pretrain.batch_size = 32
    c.pretrain.log_every = 20
    c.pretrain.checkpoint_every = 0
    dataset = Dataset("fashion_mnist", (28, 28, 1), images=fashion_images)
    workdir = str(tmp_path / "w")
    train_and_evaluate(c, workdir, dataset)
    test_images = load_images("fashion_mnist", "test", fashion_data_dir)[0][:500]
    ae = pretrain.build_autoencoder(c, (28, 28, 1))
    before = pretrain.reconstruction_mse(ae, pretrain.init_ae_state(ae, c.seed).params, test_images)
    trained = pretrained_state(c, workdir, dataset)
    assert int(trained.step) == 40
    after = pretrain.reconstruction_mse(ae, trained.params, test_images)
    assert after < 0.4 * before, (before, after)
    rows = read_jsonl(os.path.join(workdir, "pretrain", "metrics.jsonl"))
    assert [r["step"] for r in rows] == [20, 40] and all(r["kind"] == "pretrain" for r in rows)
    assert rows[-1]["recon_loss"] < rows[0]["recon_loss"]
    assert os.path.exists(os.path.join(workdir, "pretrain", "reconstructions.png"))


def test_generator_starts_from_the_pretrained_decoder_with_a_fresh_mapping(tmp_path, small_fashion):
    c = tiny(ae_steps=4, num_steps=0)
    workdir = str(tmp_path / "w")
    state = train_and_evaluate(c, workdir, small_fashion)  # phase 1, then the GAN state at step 0
    assert int(state.step) == 0
    decoder = pretrained_state(c, workdir, small_fashion).params["decoder"]
    assert_trees_close(state.g_params["decoder"], decoder)
    assert_trees_close(state.ema_params["decoder"], decoder)
    _, gan = config_lib.build(c, small_fashion)
    fresh = init_state(gan, c.seed)
    assert_trees_close(state.g_params["mapping"], fresh.g_params["mapping"])
    assert not trees_equal(state.g_params["decoder"], fresh.g_params["decoder"])
    untrained = pretrain.init_ae_state(pretrain.build_autoencoder(c, (28, 28, 1)), c.seed)
    assert not trees_equal(decoder, untrained.params["decoder"])  # phase 1 did train it


def _sigterm_at(position: int):
    class Stream(pretrain.BatchStream):
        def next(self):
            if self.position == position:
                signal.raise_signal(signal.SIGTERM)  # handled by phase 1's handler: finish the step, save, stop
            return super().next()
    return Stream


def test_interrupted_phase_1_resumes_to_the_same_decoder_bitwise(tmp_path, small_fashion, monkeypatch):
    full = str(tmp_path / "full")
    train_and_evaluate(tiny(ae_steps=8, num_steps=0), full, small_fashion)
    reference = pretrained_state(tiny(ae_steps=8, num_steps=0), full, small_fashion)

    workdir = str(tmp_path / "w")
    train_and_evaluate(tiny(ae_steps=2, num_steps=0), workdir, small_fashion)  # a smaller budget first
    with monkeypatch.context() as m:
        m.setattr(pretrain, "BatchStream", _sigterm_at(4))
        with pytest.raises(Interrupted, match="autoencoder pretraining step 5") as stopped:
            train_and_evaluate(tiny(ae_steps=8, num_steps=0), workdir, small_fashion)
    assert stopped.value.signum == signal.SIGTERM
    assert 5 in pretrain.Checkpointer.existing_steps(os.path.join(workdir, "pretrain"))
    assert not pretrain.Checkpointer.existing_steps(workdir)  # no GAN checkpoint yet
    state = train_and_evaluate(tiny(ae_steps=8, num_steps=0), workdir, small_fashion)
    resumed = pretrained_state(tiny(ae_steps=8, num_steps=0), workdir, small_fashion)
    assert int(resumed.step) == 8
    assert_trees_close(resumed, reference)  # params and Adam state
    assert_trees_close(state.g_params["decoder"], reference.params["decoder"])
    steps = [r["step"] for r in read_jsonl(os.path.join(workdir, "pretrain", "metrics.jsonl"))]
    assert steps == sorted(set(steps)), steps


def _phase_2_resume_without_phase_1(workdir: str, dataset, first: int, second: int, caplog):
    """Trains both phases to GAN step ``first``, deletes phase 1's folder, then resumes to ``second``."""
    before = train_and_evaluate(tiny(ae_steps=4, num_steps=first), workdir, dataset)  # GAN checkpoint at `first`
    shutil.rmtree(os.path.join(workdir, "pretrain"))  # phase 1 must not be needed, nor redone
    with caplog.at_level("INFO", logger="ganjax"):
        resumed = train_and_evaluate(tiny(ae_steps=4, num_steps=second), workdir, dataset)
    assert f"resuming from step {first}" in caplog.text and "autoencoder" not in caplog.text
    assert not os.path.exists(os.path.join(workdir, "pretrain"))
    assert int(resumed.step) == second
    return before, resumed


def test_phase_2_resume_does_not_rerun_phase_1_and_inference_works(tmp_path, small_fashion, caplog):
    workdir = str(tmp_path / "w")
    before, resumed = _phase_2_resume_without_phase_1(workdir, small_fashion, 3, 3, caplog)
    assert_trees_close(before, resumed)
    # ganjax.sample / ganjax.evaluate rebuild the generator from config.json and restore the GAN checkpoint.
    _, gan, state, step = load_for_inference(workdir)
    assert step == 3
    assert_trees_close(state.g_params, before.g_params)
    x = np.asarray(generate(gan, state, gan.sample_noise(jax.random.key(0), 5), ema=True))
    assert x.shape == (5, 28, 28, 1) and np.all(np.abs(x) <= 1.0)


@pytest.mark.slow
def test_phase_2_resumed_without_phase_1_equals_an_uninterrupted_run(tmp_path, small_fashion, caplog):
    full = train_and_evaluate(tiny(ae_steps=4, num_steps=6), str(tmp_path / "full"), small_fashion)
    _, resumed = _phase_2_resume_without_phase_1(str(tmp_path / "w"), small_fashion, 3, 6, caplog)
    assert_trees_close(full, resumed)


def test_frozen_decoder_stays_the_pretrained_one(tmp_path, small_fashion):
    c = tiny(ae_steps=2, num_steps=2)
    c.model.g.freeze_decoder = True
    workdir = str(tmp_path / "w")
    state = train_and_evaluate(c, workdir, small_fashion)
    decoder = pretrained_state(c, workdir, small_fashion).params["decoder"]
    assert_trees_close(state.g_params["decoder"], decoder)
    _, gan = config_lib.build(c, small_fashion)
    assert not trees_equal(state.g_params["mapping"], init_state(gan, c.seed).g_params["mapping"])


@pytest.mark.parametrize("overrides,message", [
    ({"model.generator": "mlp"},
     r"pretrain.autoencoder_steps = 4 pretrains the decoder of model.generator='ae_decoder', but "
     r"model.generator is 'mlp'"),
    ({"dataset": "ring_2d"}, r"model.generator='ae_decoder' generates images, but dataset 'ring_2d' is a toy"),
    ({"pretrain.loss": "l1"}, r"unknown pretrain.loss 'l1'; valid choices: bce, mse"),
    ({"pretrain.encoder_widths": (8, 8, 8)}, r"pretrain.encoder_widths \(8, 8, 8\) and model.g.widths \(8, 8\) "
                                             r"must have the same length"),
    ({"pretrain.autoencoder_steps": -1}, r"pretrain.autoencoder_steps must be an integer >= 0, got -1"),
    ({"pretrain.learning_rate": 0.0}, r"pretrain.learning_rate and pretrain.eps must be > 0"),
    ({"model.g.code_channels": 0}, r"model.g.code_channels = 0 is invalid; it must be a positive integer"),
    ({"pretrain.batch_size": 512}, r"pretrain.batch_size = 512 exceeds the 256 examples of 'fashion_mnist'"),
])
def test_bad_config_is_a_clear_error_before_anything_is_written(tmp_path, small_fashion, overrides, message):
    workdir = tmp_path / "w"
    dataset = None if overrides.get("dataset") else small_fashion
    with pytest.raises(ConfigError, match=message):
        train_and_evaluate(tiny(ae_steps=4, num_steps=2, **overrides), str(workdir), dataset)
    assert not (workdir / "config.json").exists() and not (workdir / "pretrain").exists()


def test_phase_1_checkpoint_that_does_not_fit_the_config_names_the_keys(tmp_path, small_fashion):
    from ganjax.errors import CheckpointError

    workdir = tmp_path / "w"
    train_and_evaluate(tiny(ae_steps=2, num_steps=0), str(workdir), small_fashion)
    before = (workdir / "config.json").read_text()
    with pytest.raises(CheckpointError, match=r"config keys that differ from .*: model\.g\.code_channels"):
        train_and_evaluate(tiny(ae_steps=4, num_steps=0, **{"model.g.code_channels": 4}), str(workdir), small_fashion)
    assert (workdir / "config.json").read_text() == before


def test_vmapped_sweep_groups_refuse_two_phase_training(tmp_path):
    from ganjax.sweep.spec import Trial
    from ganjax.sweep.vmapped import GroupRun

    with pytest.raises(ConfigError, match=r"not supported in vmapped groups; use mode='process'"):
        GroupRun([Trial("t0", {})], [tiny(ae_steps=2, num_steps=1)], str(tmp_path / "g"))
