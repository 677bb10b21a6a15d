"""BigGAN's orthogonal regularisation (ganjax/ortho.py, config key ``ortho_reg``): the penalty and its
gradient against hand-written numpy, which parameters it covers, and its place in G's step (off by default)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ganjax import config as config_lib
from ganjax.errors import ConfigError
from ganjax.ortho import off_diagonal_gram, orthogonal_penalty
from ganjax.train import init_state
from tests.test_train_options import ring, run_steps

RNG = np.random.default_rng(0)


def loops(w: np.ndarray) -> float:
    """Σ_{i≠j} ⟨w_i, w_j⟩² over the filters w_i (the columns of the kernel viewed as [fan_in, out])."""
    cols = w.reshape(-1, w.shape[-1]).T.astype(np.float64)
    return sum(float(cols[i] @ cols[j]) ** 2 for i in range(len(cols)) for j in range(len(cols)) if i != j)


@pytest.mark.parametrize("shape", [(5, 3), (3, 3, 2, 4), (1, 1, 6, 2)])
def test_penalty_is_the_squared_off_diagonal_of_the_filters_gram_matrix(shape):
    w = RNG.normal(size=shape).astype(np.float32)
    np.testing.assert_allclose(off_diagonal_gram(jnp.asarray(w)), loops(w), rtol=1e-5)


def test_orthogonal_filters_of_any_norm_have_no_penalty():
    q, _ = np.linalg.qr(RNG.normal(size=(6, 4)))
    scaled = (q * np.array([1.0, 2.0, 0.5, 3.0])).astype(np.float32)  # orthogonal columns, not unit norm
    assert float(off_diagonal_gram(jnp.asarray(scaled))) < 1e-8
    assert float(off_diagonal_gram(jnp.asarray(scaled + 0.1))) > 1e-2  # negative control


def test_gradient_is_four_times_biggan_pytorchs_update_direction():
    """∇_W ‖WᵀW ⊙ (1 − I)‖² = 4 W (WᵀW ⊙ (1 − I)) for W [fan_in, out]; BigGAN-PyTorch's utils.ortho adds
    2 (VVᵀ ⊙ (1 − I)) V for its V = Wᵀ [out, fan_in], i.e. half of it (docs: its 1e-4 is our 5e-5)."""
    w = RNG.normal(size=(5, 3)).astype(np.float32)
    grad = np.asarray(jax.grad(off_diagonal_gram)(jnp.asarray(w)))
    mask = 1.0 - np.eye(3)
    np.testing.assert_allclose(grad, 4 * w @ ((w.T @ w) * mask), rtol=1e-5)
    v = w.T
    np.testing.assert_allclose(grad.T, 2 * (2 * ((v @ v.T) * mask) @ v), rtol=1e-5)


def test_only_kernels_are_regularized():
    k1, k2 = RNG.normal(size=(3, 3, 2, 4)).astype(np.float32), RNG.normal(size=(4, 5)).astype(np.float32)
    other = RNG.normal(size=(7, 4)).astype(np.float32)
    params = {"Conv_0": {"kernel": k1, "bias": other[0]}, "Dense_0": {"kernel": k2},
              "shared": {"embedding": other}, "ConditionalBatchNorm_0": {"gamma": other, "beta": other}}
    np.testing.assert_allclose(orthogonal_penalty(params), loops(k1) + loops(k2), rtol=1e-5)


def test_ortho_reg_adds_beta_times_the_penalty_to_gs_loss_and_is_off_by_default():
    """One step each: the default reports no g_ortho; with β the step reports R(θ_G) at the initial G and
    the same adversarial g_loss, and G's update differs by SGD's learning rate times β ∇R."""
    c = ring()
    assert c.ortho_reg == 0.0
    gan0, plain, m0 = run_steps(c, 1)
    assert gan0.ortho_reg == 0.0 and "g_ortho" not in m0
    beta = 1e-3
    gan, reg, m = run_steps(ring(ortho_reg=beta), 1)
    g0 = init_state(gan0, c.seed).g_params
    np.testing.assert_allclose(m["g_ortho"], orthogonal_penalty(g0), rtol=1e-5)
    assert float(m["g_loss"]) == float(m0["g_loss"])
    expected = jax.tree.map(lambda p, g: p - 0.05 * beta * g, plain.g_params, jax.grad(orthogonal_penalty)(g0))
    for a, b in zip(jax.tree.leaves(reg.g_params), jax.tree.leaves(expected)):
        np.testing.assert_allclose(a, b, atol=1e-6)
    assert any(not np.allclose(a, b, atol=1e-7) for a, b in zip(jax.tree.leaves(reg.g_params),
                                                                 jax.tree.leaves(plain.g_params)))


def test_a_negative_ortho_reg_is_refused():  # (the config's float type refuses non-numbers itself)
    with pytest.raises(ConfigError, match=r"ortho_reg must be a number >= 0 \(0 = off\), got -0.0001"):
        config_lib.validate(ring(ortho_reg=-1e-4))
