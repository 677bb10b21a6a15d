"""Multi-process training for real: 2 CPU processes x 2 devices joined by jax.distributed.

Each worker is ``python -m ganjax.main`` with ``GANJAX_DISTRIBUTED=1`` and
JAX's coordinator variables, so processes talk over a local port and run
their cross-process collectives with gloo (JAX's CPU default). The results
are compared with one-process runs in this (8-device) test process.
"""

import os
import signal
import socket
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from ganjax import config as config_lib
from ganjax import distributed
from ganjax.data.batches import BatchStream
from ganjax.errors import ConfigError
from ganjax.parallel import make_runner
from ganjax.train import init_state
from ganjax.trainer import train_and_evaluate
from ganjax.writers import read_jsonl
from tests.conftest import ROOT, load_config, override, restore_checkpoint, wait_for
from tests.test_data import write_idx
from tests.test_parallel import assert_close


# Plain SGD: Adam would turn float32 summation-order differences of tiny
# gradients into learning-rate-sized ones (see tests/test_parallel.py).
SGD = {f"{o}.{k}": v for o in ("optimizer_g", "optimizer_d") for k, v in (("name", "sgd"), ("learning_rate", 0.05),
                                                                           ("b1", 0.0))}
RING = ("ring_2d", "quick", {**SGD, "parallel": "shard_map"})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def flags(overrides: dict) -> list[str]:
    return [f"--config.{k}={v}" for k, v in overrides.items()]


def config(name: str, variant: str, overrides: dict):
    """The config the workers build from ``--config=configs/NAME.py:VARIANT`` plus ``overrides``."""
    return override(load_config(name, variant), overrides)


class Job:
    """``num_processes`` workers of one multi-process run; their output goes to files (no pipe can fill)."""

    def __init__(self, tmp_path, spec, workdir: str, extra: dict | None = None, num_processes: int = 2,
                 devices: int = 2):
        name, variant, overrides = spec
        port = free_port()
        argv = [sys.executable, "-m", "ganjax.main", f"--config=configs/{name}.py:{variant}", f"--workdir={workdir}",
                *flags({**overrides, **(extra or {})})]
        self.logs = [str(tmp_path / f"{os.path.basename(workdir)}-{time.time_ns()}-{i}.log")
                     for i in range(num_processes)]
        self.procs = []
        for i, log in enumerate(self.logs):
            env = {**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONUNBUFFERED": "1",
                   "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}", "GANJAX_DISTRIBUTED": "1",
                   "JAX_COORDINATOR_ADDRESS": f"127.0.0.1:{port}", "JAX_NUM_PROCESSES": str(num_processes),
                   "JAX_PROCESS_ID": str(i)}
            with open(log, "w") as out:
                self.procs.append(subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT))

    def output(self, i: int) -> str:
        return open(self.logs[i]).read()

    def wait(self, timeout: float = 180) -> list[int]:
        """Exit codes of all workers; kills them all and shows their output if one hangs."""
        deadline = time.time() + timeout
        try:
            return [p.wait(timeout=max(1.0, deadline - time.time())) for p in self.procs]
        except subprocess.TimeoutExpired:
            for p in self.procs:
                p.kill()
            for p in self.procs:
                p.wait()
            raise AssertionError("a worker hung:\n" + "\n".join(f"--- process {i}:\n{self.output(i)[-3000:]}"
                                                                 for i in range(len(self.procs))))

    def check(self, codes: list[int], expected: int = 0) -> None:
        assert codes == [expected] * len(codes), "\n".join(f"--- process {i} (exit {c}):\n{self.output(i)[-3000:]}"
                                                           for i, c in enumerate(codes))


def runner_steps(c, num_devices: int, steps: int, images=None):
    """``steps`` train steps of ``c`` on this process's first ``num_devices`` devices (1: ``parallel='none'``)."""
    from ganjax.data import Dataset

    dataset = Dataset("arrays", images.shape[1:], images=images) if images is not None else None
    dataset, gan = config_lib.build(c, dataset)
    runner = make_runner(gan, "shard_map" if num_devices > 1 else "none", c.batch_size, jax.devices()[:num_devices])
    stream = BatchStream(images, c.seed, c.batch_size) if images is not None else None
    state = runner.put(init_state(gan, c.seed, c.penalty_weight))
    for _ in range(steps):
        state, _ = runner.step(state, None if stream is None else np.stack([stream.next()]))
    return runner.get(state)


