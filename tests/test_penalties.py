"""Gradient penalties against closed forms for discriminators with known input gradients."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ganjax import penalties
from ganjax.errors import ConfigError

KEY = jax.random.key(3)
REAL = jax.random.normal(jax.random.key(1), (6, 4, 4, 1))
FAKE = jax.random.normal(jax.random.key(2), (6, 4, 4, 1)) + 0.5
W = jax.random.normal(jax.random.key(4), (16,)) * 0.4


def linear_d(w):
    """D(x) = w·vec(x) + 1: ∇D = w everywhere."""
    return lambda x: x.reshape(x.shape[0], -1) @ w + 1.0


def quadratic_d(a):
    """D(x) = a/2 ‖x‖²: ∇D(x) = a·x."""
    return lambda x: 0.5 * a * jnp.sum(jnp.square(x.reshape(x.shape[0], -1)), axis=1)


def test_registry_has_the_design_names():
    assert set(penalties.PENALTIES.builtin_names) == {"none", "wgan_gp", "dragan", "r1", "r2"}  # user ones: other tests


@pytest.mark.parametrize("name", ["wgan_gp", "dragan"])
def test_unit_norm_penalties_on_linear_d(name):
    expected = (np.linalg.norm(W) - 1.0) ** 2
    np.testing.assert_allclose(penalties.get_penalty(name)(linear_d(W), REAL, FAKE, KEY), expected, rtol=1e-5)


@pytest.mark.parametrize("name,data", [("r1", REAL), ("r2", FAKE)])
def test_r1_r2_on_quadratic_d(name, data):
    a = 0.7
    expected = 0.5 * a ** 2 * np.mean(np.sum(np.square(np.asarray(data).reshape(6, -1)), axis=1))
    np.testing.assert_allclose(penalties.get_penalty(name)(quadratic_d(a), REAL, FAKE, KEY), expected, rtol=1e-5)


def test_wgan_gp_interpolates_real_and_fake():
    # With D(x) = a/2 ‖x‖², ‖∇D(x̂)‖ = a‖x̂‖ where x̂ = εx + (1-ε)G(z), ε from the penalty's key.
    a = 0.3
    eps = np.asarray(jax.random.uniform(KEY, (6, 1, 1, 1)))
    x_hat = eps * np.asarray(REAL) + (1 - eps) * np.asarray(FAKE)
    norms = a * np.linalg.norm(x_hat.reshape(6, -1), axis=1)
    expected = np.mean((norms - 1.0) ** 2)
    np.testing.assert_allclose(penalties.wgan_gp(quadratic_d(a), REAL, FAKE, KEY), expected, rtol=1e-5)


def test_r1_gradient_wrt_d_params_by_hand():
    # R1 for a linear D is ½‖w‖², so ∂R1/∂w = w.
    grad = jax.grad(lambda w: penalties.r1(linear_d(w), REAL, FAKE, KEY))(W)
    np.testing.assert_allclose(grad, W, rtol=1e-5)


def test_wgan_gp_gradient_wrt_d_params_by_hand():
    # (‖w‖-1)² → 2(‖w‖-1) w/‖w‖.
    grad = jax.grad(lambda w: penalties.wgan_gp(linear_d(w), REAL, FAKE, KEY))(W)
    n = np.linalg.norm(W)
    np.testing.assert_allclose(grad, 2 * (n - 1) * np.asarray(W) / n, rtol=1e-4)


def test_locally_flat_d_gives_a_finite_gradient():
    """At w = 0 the linear D is flat (∇ₓD = 0, where √ has an infinite derivative): the penalty is
    (√ε − 1)² ≈ 1 and its gradient w.r.t. w, 2(√(‖w‖²+ε) − 1)·w/√(‖w‖²+ε), is finite: exactly 0."""
    zero = jnp.zeros_like(W)
    for name in ("wgan_gp", "dragan"):
        penalty = penalties.get_penalty(name)
        np.testing.assert_allclose(penalty(linear_d(zero), REAL, FAKE, KEY), 1.0, rtol=1e-5)
        grad = jax.grad(lambda w: penalty(linear_d(w), REAL, FAKE, KEY))(zero)
        assert bool(jnp.all(jnp.isfinite(grad))), (name, grad)
        np.testing.assert_array_equal(grad, np.zeros(W.shape, np.float32))


def tanh_d(w):
    """D(x) = Σᵢ tanh(wᵢ·xᵢ) over the pixels: ∂D/∂xᵢ = wᵢ·(1 − tanh²(wᵢ·xᵢ)), which depends on x."""
    return lambda x: jnp.sum(jnp.tanh(x.reshape(x.shape[0], -1) * w), axis=1)


def test_dragan_perturbs_real_data_as_documented_on_a_nonlinear_d():
    """A hand-written DRAGAN (compare_gan's form, numpy) with the penalty's own key split: the perturbation
    x̂ = x + α·0.5·std(x)·U matters here, unlike for a linear D whose gradient is the same everywhere."""
    w = 3.0 * np.asarray(W, np.float64)
    real = np.asarray(REAL, np.float64)
    k_alpha, k_delta = jax.random.split(KEY)
    alpha = np.asarray(jax.random.uniform(k_alpha, (6, 1, 1, 1)), np.float64)
    u = np.asarray(jax.random.uniform(k_delta, (6, 4, 4, 1)), np.float64)
    x_hat = real + alpha * 0.5 * real.std() * u

    def penalty_at(x):
        grads = w * (1.0 - np.tanh(x.reshape(6, -1) * w) ** 2)
        return np.mean((np.linalg.norm(grads, axis=1) - 1.0) ** 2)

    expected = penalty_at(x_hat)
    assert abs(expected - penalty_at(real)) > 0.05 * expected  # the perturbation changes the value
    np.testing.assert_allclose(penalties.dragan(tanh_d(jnp.asarray(w, jnp.float32)), REAL, FAKE, KEY), expected,
                               rtol=1e-4)


def test_none_is_zero_and_unknown_is_an_error():
    assert float(penalties.no_penalty(linear_d(W), REAL, FAKE, KEY)) == 0.0
    with pytest.raises(ConfigError, match="unknown penalty 'gp'.*wgan_gp"):
        penalties.get_penalty("gp")
