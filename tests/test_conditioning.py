"""Class conditioning (ganjax/models/conditioning.py) against hand-written numpy formulas on tiny inputs:
conditional BatchNorm selects each example's class row, BigGAN's linear cBN of [shared embedding, z chunk],
the hierarchical-z split, and the projection discriminator's logit ψ(φ) + ⟨embed(y), φ⟩ (spectrally
normalised embedding included); then the conditional SN-GAN ResNet built from them."""

import flax
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import linen as nn

from ganjax.errors import ConfigError
from ganjax.models.conditioning import (ConditionalBatchNorm, LinearConditionalBatchNorm, block_conditions,
                                        hierarchical_z, projection_logits)
from ganjax.models.layers import DNorm
from ganjax.models.sngan import SNGANResNetDiscriminator, SNGANResNetGenerator

RNG = np.random.default_rng(0)
LABELS = np.array([0, 2, 1, 2, 0, 1], np.int32)


def standardized(x: np.ndarray, eps: float) -> np.ndarray:
    """Batch normalisation over all axes but the last, biased variance (as BatchNorm in train mode)."""
    axes = tuple(range(x.ndim - 1))
    return (x - x.mean(axes)) / np.sqrt(x.var(axes) + eps)


def with_params(variables, **params):
    """``variables`` with some ``params`` entries replaced (flat names of one module)."""
    v = flax.core.unfreeze(variables)
    v["params"].update({k: jnp.asarray(p) for k, p in params.items()})
    return v


def test_conditional_batch_norm_selects_each_examples_class_row():
    x = RNG.normal(size=(6, 2, 2, 3)).astype(np.float32)
    cbn = ConditionalBatchNorm(num_classes=3, epsilon=1e-5)
    variables = cbn.init(jax.random.key(0), x, LABELS, train=False)
    # initialised as plain BatchNorm for every class: γ = 1, β = 0
    np.testing.assert_array_equal(variables["params"]["gamma"], np.ones((3, 3)))
    np.testing.assert_array_equal(variables["params"]["beta"], np.zeros((3, 3)))
    out, _ = cbn.apply(variables, x, LABELS, train=True, mutable=["batch_stats"])
    np.testing.assert_allclose(out, standardized(x, 1e-5), atol=1e-5)

    gamma, beta = RNG.normal(size=(3, 3)).astype(np.float32), RNG.normal(size=(3, 3)).astype(np.float32)
    v = with_params(variables, gamma=gamma, beta=beta)
    out, _ = cbn.apply(v, x, LABELS, train=True, mutable=["batch_stats"])
    expected = gamma[LABELS][:, None, None, :] * standardized(x, 1e-5) + beta[LABELS][:, None, None, :]
    np.testing.assert_allclose(out, expected, atol=1e-5)
    # negative control: other labels select other rows, so the same formula with LABELS no longer holds
    shifted, _ = cbn.apply(v, x, (LABELS + 1) % 3, train=True, mutable=["batch_stats"])
    assert np.abs(np.asarray(shifted) - expected).max() > 0.1


def test_linear_conditional_batch_norm_is_one_plus_gain_times_xhat_plus_bias():
    x = RNG.normal(size=(6, 2, 2, 4)).astype(np.float32)
    cond = RNG.normal(size=(6, 5)).astype(np.float32)
    cbn = LinearConditionalBatchNorm(spectral=False, epsilon=1e-4)
    variables = cbn.init(jax.random.key(0), x, cond, train=False)
    assert jax.tree.map(np.shape, variables["params"]) == {"gain": {"kernel": (5, 4)}, "bias": {"kernel": (5, 4)}}
    w_gain, w_bias = (np.asarray(variables["params"][k]["kernel"]) for k in ("gain", "bias"))
    out, _ = cbn.apply(variables, x, cond, train=True, mutable=["batch_stats"])
    xhat = standardized(x, 1e-4)
    gain, bias = (cond @ w_gain)[:, None, None, :], (cond @ w_bias)[:, None, None, :]
    np.testing.assert_allclose(out, (1 + gain) * xhat + bias, atol=1e-5)
    # negative control: the gain is added to 1 (BigGAN), not used as the scale itself
    assert np.abs(np.asarray(out) - (gain * xhat + bias)).max() > 0.5


