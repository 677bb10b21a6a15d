"""Fault injection: kills at random points, damaged checkpoints, full or read-only disks, two processes.

Each test injects the fault for real (SIGKILL, truncated/random bytes,
RLIMIT_FSIZE, a read-only bind mount) and checks what ganjax promises in
docs/RELIABILITY.md.
"""

import functools
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from ganjax.errors import CheckpointError
from ganjax.trainer import train_and_evaluate
from ganjax.writers import append_jsonl, read_jsonl
from tests.conftest import ROOT, assert_trees_close, load_config, restore_checkpoint
from tests.conftest import wait_for as wait_for_condition

ENV = {**os.environ, "JAX_PLATFORMS": "cpu", "XLA_FLAGS": "", "PYTHONUNBUFFERED": "1"}
TRAIN = [sys.executable, "-m", "ganjax.main", "--config=configs/gaussian_1d.py", "--config.num_steps=120",
         "--config.checkpoint_every=3", "--config.log_every=5", "--config.sample_every=0",
         "--config.eval_every=0", "--config.keep_checkpoints=2"]


def tree_contents(folder: str) -> dict[str, bytes | None]:
    """Every file (its bytes) and folder (``None``) under ``folder``, keyed by path relative to it, so
    same-named files in two checkpoints cannot stand in for each other."""
    out: dict[str, bytes | None] = {}
    for d, dirs, fs in os.walk(folder):
        for name in dirs:
            out[os.path.relpath(os.path.join(d, name), folder)] = None
        for name in fs:
            with open(os.path.join(d, name), "rb") as f:
                out[os.path.relpath(os.path.join(d, name), folder)] = f.read()
    return out


def checkpoint_entries(workdir: str) -> list[str]:
    folder = os.path.join(workdir, "checkpoints")
    return os.listdir(folder) if os.path.isdir(folder) else []


wait_for = functools.partial(wait_for_condition, timeout=120.0, poll=0.002)


