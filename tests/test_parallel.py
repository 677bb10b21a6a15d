"""Data parallelism: pmap and shard_map on n devices compute the step of parallel='none'."""

import itertools
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ganjax import config as config_lib
from ganjax.errors import ConfigError
from ganjax.parallel import make_runner
from ganjax.train import init_state
from ganjax.trainer import load_for_inference, train_and_evaluate
from tests.conftest import assert_trees_close, load_config

LOSS_PENALTY = [(loss, "none") for loss in ("minimax", "non_saturating", "least_squares", "wasserstein", "hinge")] + \
    [("wasserstein", p) for p in ("wgan_gp", "dragan", "r1", "r2")]


def ring_config(loss="non_saturating", penalty="none"):
    """MLP without dropout or BatchNorm, batch 64, plain SGD.

    SGD, because Adam's first steps are ill-conditioned for tiny gradients
    (g / (|g| + eps) turns float32 rounding of a 1e-9 gradient into a
    learning-rate-sized difference), which would hide what we test: that the
    gradients and updates are the same function of the global batch.
    """
    c = load_config("ring_2d", "quick")
    c.loss, c.penalty, c.penalty_weight = loss, penalty, 1.0
    for o in (c.optimizer_g, c.optimizer_d):
        o.name, o.learning_rate, o.b1 = "sgd", 0.05, 0.0
    return c


def assert_runs_on(runner, state, mode: str, num_devices: int) -> None:
    """``runner`` reports ``num_devices`` and every leaf of the state its ``step`` returned really lives on
    that many devices (pmap: a leading device axis of that size), so a silent fall-back to one device fails."""
    assert runner.num_devices == num_devices
    for path, leaf in jax.tree_util.tree_leaves_with_path(state):
        where = jax.tree_util.keystr(path)
        assert isinstance(leaf, jax.Array), where
        assert len(leaf.sharding.device_set) == num_devices, (where, leaf.sharding)
        if mode == "pmap":
            assert leaf.shape[0] == num_devices, (where, leaf.shape)
        elif mode == "shard_map":
            assert leaf.sharding.is_fully_replicated, (where, leaf.sharding)


def one_step(c, mode, num_devices, batch=None):
    """Two steps of ``mode`` on the first ``num_devices`` devices → (host state, metrics of the last step)."""
    _, gan = config_lib.build(c)
    runner = make_runner(gan, mode, c.batch_size, jax.devices()[:num_devices])
    state = runner.put(init_state(gan, 0, c.penalty_weight))
    for _ in range(2):
        state, metrics = runner.step(state, batch)
    assert_runs_on(runner, state, mode, num_devices)
    return runner.get(state), metrics


def assert_close(a, b, rtol: float = 2e-5, atol: float = 2e-6) -> None:
    """:func:`tests.conftest.assert_trees_close` at the float32 tolerance of a data-parallel step
    (gradients averaged over devices round differently from the single-device sum)."""
    assert_trees_close(a, b, rtol=rtol, atol=atol)