def test_hierarchical_z_splits_into_equal_chunks_and_each_block_sees_shared_then_its_chunk():
    z = np.arange(2 * 8, dtype=np.float32).reshape(2, 8)
    z0, chunks = hierarchical_z(jnp.asarray(z), num_blocks=3)
    np.testing.assert_array_equal(z0, z[:, 0:2])
    assert [np.asarray(c).tolist() for c in chunks] == [z[:, 2:4].tolist(), z[:, 4:6].tolist(), z[:, 6:8].tolist()]
    shared = np.full((2, 3), -1.0, np.float32)
    conds = block_conditions(chunks, jnp.asarray(shared))
    assert [np.asarray(c).tolist() for c in conds] == [np.concatenate([shared, z[:, 2 * i + 2:2 * i + 4]], 1).tolist()
                                                      for i in range(3)]
    assert block_conditions(chunks, None) == chunks  # unconditional: the z chunks alone
    with pytest.raises(ConfigError, match=r"model.z_dim = 8 cannot be split into 3 equal chunks.*multiple of 3"):
        hierarchical_z(jnp.asarray(z), num_blocks=2)


class Head(nn.Module):
    """The projection head alone, on pooled features φ."""

    norm: str
    num_classes: int

    @nn.compact
    def __call__(self, phi, labels=None, train=True):
        nrm = DNorm(self.norm, train, jnp.float32, "glorot_uniform")
        return projection_logits(nrm, phi, labels, self.num_classes, "Head")


def test_projection_logit_is_psi_of_phi_plus_embedding_dot_phi():
    phi = RNG.normal(size=(6, 4)).astype(np.float32)
    head = Head("none", 3)
    variables = head.init(jax.random.key(0), phi, LABELS)
    p = jax.tree.map(np.asarray, variables["params"])
    w, b, embed = p["Dense_0"]["kernel"], p["Dense_0"]["bias"], p["ClassProjection_0"]["embedding"]
    assert embed.shape == (3, 4)
    out = np.asarray(head.apply(variables, phi, LABELS))
    psi = (phi @ w + b)[:, 0]
    np.testing.assert_allclose(out, psi + np.sum(embed[LABELS] * phi, axis=1), atol=1e-5)
    unconditional = Head("none", 0).apply({"params": {"Dense_0": p["Dense_0"]}}, phi)
    np.testing.assert_allclose(unconditional, psi, atol=1e-5)  # num_classes = 0: ψ(φ) alone
    # negative control: another class's embedding row gives another logit
    other = np.asarray(head.apply(variables, phi, (LABELS + 1) % 3))
    assert np.abs(other - out).min() > 1e-4


def test_spectral_projection_divides_the_embedding_by_its_largest_singular_value():
    """After power iterations converge, the embedding used is E / σ_max(E) (numpy SVD) and ψ's kernel
    w / ‖w‖; the raw E would give a different logit."""
    phi = RNG.normal(size=(6, 4)).astype(np.float32)
    head = Head("spectral", 3)
    variables = head.init(jax.random.key(0), phi, LABELS)
    state = {"spectral": variables["spectral"]}
    for _ in range(50):
        _, state = head.apply({"params": variables["params"], **state}, phi, LABELS, mutable=["spectral"])
    out = np.asarray(head.apply({"params": variables["params"], **state}, phi, LABELS, train=False))
    p = jax.tree.map(np.asarray, variables["params"])
    w, b, embed = p["Dense_0"]["kernel"], p["Dense_0"]["bias"], p["ClassProjection_0"]["embedding"]
    e_sn = embed / np.linalg.svd(embed, compute_uv=False)[0]
    psi = (phi @ (w / np.linalg.norm(w)) + b)[:, 0]
    np.testing.assert_allclose(out, psi + np.sum(e_sn[LABELS] * phi, axis=1), atol=1e-4)
    assert np.abs(out - (psi + np.sum(embed[LABELS] * phi, axis=1))).max() > 1e-2


