"""Process mode (:mod:`ganjax.sweep.process`): one ``ganjax.main`` per trial.

Rows and statuses (ok, failed, diverged), the rerun that skips finished trials
and retries failed ones, a workdir held by a live process, SIGTERM to the
sweep, and a ``kill -9`` of the sweep followed by a restart. Trial processes
share a JAX compilation cache to keep their start-up short.
"""

import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from ganjax.sweep import spec
from ganjax.sweep.process import classify, log_path, run_process_sweep, trial_dir
from ganjax.sweep.results import RESULTS, read_results
from ganjax.workdir import lock_holder
from ganjax.writers import read_jsonl
from tests.conftest import ROOT

LRS = ("optimizer_g.learning_rate", "optimizer_d.learning_rate")
BAD = spec.Trial("t0100-baddata", {"dataset": "ring_3d", "seed": 0})  # passes no validation: fails in ganjax.main
# A sweep whose second trial trains long enough to be interrupted (no evaluation, no samples).
LONG_SWEEP = """
from ganjax.sweep.spec import axis, sweep_config

def get_config(arg=None):
    return sweep_config(base="configs/ring_2d.py:quick", axes=[axis("num_steps", grid={steps})], seeds=1,
                        mode="process", workers=1, metric="modes",
                        fixed={{"log_every": 10, "checkpoint_every": 0, "sample_every": 0, "eval_every": 0}})
"""


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> dict:
    """The trials' environment: one CPU device, a shared persistent compilation cache."""
    return {**os.environ, "JAX_PLATFORMS": "cpu", "XLA_FLAGS": "",
            "JAX_COMPILATION_CACHE_DIR": str(tmp_path_factory.mktemp("jax_cache")),
            "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0"}


def ring_sweep():
    """Two trials: a sane learning rate and an absurd one (which diverges within a few steps)."""
    return spec.sweep_config(base="configs/ring_2d.py:quick", axes=[spec.axis(LRS, grid=(1e-4, 1e6))], seeds=1,
                             mode="process", workers=2, fixed={"on_nonfinite": "stop"})


@pytest.fixture(scope="module")
def mixed(tmp_path_factory, env):
    """A good trial, one that fails and one that diverges, run once: ``(sweep, trials, dir, rows)``."""
    sweep = ring_sweep()
    good, diverging = spec.expand(sweep)
    trials = [good, BAD, diverging]  # the quick failure runs beside the first trial
    sweep_dir = str(tmp_path_factory.mktemp("mixed"))
    rows = run_process_sweep(sweep, trials, sweep_dir, workers=2, env=env)
    return sweep, trials, sweep_dir, rows


def attempts(sweep_dir: str, trial: spec.Trial) -> int:
    """How many times the trial's process was started (``$ command`` lines of its log)."""
    with open(log_path(sweep_dir, trial)) as f:
        return sum(line.startswith("$ ") for line in f)


def test_every_trial_has_a_row_and_a_good_one_is_ok_with_losses_scores_and_workdir(mixed):
    _, trials, sweep_dir, rows = mixed
    assert [r["trial"] for r in rows] == [t.id for t in trials]
    assert read_results(sweep_dir) == {r["trial"]: r for r in rows}
    row, trial = rows[0], trials[0]
    assert row["status"] == "ok" and row["error"] is None and row["mode"] == "process"
    assert row["steps"] == 20 and row["wall_seconds"] > 0 and row["params"] == dict(trial.params)
    assert "d_loss" in row["final"] and 0 <= row["final"]["modes"] <= 8 and "modes" in row["best"]
    assert os.path.exists(os.path.join(trial_dir(sweep_dir, trial), "metrics.jsonl"))
    assert os.listdir(os.path.join(trial_dir(sweep_dir, trial), "checkpoints"))
    assert "--config.on_nonfinite=stop" in open(log_path(sweep_dir, trial)).readline()  # sweep.fixed


def test_a_trial_that_cannot_run_fails_with_one_line_error(mixed):
    _, _, sweep_dir, rows = mixed
    row = rows[1]
    assert row["status"] == "failed" and row["steps"] == 0 and row["final"] == {}
    assert row["error"].startswith("unknown dataset 'ring_3d'") and "\n" not in row["error"]
    assert "ganjax: error: unknown dataset" in open(log_path(sweep_dir, BAD)).read()


def test_an_absurd_learning_rate_diverges(mixed):
    row = mixed[3][2]
    assert row["status"] == "diverged"
    assert row["error"].startswith("non-finite ") and " at step " in row["error"]


def test_rerun_skips_finished_trials_and_retries_failed_ones(mixed, env):
    sweep, trials, sweep_dir, _ = mixed
    metrics = os.path.join(trial_dir(sweep_dir, trials[0]), "metrics.jsonl")
    before = open(metrics).read()
    rows = run_process_sweep(sweep, trials, sweep_dir, workers=2, env=env)
    assert [r["status"] for r in rows] == ["ok", "failed", "diverged"]
    ids = [r["trial"] for r in read_jsonl(os.path.join(sweep_dir, RESULTS))]
    assert sorted(ids) == sorted([t.id for t in trials] + [BAD.id])
    assert [attempts(sweep_dir, t) for t in trials] == [1, 2, 1]
    assert open(metrics).read() == before


