"""Regularisers (ganjax.regularizers): each term against its paper formula, top-k, ADA, state, composition."""

import dataclasses
import functools
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ganjax import augment as augment_lib
from ganjax import config as config_lib
from ganjax import regularizers as regs_lib
from ganjax import resume as resume_lib
from ganjax import train as train_lib
from ganjax.checkpoint import Checkpointer
from ganjax.data import Dataset
from ganjax.errors import ConfigError
from ganjax.losses import get_loss
from ganjax.parallel import make_runner
from ganjax.shard import single
from ganjax.sweep import spec
from ganjax.trainer import abstract_state, train_and_evaluate
from tests.conftest import ROOT, assert_trees_close
from tests.test_train_options import IMAGE_DATA, base_train_module, host_batch, ring, tiny_images

# The last commit before the regularisers: its train step is what they must reproduce bitwise when off.
BEFORE_REGULARIZERS = "3ca3e9d"
ALL_ON_TOY = dict(cr_real=2.0, cr_fake=1.0, cr_augment="noise", zcr_dis=1.0, zcr_gen=0.5, lecam=0.3, topk=True,
                  topk_epoch_steps=1, topk_gamma=0.5, ada=True, ada_policy="noise", ada_interval=1, ada_kimg=0.5,
                  ada_target=-1.0)  # r_t > −1: p rises by 0.128 a step
KEY = jax.random.key(7)


def linear_d(w):
    """D(x) = flatten(x) · w, ``[n]``."""
    return lambda x: jnp.reshape(x, (x.shape[0], -1)) @ w


def numpy_d(w, x):
    return np.asarray(x, np.float64).reshape(len(x), -1) @ np.asarray(w, np.float64)


def inputs(w, real, fake, regs=None, views=(lambda x: x, lambda x: x)):
    d = linear_d(w)
    return regs_lib.DInputs(d, d, real, fake, d(views[0](real)), d(views[1](fake)), *views, regs or {}, KEY,
                            single(len(real)))


def images(seed, n=8):
    return jax.random.uniform(jax.random.key(seed), (n, 4, 4, 1), jnp.float32, -1, 1)


# --- each D term against its formula ---------------------------------------------------------------------

@pytest.mark.parametrize("which", ["cr_real", "cr_fake"])
def test_cr_and_bcr_are_lambda_times_the_mean_squared_logit_change_under_t(which):
    """CR: λ_real·mean((D(x) − D(T(x)))²) on reals; bCR: λ_fake·(the same) on fakes; grads via both D calls."""
    w, real, fake = jax.random.normal(jax.random.key(0), (16,)), images(1), images(2)
    opts = regs_lib.Regularizers(**{which: 3.0})
    examples, draw = (real, 0) if which == "cr_real" else (fake, 1)
    moved = augment_lib.augment(("translation",), jax.random.fold_in(KEY, draw), examples)
    assert not np.allclose(moved, examples)  # T did something
    expected = 3.0 * np.mean((numpy_d(w, examples) - numpy_d(w, moved)) ** 2)
    total, aux = regs_lib.d_terms(opts, inputs(w, real, fake))
    np.testing.assert_allclose(total, expected, rtol=1e-5)
    np.testing.assert_allclose(aux["metrics"][which], expected, rtol=1e-5)
    assert list(aux["metrics"]) == [which]
    # The gradient of λ·mean(((x − Tx)·w)²) is 2λ·mean(((x − Tx)·w)(x − Tx)).
    diff = np.asarray(examples - moved, np.float64).reshape(8, -1)
    grad = jax.grad(lambda v: regs_lib.d_terms(opts, inputs(v, real, fake))[0])(w)
    np.testing.assert_allclose(grad, 2 * 3.0 * np.mean((diff @ np.asarray(w))[:, None] * diff, axis=0), rtol=1e-4)
    # Negative control: a D that ignores its input is consistent, and nothing is added when λ = 0.
    assert float(regs_lib.d_terms(opts, inputs(jnp.zeros(16), real, fake))[0]) == 0.0
    assert regs_lib.d_terms(regs_lib.OFF, inputs(w, real, fake)) == (0.0, {})