def params(state):
    return state.g_params, state.d_params, state.ema_params


def assert_only_process_0_wrote(job: Job, workdir: str, logged: list[int]) -> None:
    rows = read_jsonl(os.path.join(workdir, "metrics.jsonl"))
    assert [r["step"] for r in rows if "d_loss" in r] == logged, "each row once: one writer"
    assert len([f for f in os.listdir(workdir) if f.startswith("events.out.tfevents")]) == 1
    assert {"config.json", "loss_curve.png", "checkpoints"} <= set(os.listdir(workdir))
    assert not os.path.exists(os.path.join(workdir, ".lock")), "process 0 released the lock"
    assert "done:" in job.output(0) and "step 20/20" in job.output(0)
    assert " I " not in job.output(1), "process 1 logs warnings and errors only"


def test_two_processes_equal_one_process_on_four_devices_and_a_single_device(tmp_path):
    """ring_2d:quick nets, toy data sampled in the step; 20 steps with an evaluation (process 0 only)."""
    workdir = str(tmp_path / "mh")
    job = Job(tmp_path, RING, workdir)
    job.check(job.wait())
    two = restore_checkpoint(workdir, 20)
    c = config(*RING)
    assert_close(params(two), params(runner_steps(c, 4, 20)))
    c.parallel = "none"  # build() reads it (BatchNorm synchronisation)
    assert_close(params(two), params(runner_steps(c, 1, 20)))
    assert_only_process_0_wrote(job, workdir, [5, 10, 15, 20])
    evals = [r["generator"] for r in read_jsonl(os.path.join(workdir, "metrics.jsonl")) if r.get("kind") == "eval"]
    assert evals == ["raw", "ema"]
    assert os.listdir(os.path.join(workdir, "samples")) == ["step_20.png"]


def tiny_image_job(tmp_path):
    """A tiny MLP GAN on 64 random 28x28 images (an IDX folder): 6 steps of batch 16 cross an epoch."""
    images = np.random.default_rng(0).integers(0, 256, (64, 28, 28), dtype=np.uint8)
    folder = tmp_path / "idx"
    folder.mkdir()
    write_idx(folder / "train-images-idx3-ubyte", images)
    write_idx(folder / "train-labels-idx1-ubyte", np.zeros(64))
    overrides = {**SGD, "parallel": "shard_map", "dataset": f"idx:{folder}", "batch_size": 16, "num_steps": 6,
                 "model.g.hidden": (32,), "model.d.hidden": (32,), "model.d.dropout": 0.0,
                 "checkpoint_every": 3, "log_every": 3, "sample_every": 0, "eval_every": 0}
    return ("fashion_mnist_mlp", "quick", overrides), images[..., None]


@pytest.mark.slow
@pytest.mark.parametrize("pipeline", [{}, {"data.on_device": True, "data.prefetch": 2},
                                      {"data.on_device": True, "data.prefetch": 0}])
def test_two_processes_read_their_own_image_rows_and_equal_one_process(tmp_path, pipeline):
    """From scratch against 4 devices and 1 (the fast sibling: the SIGTERM test on the same images). With
    ``data.on_device`` each process places the images on its devices and gathers its own rows there."""
    spec, images = tiny_image_job(tmp_path)
    workdir = str(tmp_path / "mh")
    job = Job(tmp_path, spec, workdir, extra=pipeline)
    job.check(job.wait())
    two = restore_checkpoint(workdir, 6)
    c = config(*spec)
    assert_close(params(two), params(runner_steps(c, 4, 6, images)))
    c.parallel = "none"
    assert_close(params(two), params(runner_steps(c, 1, 6, images)))
    assert [r["step"] for r in read_jsonl(os.path.join(workdir, "metrics.jsonl"))] == [3, 6]


LONG = {"num_steps": 1_000_000, "log_every": 10, "checkpoint_every": 0, "eval_every": 0, "sample_every": 0}