def test_a_workdir_held_by_a_live_process_is_waited_for_then_reported(tmp_path, env, caplog):
    sweep = ring_sweep()
    trial = spec.expand(sweep)[0]
    workdir = trial_dir(str(tmp_path), trial)
    os.makedirs(workdir)
    holder = subprocess.Popen(["sleep", "60"])
    logger = logging.getLogger("ganjax")  # may not propagate (ganjax.cli.setup_logging)
    logger.addHandler(caplog.handler)
    try:
        with open(os.path.join(workdir, ".lock"), "w") as f:
            f.write(str(holder.pid))
        start = time.time()
        row, = run_process_sweep(sweep, [trial], str(tmp_path), workers=1, env=env, busy_wait=1.0)
    finally:
        logger.removeHandler(caplog.handler)
        holder.kill()
        holder.wait()
    assert time.time() - start >= 1.0
    assert f"in use by process {holder.pid}" in caplog.text
    assert row["status"] == "failed" and f"is in use by process {holder.pid}" in row["error"]


def test_classify_exit_statuses():
    diverged = "I step 5\nganjax: error: non-finite d_loss at step 3; stopped without checkpointing it\n"
    assert classify(0, "") == ("ok", None)
    assert classify(3, diverged) == ("diverged", "non-finite d_loss at step 3; stopped without checkpointing it")
    assert classify(2, diverged) == ("failed", "non-finite d_loss at step 3; stopped without checkpointing it")
    assert classify(2, "ganjax: error: unknown loss 'x'\n") == ("failed", "unknown loss 'x'")
    assert classify(1, "Traceback (most recent call last):\n  ...\nValueError: boom\n") == ("failed",
                                                                                            "ValueError: boom")
    assert classify(-9, "I step 5/20\n") == ("failed", "killed by signal 9 (SIGKILL)")
    assert classify(4, "") == ("failed", "exit status 4")
    for interrupted in (143, 130, -15):
        assert classify(interrupted, "ganjax: error: stopped by signal 15 at step 7") == (None, None)


def start_sweep(config: str, sweep_dir: str, env: dict) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "ganjax.sweep", f"--config={config}", f"--workdir={sweep_dir}"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_until(condition, timeout: float = 120.0) -> None:
    deadline = time.time() + timeout
    while not condition():
        assert time.time() < deadline, "timed out"
        time.sleep(0.1)


def training(workdir: str) -> bool:
    """Whether the run in ``workdir`` has logged a train row (its signal handlers are installed)."""
    return any("d_loss" in r for r in read_jsonl(os.path.join(workdir, "metrics.jsonl")))


def write_sweep_file(tmp_path, steps: tuple) -> tuple[str, list[spec.Trial]]:
    path = tmp_path / "sweep_config.py"
    path.write_text(textwrap.dedent(LONG_SWEEP.format(steps=steps)))
    return str(path), spec.expand(spec.load_sweep_file(str(path)))


def test_sigterm_stops_running_trials_with_a_checkpoint_and_no_row(tmp_path, env):
    config, (trial,) = write_sweep_file(tmp_path, (1000,))
    sweep_dir = str(tmp_path / "sweep")
    run = start_sweep(config, sweep_dir, env)
    wait_until(lambda: training(trial_dir(sweep_dir, trial)))
    run.send_signal(signal.SIGTERM)
    _, stderr = run.communicate(timeout=120)
    assert run.returncode == 128 + signal.SIGTERM, stderr
    assert "ganjax: error: sweep stopped by signal 15: 0 trials finished in this run, 1 interrupted" in stderr
    assert read_results(sweep_dir) == {}
    assert os.listdir(os.path.join(trial_dir(sweep_dir, trial), "checkpoints"))
    assert "stopped by signal 15 at step" in open(log_path(sweep_dir, trial)).read()


def test_kill_9_then_restart_finishes_without_rerunning_finished_trials(tmp_path, env):
    config, (short, long) = write_sweep_file(tmp_path, (20, 1000))
    sweep_dir = str(tmp_path / "sweep")
    first = start_sweep(config, sweep_dir, env)
    wait_until(lambda: short.id in read_results(sweep_dir) and training(trial_dir(sweep_dir, long)))
    metrics = open(os.path.join(trial_dir(sweep_dir, short), "metrics.jsonl")).read()
    first.kill()  # SIGKILL the sweep alone: its trial gets SIGTERM from the kernel and checkpoints
    first.communicate()

    again = start_sweep(config, sweep_dir, env)
    out, err = again.communicate(timeout=300)
    assert again.returncode == 0, err
    assert "2 trials: 2 ok, 0 diverged, 0 failed" in out
    rows = read_jsonl(os.path.join(sweep_dir, RESULTS))
    assert sorted(r["trial"] for r in rows) == [short.id, long.id]
    assert all(r["status"] == "ok" for r in rows) and rows[-1]["steps"] == 1000
    assert attempts(sweep_dir, short) == 1
    assert open(os.path.join(trial_dir(sweep_dir, short), "metrics.jsonl")).read() == metrics
    assert attempts(sweep_dir, long) == 2 and "resuming from step" in open(log_path(sweep_dir, long)).read()
    assert all(lock_holder(trial_dir(sweep_dir, t)) is None for t in (short, long))
    with open(os.path.join(sweep_dir, "sweep.json")) as f:
        assert len(json.load(f)["trials"]) == 2
