"""Multi-device training on XLA:CPU runs to the end (issue 16, item 3).

``parallel='shard_map'`` over four fake CPU devices used to abort
after a few dozen steps with ``rendezvous.cc: Termination timeout for all
reduce … Expected 4 threads to join the rendezvous, but only 3 of them
arrived``: the toy step takes no host input, so the loop dispatched steps
without ever waiting, and XLA:CPU's launches of hundreds of queued
multi-device steps deadlocked (see :func:`ganjax.parallel.max_in_flight`).
The run happens in a subprocess because that abort kills the process; the
collective timeouts are shortened so the old code fails within seconds of the deadlock, not after 60.
"""

import os
import subprocess
import sys

STEPS = 300  # the old code deadlocked well before step 200 on every try


def test_shard_map_toy_run_on_four_cpu_devices_reaches_its_last_step(tmp_path, repo_root):
    env = dict(os.environ, JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="2",
               XLA_FLAGS="--xla_force_host_platform_device_count=4 "
                         "--xla_cpu_collective_call_warn_stuck_timeout_seconds=3 "
                         "--xla_cpu_collective_call_terminate_timeout_seconds=10")
    workdir = tmp_path / "run"
    cmd = [sys.executable, "-m", "ganjax.main", "--config=configs/ring_2d.py:quick",
           f"--config.num_steps={STEPS}", "--config.batch_size=256", "--config.parallel=shard_map",
           f"--config.log_every={STEPS}", f"--config.checkpoint_every={STEPS}", f"--config.sample_every={STEPS}",
           "--config.eval_every=0", f"--workdir={workdir}"]
    proc = subprocess.run(cmd, cwd=repo_root, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (workdir / "checkpoints" / str(STEPS)).is_dir()


def test_only_several_cpu_devices_bound_the_steps_in_flight():
    import jax

    from ganjax.parallel import CPU_MAX_IN_FLIGHT, max_in_flight

    assert max_in_flight(jax.devices()[:4]) == CPU_MAX_IN_FLIGHT
    assert max_in_flight(jax.devices()[:1]) is None


def test_bounded_waits_for_all_but_the_last_limit_calls():
    from ganjax.parallel import bounded

    class Output:  # a stand-in for a device array: records when the caller waits for it
        def __init__(self, i, log):
            self.i, self.log = i, log

        def block_until_ready(self):
            self.log.append(self.i)
            return self

    waited: list[int] = []
    step = bounded(lambda i: (None, Output(i, waited)), 2)
    for i in range(5):
        step(i)
        assert waited == list(range(max(0, i - 1)))  # after call i, calls 0 .. i-2 are finished
    unbounded = lambda i: (None, i)  # noqa: E731
    assert bounded(unbounded, None) is unbounded
