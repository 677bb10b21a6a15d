"""Each loss equals its closed form, has the hand-derived gradient, and stays finite.

The relativistic losses are checked against the formulas of Jolicoeur-Martineau
(2018), written out below with probabilities in float64, and their gradients
against central finite differences of those formulas.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ganjax import losses
from ganjax.errors import ConfigError

R = jnp.array([2.0, -1.0, 0.5])
F = jnp.array([-3.0, 0.0, 1.5])


def sig(x):
    return 1.0 / (1.0 + np.exp(-np.asarray(x, np.float64)))


CLOSED_FORMS = {
    # name: (D loss, G loss) written with probabilities / plain arithmetic.
    "minimax": (lambda r, f: np.mean(-np.log(sig(r))) + np.mean(-np.log(1 - sig(f))),
                lambda f: np.mean(np.log(1 - sig(f)))),
    "non_saturating": (lambda r, f: np.mean(-np.log(sig(r))) + np.mean(-np.log(1 - sig(f))),
                       lambda f: np.mean(-np.log(sig(f)))),
    "least_squares": (lambda r, f: 0.5 * np.mean((r - 1) ** 2) + 0.5 * np.mean(f ** 2),
                      lambda f: 0.5 * np.mean((f - 1) ** 2)),
    "wasserstein": (lambda r, f: np.mean(f) - np.mean(r), lambda f: -np.mean(f)),
    "hinge": (lambda r, f: np.mean(np.maximum(0, 1 - r)) + np.mean(np.maximum(0, 1 + f)),
              lambda f: -np.mean(f)),
}

# d(G loss)/d f_i, by hand, for the logits F (batch of 3).
G_GRADS = {
    "minimax": lambda f: -sig(f) / 3,
    "non_saturating": lambda f: (sig(f) - 1) / 3,
    "least_squares": lambda f: (f - 1) / 3,
    "wasserstein": lambda f: -np.ones_like(f) / 3,
    "hinge": lambda f: -np.ones_like(f) / 3,
}

# d(D loss)/d r_i and d f_i, by hand.
D_GRADS = {
    "minimax": (lambda r: (sig(r) - 1) / 3, lambda f: sig(f) / 3),
    "non_saturating": (lambda r: (sig(r) - 1) / 3, lambda f: sig(f) / 3),
    "least_squares": (lambda r: (r - 1) / 3, lambda f: f / 3),
    "wasserstein": (lambda r: -np.ones_like(r) / 3, lambda f: np.ones_like(f) / 3),
    "hinge": (lambda r: -(r < 1).astype(float) / 3, lambda f: (f > -1).astype(float) / 3),
}


# Jolicoeur-Martineau (2018), "The relativistic discriminator": C = critic
# (logit), r = C(x_r), f = C(x_f), E = batch mean. (D loss, G loss), both
# functions of (r, f).
RELATIVISTIC = {
    # RSGAN: D(x_r, x_f) = sigmoid(C(x_r) - C(x_f)) on pairs.
    "rsgan": (lambda r, f: np.mean(-np.log(sig(r - f))),
              lambda r, f: np.mean(-np.log(sig(f - r)))),
    # RaSGAN: D̄(x_r) = sigmoid(C(x_r) - E C(x_f)), D̄(x_f) = sigmoid(C(x_f) - E C(x_r)).
    "ragan": (lambda r, f: np.mean(-np.log(sig(r - np.mean(f)))) + np.mean(-np.log(1 - sig(f - np.mean(r)))),
              lambda r, f: np.mean(-np.log(sig(f - np.mean(r)))) + np.mean(-np.log(1 - sig(r - np.mean(f))))),
    # RaLSGAN: targets +1 and -1 for the relative critic values.
    "ralsgan": (lambda r, f: np.mean((r - np.mean(f) - 1) ** 2) + np.mean((f - np.mean(r) + 1) ** 2),
                lambda r, f: np.mean((f - np.mean(r) - 1) ** 2) + np.mean((r - np.mean(f) + 1) ** 2)),
}


# Other test files register user losses (configs/examples/my_loss.py's ra_hinge, ...) in this process's
# registry, so these check the built-in names: every design name is built in, and no other.
def test_registry_has_the_design_names():
    assert losses.LOSSES.builtin_names == sorted(set(CLOSED_FORMS) | set(RELATIVISTIC))
    assert set(losses.LOSSES.builtin_names) <= set(losses.LOSSES)


def test_only_relativistic_generator_losses_take_the_real_logits():
    assert {n for n in losses.LOSSES.builtin_names if losses.get_loss(n).g_uses_real} == set(RELATIVISTIC)


def _numeric_grad(fn, x, other, first, h=1e-6):
    """Central differences of ``fn`` (float64) w.r.t. ``x``, the first (``first``) or second argument."""
    x = np.asarray(x, np.float64)
    out = np.zeros_like(x)
    for i in range(x.size):
        up, down = x.copy(), x.copy()
        up[i] += h
        down[i] -= h
        args = lambda v: (v, other) if first else (other, v)
        out[i] = (fn(*args(up)) - fn(*args(down))) / (2 * h)
    return out


@pytest.mark.parametrize("name", sorted(RELATIVISTIC))
def test_relativistic_loss_equals_paper_formula(name):
    loss = losses.get_loss(name)
    d_ref, g_ref = RELATIVISTIC[name]
    np.testing.assert_allclose(loss.d_loss(R, F), d_ref(np.asarray(R), np.asarray(F)), rtol=1e-6)
    np.testing.assert_allclose(loss.g_loss(R, F), g_ref(np.asarray(R), np.asarray(F)), rtol=1e-6)


@pytest.mark.parametrize("name", sorted(RELATIVISTIC))
def test_relativistic_gradients_match_finite_differences(name):
    loss = losses.get_loss(name)
    r64, f64 = np.asarray(R, np.float64), np.asarray(F, np.float64)
    for fn, ref in ((loss.d_loss, RELATIVISTIC[name][0]), (loss.g_loss, RELATIVISTIC[name][1])):
        gr, gf = jax.grad(fn, argnums=(0, 1))(R, F)
        np.testing.assert_allclose(gr, _numeric_grad(ref, r64, f64, True), rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(gf, _numeric_grad(ref, f64, r64, False), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("name", sorted(RELATIVISTIC))
def test_relativistic_loss_finite_for_extreme_logits(name):
    loss = losses.get_loss(name)
    extreme = jnp.array([1e4, -1e4, 0.0])
    for r, f in [(extreme, extreme), (extreme, -extreme), (-extreme, extreme[::-1])]:
        for fn in (loss.d_loss, loss.g_loss):
            values = [fn(r, f), *jax.grad(fn, argnums=(0, 1))(r, f)]
            assert all(np.all(np.isfinite(v)) for v in values), name


@pytest.mark.parametrize("name", sorted(CLOSED_FORMS))
def test_loss_equals_closed_form(name):
    loss = losses.get_loss(name)
    d_ref, g_ref = CLOSED_FORMS[name]
    np.testing.assert_allclose(loss.d_loss(R, F), d_ref(R, F), rtol=1e-6)
    np.testing.assert_allclose(loss.g_loss(F), g_ref(F), rtol=1e-6)


@pytest.mark.parametrize("name", sorted(CLOSED_FORMS))
def test_loss_gradients_match_hand_derivation(name):
    loss = losses.get_loss(name)
    gr, gf = jax.grad(loss.d_loss, argnums=(0, 1))(R, F)
    np.testing.assert_allclose(gr, D_GRADS[name][0](np.asarray(R)), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(gf, D_GRADS[name][1](np.asarray(F)), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(jax.grad(loss.g_loss)(F), G_GRADS[name](np.asarray(F)), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("name", sorted(CLOSED_FORMS))
def test_loss_finite_for_extreme_logits(name):
    loss = losses.get_loss(name)
    extreme = jnp.array([1e4, -1e4, 0.0])
    for r, f in [(extreme, extreme), (extreme, -extreme)]:
        values = [loss.d_loss(r, f), loss.g_loss(f)]
        grads = list(jax.grad(loss.d_loss, argnums=(0, 1))(r, f)) + [jax.grad(loss.g_loss)(f)]
        assert all(np.all(np.isfinite(v)) for v in values + grads), name


def test_bce_saturates_linearly_not_to_inf():
    # -log sigmoid(-1e4) = 1e4 exactly in the softplus form (a naive log(sigmoid) gives inf).
    ns = losses.get_loss("non_saturating")
    np.testing.assert_allclose(ns.g_loss(jnp.array([-1e4])), 1e4, rtol=1e-6)


def test_unknown_loss_names_the_choices():
    with pytest.raises(ConfigError, match=r"unknown loss 'wgan'.*hinge.*non_saturating"):
        losses.get_loss("wgan")
