"""The train step with G losses that take the real logits (issue 21).

* Every loss whose G loss takes only the fake logits runs exactly the step of
  before the change, bitwise: ``tests/reference/train_before_issue21.py`` is
  ``ganjax/train.py`` as of commit e0b2e60 (the last one before the change),
  kept verbatim so the comparison needs no git history. The simultaneous rule's
  G update has since changed on purpose (2026-12-04: G's loss is taken from D's
  own forward pass, tests/test_train.py), so there only D's update is compared.
* A relativistic loss's G loss is computed from D's logits on the step's last
  real batch and on the generated batch, also with K discriminators, and the
  step stays finite with every training option and update rule.
"""

import dataclasses
import functools
import importlib.util
import os
import sys

import jax
import numpy as np
import pytest

from ganjax import train as train_lib
from ganjax.shard import single
from tests.conftest import ROOT, assert_trees_close
from tests.test_train_options import IMAGE_DATA, finite, host_batch, ring, run_steps, tiny_images

REFERENCE = os.path.join(ROOT, "tests", "reference", "train_before_issue21.py")
FAKE_ONLY = ("minimax", "non_saturating", "least_squares", "wasserstein", "hinge")
RELATIVISTIC = ("rsgan", "ragan", "ralsgan")
# Every option of the step at once (alternating): n_disc, K discriminators, unrolled D, packing.
ALL_OPTIONS = dict(n_disc=2, num_discriminators=2, unroll_steps=1, pack=2)


def reference_train_module():
    spec = importlib.util.spec_from_file_location("ganjax_train_before_issue21", REFERENCE)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def reference_run(c, steps, dataset=None, batch=None):
    """``steps`` steps of the reference (pre-change) step on the GAN that ``c`` builds today."""
    from ganjax import config as config_lib

    old = reference_train_module()
    _, gan = config_lib.build(c, dataset)
    old_gan = old.GAN(**{f.name: getattr(gan, f.name) for f in dataclasses.fields(old.GAN)})
    state = old.init_state(old_gan, c.seed, c.penalty_weight)
    step = jax.jit(functools.partial(old.train_step, old_gan, batch_size=c.batch_size))
    for _ in range(steps):
        state, metrics = step(state, batch)
    return state, metrics


# The G update's branch depends only on GANLoss.g_uses_real (false for exactly these five losses:
# tests/test_losses.py), so the default run compares three of them (n_disc and packing) and `-m slow`
# the other two and the costliest settings to compile: every option at once (K Ds, unrolled D) and
# images with augmentation and a penalty.
SLOW = pytest.mark.slow
CASES = ([("non_saturating", "n_disc_pack"), ("least_squares", "n_disc_pack"), ("hinge", "n_disc_pack")]
         + [pytest.param(loss, "n_disc_pack", marks=SLOW) for loss in ("minimax", "wasserstein")]
         + [pytest.param("non_saturating", "all_options", marks=SLOW),
            pytest.param("least_squares", "images_r1", marks=SLOW)])


@pytest.mark.parametrize("loss,setting", CASES)
def test_fake_only_losses_run_the_previous_step_bitwise(loss, setting):
    dataset = batch = None
    if setting == "n_disc_pack":
        c = ring(loss=loss, n_disc=2, pack=2)
    elif setting == "all_options":
        c = ring(loss=loss, **ALL_OPTIONS)
        c.optimizer_d.name = "adam"
    else:
        c = tiny_images(loss=loss, penalty="r1", penalty_weight=1.0, augment="translation")
        dataset, batch = IMAGE_DATA, host_batch(tiny_images())
    _, new_state, new_metrics = run_steps(c, 2, dataset, batch)
    old_state, old_metrics = reference_run(c, 2, dataset, batch)
    # The reference module's GANState is another class: rebuild its fields as today's (a missing or
    # extra field fails), then compare structure, shapes, dtypes and values bitwise.
    assert_trees_close(new_state, type(new_state)(**{f.name: getattr(old_state, f.name)
                                                      for f in dataclasses.fields(old_state)}))
    assert set(new_metrics) == set(old_metrics)
    assert all(np.array_equal(new_metrics[k], old_metrics[k]) for k in old_metrics)