def test_a_module_called_with_labels_it_cannot_use_is_a_config_error():
    phi = np.zeros((2, 4), np.float32)
    with pytest.raises(ConfigError, match="called without labels"):
        Head("none", 3).init(jax.random.key(0), phi)
    with pytest.raises(ConfigError, match="given labels but has num_classes=0; set model.num_classes"):
        Head("none", 0).init(jax.random.key(0), phi, np.zeros(2, np.int32))


# ---- conditional SN-GAN ResNet (Miyato & Koyama 2018) ----

K = 3
Z = RNG.normal(size=(6, 8)).astype(np.float32)
IMAGES = RNG.normal(size=(6, 28, 28, 1)).astype(np.float32)


def sngan(kind: str, num_classes: int):
    if kind == "g":
        return SNGANResNetGenerator((28, 28, 1), width=4, num_classes=num_classes)
    return SNGANResNetDiscriminator(width=4, num_classes=num_classes, norm="none")


@pytest.fixture(scope="module")
def generators():
    g, cg = sngan("g", 0), sngan("g", K)
    v = g.init(jax.random.key(0), Z, train=False)
    cv = cg.init(jax.random.key(0), Z, train=False, labels=LABELS)
    return g, v, cg, cv


def test_conditional_sngan_generator_swaps_the_block_batch_norms_for_per_class_ones(generators):
    _, v, _, cv = generators
    plain, cond = set(v["params"]), set(cv["params"])
    # 2 up-blocks (7 → 14 → 28) × 2 BatchNorms become ConditionalBatchNorms; the final BatchNorm stays
    assert plain - cond == {f"BatchNorm_{i}" for i in range(1, 5)}
    assert cond - plain == {f"ConditionalBatchNorm_{i}" for i in range(4)}
    assert all(cv["params"][f"ConditionalBatchNorm_{i}"]["gamma"].shape == (K, 4) for i in range(4))


def test_conditional_sngan_generator_at_init_is_the_unconditional_one_and_classes_act_per_example(generators):
    """With γ = 1, β = 0 for every class the conditional G is the unconditional G (same weights, train
    mode); changing class 1's γ then changes exactly the examples labelled 1 (eval mode, where
    BatchNorm does not mix the examples)."""
    g, v, cg, cv = generators
    mapped = flax.core.unfreeze(cv)
    for name in ("Dense_0", "BatchNorm_0", *(f"Conv_{i}" for i in range(7))):  # the shared layers
        mapped["params"][name] = v["params"][name]
    train = jax.jit(lambda module, variables, labels: module.apply(variables, Z, train=True, labels=labels,
                                                                   mutable=["batch_stats"])[0], static_argnums=0)
    plain = jax.jit(lambda variables: g.apply(variables, Z, train=True, mutable=["batch_stats"])[0])
    np.testing.assert_allclose(train(cg, mapped, LABELS), plain(v), atol=1e-5)
    evaluate = jax.jit(lambda variables: cg.apply(variables, Z, train=False, labels=LABELS))
    base = np.asarray(evaluate(mapped))
    cbn = mapped["params"]["ConditionalBatchNorm_0"]
    cbn["gamma"] = cbn["gamma"].at[1].set(3.0)
    changed = np.abs(np.asarray(evaluate(mapped)) - base).reshape(6, -1).max(axis=1) > 1e-3
    assert changed.tolist() == (LABELS == 1).tolist()


def test_conditional_sngan_discriminator_adds_the_projection_term():
    d, cd = sngan("d", 0), sngan("d", K)
    v = d.init(jax.random.key(0), IMAGES, train=False)
    cv = flax.core.unfreeze(cd.init(jax.random.key(0), IMAGES, train=False, labels=LABELS))
    assert set(cv["params"]) - set(v["params"]) == {"ClassProjection_0"}
    cv["params"] = {**v["params"], "ClassProjection_0": cv["params"]["ClassProjection_0"]}
    plain = np.asarray(d.apply(v, IMAGES))
    cond = np.asarray(cd.apply(cv, IMAGES, labels=LABELS))
    assert np.abs(cond - plain).min() > 1e-6  # the class term is there for every example ...
    zeroed = {"params": {**cv["params"], "ClassProjection_0": {"embedding": jnp.zeros((K, 4))}}}
    np.testing.assert_allclose(cd.apply(zeroed, IMAGES, labels=LABELS), plain, atol=1e-6)  # ... and only it
