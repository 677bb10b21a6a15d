"""``layers.conv2d``'s 4×4/2 convolution and ``layers.phase_conv_transpose`` carry hand-written gradients
(faster on XLA:CPU, issue 16): they must equal XLA's autodiff of the plain convolution to float32 rounding,
first and second order (gradient penalties differentiate through them), under ``vmap`` and in bfloat16."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ganjax.models import layers

DIMS = ("NHWC", "HWIO", "NHWC")


def plain_conv(x, kernel, strides=2, padding="SAME"):
    return jax.lax.conv_general_dilated(x, kernel, (strides, strides), padding, dimension_numbers=DIMS)


def plain_conv_transpose(x, k4):
    """Flax's ConvTranspose (stride 2, SAME) of ``x`` with the 4×4 ``k4``, through XLA's own lowering."""
    return jax.lax.conv_transpose(x, k4, (2, 2), "SAME", dimension_numbers=DIMS)


def random(shape, seed):
    return jax.random.normal(jax.random.key(seed), shape)


def close(got, want, rtol=2e-5):
    for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
        scale = float(jnp.max(jnp.abs(w))) or 1.0
        np.testing.assert_allclose(np.asarray(g, np.float32), np.asarray(w, np.float32), atol=rtol * scale)


# (input shape, output channels): an image input (few channels: XLA's input gradient, im2col kernel
# gradient), wider inputs (the phase input gradient, XLA's kernel gradient), non-square, batch 1.
SHAPES = [((2, 8, 8, 3), 6), ((2, 8, 8, 1), 4), ((3, 8, 6, 8), 5), ((1, 4, 4, 16), 2), ((2, 6, 10, 5), 3)]


# Larger maps: 10×10 and 12×7 inputs of the transposed convolution; as a conv4s2 input gradient, 20×20 and 24×14.
# The conv4s2 inputs of 32×32 and 36×30 take the shifted kernel gradient (the smaller ones XLA's own).
LARGE_MAPS = [((1, 10, 10, 4), 3), ((2, 12, 7, 3), 2)]
LARGE_INPUTS = [((1, 20, 20, 5), 3), ((1, 24, 14, 6), 2), ((1, 32, 32, 5), 3), ((1, 36, 30, 6), 2)]

# Each form of the 4×4/2 kernel gradient, chosen by setting the thresholds (layers._conv4s2_kernel_grad),
# and each form of the transposed convolution's phases (layers._phase_conv_transpose; "shipped": the
# shipped thresholds, under which these small test shapes take the single convolution).
KERNEL_GRAD_FORMS = {"im2col": {"FEW_CHANNELS": 1024}, "xla": {"SHIFTED_KERNEL_GRAD_MIN_PIXELS": 10 ** 9},
                     "shifted": {"SHIFTED_KERNEL_GRAD_MIN_PIXELS": 0}}
PHASE_FORMS = {"shipped": {}, "split": {"SPLIT_PHASES_MAX_PIXELS": 10 ** 9, "SPLIT_PHASES_MIN_FEATURES": 0},
               "single": {"SPLIT_PHASES_MAX_PIXELS": 0}}


def use_form(monkeypatch, settings):
    for name, value in settings.items():
        monkeypatch.setattr(layers, name, value)


def use_kernel_grad_form(monkeypatch, form):
    use_form(monkeypatch, KERNEL_GRAD_FORMS[form])


@pytest.mark.parametrize("phases", ["shipped", "split"])
@pytest.mark.parametrize("shape,features", SHAPES + LARGE_INPUTS)
def test_conv4s2_output_and_gradients_equal_xla(shape, features, phases, monkeypatch):
    use_form(monkeypatch, PHASE_FORMS[phases])  # the input gradient is a transposed convolution by phases
    x, kernel = random(shape, 0), random((4, 4, shape[-1], features), 1)
    want, want_vjp = jax.vjp(plain_conv, x, kernel)
    got, got_vjp = jax.vjp(lambda a, b: layers.conv2d(a, b, 2, "SAME"), x, kernel)
    cotangent = random(want.shape, 2)
    np.testing.assert_array_equal(np.asarray(got), np.asarray(want))  # the forward is XLA's own
    close(got_vjp(cotangent), want_vjp(cotangent))


@pytest.mark.parametrize("phases", ["shipped", "split"])
@pytest.mark.parametrize("shape,features", SHAPES + LARGE_MAPS + [((2, 7, 7, 4), 3)])
def test_phase_conv_transpose_output_and_gradients_equal_xla(shape, features, phases, monkeypatch):
    use_form(monkeypatch, PHASE_FORMS[phases])
    x, k4 = random(shape, 3), random((4, 4, shape[-1], features), 4)
    want, want_vjp = jax.vjp(plain_conv_transpose, x, k4)
    got, got_vjp = jax.vjp(layers.phase_conv_transpose, x, k4)
    cotangent = random(want.shape, 5)
    close(got, want)
    close(got_vjp(cotangent), want_vjp(cotangent))


@pytest.mark.parametrize("shape,features", [((2, 4, 4, 6), 5), ((1, 10, 10, 4), 3)])
def test_split_and_single_phase_forms_agree(shape, features, monkeypatch):
    """The four-convolution and the all-phase forms are the same function (float32 rounding apart)."""
    x, k4 = random(shape, 11), random((4, 4, shape[-1], features), 12)
    forms = {}
    for name in ("split", "single"):
        use_form(monkeypatch, PHASE_FORMS[name])
        forms[name] = layers._phase_conv_transpose(x, k4)  # eager: no trace cache across the two limits
        n_convs = str(jax.make_jaxpr(lambda a, b: layers._phase_conv_transpose(a, b))(x, k4)).count(
            "conv_general_dilated")  # a fresh function: no trace cache across the two limits
        assert n_convs == (4 if name == "split" else 1), (name, n_convs)
    close(forms["split"], forms["single"])


@pytest.mark.parametrize("form", KERNEL_GRAD_FORMS)
@pytest.mark.parametrize("shape,features", [((2, 8, 8, 5), 3), ((1, 10, 6, 6), 2)])  # C > FEW_CHANNELS
def test_every_kernel_gradient_form_equals_xla(form, shape, features, monkeypatch):
    use_kernel_grad_form(monkeypatch, form)
    x, kernel = random(shape, 15), random((4, 4, shape[-1], features), 16)
    want_y, want_vjp = jax.vjp(lambda k: plain_conv(x, k), kernel)
    dy = random(want_y.shape, 17)
    close(layers._conv4s2_kernel_grad(x, dy), want_vjp(dy)[0])


def test_other_convolutions_are_xlas_own():
    """Odd sizes, other kernels, strides and paddings skip the custom gradient (same jaxpr as lax's)."""
    for shape, k, s, pad in [((2, 7, 7, 4), 4, 2, "SAME"), ((2, 8, 8, 4), 3, 1, "SAME"),
                             ((2, 8, 8, 4), 4, 2, "VALID"), ((2, 8, 8, 4), 4, 1, "SAME")]:
        x, kernel = jnp.zeros(shape), jnp.zeros((k, k, 4, 3))
        got = str(jax.make_jaxpr(jax.grad(lambda a: jnp.sum(layers.conv2d(a, kernel, s, pad))))(x))
        assert "custom_vjp" not in got, (shape, k, s, pad)
    x, kernel = jnp.zeros((2, 8, 8, 4)), jnp.zeros((4, 4, 4, 3))
    assert "custom_vjp" in str(jax.make_jaxpr(lambda a: layers.conv2d(a, kernel, 2, "SAME"))(x))


def two_layer_d(conv, kernels, x):
    h = jax.nn.leaky_relu(conv(x, kernels[0]), 0.2)
    return jnp.sum(jax.nn.leaky_relu(conv(h, kernels[1]), 0.2) ** 2, axis=(1, 2, 3))


@pytest.mark.parametrize("form", ["default", "shifted"])
def test_second_order_gradient_penalty_equals_xla(form, monkeypatch):
    """A WGAN-GP/R1-style penalty: the gradient w.r.t. the kernels of ‖∂D/∂x‖² (the second layer's kernel
    gradient in XLA's form by default, in the shifted form when forced)."""
    if form != "default":
        use_kernel_grad_form(monkeypatch, form)
    x = random((3, 16, 16, 3), 6)
    kernels = [0.2 * random((4, 4, 3, 8), 7), 0.2 * random((4, 4, 8, 16), 8)]

    def penalty_grad(conv):
        def penalty(ks):
            return jnp.sum(jax.grad(lambda xx: jnp.sum(two_layer_d(conv, ks, xx)))(x) ** 2)
        return jax.jit(jax.grad(penalty))(kernels)

    close(penalty_grad(lambda a, b: layers.conv2d(a, b, 2, "SAME")), penalty_grad(plain_conv), rtol=1e-4)


@pytest.mark.parametrize("phases", ["shipped", "split"])
def test_second_order_through_the_transposed_conv_equals_xla(phases, monkeypatch):
    use_form(monkeypatch, PHASE_FORMS[phases])
    x, k4 = random((2, 4, 4, 6), 9), random((4, 4, 6, 5), 10)

    def grad_of_input_grad(conv_t):
        inner = lambda k: jnp.sum(jax.grad(lambda xx: jnp.sum(conv_t(xx, k) ** 3))(x) ** 2)
        return jax.jit(jax.grad(inner))(k4)

    close(grad_of_input_grad(layers.phase_conv_transpose), grad_of_input_grad(plain_conv_transpose), rtol=1e-4)


def test_vmapped_gradients_equal_per_trial_ones():
    """Sweeps vmap the train step over trials."""
    xs, ks = random((3, 2, 8, 8, 5), 11), random((3, 4, 4, 5, 4), 12)
    loss = lambda x, k: jnp.sum(jnp.sin(layers.conv2d(x, k, 2, "SAME")))
    got = jax.jit(jax.vmap(jax.grad(loss, argnums=(0, 1))))(xs, ks)
    want = [jax.grad(loss, argnums=(0, 1))(x, k) for x, k in zip(xs, ks)]
    close(got, jax.tree.map(lambda *a: jnp.stack(a), *want))


def test_bfloat16_gradients_keep_the_dtype_and_follow_float32():
    x, kernel = random((2, 8, 8, 8), 13), 0.2 * random((4, 4, 8, 4), 14)
    loss = lambda a, b: jnp.sum(layers.conv2d(a, b, 2, "SAME").astype(jnp.float32) ** 2)
    low = jax.grad(loss, argnums=(0, 1))(x.astype(jnp.bfloat16), kernel.astype(jnp.bfloat16))
    assert [g.dtype for g in low] == [jnp.bfloat16, jnp.bfloat16]
    close(low, jax.grad(loss, argnums=(0, 1))(x, kernel), rtol=3e-2)
