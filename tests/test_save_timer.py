"""``checkpoint_every_secs``: checkpoints by elapsed time as well as by step (ganjax.checkpoint.SaveTimer)."""

import itertools

import pytest

from ganjax import checkpoint as checkpoint_lib
from ganjax.checkpoint import Checkpointer, SaveTimer
from ganjax.errors import ConfigError
from ganjax.trainer import train_and_evaluate
from tests.conftest import load_config, override


def ticking_clock(monkeypatch, seconds_per_read: float = 1.0):
    """Replaces the timer's clock by one that advances ``seconds_per_read`` at every read."""
    ticks = itertools.count()
    monkeypatch.setattr(checkpoint_lib, "_now", lambda: seconds_per_read * next(ticks))


def test_timer_is_due_after_its_seconds_and_restarts_on_every_save():
    now = [0.0]
    timer = SaveTimer(10, clock=lambda: now[0])
    now[0] = 9.9
    assert not timer.due(at_log_row=True)
    now[0] = 10.0
    assert timer.due(at_log_row=False)  # one process: any call boundary
    timer.saved()
    now[0] = 19.0
    assert not timer.due(at_log_row=True)
    now[0] = 20.5
    assert timer.due(at_log_row=True)
    off = SaveTimer(0, clock=lambda: now[0])
    now[0] = 1e9
    assert not off.due(at_log_row=True)


def small_gaussian(num_steps: int, **overrides):
    c = load_config("gaussian_1d")
    c.num_steps, c.log_every, c.checkpoint_every, c.sample_every, c.eval_every = num_steps, 1, 0, 0, 0
    c.keep_checkpoints = 10
    return override(c, overrides)


def test_trainer_saves_when_the_seconds_pass_between_step_checkpoints(tmp_path, monkeypatch):
    """With ``checkpoint_every = 0`` (only the final checkpoint) and a clock that advances 1 s per read,
    ``checkpoint_every_secs = 3.5`` saves at steps 4 and 8 (reads: start 0; steps 1-4 read 1-4, the save
    reads 5; steps 5-8 read 6-9, the save 10) and at the end; without it only the end is saved."""
    ticking_clock(monkeypatch)
    train_and_evaluate(small_gaussian(10, checkpoint_every_secs=3.5), str(tmp_path / "timed"))
    assert Checkpointer.existing_steps(str(tmp_path / "timed")) == [4, 8, 10]
    train_and_evaluate(small_gaussian(10), str(tmp_path / "steps_only"))
    assert Checkpointer.existing_steps(str(tmp_path / "steps_only")) == [10]


def test_a_timed_checkpoint_resumes_to_the_uninterrupted_run(tmp_path, monkeypatch):
    """A run cut at a time-based checkpoint (step 4, between step checkpoints) continues from it and ends
    bitwise where the uninterrupted run ends."""
    from tests.conftest import trees_equal

    ticking_clock(monkeypatch)
    full = train_and_evaluate(small_gaussian(10), str(tmp_path / "full"))
    workdir = str(tmp_path / "cut")
    train_and_evaluate(small_gaussian(6, checkpoint_every_secs=3.5), workdir)
    assert Checkpointer.existing_steps(workdir) == [4, 6]
    import shutil
    import os

    shutil.rmtree(os.path.join(workdir, "checkpoints", "6"))  # the kill came after the timed save at step 4
    resumed = train_and_evaluate(small_gaussian(10, checkpoint_every_secs=3.5), workdir)
    assert int(resumed.step) == 10
    assert trees_equal(full, resumed)


def test_vmapped_group_saves_by_time_at_its_call_boundaries(tmp_path, monkeypatch):
    from ganjax.sweep import spec
    from ganjax.sweep.vmapped import GroupRun

    ticking_clock(monkeypatch)
    saves = []
    original = Checkpointer.save
    monkeypatch.setattr(Checkpointer, "save", lambda self, step, *a: (saves.append(step), original(self, step, *a)))
    fixed = {"num_steps": 12, "log_every": 2, "checkpoint_every": 0, "eval_every": 0, "sample_every": 0,
             "keep_checkpoints": 10, "checkpoint_every_secs": 1.5}
    sweep = spec.sweep_config(base="configs/ring_2d.py:quick", axes=[], seeds=2, fixed=fixed)
    trials = spec.expand(sweep)
    group = GroupRun(trials, [spec.trial_config(sweep, t) for t in trials], str(tmp_path / "group"))
    assert group.k == 2
    assert [r["status"] for r in group.run()] == ["ok", "ok"]
    # Reads: start 0; the boundary at step 2 reads 1, step 4 reads 2 (2 >= 1.5: save, which reads 3); step 6
    # reads 4, step 8 reads 5 (5 - 3 >= 1.5: save, reads 6); step 10 reads 7; step 12 is the last (saved anyway).
    assert saves == [4, 8, 12]


@pytest.mark.parametrize("value", [-1, -0.5])
def test_a_bad_checkpoint_every_secs_is_refused_naming_it(value):
    from ganjax import config as config_lib

    with pytest.raises(ConfigError, match=r"checkpoint_every_secs must be a number of seconds >= 0 \(0 = off\), got"):
        config_lib.validate(small_gaussian(10, checkpoint_every_secs=value))


def test_checkpoint_every_secs_may_change_on_resume():
    from ganjax import resume

    assert resume.is_bookkeeping("checkpoint_every_secs")
    assert resume.changed_values({"num_steps": 10}, {"num_steps": 10, "checkpoint_every_secs": 0}) == {}


def test_in_a_multi_process_job_only_log_rows_decide_with_process_0s_answer(monkeypatch):
    """Processes' clocks differ, so with several processes the timer answers only at log rows (steps every
    process shares), and with process 0's verdict (``distributed.agree``, a broadcast)."""
    from ganjax import distributed

    monkeypatch.setattr(checkpoint_lib.jax, "process_count", lambda: 2)
    asked = []
    monkeypatch.setattr(distributed, "agree", lambda ok: (asked.append(ok), False)[1])  # process 0 says no
    now = [0.0]
    timer = SaveTimer(10, clock=lambda: now[0])
    now[0] = 50.0
    assert not timer.due(at_log_row=False) and asked == []  # off a log row: no collective, no save
    assert not timer.due(at_log_row=True) and asked == [True]  # this process's clock says yes; process 0's no
    monkeypatch.setattr(distributed, "agree", lambda ok: True)
    assert timer.due(at_log_row=True)
