"""Vmapped sweeps: a group of trials equals its trials run alone; divergence is per trial."""

import signal

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


KILL_SWEEP = """
from ganjax.sweep.spec import axis, sweep_config


def get_config(arg=None):
    return sweep_config(base="configs/ring_2d.py:quick",
                        axes=[axis(("optimizer_g.learning_rate", "optimizer_d.learning_rate"), grid=(1e-4, 1e-3))],
                        seeds=2, metric="modes",
                        fixed={"num_steps": 400, "checkpoint_every": 20, "log_every": 20, "eval_every": 0,
                               "sample_every": 0})
"""

def sweep_command_and_reference(tmp_path, sweep_text: str):
    """``(command(workdir), ref)``: the ``python -m ganjax.sweep`` command line of the sweep config
    ``sweep_text`` (written to ``tmp_path``), and the workdir of one uninterrupted run of it."""
    import subprocess
    import sys

    from tests.conftest import ROOT
    from tests.test_reliability import ENV

    config = tmp_path / "sweep_config.py"
    config.write_text(sweep_text)
    command = lambda workdir: [sys.executable, "-m", "ganjax.sweep", f"--config={config}",  # noqa: E731
                               f"--workdir={workdir}"]
    ref = tmp_path / "ref"
    r = subprocess.run(command(ref), cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    return command, ref


def test_sigkilled_group_mid_run_and_mid_checkpoint_resumes_to_the_uninterrupted_result(tmp_path):
    """``python -m ganjax.sweep`` (one vmapped group of 4 trials) is SIGKILLed for real: once while its group
    writes a checkpoint (a temporary Orbax folder exists), once after a few logged rows; the third start
    finishes. Every logged metric row (per trial and step: losses, D outputs, gradient and parameter
    norms) and every results row equal those of an uninterrupted sweep bitwise, each step logged once."""
    import glob
    import os
    import subprocess

    from ganjax.sweep.results import read_results
    from ganjax.writers import read_jsonl
    from tests.conftest import ROOT
    from tests.test_reliability import ENV, checkpoint_entries, wait_for

    command, ref = sweep_command_and_reference(tmp_path, KILL_SWEEP)

    workdir = tmp_path / "killed"
    group = lambda: (glob.glob(str(workdir / "groups" / "*")) or [None])[0]  # noqa: E731
    rows = lambda: read_jsonl(os.path.join(group(), "metrics.jsonl")) if group() else []  # noqa: E731
    kills = 0
    for point in ("mid_checkpoint", "mid_group"):
        before = len(rows())
        proc = subprocess.Popen(command(workdir), cwd=ROOT, env=ENV, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        try:
            assert wait_for(lambda: len(rows()) > before or proc.poll() is not None, timeout=300)
            if point == "mid_checkpoint":
                done = max([int(e) for e in checkpoint_entries(group()) if e.isdigit()], default=0)
                assert wait_for(lambda: proc.poll() is not None or any(
                    "tmp" in e and int(e.split(".")[0]) > done for e in checkpoint_entries(group())), timeout=300)
            else:
                assert wait_for(lambda: len(rows()) >= before + 3 * 4 or proc.poll() is not None, timeout=300)
            assert proc.poll() is None, "the group finished before the kill point"
            proc.send_signal(signal.SIGKILL)
            kills += 1
        finally:
            proc.kill()
            proc.wait(timeout=60)
    last = subprocess.run(command(workdir), cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=600)
    assert last.returncode == 0, last.stderr
    assert kills == 2 and "resuming 4 trials from step" in last.stderr, last.stderr

    key = lambda row: (row["step"], row["trial"])  # noqa: E731
    mine = read_jsonl(os.path.join(group(), "metrics.jsonl"))
    theirs = read_jsonl(glob.glob(str(ref / "groups" / "*" / "metrics.jsonl"))[0])
    assert sorted(map(key, mine)) == sorted(map(key, theirs)) and len(set(map(key, mine))) == len(mine) == 20 * 4
    assert sorted(mine, key=key) == sorted(theirs, key=key)
    strip = lambda results: {t: {k: v for k, v in r.items() if k != "wall_seconds"}  # noqa: E731
                             for t, r in results.items()}
    assert strip(read_results(str(workdir))) == strip(read_results(str(ref)))
    assert all(r["steps"] == 400 and r["status"] == "ok" for r in read_results(str(workdir)).values())


def test_sigterm_saves_the_group_at_the_current_step_and_the_rerun_finishes_it_equal(tmp_path):
    """SIGTERM to ``python -m ganjax.sweep`` between checkpoints (``checkpoint_every`` = the whole run):
    the vmapped group saves its stacked state at the step it reached, exits with 128 + 15 naming the
    checkpoint, and the same command resumes from that step (not from 0) to the uninterrupted results."""
    import glob
    import subprocess

    from ganjax.sweep.results import read_results
    from ganjax.writers import read_jsonl
    from tests.conftest import ROOT
    from tests.test_reliability import ENV, wait_for

    command, ref = sweep_command_and_reference(
        tmp_path, KILL_SWEEP.replace('"checkpoint_every": 20', '"checkpoint_every": 400'))

    workdir = tmp_path / "stopped"
    rows = lambda: read_jsonl(glob.glob(str(workdir / "groups" / "*" / "metrics.jsonl"))[0]) \
        if glob.glob(str(workdir / "groups" / "*" / "metrics.jsonl")) else []  # noqa: E731
    proc = subprocess.Popen(command(workdir), cwd=ROOT, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    try:
        assert wait_for(lambda: len(rows()) >= 3 * 4 or proc.poll() is not None, timeout=300)
        assert proc.poll() is None, "the group finished before the signal"
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=300)
    finally:
        proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM, err
    stopped = int(err.split("stopped by signal 15 at step ")[1].split()[0])
    assert 60 <= stopped < 400 and "checkpoint saved in" in err, err
    last = subprocess.run(command(workdir), cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=600)
    assert last.returncode == 0, last.stderr
    assert f"resuming 4 trials from step {stopped}" in last.stderr, last.stderr
    strip = lambda results: {t: {k: v for k, v in r.items() if k != "wall_seconds"}  # noqa: E731
                             for t, r in results.items()}
    assert strip(read_results(str(workdir))) == strip(read_results(str(ref)))


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


@pytest.mark.slow  # CI time; tests/test_sweep_mesh.py shards the trial axis over devices by default
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


def test_one_trial_of_a_vmapped_group_is_sampled_and_evaluated_by_its_id(tmp_path, caplog):
    """--trial=ID slices trial i out of the group's stacked final checkpoint: the state its run alone ends in."""
    import json
    import os
    import subprocess
    import sys

    from ganjax.sweep.inference import find_trial, load_trial
    from ganjax.sweep.run import run_sweep
    from tests.conftest import ROOT

    sweep = ring_sweep(seeds=1, fixed={"sample_every": 0, "eval_every": 0})
    sweep_dir = str(tmp_path / "sweep")
    with caplog.at_level("INFO", logger="ganjax"):
        run_sweep(sweep, sweep_dir)
    (folder,) = os.listdir(os.path.join(sweep_dir, "groups"))
    assert f"({folder})" in caplog.text and f"group {folder}:" in caplog.text  # logged group names are the folder names
    group_dir = os.path.join(sweep_dir, "groups", folder)
    trials = spec.expand(sweep)
    config, _, state, step = load_trial(find_trial(sweep_dir, trials[1].id))
    assert step == 20 and config.optimizer_d.learning_rate == trials[1].params[LR[1]]
    alone = train_and_evaluate(spec.trial_config(sweep, trials[1]), str(tmp_path / "alone"))
    assert_close_trees(state.g_params, alone.g_params)
    assert find_trial(group_dir, trials[1].id) == find_trial(sweep_dir, trials[1].id)

    env = {**os.environ, "JAX_PLATFORMS": "cpu", "XLA_FLAGS": ""}
    run = lambda *args: subprocess.run([sys.executable, "-m", *args], cwd=ROOT, env=env,  # noqa: E731
                                       capture_output=True, text=True, timeout=300)
    out = str(tmp_path / "t1.npy")
    r = run("ganjax.sample", f"--workdir={group_dir}", f"--trial={trials[1].id}", "--num=8", f"--out={out}")
    assert r.returncode == 0, r.stderr
    assert np.load(out).shape == (8, 2) and f"of trial {trials[1].id}" in r.stdout
    r = run("ganjax.evaluate", f"--workdir={sweep_dir}", f"--trial={trials[0].id}", "--num_samples=500")
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in open(os.path.join(group_dir, "eval.jsonl"))]
    assert {r["trial"] for r in rows} == {trials[0].id} and {r["step"] for r in rows} == {20}
    r = run("ganjax.sample", f"--workdir={sweep_dir}", "--trial=t9999-nosuch", f"--out={out}")
    assert r.returncode == 2 and f"unknown trial 't9999-nosuch' in sweep {sweep_dir}" in r.stderr, r.stderr


def _group_start_compiles(tmp_path, num_trials: int) -> list[str]:
    """The XLA compilations of a fresh process's group of ``num_trials`` ring trials, from init to the end
    of a 2-step run (caches cleared first, as in a new ``python -m ganjax.sweep``)."""
    from ganjax.compiles import CompileCounter
    from ganjax.train import compiled_init

    lrs = tuple(float(x) for x in np.geomspace(1e-5, 1e-3, num_trials))
    sweep = ring_sweep(lrs=lrs, seeds=1, fixed={"num_steps": 2, "log_every": 2, "eval_every": 0,
                                                "checkpoint_every": 0, "sample_every": 0})
    trials = spec.expand(sweep)
    configs = [spec.trial_config(sweep, t) for t in trials]
    jax.clear_caches()
    compiled_init.cache_clear()
    with CompileCounter() as compiles:
        GroupRun(trials, configs, str(tmp_path / f"g{num_trials}"), devices=jax.devices()[:1]).run()
    return compiles.names


def test_a_groups_start_compiles_the_same_programs_for_2_trials_or_12(tmp_path, no_compilation_cache):
    """Item 6 of issue 16: init compiled each net once per trial (165 compilations for 64 trials; here the
    old code compiled 42 programs for 2 trials and 62 for 12)."""
    two, twelve = _group_start_compiles(tmp_path, 2), _group_start_compiles(tmp_path, 12)
    assert sorted(two) == sorted(twelve)
    assert len(twelve) < 40  # the nets' init, the step and a few small ops, none per trial