def test_kill_9_at_random_points_then_resume_equals_an_uninterrupted_run_bitwise(tmp_path):
    ref = str(tmp_path / "ref")
    r = subprocess.run(TRAIN + [f"--workdir={ref}"], cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr

    workdir = str(tmp_path / "killed")
    metrics = os.path.join(workdir, "metrics.jsonl")
    rng = random.Random(0)
    # Kill points: mid-checkpoint-write (a temporary Orbax folder exists), and
    # after a random number of logged rows plus a random delay.
    kill_points = ["mid_write", "rows", "mid_write", "rows", "rows"]
    resumed_from, kills = [], 0
    for point in kill_points:
        rows_before = len(read_jsonl(metrics))
        proc = subprocess.Popen(TRAIN + [f"--workdir={workdir}"], cwd=ROOT, env=ENV, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)
        # Wait until this process trains (a new metrics row), then for the kill point.
        assert wait_for(lambda: len(read_jsonl(metrics)) > rows_before or proc.poll() is not None)
        if point == "mid_write":
            done = max([int(e) for e in checkpoint_entries(workdir) if e.isdigit()], default=0)
            writing = lambda: any("tmp" in e and int(e.split(".")[0]) > done  # noqa: E731
                                  for e in checkpoint_entries(workdir))
            assert wait_for(lambda: writing() or proc.poll() is not None)
        else:
            target = rows_before + rng.randint(2, 5)
            assert wait_for(lambda: len(read_jsonl(metrics)) >= target or proc.poll() is not None)
            time.sleep(rng.uniform(0.0, 0.05))
        if proc.poll() is not None:
            break  # the run finished before this kill point
        proc.kill()
        kills += 1
        _, err = proc.communicate(timeout=60)
        resumed_from += [int(line.split("resuming from step ")[1].split()[0])
                         for line in err.splitlines() if "resuming from step" in line]
        # Every line of metrics.jsonl is complete JSON after a kill.
        for line in open(metrics):
            json.loads(line)
    r = subprocess.run(TRAIN + [f"--workdir={workdir}"], cwd=ROOT, env=ENV, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    resumed_from += [int(line.split("resuming from step ")[1].split()[0])
                     for line in r.stderr.splitlines() if "resuming from step" in line]
    # A kill during the very first checkpoint write leaves nothing to resume from: a fresh start.
    assert kills >= 4 and len(resumed_from) >= kills - 1, (kills, resumed_from)
    assert resumed_from == sorted(resumed_from), resumed_from
    assert_trees_close(restore_checkpoint(ref, 120), restore_checkpoint(workdir, 120))
    logged = [row["step"] for row in read_jsonl(metrics) if "d_loss" in row]
    assert logged == list(range(5, 121, 5)), "each logged step appears once, in order"


@pytest.mark.parametrize("damage", ["truncated", "random_bytes", "missing_commit_success"])
def test_damaged_newest_checkpoint_falls_back_with_a_warning(tmp_path, damage, caplog):
    c = load_config("gaussian_1d", "quick")
    c.keep_checkpoints = 3
    workdir = str(tmp_path / "w")
    train_and_evaluate(c, workdir)  # checkpoints at 20 and 40
    step_dir = os.path.join(workdir, "checkpoints", "40")
    rng = np.random.default_rng(0)
    if damage == "missing_commit_success":
        os.remove(os.path.join(step_dir, "commit_success.txt"))
    else:
        for dirpath, _, files in os.walk(os.path.join(step_dir, "state")):
            for f in files:
                path = os.path.join(dirpath, f)
                data = open(path, "rb").read()
                new = data[:len(data) // 3] if damage == "truncated" else rng.bytes(len(data))
                open(path, "wb").write(new)
    c.num_steps = 60
    with caplog.at_level("WARNING", logger="ganjax"):
        final = train_and_evaluate(c, workdir)
    assert int(final.step) == 60
    assert "skipping unreadable checkpoint at step 40" in caplog.text
    assert "restored step 20 after skipping damaged checkpoints [40]" in caplog.text
    assert os.listdir(os.path.join(workdir, "damaged_checkpoints"))[0].startswith("40-")


def test_no_valid_checkpoint_is_an_error_and_results_are_kept(tmp_path):
    c = load_config("gaussian_1d", "quick")
    workdir = str(tmp_path / "w")
    train_and_evaluate(c, workdir)
    for step in ("20", "40"):
        os.remove(os.path.join(workdir, "checkpoints", step, "commit_success.txt"))
        shutil.rmtree(os.path.join(workdir, "checkpoints", step, "meta"))
    before = open(os.path.join(workdir, "metrics.jsonl")).read()
    with pytest.raises(CheckpointError, match="none of the checkpoints .* could be read"):
        train_and_evaluate(c, workdir)
    assert open(os.path.join(workdir, "metrics.jsonl")).read() == before


def test_a_second_live_process_on_the_workdir_is_refused(tmp_path):
    workdir = str(tmp_path / "w")
    long_run = [sys.executable, "-m", "ganjax.main", "--config=configs/gaussian_1d.py", f"--workdir={workdir}",
                "--config.num_steps=10000000", "--config.checkpoint_every=0"]
    first = subprocess.Popen(long_run, cwd=ROOT, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert wait_for(lambda: os.path.exists(os.path.join(workdir, "metrics.jsonl")), poll=0.1)
        second = subprocess.run(long_run, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=120)
        assert second.returncode == 2
        assert f"is in use by process {first.pid}" in second.stderr and "Traceback" not in second.stderr
    finally:
        first.send_signal(signal.SIGTERM)
        first.wait(timeout=60)
    assert first.returncode == 128 + signal.SIGTERM


def test_reader_skips_and_reports_a_damaged_last_line(tmp_path, caplog):
    path = str(tmp_path / "metrics.jsonl")
    append_jsonl(path, {"step": 1, "d_loss": 0.5})
    append_jsonl(path, {"step": 2, "d_loss": float("nan")})
    with open(path, "a") as f:
        f.write('{"step": 3, "d_lo')  # what a torn write would leave
    with caplog.at_level("WARNING", logger="ganjax"):
        rows = read_jsonl(path)
    assert [r["step"] for r in rows] == [1, 2] and rows[1]["d_loss"] == "nan"
    assert "skipping damaged line 3" in caplog.text


def _with_file_size_limit(limit: int, argv: list[str]) -> list[str]:
    """``argv`` run with RLIMIT_FSIZE = ``limit`` bytes (SIGXFSZ ignored, so writes fail with EFBIG)."""
    setup = ("import os, resource, signal, sys; signal.signal(signal.SIGXFSZ, signal.SIG_IGN); "
             f"resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit})); os.execv(sys.argv[1], sys.argv[1:])")
    return [sys.executable, "-c", setup, *argv]


def test_disk_full_while_checkpointing_is_a_clear_error_and_the_previous_checkpoint_stays_valid(tmp_path):
    workdir = str(tmp_path / "w")
    base = [sys.executable, "-m", "ganjax.main", "--config=configs/gaussian_1d.py:quick", f"--workdir={workdir}",
            "--config.sample_every=0", "--config.eval_every=0"]
    r = subprocess.run(base, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    # Files may not grow beyond 60 kB: metrics rows fit, checkpoint data files do not (EFBIG, like ENOSPC).
    r = subprocess.run(_with_file_size_limit(60_000, base + ["--config.num_steps=60"]), cwd=ROOT, env=ENV,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr, r.stderr
    assert ("ganjax: error: could not write a checkpoint to" in r.stderr and "File too large" in r.stderr
            and "the checkpoints at steps [20, 40] are intact" in r.stderr), r.stderr
    state = restore_checkpoint(workdir, 40)
    assert int(state.step) == 40
    r = subprocess.run(base + ["--config.num_steps=60"], cwd=ROOT, env=ENV, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0 and "resuming from step 40" in r.stderr, r.stderr


def _read_only_mount_works() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "-rm", "sh", "-c", "mount --bind -o ro / / 2>/dev/null || "
                            "mount -o remount,bind,ro / /"], capture_output=True)
    return probe.returncode == 0


@pytest.mark.skipif(not _read_only_mount_works(), reason="needs unshare and a bind mount (user namespaces)")
def test_read_only_workdir_is_a_clear_error_and_nothing_changes(tmp_path):
    workdir = str(tmp_path / "w")
    base = [sys.executable, "-m", "ganjax.main", "--config=configs/gaussian_1d.py:quick", f"--workdir={workdir}"]
    assert subprocess.run(base, cwd=ROOT, env=ENV, capture_output=True, timeout=300).returncode == 0
    files = tree_contents(workdir)
    script = (f"mount --bind {workdir} {workdir} && mount -o remount,bind,ro {workdir} && "
              f"exec {' '.join(base)} --config.num_steps=60")
    r = subprocess.run(["unshare", "-rm", "sh", "-c", script], cwd=ROOT, env=ENV, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    assert f"cannot write to workdir {workdir}: Read-only file system" in r.stderr, r.stderr
    assert "the checkpoints at steps [20, 40] are intact" in r.stderr
    assert tree_contents(workdir) == files


def test_kill_9_between_step_checkpoints_loses_at_most_checkpoint_every_secs(tmp_path):
    """With no step checkpoint before the end (``checkpoint_every=0``), ``checkpoint_every_secs=1`` still
    writes checkpoints while the run trains: after ``kill -9`` the rerun resumes from the newest one (not
    from step 0), and reaches the end of the (shortened) run."""
    long_run = [sys.executable, "-m", "ganjax.main", "--config=configs/gaussian_1d.py", "--config.num_steps=1000000",
                "--config.checkpoint_every=0", "--config.checkpoint_every_secs=1", "--config.log_every=100",
                "--config.sample_every=0", "--config.eval_every=0"]
    workdir = str(tmp_path / "w")
    committed = lambda: sorted(int(e) for e in checkpoint_entries(workdir) if e.isdigit())  # noqa: E731
    proc = subprocess.Popen(long_run + [f"--workdir={workdir}"], cwd=ROOT, env=ENV, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert wait_for(lambda: len(committed()) >= 2 or proc.poll() is not None, timeout=180)
        assert proc.poll() is None, proc.communicate()[1]
    finally:
        proc.kill()
        proc.communicate(timeout=60)
    newest = committed()[-1]
    assert newest > 0
    r = subprocess.run(long_run[:4] + [f"--config.num_steps={newest + 50}"] + long_run[5:] + [f"--workdir={workdir}"],
                       cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert f"resuming from step {newest}" in r.stderr, r.stderr
    assert committed()[-1] == newest + 50
