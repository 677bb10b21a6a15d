"""Vmapped groups on a 2-D (trials, data) mesh: each trial's batch split over a data axis.

Every test runs on the 8 fake CPU devices of tests/conftest.py with the
``ring_2d:quick`` nets (no dropout, no BatchNorm), a few steps each.
"""

import os

import jax
import numpy as np
import pytest

from ganjax.data import Dataset
from ganjax.errors import ConfigError
from ganjax.sweep import spec
from ganjax.sweep.run import run_sweep
from ganjax.sweep.vmapped import GroupRun, group_mesh, unstack
from ganjax.trainer import train_and_evaluate
from ganjax.writers import read_jsonl
from tests.test_sweep_vmap import LR, assert_close_trees

STEPS = 4
FIXED = {"num_steps": STEPS, "log_every": 2, "checkpoint_every": 0, "eval_every": 0, "sample_every": 0}
METRICS = ("d_loss", "g_loss", "d_real", "d_fake", "d_grad_norm", "g_grad_norm", "d_param_norm", "g_param_norm")
MESHES = [(2, 4), (4, 2)]  # (trials, data)


def sweep(lrs=(1e-4, 1e-3), seeds=2, data_parallel=1, **fixed):
    """Two learning rates × two seeds = 4 trials of one group."""
    return spec.sweep_config(base="configs/ring_2d.py:quick", axes=[spec.axis(LR, grid=lrs)], seeds=seeds,
                             fixed={**FIXED, **fixed}, data_parallel=data_parallel)


def trials_and_configs(s):
    trials = spec.expand(s)
    return trials, spec.trial_configs(s, trials)


def trial_rows(path, trial_id):
    """``{step: {metric: value}}`` of one trial's training rows."""
    return {r["step"]: r for r in read_jsonl(path) if r.get("trial", trial_id) == trial_id and "d_loss" in r}


def assert_same_rows(mine, theirs):
    assert sorted(mine) == sorted(theirs) == [2, 4]
    for step in mine:
        for name in METRICS:
            assert mine[step][name] == pytest.approx(theirs[step][name], rel=1e-4, abs=1e-6), (step, name)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The 4 trials alone (``parallel='none'``) and as today's 1-D trial-sharded group (4 devices)."""
    root = tmp_path_factory.mktemp("mesh_reference")
    trials, configs = trials_and_configs(sweep())
    alone = {}
    for t, c in zip(trials, configs):
        workdir = str(root / t.id)
        alone[t.id] = (train_and_evaluate(c, workdir), trial_rows(os.path.join(workdir, "metrics.jsonl"), t.id))
    flat = GroupRun(trials, configs, str(root / "flat"), devices=jax.devices()[:4])
    assert flat.mesh.axis_names == ("trials",) and flat.mesh.size == 4
    flat.run()
    return trials, configs, alone, flat


