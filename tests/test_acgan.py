"""Conditioning mechanisms of the MLP nets: concat (cGAN) and ACGAN's class head, with every loss."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ganjax import acgan
from ganjax import config as config_lib
from ganjax.losses import LOSSES
from ganjax.train import _G_LABELS, _G_NOISE, _LABELS, _NOISE, _purpose, apply_model, init_state, step_key, train_step
from tests.conftest import load_config, trees_equal
from tests.test_labels import NUM_CLASSES, image_config, labelled_images

BUILTIN_LOSSES = ("minimax", "non_saturating", "least_squares", "wasserstein", "hinge", "rsgan", "ragan", "ralsgan")


def log_softmax_ce(logits: np.ndarray, labels: np.ndarray) -> float:
    """Mean of -log softmax(logits)[label], written out in float64."""
    logits = np.asarray(logits, np.float64)
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return float(-np.mean(log_probs[np.arange(len(labels)), labels]))


def acgan_config(weight: float = 1.0, **overrides):
    c = image_config(**overrides)
    c.acgan_weight = weight
    c.model.d.conditioning = "none"
    return c


def test_class_loss_is_the_softmax_cross_entropy():
    logits = np.array([[2.0, -1.0, 0.5], [0.0, 0.0, 0.0], [-3.0, 4.0, 1.0]], np.float32)
    labels = np.array([0, 2, 1])
    # Hand-computed: -log(e^2 / (e^2 + e^-1 + e^0.5)), log 3, -log(e^4 / (e^-3 + e^4 + e^1)).
    by_hand = np.mean([-2.0 + np.log(np.exp(2.0) + np.exp(-1.0) + np.exp(0.5)), np.log(3.0),
                       -4.0 + np.log(np.exp(-3.0) + np.exp(4.0) + np.exp(1.0))])
    np.testing.assert_allclose(float(acgan.class_loss(jnp.asarray(logits), jnp.asarray(labels))), by_hand, rtol=1e-6)
    np.testing.assert_allclose(log_softmax_ce(logits, labels), by_hand, rtol=1e-12)
    out = jnp.arange(12.0).reshape(3, 4)
    logits_1d, classes = acgan.split(out, True)
    np.testing.assert_array_equal(logits_1d, [0.0, 4.0, 8.0])
    np.testing.assert_array_equal(classes, out[:, 1:])
    assert acgan.split(out[:, 0], False)[1] is None


def test_acgan_step_losses_equal_the_hand_written_ones():
    """D's class term λ·(CE_real + CE_fake) and G's loss NS(f) + λ·CE from the nets' outputs, by hand."""
    weight = 0.7
    ds = labelled_images()
    _, gan = config_lib.build(acgan_config(weight), ds)
    assert gan.acgan_weight == weight
    s0 = init_state(gan, 0)
    images, labels = ds.images[None, :8], ds.labels[None, :8]
    new, metrics = jax.jit(lambda s, b: train_step(gan, s, b, 8))(s0, (images, labels))
    key = step_key(s0)

    def g(params, noise_purpose, label_purpose):
        y = np.asarray(gan.sample_labels(_purpose(key, label_purpose), 8))
        z = gan.sample_noise(_purpose(key, noise_purpose), 8)
        return apply_model(gan.generator, params, s0.g_state, z, train=True, labels=jnp.asarray(y))[0], y

    def d(params, x):
        out = np.asarray(apply_model(gan.discriminator, params, s0.d_state, x, train=True)[0])
        assert out.shape == (8, 1 + NUM_CLASSES)
        return out

    real = images[0].astype(np.float32) / 127.5 - 1.0
    fake, fake_y = g(s0.g_params, _NOISE, _LABELS)
    d_real, d_fake = d(s0.d_params, real), d(s0.d_params, fake)
    expected_d = weight * (log_softmax_ce(d_real[:, 1:], labels[0]) + log_softmax_ce(d_fake[:, 1:], fake_y))
    np.testing.assert_allclose(metrics["class_loss_d"], expected_d, rtol=1e-5)
    softplus = lambda v: np.logaddexp(0.0, v)  # noqa: E731
    expected_adv = np.mean(softplus(-d_real[:, 0])) + np.mean(softplus(d_fake[:, 0]))
    np.testing.assert_allclose(metrics["d_loss"], expected_adv, rtol=1e-5)
    # G's update judges a fresh generated batch with the updated D.
    g_fake, g_y = g(s0.g_params, _G_NOISE, _G_LABELS)
    out = d(new.d_params, g_fake)
    expected_g = np.mean(softplus(-out[:, 0])) + weight * log_softmax_ce(out[:, 1:], g_y)
    np.testing.assert_allclose(metrics["g_loss"], expected_g, rtol=1e-5)
    # Negative control: without the class term the G loss is the adversarial part alone.
    assert abs(float(metrics["g_loss"]) - np.mean(softplus(-out[:, 0]))) > 1e-3


