"""Vmapped sweeps: a group of trials equals its trials run alone; divergence is per trial."""

import jax
import numpy as np
import pytest

from ganjax.errors import ConfigError
from ganjax.sweep import spec
from ganjax.sweep.vmapped import GroupRun, steps_per_call, unstack
from ganjax.trainer import train_and_evaluate
from tests.conftest import assert_trees_close

LR = ("optimizer_g.learning_rate", "optimizer_d.learning_rate")


def ring_sweep(lrs=(1e-4, 1e-3), seeds=2, **kw):
    return spec.sweep_config(base="configs/ring_2d.py:quick", axes=[spec.axis(LR, grid=lrs)], seeds=seeds, **kw)


def run_group(sweep, workdir, dataset=None):
    trials = spec.expand(sweep)
    configs = [spec.trial_config(sweep, t) for t in trials]
    group = GroupRun(trials, configs, str(workdir), dataset)
    return trials, configs, group, group.run()


def assert_close_trees(a, b, rtol: float = 1e-4, atol: float = 1e-6) -> None:
    """:func:`tests.conftest.assert_trees_close` at the tolerance of a vmapped group vs its trials alone
    (batched matmuls round differently)."""
    assert_trees_close(a, b, rtol=rtol, atol=atol)


def test_vmapped_group_of_four_equals_each_trial_alone(tmp_path):
    """T = 4: two learning rates × two seeds, stacked, vs four ordinary single runs."""
    trials, configs, group, rows = run_group(ring_sweep(), tmp_path / "group")
    assert len(trials) == 4 and len({t.group for t in trials}) == 1
    assert [r["status"] for r in rows] == ["ok"] * 4
    for i, (trial, c) in enumerate(zip(trials, configs)):
        alone = train_and_evaluate(c, str(tmp_path / trial.id))
        mine = unstack(group.states, i)
        assert int(mine.step) == int(alone.step) == c.num_steps
        assert_close_trees(mine.g_params, alone.g_params)
        assert_close_trees(mine.d_params, alone.d_params)
        assert_close_trees(mine.ema_params, alone.ema_params)
    # Different hyperparameters/seeds really gave different trials.
    assert not np.allclose(jax.tree.leaves(unstack(group.states, 0).g_params)[0],
                           jax.tree.leaves(unstack(group.states, 3).g_params)[0])
    # Results rows carry the scores of the last evaluation.
    assert all(r["final"]["eval_step"] == 20 and 0 <= r["final"]["modes"] <= 8 for r in rows)


def test_a_diverging_trial_is_frozen_and_leaves_the_others_unchanged(tmp_path):
    _, _, calm, calm_rows = run_group(ring_sweep(lrs=(1e-4, 1e-3), seeds=1), tmp_path / "calm")
    trials, _, mixed, rows = run_group(ring_sweep(lrs=(1e-4, 1e6, 1e-3), seeds=1), tmp_path / "mixed")
    assert [r["status"] for r in rows] == ["ok", "diverged", "ok"]
    bad = unstack(mixed.states, 1)
    assert rows[1]["steps"] < 20 and int(bad.step) == rows[1]["steps"]
    assert all(np.isfinite(x).all() for x in jax.tree.leaves(bad.g_params))  # frozen at its last finite state
    assert "non-finite" in rows[1]["error"]
    for mine, theirs in ((0, 0), (2, 1)):
        assert_close_trees(unstack(mixed.states, mine), unstack(calm.states, theirs))
        assert rows[mine]["final"]["d_loss"] == pytest.approx(calm_rows[theirs]["final"]["d_loss"], rel=1e-5)


def test_killed_group_resumes_from_its_checkpoint(tmp_path):
    sweep = ring_sweep()
    trials = spec.expand(sweep)
    configs = [spec.trial_config(sweep, t) for t in trials]
    full = GroupRun(trials, configs, str(tmp_path / "full"))
    full.run()
    half = [c.copy_and_resolve_references() for c in configs]
    for c in half:
        c.num_steps = 10  # "killed" right after the step-10 checkpoint...
    GroupRun(trials, half, str(tmp_path / "resumed")).run()
    resumed = GroupRun(trials, configs, str(tmp_path / "resumed"))  # ...and started again
    rows = resumed.run()
    assert_close_trees(resumed.states, full.states, rtol=0, atol=0)
    assert all(r["steps"] == 20 for r in rows)


def test_group_members_must_differ_only_in_vmappable_keys(tmp_path):
    sweep = spec.sweep_config(base="configs/ring_2d.py:quick", axes=[spec.axis("loss", grid=("hinge", "minimax"))])
    trials = spec.expand(sweep)
    assert trials[0].group != trials[1].group
    with pytest.raises(ConfigError, match="differ in loss"):
        GroupRun(trials, [spec.trial_config(sweep, t) for t in trials], str(tmp_path / "g"))


def test_steps_per_call_divides_every_period():
    from tests.conftest import load_config

    c = load_config("ring_2d")
    k = steps_per_call(c)
    assert all(p % k == 0 for p in (c.num_steps, c.log_every, c.eval_every, c.checkpoint_every)) and k <= 100


def test_trial_axis_is_sharded_over_devices_with_the_same_numbers(tmp_path):
    """8 trials on the 8 fake CPU devices (one trial each) equal the same group on one device."""
    assert len(jax.devices()) == 8
    sweep = ring_sweep(lrs=(1e-4, 3e-4, 1e-3, 3e-3), seeds=2)
    trials = spec.expand(sweep)
    configs = [spec.trial_config(sweep, t) for t in trials]
    sharded = GroupRun(trials, configs, str(tmp_path / "sharded"))
    single = GroupRun(trials, configs, str(tmp_path / "single"), devices=jax.devices()[:1])
    assert sharded.sharding is not None and sharded.sharding.mesh.size == 8 and single.sharding is None
    sharded.run()
    single.run()
    assert_close_trees(sharded.states, single.states)


def test_one_step_per_call_runs_without_a_loop_and_equals_the_trial_alone(tmp_path):
    """log_every = 1 gives steps_per_call = 1: the group step is called directly (no lax.scan)."""
    sweep = ring_sweep(lrs=(1e-4, 1e-3), seeds=1, fixed={"num_steps": 4, "log_every": 1, "eval_every": 0,
                                                          "checkpoint_every": 4})
    trials, configs, group, rows = run_group(sweep, tmp_path / "group")
    assert group.k == 1 and [r["status"] for r in rows] == ["ok", "ok"]
    alone = train_and_evaluate(configs[1], str(tmp_path / trials[1].id))
    assert_close_trees(unstack(group.states, 1).g_params, alone.g_params)
    assert_close_trees(unstack(group.states, 1).d_params, alone.d_params)