@pytest.mark.parametrize("shape", MESHES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_2d_group_equals_each_trial_alone_and_the_1d_group(tmp_path, reference, shape):
    trials, configs, alone, flat = reference
    group = GroupRun(trials, configs, str(tmp_path / "g"), data_parallel=shape[1])
    assert dict(group.mesh.shape) == {"trials": shape[0], "data": shape[1]}
    rows = group.run()
    assert [r["status"] for r in rows] == ["ok"] * 4
    assert_close_trees(group.states, flat.states)
    path = str(tmp_path / "g" / "metrics.jsonl")
    for i, t in enumerate(trials):
        state, alone_rows = alone[t.id]
        mine = unstack(group.states, i)
        assert int(mine.step) == STEPS
        assert_close_trees((mine.g_params, mine.d_params, mine.ema_params),
                           (state.g_params, state.d_params, state.ema_params))
        assert_same_rows(trial_rows(path, t.id), alone_rows)
        assert_same_rows(trial_rows(path, t.id), trial_rows(os.path.join(flat.dir, "metrics.jsonl"), t.id))
    # The four trials really differ.
    assert not np.allclose(jax.tree.leaves(unstack(group.states, 0).g_params)[0],
                           jax.tree.leaves(unstack(group.states, 3).g_params)[0])


def test_a_diverging_trial_on_the_2d_mesh_is_frozen_and_leaves_the_others_unchanged(tmp_path, reference):
    """Trial 1 (learning rate 1e30) shares its mesh row with trial 0 on a 2 × 4 mesh."""
    trials, configs, alone, _ = reference
    bad = spec.Trial("t0001-bad", {**trials[1].params, **dict.fromkeys(LR, 1e30)})
    bad_config = spec.apply_params(configs[1], bad.params)
    members, member_configs = [trials[0], bad, *trials[2:]], [configs[0], bad_config, *configs[2:]]
    group = GroupRun(members, member_configs, str(tmp_path / "g"), data_parallel=4)
    rows = group.run()
    assert [r["status"] for r in rows] == ["ok", "diverged", "ok", "ok"]
    frozen = unstack(group.states, 1)
    assert rows[1]["steps"] == int(frozen.step) < STEPS and "non-finite" in rows[1]["error"]
    assert all(np.isfinite(x).all() for x in jax.tree.leaves(frozen))
    for i in (0, 2, 3):
        state, alone_rows = alone[members[i].id]
        assert_close_trees(unstack(group.states, i).g_params, state.g_params)
        assert rows[i]["final"]["d_loss"] == pytest.approx(alone_rows[STEPS]["d_loss"], rel=1e-4)


def test_killed_2d_group_resumes_to_the_uninterrupted_result(tmp_path):
    trials, configs = trials_and_configs(sweep(checkpoint_every=2))
    full = GroupRun(trials, configs, str(tmp_path / "full"), data_parallel=2)
    full.run()
    half = [c.copy_and_resolve_references() for c in configs]
    for c in half:
        c.num_steps = 2  # "killed" right after the step-2 checkpoint...
    GroupRun(trials, half, str(tmp_path / "resumed"), data_parallel=2).run()
    resumed = GroupRun(trials, configs, str(tmp_path / "resumed"), data_parallel=2)  # ...and started again
    rows = resumed.run()
    assert all(r["steps"] == STEPS for r in rows)
    assert_close_trees(resumed.states, full.states, rtol=0, atol=0)
    assert read_jsonl(str(tmp_path / "resumed" / "metrics.jsonl")) == read_jsonl(
        str(tmp_path / "full" / "metrics.jsonl"))


def test_uint8_image_batches_from_the_host_on_the_2d_mesh(tmp_path):
    """A tiny MLP GAN on random 28×28 uint8 images: 2 × 4 mesh = the same group on one device."""
    images = np.random.default_rng(0).integers(0, 256, (64, 28, 28, 1), dtype=np.uint8)
    dataset = Dataset("fake", (28, 28, 1), images=images)
    s = spec.sweep_config(base="configs/fashion_mnist_mlp.py:quick", axes=[spec.axis(LR, grid=(1e-4, 1e-3))],
                          fixed={**FIXED, "batch_size": 16, "model.d.dropout": 0.0, "model.g.hidden": (32,),
                                 "model.d.hidden": (32,), "model.z_dim": 8})
    trials = spec.expand(s)
    configs = spec.trial_configs(s, trials)
    mesh = GroupRun(trials, configs, str(tmp_path / "mesh"), dataset, data_parallel=4)
    single = GroupRun(trials, configs, str(tmp_path / "single"), dataset, devices=jax.devices()[:1])
    assert dict(mesh.mesh.shape) == {"trials": 2, "data": 4} and single.mesh is None
    assert [r["status"] for r in mesh.run()] == ["ok", "ok"]
    single.run()
    assert_close_trees(mesh.states, single.states)
    assert int(mesh.states.step[0]) == STEPS


def test_mesh_shape_rule():
    devices = jax.devices()
    assert group_mesh(8, 1, devices).axis_names == ("trials",)  # today's 1-D rule
    assert group_mesh(4, 1, devices) is None
    assert dict(group_mesh(4, 2, devices).shape) == {"trials": 4, "data": 2}
    assert dict(group_mesh(6, 2, devices).shape) == {"trials": 3, "data": 2}  # largest divisor of T
    assert dict(group_mesh(5, 2, devices).shape) == {"trials": 1, "data": 2}
    assert dict(group_mesh(3, 8, devices).shape) == {"trials": 1, "data": 8}
    mesh = group_mesh(4, 2, devices)
    assert [d.id for d in mesh.devices[1]] == [2, 3]  # a trial's data devices are neighbours


@pytest.mark.parametrize("make, match", [
    (lambda: sweep(data_parallel=3), r"data_parallel=3 does not divide the 8 devices; valid choices: 1, 2, 4, 8"),
    (lambda: sweep(data_parallel=16), r"data_parallel=16 does not divide the 8 devices"),
    (lambda: sweep(data_parallel=0), r"data_parallel must be a positive integer .*got 0"),
    (lambda: sweep(data_parallel=8, batch_size=60),
     r"batch_size=60 is not divisible by the sweep's data_parallel=8; use a multiple of 8"),
    (lambda: sweep(parallel="pmap"), r"parallel='pmap' is for single runs.*data_parallel=N"),
    (lambda: sweep(data_parallel=2, parallel="shard_map"), r"parallel='shard_map' is for single runs"),
    (lambda: spec.sweep_config(base="configs/ring_2d.py:quick", axes=[], mode="process", data_parallel=2),
     r"data_parallel=2 applies to mode='vmap' only"),
])
def test_bad_mesh_settings_are_clear_errors_before_anything_is_written(tmp_path, make, match):
    with pytest.raises(ConfigError, match=match):
        run_sweep(make(), str(tmp_path / "sweep"))
    assert not (tmp_path / "sweep").exists()


def test_group_run_checks_the_mesh_itself(tmp_path):
    trials, configs = trials_and_configs(sweep())
    with pytest.raises(ConfigError, match="does not divide the 4 devices"):
        GroupRun(trials, configs, str(tmp_path / "g"), devices=jax.devices()[:4], data_parallel=8)
    with pytest.raises(ConfigError, match="batch_size=68 is not divisible by the sweep's data_parallel=8"):
        odd = [c.copy_and_resolve_references() for c in configs]
        for c in odd:
            c.batch_size = 64 + 4
        GroupRun(trials, odd, str(tmp_path / "g"), data_parallel=8)


def test_sweep_key_data_parallel_runs_the_groups_on_the_2d_mesh(tmp_path, reference, caplog):
    """``run_sweep`` end to end: 2 trials with data_parallel=4 → a 2 × 4 mesh, the numbers of the trials alone."""
    trials, _, alone, _ = reference
    caplog.set_level("INFO", logger="ganjax")
    rows = run_sweep(sweep(lrs=(1e-3,), data_parallel=4), str(tmp_path / "sweep"))
    assert "2 trials on a 2 x 4 (trials x data) mesh" in caplog.text
    assert [r["status"] for r in rows.values()] == ["ok", "ok"]
    by_params = {tuple(sorted(t.params.items())): t.id for t in trials}
    for row in rows.values():
        _, alone_rows = alone[by_params[tuple(sorted(row["params"].items()))]]
        assert row["final"]["d_loss"] == pytest.approx(alone_rows[STEPS]["d_loss"], rel=1e-4)