def test_generated_side_terms_use_the_generated_sides_d():
    """A conditional D judges each side with its own labels: bCR's and zCR's D terms call ``d_fake``, CR ``d_real``."""
    w, real, fake, moved = jax.random.normal(jax.random.key(0), (16,)), images(1), images(2), images(3)
    d_real, d_fake = linear_d(w), linear_d(-3.0 * w)
    i = regs_lib.DInputs(d_real, d_fake, real, fake, d_real(real), d_fake(fake), lambda x: x, lambda x: x,
                         {"zcr_fake": moved}, KEY, single(8))
    _, aux = regs_lib.d_terms(regs_lib.Regularizers(cr_real=1.0, cr_fake=1.0, zcr_dis=1.0), i)
    np.testing.assert_allclose(aux["metrics"]["zcr_d"], np.mean((numpy_d(-3 * w, fake) - numpy_d(-3 * w, moved)) ** 2),
                               rtol=1e-5)
    t_fake = augment_lib.augment(("translation",), jax.random.fold_in(KEY, 1), fake)
    np.testing.assert_allclose(aux["metrics"]["cr_fake"],
                               np.mean((numpy_d(-3 * w, fake) - numpy_d(-3 * w, t_fake)) ** 2), rtol=1e-5)
    t_real = augment_lib.augment(("translation",), jax.random.fold_in(KEY, 0), real)
    np.testing.assert_allclose(aux["metrics"]["cr_real"], np.mean((numpy_d(w, real) - numpy_d(w, t_real)) ** 2),
                               rtol=1e-5)


@pytest.mark.slow
def test_every_regulariser_trains_a_conditional_gan_finitely():
    c = ring(n_disc=2)
    c.model.num_classes = 8
    c.regularizers.update(**ALL_ON_TOY)
    _, gan = config_lib.build(c)
    assert gan.d_conditional
    step = jax.jit(functools.partial(train_lib.train_step, gan, batch_size=c.batch_size))
    state = train_lib.init_state(gan, 0)
    for _ in range(2):
        state, metrics = step(state, None)
    assert float(metrics["nonfinite"]) == 0.0 and float(metrics["ada_p"]) > 0


def test_zcr_d_term_is_lambda_times_the_mean_squared_logit_change_under_dz():
    w, real, fake, moved = jax.random.normal(jax.random.key(0), (16,)), images(1), images(2), images(3)
    opts = regs_lib.Regularizers(zcr_dis=5.0)
    total, aux = regs_lib.d_terms(opts, inputs(w, real, fake, {"zcr_fake": moved}))
    expected = 5.0 * np.mean((numpy_d(w, fake) - numpy_d(w, moved)) ** 2)
    np.testing.assert_allclose(total, expected, rtol=1e-5)
    np.testing.assert_allclose(aux["metrics"]["zcr_d"], expected, rtol=1e-5)
    assert float(regs_lib.d_terms(opts, inputs(w, real, fake, {"zcr_fake": fake}))[0]) == 0.0  # same batch: 0


def test_zcr_d_extras_are_g_of_the_same_noise_plus_sigma_normal():
    opts, shard = regs_lib.Regularizers(zcr_dis=1.0, zcr_sigma=0.5), single(6)
    seen = []
    extras = regs_lib.d_extras(opts, {"ada": {"p": 0.3}, "lecam": {}}, lambda dz: seen.append(dz) or 2.0 * dz,
                               KEY, shard, 3)
    dz = np.asarray(seen[0])
    np.testing.assert_allclose(dz, 0.5 * np.asarray(jax.random.normal(jax.random.fold_in(KEY, 2), (6, 3))), rtol=1e-6)
    np.testing.assert_allclose(extras["zcr_fake"], 2.0 * dz)
    assert extras["ada"] == {"p": 0.3} and "lecam" not in extras  # per-D state travels with the D parameters
    assert regs_lib.d_extras(regs_lib.OFF, {}, None, KEY, shard, 3) == {}