def test_simultaneous_rule_keeps_the_previous_d_update():
    """The simultaneous rule's change (G's loss from D's forward pass) left D's update as it was: one step
    gives the reference's D parameters, optimizer state and D metrics bitwise, and other G parameters."""
    c = ring(loss="hinge", update_rule="simultaneous")
    _, new_state, new_metrics = run_steps(c, 1)
    old_state, old_metrics = reference_run(c, 1)
    assert_trees_close((new_state.d_params, new_state.d_opt), (old_state.d_params, old_state.d_opt))
    assert all(np.array_equal(new_metrics[k], old_metrics[k]) for k in ("d_loss", "d_real", "d_fake", "d_grad_norm"))
    assert not np.array_equal(new_metrics["g_loss"], old_metrics["g_loss"])


def test_the_reference_differs_for_a_relativistic_loss():
    """The comparison above can fail: the reference cannot run a G loss that needs the real logits."""
    c = ring(loss="rsgan")
    with pytest.raises(TypeError):
        reference_run(c, 1)


def _paper_g_loss(name, r, f):
    """G's loss of Jolicoeur-Martineau (2018) in float64 (see tests/test_losses.py)."""
    sig = lambda x: 1.0 / (1.0 + np.exp(-x))
    r, f = np.asarray(r, np.float64), np.asarray(f, np.float64)
    if name == "rsgan":
        return np.mean(-np.log(sig(f - r)))
    if name == "ragan":
        return np.mean(-np.log(sig(f - r.mean()))) + np.mean(-np.log(1 - sig(r - f.mean())))
    return np.mean((f - r.mean() - 1) ** 2) + np.mean((r - f.mean() + 1) ** 2)


@pytest.mark.parametrize("name,k", [("rsgan", 1), ("ragan", 2), ("ralsgan", 1)])
def test_relativistic_g_loss_sees_the_last_real_batch(name, k):
    """G's loss in the step equals the paper formula on D(reals[-1]) and D(G(z)), averaged over K Ds."""
    from ganjax import config as config_lib

    c = ring(loss=name, n_disc=2, num_discriminators=k)
    _, gan = config_lib.build(c)
    state = train_lib.init_state(gan, c.seed)
    shard = single(c.batch_size)
    key = train_lib.step_key(state)
    reals = train_lib.real_batches(gan, None, key, shard)  # ([n_disc, B, 2], None): two different batches
    _, g_loss, _ = jax.jit(lambda s, r: train_lib._g_grads(gan, s, r, key, shard))(state, reals)
    reals, labels = reals
    assert labels is None and reals.shape[0] == 2

    z = gan.sample_noise(train_lib._purpose(key, train_lib._G_NOISE), c.batch_size)
    fake = train_lib.apply_model(gan.generator, state.g_params, state.g_state, z, train=True)[0]
    expected = []
    for i in range(k):
        d_params = jax.tree.map(lambda x: x[i], state.d_params) if k > 1 else state.d_params
        logits = lambda x: np.asarray(train_lib.apply_model(gan.discriminator, d_params, {}, x, train=True)[0])
        expected.append(_paper_g_loss(name, logits(reals[-1]), logits(fake)))
        other = _paper_g_loss(name, logits(reals[0]), logits(fake))
        assert not np.isclose(other, expected[-1], rtol=1e-5)  # the real batch matters
    np.testing.assert_allclose(g_loss, np.mean(expected), rtol=2e-5)


@pytest.mark.parametrize("name,setting", [("rsgan", "all_options"), ("ragan", "simultaneous"),
                                          pytest.param("ralsgan", "images_r1", marks=SLOW)])
def test_relativistic_losses_train_with_every_option(name, setting):
    dataset = batch = None
    if setting == "all_options":
        c = ring(loss=name, **ALL_OPTIONS)
    elif setting == "simultaneous":
        c = ring(loss=name, update_rule="simultaneous")
    else:
        c = tiny_images(loss=name, penalty="r1", penalty_weight=1.0, augment="translation,cutout", pack=2)
        dataset, batch = IMAGE_DATA, host_batch(tiny_images())
    _, state, metrics = run_steps(c, 2, dataset, batch)
    assert finite(state) and float(metrics["nonfinite"]) == 0.0
    assert float(metrics["g_grad_norm"]) > 0.0