def _stop_with_sigterm(tmp_path, spec, to_processes: tuple[int, ...]) -> tuple[str, int]:
    """Starts a long 2-process run, SIGTERMs ``to_processes`` once it trains; returns (workdir, checkpoint step)."""
    workdir = str(tmp_path / "mh")
    job = Job(tmp_path, spec, workdir, LONG)
    metrics = os.path.join(workdir, "metrics.jsonl")
    assert wait_for(lambda: len(read_jsonl(metrics)) >= 2 or any(p.poll() is not None for p in job.procs),
                    timeout=120, poll=0.1)
    for i in to_processes:
        job.procs[i].send_signal(signal.SIGTERM)
    job.check(job.wait(), expected=128 + signal.SIGTERM)
    steps = sorted(int(s) for s in os.listdir(os.path.join(workdir, "checkpoints")) if s.isdigit())
    assert len(steps) == 1, steps
    for i in range(2):
        assert f"stopped by signal 15 at step {steps[0]}" in job.output(i), job.output(i)[-2000:]
    return workdir, steps[0]


def test_sigterm_to_both_processes_checkpoints_the_same_step_and_the_run_resumes(tmp_path):
    """Image rows read per process, stopped at a step both agree on; the 2-process checkpoint (with its data
    position) resumes on one 8-device process and equals an uninterrupted single-device run."""
    spec, images = tiny_image_job(tmp_path)
    workdir, stopped = _stop_with_sigterm(tmp_path, spec, (0, 1))
    c = config(*spec)
    for key, value in {**LONG, "num_steps": stopped + 5}.items():
        c[key] = value
    resumed = train_and_evaluate(c, workdir)
    assert int(resumed.step) == stopped + 5
    assert_close(params(resumed), params(runner_steps(c, 1, stopped + 5, images)))


@pytest.mark.slow
def test_sigterm_to_one_process_stops_both_at_one_step_and_two_processes_resume(tmp_path):
    workdir, stopped = _stop_with_sigterm(tmp_path, RING, (1,))
    job = Job(tmp_path, RING, workdir, {**LONG, "num_steps": stopped + 5})
    job.check(job.wait())
    assert f"resuming from step {stopped}" in job.output(0)
    c = config(*RING)
    assert_close(params(restore_checkpoint(workdir, stopped + 5)), params(runner_steps(c, 1, stopped + 5)))


def test_pmap_across_processes_is_refused_with_advice(tmp_path):
    job = Job(tmp_path, ("ring_2d", "quick", {"parallel": "pmap"}), str(tmp_path / "mh"))
    job.check(job.wait(), expected=2)
    for i in range(2):
        assert ("parallel='pmap' runs on one process's devices only, but this job has 2 processes"
                in job.output(i)), job.output(i)[-2000:]
        assert "Traceback" not in job.output(i)
    assert not os.path.exists(tmp_path / "mh" / "config.json")


# In-process checks of the pieces (no second process needed).

@pytest.mark.parametrize("env,config_value,expected", [("", "none", "none"), ("", "auto", "auto"),
                                                        ("1", "none", "auto"), ("0", "auto", "none"),
                                                        ("AUTO", "none", "auto")])
def test_requested_mode_environment_overrides_config(monkeypatch, env, config_value, expected):
    monkeypatch.setenv(distributed.ENV_VAR, env)
    assert distributed.requested_mode(config_value) == expected


def test_unknown_distributed_values_are_config_errors(monkeypatch):
    c = load_config("ring_2d", "quick")
    c.distributed = "yes"
    with pytest.raises(ConfigError, match="unknown distributed mode 'yes'; valid choices: auto, none"):
        config_lib.validate(c)
    c.distributed = "none"
    monkeypatch.setenv(distributed.ENV_VAR, "maybe")
    with pytest.raises(ConfigError, match=r"unknown \$GANJAX_DISTRIBUTED value 'maybe'; valid choices: 0, 1, auto"):
        config_lib.validate(c)


def test_per_process_rows_reassemble_the_global_batches():
    images = np.arange(30 * 2, dtype=np.uint8).reshape(30, 2)
    whole = BatchStream(images, 3, 8)
    halves = [BatchStream(images, 3, 8, rows=slice(4 * p, 4 * (p + 1))) for p in range(2)]
    for _ in range(7):  # 3 batches per epoch: crosses two epoch boundaries
        np.testing.assert_array_equal(whole.next(), np.concatenate([h.next() for h in halves]))
    assert distributed.local_rows(jax.devices()[:4], 16) == slice(0, 16)  # one process holds every row