def test_zcr_g_term_is_minus_lambda_times_the_mean_squared_output_change():
    W = jax.random.normal(jax.random.key(0), (3, 5))
    z = jax.random.normal(jax.random.key(1), (6, 3))
    opts, seen = regs_lib.Regularizers(zcr_gen=0.5, zcr_sigma=0.1), []

    def generate(dz):
        seen.append(dz)
        return (z + dz) @ W

    total, metrics = regs_lib.g_terms(opts, z @ W, generate, KEY, single(6), 3)
    dz = np.asarray(seen[0], np.float64)
    expected = -0.5 * np.mean((dz @ np.asarray(W, np.float64)) ** 2)
    np.testing.assert_allclose(total, expected, rtol=1e-5)
    np.testing.assert_allclose(metrics["zcr_g"], expected, rtol=1e-5)
    assert 0.05 < np.std(dz) < 0.2  # Δz ~ N(0, σ²), σ = 0.1
    assert regs_lib.g_terms(regs_lib.OFF, z @ W, generate, KEY, single(6), 3) == (0.0, {})


def test_lecam_updates_its_anchors_then_penalises_distance_to_the_other_kinds_anchor():
    """α ← 0.99·α + 0.01·mean(D), then λ·(mean((D(x) − α_F)²) + mean((D(G(z)) − α_R)²)), new α."""
    w, real, fake = jax.random.normal(jax.random.key(0), (16,)), images(1), images(2)
    opts = regs_lib.Regularizers(lecam=0.3)
    anchors = {"real": jnp.float32(0.7), "fake": jnp.float32(-0.4)}
    total, aux = regs_lib.d_terms(opts, inputs(w, real, fake, {"lecam": anchors}))
    r, f = numpy_d(w, real), numpy_d(w, fake)
    a_r, a_f = 0.99 * 0.7 + 0.01 * r.mean(), 0.99 * -0.4 + 0.01 * f.mean()
    np.testing.assert_allclose(aux["state"]["lecam"]["real"], a_r, rtol=1e-5)
    np.testing.assert_allclose(aux["state"]["lecam"]["fake"], a_f, rtol=1e-5)
    expected = 0.3 * (np.mean((r - a_f) ** 2) + np.mean((f - a_r) ** 2))
    np.testing.assert_allclose(total, expected, rtol=1e-5)
    # Negative control: the anchors matter (swapping them changes the term), and carry no gradient.
    swapped = {"real": anchors["fake"], "fake": anchors["real"]}
    assert not np.isclose(float(regs_lib.d_terms(opts, inputs(w, real, fake, {"lecam": swapped}))[0]), expected)
    grad = jax.grad(lambda v: regs_lib.d_terms(opts, inputs(v, real, fake, {"lecam": anchors}))[0])(w)
    rr, ff = np.asarray(real, np.float64).reshape(8, -1), np.asarray(fake, np.float64).reshape(8, -1)
    expected_grad = 0.3 * 2 * (np.mean((r - a_f)[:, None] * rr, 0) + np.mean((f - a_r)[:, None] * ff, 0))
    np.testing.assert_allclose(grad, expected_grad, rtol=1e-4, atol=1e-6)


# --- top-k -------------------------------------------------------------------------------------------------

def test_topk_schedule_decays_by_gamma_per_epoch_down_to_nu():
    opts = regs_lib.Regularizers(topk=True, topk_gamma=0.99, topk_min=0.5, topk_epoch_steps=10)
    ks = regs_lib.topk_schedule(opts, 64)
    assert ks == tuple(int(np.ceil(max(0.99 ** e, 0.5) * 64 - 1e-9)) for e in range(len(ks)))
    assert ks[0] == 64 and ks[-1] == 32 and 0.99 ** (len(ks) - 1) <= 0.5 < 0.99 ** (len(ks) - 2)
    assert int(regs_lib.topk_k(opts, jnp.int32(9), 64)) == 64  # still epoch 0
    assert int(regs_lib.topk_k(opts, jnp.int32(10), 64)) == ks[1] == 64  # ⌈0.99·64⌉ = 64
    assert int(regs_lib.topk_k(opts, jnp.int32(100_000), 64)) == 32


