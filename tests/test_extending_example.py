"""configs/examples/my_loss.py end to end: a user's loss and penalty through the CLI and ganjax.sweep.

The example file registers ``ra_hinge`` (a relativistic loss: its G loss takes
the real logits) and ``gp0`` and lists itself in ``imports``. It is trained by
``ganjax.main`` and sampled by ``ganjax.sample`` from another directory (which
re-imports it from config.json); its sweep (configs/examples/my_loss_sweep.py)
runs against built-in losses in vmap mode through ``python -m ganjax.sweep``
and, for one trial, in process mode (a trial process imports it too).
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from ganjax.sweep import spec
from ganjax.sweep.process import run_process_sweep
from ganjax.sweep.results import read_results
from tests.conftest import ROOT

EXAMPLE = os.path.join(ROOT, "configs", "examples", "my_loss.py")


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> dict:
    """The processes' environment: one CPU device and a JAX compilation cache they share (the CLI run and
    the process-mode trial compile the same step)."""
    return {**os.environ, "JAX_PLATFORMS": "cpu", "XLA_FLAGS": "", "PYTHONPATH": ROOT,
            "JAX_COMPILATION_CACHE_DIR": str(tmp_path_factory.mktemp("jax_cache")),
            "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0"}


def run(env, module, *args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=600)


def test_example_trains_with_the_cli_and_samples_from_another_directory(tmp_path, env):
    workdir = str(tmp_path / "run")
    r = run(env, "ganjax.main", "--config=configs/examples/my_loss.py:quick", f"--workdir={workdir}",
            "--config.num_steps=2", "--config.eval_every=0", "--config.sample_every=0")
    assert r.returncode == 0, r.stderr
    with open(os.path.join(workdir, "config.json")) as f:
        saved = json.load(f)
    assert saved["imports"] == [EXAMPLE]  # configs/examples/my_loss.py, recorded absolute
    assert (saved["loss"], saved["penalty"]) == ("ra_hinge", "gp0")
    rows = [json.loads(line) for line in open(os.path.join(workdir, "metrics.jsonl"))]
    assert rows[-1]["step"] == 2 and rows[-1]["penalty"] > 0 and np.isfinite(rows[-1]["g_loss"])
    out = str(tmp_path / "s.npy")
    r = run(env, "ganjax.sample", f"--workdir={workdir}", f"--out={out}", "--num=5", cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert np.load(out).shape == (5, 2)


def test_example_bad_loss_name_lists_the_registered_one(tmp_path, env):
    r = run(env, "ganjax.main", "--config=configs/examples/my_loss.py:quick", f"--workdir={tmp_path / 'x'}",
            "--config.loss=ra_hinj")
    assert r.returncode == 2
    assert r.stderr.strip().splitlines()[-1] == (
        "ganjax: error: unknown loss 'ra_hinj'; valid choices: hinge, least_squares, minimax, non_saturating, ragan, "
        "ralsgan, rsgan, wasserstein; registered: ra_hinge")
    assert not os.path.exists(tmp_path / "x")


@pytest.mark.slow  # CI time; the example's CLI run above and the sweep tests cover both paths by default
def test_example_sweep_against_built_in_losses_in_vmap_and_process_mode(tmp_path, env):
    sweep_dir = str(tmp_path / "sweep")
    r = run(env, "ganjax.sweep", "--config=configs/examples/my_loss_sweep.py:quick", f"--workdir={sweep_dir}",
            "--config.seeds=1")
    assert r.returncode == 0, r.stderr
    assert "3 trials: 3 ok, 0 diverged, 0 failed" in r.stdout
    results = read_results(sweep_dir)
    assert {row["params"]["loss"] for row in results.values()} == {"ra_hinge", "ragan", "hinge"}
    assert all(row["mode"] == "vmap" and 0 <= row["best"]["modes"] <= 8 for row in results.values())
    assert "ra_hinge" in open(os.path.join(sweep_dir, "summary.md")).read()

    # Process mode: the trial is `python -m ganjax.main --config=<base> ...`, a process that imports the file.
    sweep = spec.load_sweep_file("configs/examples/my_loss_sweep.py", "quick")
    sweep.mode, sweep.seeds = "process", (0,)
    trial = next(t for t in spec.expand(sweep) if t.params["loss"] == "ra_hinge")
    process_dir = str(tmp_path / "process")
    rows = run_process_sweep(sweep, [trial], process_dir, 1, env=env)
    assert [row["status"] for row in rows] == ["ok"], rows
    with open(os.path.join(process_dir, "trials", trial.id, "config.json")) as f:
        assert json.load(f)["imports"] == [EXAMPLE]