def check_equal_to_single_device(loss, penalty, layouts):
    c = ring_config(loss, penalty)
    ref, ref_metrics = one_step(c, "none", 1)
    for mode, n in layouts:
        state, metrics = one_step(c, mode, n)
        assert_close(state, ref)
        np.testing.assert_allclose(metrics["d_loss"], ref_metrics["d_loss"], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(metrics["penalty"], ref_metrics["penalty"], rtol=1e-5, atol=1e-6)


# The default suite: the penalties that draw per-example randomness (wgan_gp, dragan) or take gradients
# at the generated batch (r2), and one plain loss; the other losses differ from these only in their
# formula, not in how the step shards and averages, and run with -m slow.
DEFAULT_LOSS_PENALTY = {("non_saturating", "none"), ("wasserstein", "wgan_gp"), ("wasserstein", "dragan"),
                        ("wasserstein", "r2")}


@pytest.mark.parametrize("loss,penalty", [
    pytest.param(loss, penalty, marks=() if (loss, penalty) in DEFAULT_LOSS_PENALTY else pytest.mark.slow)
    for loss, penalty in LOSS_PENALTY])
def test_pmap_and_shard_map_equal_single_device(loss, penalty):
    """Every loss and penalty (four of them by default, all with -m slow): pmap on 4 devices and shard_map
    on 8 (the full 2×2 grid is -m slow)."""
    check_equal_to_single_device(loss, penalty, [("pmap", 4), ("shard_map", 8)])


@pytest.mark.slow
@pytest.mark.parametrize("loss,penalty", LOSS_PENALTY)
def test_pmap_and_shard_map_equal_single_device_all_layouts(loss, penalty):
    check_equal_to_single_device(loss, penalty, list(itertools.product(("pmap", "shard_map"), (4, 8))))


def test_host_image_batches_split_across_devices_equal_single_device():
    c = load_config("fashion_mnist_mlp", "quick")
    c.batch_size = 16
    c.model.d.dropout = 0.0
    c.model.g.hidden, c.model.d.hidden = (32,), (32,)
    from ganjax.data import Dataset

    images = np.random.default_rng(0).integers(0, 256, (1, 16, 28, 28, 1), dtype=np.uint8)
    ds = Dataset("fake", (28, 28, 1), images=images[0])
    _, gan = config_lib.build(c, ds)
    results = []
    for mode, n in (("none", 1), ("pmap", 8), ("shard_map", 4)):
        runner = make_runner(gan, mode, 16, jax.devices()[:n])
        state, _ = runner.step(runner.put(init_state(gan, 0)), images)
        assert_runs_on(runner, state, mode, n)
        results.append(runner.get(state))
    assert_close(results[1], results[0])
    assert_close(results[2], results[0])


def test_batch_not_divisible_is_refused_before_compiling():
    c = ring_config()
    c.batch_size = 60
    _, gan = config_lib.build(c)
    with pytest.raises(ConfigError, match="batch_size=60 is not divisible by the 8 devices of parallel='shard_map'"):
        make_runner(gan, "shard_map", 60)


# pmap → shard_map is -m slow (CI time): the other two still start from and resume into every layout but pmap → *.
@pytest.mark.parametrize("first,second", [pytest.param("pmap", "shard_map", marks=pytest.mark.slow), ("shard_map", "none"),
                                          ("none", "pmap")])
def test_checkpoint_resumes_across_layouts(tmp_path, monkeypatch, first, second):
    import ganjax.trainer

    devices = []  # (mode, Runner.num_devices) of every runner the trainer builds

    def recording_make_runner(gan, mode, global_batch, *args):
        runner = make_runner(gan, mode, global_batch, *args)
        devices.append((mode, runner.num_devices))
        return runner

    monkeypatch.setattr(ganjax.trainer, "make_runner", recording_make_runner)
    def cfg(steps, mode):
        c = ring_config()
        c.num_steps, c.parallel, c.checkpoint_every, c.sample_every = steps, mode, 2, 0
        return c

    reference = train_and_evaluate(cfg(4, first), str(tmp_path / "ref"))
    workdir = str(tmp_path / "w")
    train_and_evaluate(cfg(2, first), workdir)
    resumed = train_and_evaluate(cfg(4, second), workdir)
    assert int(resumed.step) == 4
    assert_close(resumed, reference)
    count = {"none": 1, "pmap": jax.local_device_count(), "shard_map": jax.device_count()}
    assert count["pmap"] == count["shard_map"] == 8
    assert devices == [(first, count[first]), (first, count[first]), (second, count[second])]


def bn_config(sync: bool):
    c = ring_config()
    c.model.g.batch_norm = True
    c.sync_batch_norm = sync
    return c


def test_synchronised_batch_norm_equals_single_device():
    ref, _ = one_step(bn_config(True), "none", 1)
    for mode, n in (("pmap", 4), ("shard_map", 8)):
        c = bn_config(True)
        c.parallel = mode  # build() reads parallel to synchronise BatchNorm
        state, _ = one_step(c, mode, n)
        assert_close(state, ref)


def test_per_device_batch_norm_uses_each_devices_own_statistics():
    """Without synchronisation device i normalises with its own shard's mean/var."""
    from ganjax.models import build_generator

    z = jax.random.normal(jax.random.key(0), (32, 8)) * 3 + jnp.arange(32.0)[:, None] / 8
    sync = build_generator("mlp", (2,), {"hidden": (16,), "batch_norm": True}, bn_axis_name="data")
    local = build_generator("mlp", (2,), {"hidden": (16,), "batch_norm": True})
    variables = local.init(jax.random.key(1), z[:2], train=False)

    def apply(module):
        return jax.pmap(lambda zz: module.apply(variables, zz, train=True, mutable=["batch_stats"]),
                        axis_name="data", devices=jax.devices()[:4])(z.reshape(4, 8, 8))

    (out_sync, stats_sync), (out_local, stats_local) = apply(sync), apply(local)
    whole, whole_stats = local.apply(variables, z, train=True, mutable=["batch_stats"])
    np.testing.assert_allclose(out_sync.reshape(32, 2), whole, rtol=1e-5, atol=1e-5)
    for i in range(4):
        own, own_stats = local.apply(variables, z[8 * i:8 * (i + 1)], train=True, mutable=["batch_stats"])
        np.testing.assert_allclose(out_local[i], own, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(stats_local["batch_stats"]["BatchNorm_0"]["var"][i],
                                   own_stats["batch_stats"]["BatchNorm_0"]["var"], rtol=1e-5)
        np.testing.assert_allclose(stats_sync["batch_stats"]["BatchNorm_0"]["var"][i],
                                   whole_stats["batch_stats"]["BatchNorm_0"]["var"], rtol=1e-5)
    assert not np.allclose(out_local.reshape(32, 2), whole, atol=1e-3)


def test_first_replica_reads_device_0s_copy_of_a_pmap_output_on_that_device_only():
    from ganjax.parallel import first_replica

    x = np.arange(8 * 3 * 2, dtype=np.float32).reshape(8, 3, 2)
    out = jax.pmap(lambda a: a * 2)(x)  # sharded over the 8 devices
    assert len(out.sharding.device_set) == 8
    first = first_replica(out)
    assert first.shape == (3, 2) and first.sharding.device_set == {jax.devices()[0]}
    np.testing.assert_array_equal(np.asarray(first), np.asarray(out[0]))
    scalar = first_replica(jax.pmap(lambda a: a.sum())(x))  # a per-device scalar → a scalar
    assert scalar.shape == () and float(scalar) == float(x[0].sum())
    np.testing.assert_array_equal(first_replica(x), x[0])  # a host array: plain indexing