@pytest.mark.parametrize("step, k", [(0, 8), (1, 4), (2, 2), (50, 2)])
def test_topk_g_loss_is_the_loss_of_the_k_highest_scored_fakes(step, k):
    opts = regs_lib.Regularizers(topk=True, topk_gamma=0.5, topk_min=0.25, topk_epoch_steps=1)
    assert regs_lib.topk_schedule(opts, 8) == (8, 4, 2)
    logits = jax.random.normal(jax.random.key(3), (8,)) * 3
    g_loss = get_loss("non_saturating").g_loss
    loss = regs_lib.g_loss_fn(opts, g_loss, jnp.int32(step), single(8))(logits)
    top = np.sort(np.asarray(logits, np.float64))[::-1][:k]
    np.testing.assert_allclose(loss, np.mean(np.log1p(np.exp(-top))), rtol=1e-5)  # softplus(−f) over the top k
    if k < 8:  # negative control: the k lowest give another value
        bottom = np.sort(np.asarray(logits, np.float64))[:k]
        assert not np.isclose(float(loss), np.mean(np.log1p(np.exp(-bottom))))
    # Gradient only to the chosen examples.
    grad = np.asarray(jax.grad(regs_lib.g_loss_fn(opts, g_loss, jnp.int32(step), single(8)))(logits))
    assert set(np.flatnonzero(grad)) == set(np.argsort(-np.asarray(logits))[:k])
    assert regs_lib.g_loss_fn(regs_lib.OFF, g_loss, jnp.int32(step), single(8)) is g_loss


def test_topk_with_a_relativistic_loss_keeps_the_real_logits_at_the_chosen_positions():
    opts = regs_lib.Regularizers(topk=True, topk_gamma=0.5, topk_min=0.5, topk_epoch_steps=1)
    real, fake = jax.random.normal(jax.random.key(4), (8,)), jax.random.normal(jax.random.key(5), (8,))
    loss = regs_lib.g_loss_fn(opts, get_loss("rsgan").g_loss, jnp.int32(1), single(8))(real, fake)
    idx = np.argsort(-np.asarray(fake))[:4]
    f, r = np.asarray(fake, np.float64)[idx], np.asarray(real, np.float64)[idx]
    np.testing.assert_allclose(loss, np.mean(np.log1p(np.exp(-(f - r)))), rtol=1e-5)


# --- ADA ---------------------------------------------------------------------------------------------------

def test_ada_applies_each_op_with_probability_p_per_example():
    x = images(1, n=400)
    policy = ("translation",)
    moved = augment_lib.AUGMENTATIONS["translation"](jax.random.fold_in(KEY, regs_lib.ADA_KEY), x, single(400))
    none = regs_lib.apply_with_probability(policy, jnp.float32(0.0), KEY, x, single(400))
    every = regs_lib.apply_with_probability(policy, jnp.float32(1.0), KEY, x, single(400))
    half = regs_lib.apply_with_probability(policy, jnp.float32(0.5), KEY, x, single(400))
    assert np.array_equal(none, x) and np.array_equal(every, moved)
    changed = ~np.all(np.asarray(half) == np.asarray(x), axis=(1, 2, 3))
    assert np.all(np.asarray(half)[~changed] == np.asarray(x)[~changed])
    assert np.all(np.asarray(half)[changed] == np.asarray(moved)[changed])
    assert 0.35 < changed.mean() < 0.6  # p = 0.5 (some translations are by (0, 0))
    off = regs_lib.ada_augment(regs_lib.OFF, None, KEY, x, single(400))
    assert off is x


def test_ada_moves_p_by_the_sign_of_rt_minus_target_every_interval():
    opts = regs_lib.Regularizers(ada=True, ada_target=0.6, ada_interval=2, ada_kimg=1.0)
    state, speed = {"p": jnp.float32(0.5), "r_sum": jnp.float32(0.0)}, 2 * 100 / 1000.0
    state = regs_lib.ada_update(opts, state, jnp.float32(1.0), jnp.int32(0), 100)
    assert float(state["p"]) == 0.5 and float(state["r_sum"]) == 1.0  # not yet: every 2 steps
    state = regs_lib.ada_update(opts, state, jnp.float32(0.0), jnp.int32(1), 100)  # r_t = 0.5 < 0.6
    np.testing.assert_allclose(state["p"], 0.5 - speed, rtol=1e-6)
    assert float(state["r_sum"]) == 0.0
    for step in range(2, 20):  # r_t = 1 > 0.6: p rises, and stops at 1
        state = regs_lib.ada_update(opts, state, jnp.float32(1.0), jnp.int32(step), 100)
    assert float(state["p"]) == 1.0