def test_acgan_discriminator_sees_no_labels_with_conditioning_none():
    ds = labelled_images()
    _, gan = config_lib.build(acgan_config(), ds)
    s0 = init_state(gan, 0)
    # D's first layer takes the flattened 4x4 image only; its last layer has 1 + C outputs.
    assert s0.d_params["Dense_0"]["kernel"].shape[0] == 16
    assert s0.d_params["Dense_1"]["kernel"].shape[1] == 1 + NUM_CLASSES
    assert s0.g_params["Dense_0"]["kernel"].shape[0] == 8 + NUM_CLASSES


FAST_LOSSES = ("non_saturating", "wasserstein", "ragan")  # one-argument and two-argument G losses; the rest: -m slow


@pytest.mark.parametrize("mechanism", ["concat", "acgan"])
@pytest.mark.parametrize("loss", [loss if loss in FAST_LOSSES else pytest.param(loss, marks=pytest.mark.slow)
                                  for loss in BUILTIN_LOSSES])
def test_every_loss_trains_with_each_mechanism(loss, mechanism):
    assert set(BUILTIN_LOSSES) <= set(LOSSES)
    c = acgan_config() if mechanism == "acgan" else image_config()
    c.loss = loss
    ds = labelled_images()
    _, gan = config_lib.build(c, ds)
    s0 = init_state(gan, 0)
    step = jax.jit(lambda s, b: train_step(gan, s, b, 8))
    s = s0
    for i in range(3):
        s, metrics = step(s, (ds.images[None, 8 * i:8 * i + 8], ds.labels[None, 8 * i:8 * i + 8]))
        assert all(np.isfinite(float(v)) for v in metrics.values()), metrics
        assert float(metrics["nonfinite"]) == 0.0
    assert not trees_equal(s.g_params, s0.g_params) and not trees_equal(s.d_params, s0.d_params)
    assert ("class_loss_d" in metrics) == (mechanism == "acgan")


def test_mlp_concat_feeds_the_one_hot_label():
    """G's output depends on the label through the one-hot rows of its first kernel, exactly."""
    _, gan = config_lib.build(image_config(), labelled_images())
    s = init_state(gan, 0)
    z = jnp.zeros((NUM_CLASSES, 8))
    y = jnp.arange(NUM_CLASSES, dtype=jnp.int32)
    out = apply_model(gan.generator, s.g_params, s.g_state, z, train=False, labels=y)[0]
    kernel, bias = s.g_params["Dense_0"]["kernel"], s.g_params["Dense_0"]["bias"]
    # With z = 0 the first pre-activation is the bias plus the label's one-hot row of the kernel.
    h = jax.nn.leaky_relu(bias + kernel[8:][y], 0.2)
    w2, b2 = s.g_params["Dense_1"]["kernel"], s.g_params["Dense_1"]["bias"]
    np.testing.assert_allclose(out.reshape(NUM_CLASSES, -1), jnp.tanh(h @ w2 + b2), rtol=1e-5, atol=1e-6)
    assert not np.allclose(out[0], out[1])


def test_a_conditional_module_registered_without_num_classes_is_refused():
    import flax.linen as nn

    from ganjax.models import register_generator
    from ganjax.registry import RegistrationError

    class NoField(nn.Module):
        out_shape: tuple = (2,)

        def __call__(self, z, train: bool = True, labels=None):
            return z

    with pytest.raises(RegistrationError, match=r"lacks the field\(s\) num_classes"):
        register_generator("test_no_num_classes", NoField)