def rigged_ada(sign: float, p0: float):
    """ADA on the ring, D rigged to output ``sign``·50 everywhere (kernels 0, biases ±50) and not learning."""
    c = ring()
    c.optimizer_d.learning_rate = 1e-9
    c.regularizers.update(ada=True, ada_policy="noise", ada_interval=2, ada_kimg=1.0)
    _, gan = config_lib.build(c)
    state = train_lib.init_state(gan, 0)
    d_params = jax.tree_util.tree_map_with_path(
        lambda path, x: jnp.full_like(x, sign * 50.0) if "bias" in jax.tree_util.keystr(path) else jnp.zeros_like(x),
        state.d_params)
    regs = {"ada": {"p": jnp.float32(p0), "r_sum": jnp.float32(0.0)}}
    return c, gan, state.replace(d_params=d_params, regs=regs)


def test_ada_p_rises_on_a_d_positive_on_reals_and_falls_on_a_negative_one():
    step, speed = None, 2 * 64 / 1000.0  # interval 2, batch 64, 1 kimg
    for sign, p0, expected in ((1.0, 0.0, 2 * speed), (-1.0, 0.5, 0.5 - 2 * speed)):
        c, gan, state = rigged_ada(sign, p0)
        step = step or jax.jit(functools.partial(train_lib.train_step, gan, batch_size=c.batch_size))
        for _ in range(4):
            state, metrics = step(state, None)
            assert float(metrics["ada_r"]) == sign
        np.testing.assert_allclose(state.regs["ada"]["p"], expected, rtol=1e-6)
        np.testing.assert_allclose(metrics["ada_p"], expected, rtol=1e-6)


# --- state and checkpoints ---------------------------------------------------------------------------------

def paths(tree):
    return [jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_flatten_with_path(tree)[0]]


def test_off_the_state_pytree_is_the_one_before_regularisers_and_on_it_gains_only_regs():
    old = base_train_module(BEFORE_REGULARIZERS)
    _, gan = config_lib.build(ring())
    old_gan = old.GAN(**{f.name: getattr(gan, f.name) for f in dataclasses.fields(old.GAN)})
    assert paths(train_lib.init_state(gan, 0)) == paths(old.init_state(old_gan, 0))
    c = ring()
    c.regularizers.update(lecam=0.1, ada=True, ada_policy="noise")
    _, on = config_lib.build(c)
    new_paths = paths(train_lib.init_state(on, 0))
    assert [p for p in new_paths if ".regs" not in p] == paths(old.init_state(old_gan, 0))
    assert sorted(p for p in new_paths if ".regs" in p) == [
        ".regs['ada']['p']", ".regs['ada']['r_sum']", ".regs['lecam']['fake']", ".regs['lecam']['real']"]


def test_regulariser_state_is_checkpointed_and_restored_exactly(tmp_path):
    c = ring()
    c.regularizers.update(lecam=0.1, ada=True, ada_policy="noise")
    _, gan = config_lib.build(c)
    state = train_lib.init_state(gan, 0)
    state = state.replace(regs={"ada": {"p": jnp.float32(0.3141592), "r_sum": jnp.float32(-1.5)},
                                "lecam": {"real": jnp.float32(0.25), "fake": jnp.float32(-0.125)}})
    ckpt = Checkpointer(str(tmp_path), async_save=False)
    ckpt.save(3, state, {"data_position": 0})
    restored, _, _ = ckpt.restore(abstract_state(gan, c), lambda: "")
    ckpt.close()
    assert_trees_close(restored, state)
    assert float(restored.regs["ada"]["p"]) == np.float32(0.3141592)


@pytest.mark.slow
def test_ada_p_survives_a_resume_exactly(tmp_path):
    """4 steps, then a resume to 8 ends with the p (and state) of 8 uninterrupted steps."""
    c = ring(num_steps=8, checkpoint_every=4, log_every=4, eval_every=0, sample_every=0)
    c.regularizers.update(ada=True, ada_policy="noise", ada_interval=1, ada_kimg=1.0, ada_target=-1.0, lecam=0.1)
    whole = train_and_evaluate(c, str(tmp_path / "whole"))
    c.num_steps = 4
    train_and_evaluate(c, str(tmp_path / "split"))
    c.num_steps = 8
    resumed = train_and_evaluate(c, str(tmp_path / "split"))
    assert float(whole.regs["ada"]["p"]) > 0
    assert_trees_close(resumed, whole)


def test_a_config_saved_before_the_regularisers_resumes_without_a_change():
    old = config_lib.to_plain(ring())
    del old["regularizers"]
    assert resume_lib.changed_values(old, ring().to_dict()) == {}
    on = ring()
    on.regularizers.lecam = 0.1
    assert list(resume_lib.changed_values(old, on.to_dict())) == ["regularizers.lecam"]


# --- the step: bitwise off, composition --------------------------------------------------------------------

@pytest.mark.parametrize("case", ["ring_n_disc2", pytest.param("images", marks=pytest.mark.slow)])
def test_off_equals_the_step_before_regularisers_bitwise(case):
    old = base_train_module(BEFORE_REGULARIZERS)
    c, dataset, batch = ((ring(penalty="wgan_gp", penalty_weight=1.0, n_disc=2), None, None) if case == "ring_n_disc2"
                         else (tiny_images(augment="translation"), IMAGE_DATA, host_batch(tiny_images())))
    del c["regularizers"]  # a config saved before the key existed
    _, gan = config_lib.build(c, dataset)
    assert gan.regularizers == regs_lib.OFF
    step = jax.jit(functools.partial(train_lib.train_step, gan, batch_size=c.batch_size))
    old_gan = old.GAN(**{f.name: getattr(gan, f.name) for f in dataclasses.fields(old.GAN)})
    old_step = jax.jit(functools.partial(old.train_step, old_gan, batch_size=c.batch_size))
    state, old_state = train_lib.init_state(gan, 0), old.init_state(old_gan, 0)
    for _ in range(2):
        state, metrics = step(state, batch)
        old_state, old_metrics = old_step(old_state, batch)
    assert_trees_close(state, train_lib.GANState(**{f.name: getattr(old_state, f.name)
                                                    for f in dataclasses.fields(old_state)}))
    assert sorted(metrics) == sorted(old_metrics)
    assert all(np.array_equal(metrics[k], old_metrics[k]) for k in metrics)


def test_every_regulariser_with_n_disc_pack_two_ds_runs_finitely_and_shard_map_equals_one_device():
    c = ring(n_disc=2, pack=2, num_discriminators=2)
    c.regularizers.update(**ALL_ON_TOY)
    _, gan = config_lib.build(c)
    states = {}
    for mode in ("none", "shard_map"):
        runner = make_runner(gan, mode, c.batch_size)
        state = runner.put(train_lib.init_state(gan, 0))
        for _ in range(3):
            state, metrics = runner.step(state, None)
        states[mode] = runner.get(state)
        assert all(np.isfinite(float(v)) for v in metrics.values()) and float(metrics["nonfinite"]) == 0.0
        assert {"cr_real", "cr_fake", "zcr_d", "zcr_g", "lecam", "topk_k", "ada_p", "ada_r"} <= set(metrics)
    assert states["none"].regs["lecam"]["real"].shape == (2,)  # one pair of anchors per discriminator
    assert float(metrics["topk_k"]) == 16  # 64 samples in 32 packs; γ = 0.5 from epoch 2 on: ⌈0.5·32⌉
    np.testing.assert_allclose(metrics["ada_p"], 3 * 0.128, rtol=1e-5)  # every D positive on average: p rises
    assert_trees_close(states["shard_map"], states["none"], rtol=2e-4, atol=2e-5)


# --- config and sweep ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("update, match", [
    ({"crr": 1.0}, r"unknown key\(s\) regularizers.crr"),
    ({"cr_real": -1.0}, r"regularizers.cr_real must be a number >= 0"),
    ({"lecam_decay": 1.0}, r"regularizers.lecam_decay must be a number >= 0.0 and < 1.0"),
    ({"ada_target": 2.0}, r"regularizers.ada_target must be a number >= -1.0 and <= 1.0"),
    ({"ada": True, "ada_policy": "translation"}, r"regularizers.ada_policy = 'translation': translation need image"),
    ({"cr_real": 1.0, "cr_augment": "flip"}, r"unknown augment policy 'flip'"),
    ({"topk": True}, r"regularizers.topk on dataset 'ring_2d' .* needs regularizers.topk_epoch_steps > 0"),
    ({"ada_interval": 0}, r"regularizers.ada_interval must be an integer >= 1"),
])
def test_bad_regulariser_settings_are_one_clear_error(update, match):
    c = ring()
    for key, value in update.items():
        c.regularizers[key] = value
    with pytest.raises(ConfigError, match=match):
        config_lib.validate(c)


def test_topk_epoch_defaults_to_the_training_set_over_the_batch():
    c = tiny_images()
    c.regularizers.topk = True
    _, gan = config_lib.build(c, IMAGE_DATA)
    assert gan.regularizers.topk_epoch_steps == 64 // 16


def regulariser_sweep(variant):
    s = spec.load_sweep_file(os.path.join(ROOT, "configs/sweeps/regularisers.py"), variant)
    return s, spec.expand(s)


METHODS = {
    "none": {},
    "CR": {"regularizers.cr_real": 10.0},
    "bCR": {"regularizers.cr_real": 10.0, "regularizers.cr_fake": 10.0},
    "LeCam": {"regularizers.lecam": 0.3},
    "DiffAugment": {"augment": "color,translation,cutout"},
    "ADA": {"regularizers.ada": True},
}


def method_of(params):
    on = {k: v for k, v in params.items() if k != "seed" and v not in ("", 0.0, False)}
    return next(name for name, keys in METHODS.items() if on == keys)


@pytest.mark.parametrize("variant, seeds", [("quick", 1), (None, 3)])
def test_regulariser_sweep_is_the_six_methods_each_its_own_group(variant, seeds):
    s, trials = regulariser_sweep(variant)
    assert len(trials) == 6 * seeds
    assert sorted(method_of(t.params) for t in trials) == sorted(list(METHODS) * seeds)
    assert len(spec.groups(trials)) == 6
    for t in trials:
        c = spec.trial_config(s, t)
        config_lib.validate(c)
        assert c.regularizers.ada_policy == "color,translation,cutout" and c.model.discriminator == "dcgan"


@pytest.mark.slow
def test_regulariser_sweep_trials_each_run_a_step():
    s, trials = regulariser_sweep("quick")
    for t in trials:
        c = spec.trial_config(s, t)
        pixels = np.random.default_rng(0).integers(0, 256, (c.batch_size, 28, 28, 1), dtype=np.uint8)
        _, gan = config_lib.build(c, Dataset("fashion_mnist", (28, 28, 1), images=pixels))
        _, metrics = jax.jit(functools.partial(train_lib.train_step, gan, batch_size=c.batch_size))(
            train_lib.init_state(gan, c.seed), pixels[None])
        assert float(metrics["nonfinite"]) == 0.0, method_of(t.params)


@pytest.mark.slow
def test_a_vmapped_sweep_group_with_every_regulariser_equals_its_trials_alone(tmp_path):
    from ganjax.sweep.vmapped import GroupRun, unstack

    fixed = {f"regularizers.{k}": v for k, v in ALL_ON_TOY.items()}
    fixed.update({"num_steps": 4, "log_every": 2, "checkpoint_every": 4, "eval_every": 0, "sample_every": 0})
    sweep = spec.sweep_config(base="configs/ring_2d.py:quick", axes=[], seeds=2, fixed=fixed)
    trials = spec.expand(sweep)
    configs = [spec.trial_config(sweep, t) for t in trials]
    group = GroupRun(trials, configs, str(tmp_path / "group"))
    rows = group.run()
    assert [r["status"] for r in rows] == ["ok", "ok"]
    _, gan = config_lib.build(configs[1])
    step = jax.jit(functools.partial(train_lib.train_step, gan, batch_size=configs[1].batch_size))
    alone = train_lib.init_state(gan, 1)
    for _ in range(4):
        alone, _ = step(alone, None)
    assert float(alone.regs["ada"]["p"]) > 0
    assert_trees_close(unstack(group.states, 1), alone, rtol=1e-4, atol=1e-6)
