r"""Process mode: one ``python -m ganjax.main`` per trial, ``workers`` at once.

Each trial trains in its own ordinary workdir, ``<sweep_dir>/trials/<id>/``,
with the command::

    python -m ganjax.main --config=<sweep.base> --workdir=<sweep_dir>/trials/<id> \
        <--config.K=V for sweep.fixed> <--config.K=V for the trial's params>

and its stdout and stderr go to ``<sweep_dir>/trials/<id>.log`` (appended: each
attempt starts with a ``$ command`` line and ends with an ``# exit`` line).

When a trial's process ends its row is appended to ``results.jsonl`` at once:
exit 0 is ``ok``; the trainer's ``non-finite ... at step N`` error is
``diverged``; any other exit is ``failed`` with the error line. Trials whose
row is ``ok`` or ``diverged`` are skipped when the sweep runs again;
``failed`` ones are retried, and an unfinished trial (no row) reruns the same
command, which resumes from its checkpoints.

Interruption: SIGINT/SIGTERM to the sweep is forwarded to the running trials
as SIGTERM (they save a checkpoint and exit; a second signal is forwarded too,
and makes them give up waiting, as a second Ctrl-C does to ``ganjax.main``);
no row is written for them and :class:`SweepInterrupted` is raised once they
have exited. Trials run in their own sessions, so a terminal's Ctrl-C reaches
them only through the sweep (once). On Linux each trial also gets SIGTERM if
the sweep process dies (``kill -9``), so it checkpoints and exits instead of
training on unattended; a trial whose workdir is still locked by a live
process when the sweep starts again is waited for (up to ``busy_wait``
seconds, then run anyway, which fails with ``ganjax.main``'s clear "in use by
process N" error and is retried on the next run).
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import logging
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from typing import Any, Callable, Iterator, Mapping, Sequence

import ml_collections

import ganjax
from ganjax import storage
from ganjax.errors import GanjaxError, TrainingDiverged
from ganjax.sweep import results as results_lib
from ganjax.sweep import spec
from ganjax.sweep.run import FINISHED  # statuses never rerun (failed ones are retried)
from ganjax.workdir import lock_holder
from ganjax.writers import read_jsonl

log = logging.getLogger("ganjax")

POLL_SECONDS = 0.2
ERROR_PREFIX = "ganjax: error: "
# ganjax.main's exit status for TrainingDiverged; bad input exits 2.
DIVERGED_EXIT = TrainingDiverged.exit_status
# Exits of a trial stopped by a signal: ganjax.main's Interrupted (128 + signum), a second
# Ctrl-C (130), or the signal's default action before the trainer installed its handlers.
_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
INTERRUPTED_EXITS = frozenset({128 + s for s in _STOP_SIGNALS} | {-s for s in _STOP_SIGNALS})
_TAIL_BYTES = 64 * 1024
_MAX_ERROR_CHARS = 500


class SweepInterrupted(GanjaxError):
    """SIGINT/SIGTERM stopped the sweep; the running trials saved checkpoints and have no row."""

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.signum = signum  # ganjax.cli exits with 128 + signum


def trial_dir(sweep_dir: str, trial: spec.Trial) -> str:
    """``<sweep_dir>/trials/<id>``: the trial's ``ganjax.main`` workdir."""
    return storage.join(storage.absolute(sweep_dir), "trials", trial.id)


def log_path(sweep_dir: str, trial: spec.Trial) -> str:
    """``<sweep_dir>/trials/<id>.log``: the trial's stdout and stderr, all attempts.

    For an object-store sweep folder the log is written to a local copy
    (``$GANJAX_CACHE/sweep-logs/<bucket>/<path>/trials/<id>.log``, ``~/.cache/ganjax/…`` when
    ``$GANJAX_CACHE`` is itself a URL) and
    uploaded to ``<sweep_dir>/trials/<id>.log`` when the trial ends.
    """
    if storage.is_remote(sweep_dir):
        from ganjax.metrics.weights_file import local_cache_dir

        return os.path.join(local_cache_dir(), "sweep-logs", sweep_dir.split("://", 1)[1], "trials",
                            f"{trial.id}.log")
    return trial_dir(sweep_dir, trial) + ".log"


def trial_command(sweep: ml_collections.ConfigDict, trial: spec.Trial, workdir: str,
                  python: str = sys.executable) -> list[str]:
    """The ``ganjax.main`` command line of ``trial`` (``sweep.fixed``, then the trial's params)."""
    return [python, "-m", "ganjax.main", f"--config={sweep.base}", f"--workdir={workdir}",
            *spec.override_flags(dict(sweep.fixed)), *trial.overrides()]


def child_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """``env`` (default: this process's) with this ``ganjax`` importable first on PYTHONPATH."""
    out = dict(os.environ if env is None else env)
    root = os.path.dirname(os.path.dirname(os.path.abspath(ganjax.__file__)))
    out["PYTHONPATH"] = os.pathsep.join(p for p in (root, out.get("PYTHONPATH", "")) if p)
    return out


def _lines(output: str) -> list[str]:
    return [line.strip() for line in output.splitlines() if line.strip()]


def error_line(output: str) -> str | None:
    """The last ``ganjax: error:`` message of ``output`` (prefix dropped), else None."""
    ours = [line[len(ERROR_PREFIX):] for line in _lines(output) if line.startswith(ERROR_PREFIX)]
    return ours[-1][:_MAX_ERROR_CHARS] if ours else None


def describe_exit(returncode: int) -> str:
    """``exit status 3`` or ``killed by signal 9 (SIGKILL)``."""
    if returncode >= 0:
        return f"exit status {returncode}"
    try:
        name = signal.Signals(-returncode).name
    except ValueError:
        name = "unknown signal"
    return f"killed by signal {-returncode} ({name})"


def classify(returncode: int, output: str) -> tuple[str | None, str | None]:
    """``(status, error)`` of a trial process that ended; status ``None`` = interrupted (unfinished).

    Args:
      returncode: the process's exit status (negative: killed by that signal).
      output: what it printed (stderr, possibly mixed with stdout).

    Returns:
      ``("ok", None)``; ``("diverged", line)`` for the trainer's
      ``TrainingDiverged`` (exit 3, its ``non-finite ... at step N`` line);
      ``("failed", line)`` with the last ``ganjax: error:`` message, else the
      signal that killed it, else the last line printed (e.g. a traceback's);
      ``(None, None)`` for a trial stopped by SIGTERM/SIGINT.
    """
    if returncode == 0:
        return "ok", None
    if returncode in INTERRUPTED_EXITS:
        return None, None
    ours = error_line(output)
    if returncode == DIVERGED_EXIT:
        return "diverged", ours or describe_exit(returncode)
    if ours:
        return "failed", ours
    lines = _lines(output)
    if returncode < 0 or not lines:  # a kill (e.g. the OOM killer) or a silent crash
        return "failed", describe_exit(returncode)
    return "failed", lines[-1][:_MAX_ERROR_CHARS]


def last_step(rows: Sequence[Mapping[str, Any]]) -> int:
    """The largest ``step`` of a run's ``metrics.jsonl`` rows (0 if none)."""
    return max((int(r["step"]) for r in rows if "step" in r), default=0)


def result_row(trial: spec.Trial, workdir: str, status: str, error: str | None,
               wall_seconds: float) -> dict[str, Any]:
    """The ``results.jsonl`` row of a trial that ended, scored from its ``metrics.jsonl``."""
    rows = read_jsonl(storage.join(workdir, "metrics.jsonl"))
    final, best = results_lib.final_and_best(rows)
    return results_lib.make_row(trial, "process", status, last_step(rows), wall_seconds, final, best, error)


def _read_from(path: str, offset: int) -> str:
    """The last :data:`_TAIL_BYTES` of ``path`` after byte ``offset``."""
    try:
        with open(path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(max(offset, size - _TAIL_BYTES))
            return f.read().decode(errors="replace")
    except OSError:
        return ""


def _die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` asking Linux to SIGTERM the child when this process dies (None elsewhere)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up before the fork
    except (OSError, AttributeError):
        return None
    parent, pr_set_pdeathsig = os.getpid(), 1

    def preexec() -> None:
        prctl(pr_set_pdeathsig, int(signal.SIGTERM))
        if os.getppid() != parent:  # the parent died before prctl took effect
            os.kill(os.getpid(), signal.SIGTERM)

    return preexec


@dataclasses.dataclass
class _Running:
    """A trial process and what is needed to write its row."""

    trial: spec.Trial
    proc: subprocess.Popen
    started: float
    log_offset: int


@dataclasses.dataclass
class _Signals:
    """Stop signals received (set by the handler; acted on by the polling loop)."""

    received: list[int] = dataclasses.field(default_factory=list)
    forwarded: int = 0

    def __call__(self, signum: int, frame: Any) -> None:
        self.received.append(signum)


@contextlib.contextmanager
def _catch_signals(signals: _Signals) -> Iterator[None]:
    """Routes SIGINT/SIGTERM to ``signals`` (only possible in the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, signals) for s in _STOP_SIGNALS}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


class _ProcessSweep:
    """The polling loop: launches trials, reaps them, writes rows, forwards signals."""

    def __init__(self, sweep: ml_collections.ConfigDict, todo: list[spec.Trial], sweep_dir: str, workers: int,
                 python: str, env: Mapping[str, str] | None, busy_wait: float):
        self.sweep, self.sweep_dir, self.workers, self.python = sweep, sweep_dir, workers, python
        self.env, self.busy_wait = child_env(env), busy_wait
        self.queue = collections.deque(todo)
        self.total = len(todo)
        self.running: list[_Running] = []
        self.rows: dict[str, dict[str, Any]] = {}
        self.ended = 0
        self.busy_since: dict[str, float] = {}
        self.signals = _Signals()
        self.preexec = _die_with_parent()

    def run(self) -> dict[str, dict[str, Any]]:
        """Runs every queued trial (or stops on a signal); returns the new rows by trial id."""
        with _catch_signals(self.signals):
            try:
                while self.running or (self.queue and not self.signals.received):
                    self._forward_signals()
                    self._reap()
                    if not self.signals.received:
                        self._launch_ready()
                    time.sleep(POLL_SECONDS)
            finally:
                self._stop_all()  # only does something on an unexpected exception
        if self.signals.received:
            raise self._interrupted()
        return self.rows

    def _forward_signals(self) -> None:
        while self.signals.forwarded < len(self.signals.received):
            signum = self.signals.received[self.signals.forwarded]
            self.signals.forwarded += 1
            log.warning("sweep: received signal %d: %s %d running trials", signum,
                        "stopping (each saves a checkpoint)" if self.signals.forwarded == 1 else "again signalling",
                        len(self.running))
            for r in self.running:
                _signal(r.proc, signal.SIGTERM)

    def _launch_ready(self) -> None:
        for _ in range(len(self.queue)):
            if len(self.running) >= self.workers:
                return
            trial = self.queue.popleft()
            if self._held_elsewhere(trial):
                self.queue.append(trial)
            else:
                self._launch(trial)

    def _held_elsewhere(self, trial: spec.Trial) -> bool:
        """Whether ``trial``'s workdir is still locked by a live process (left by an earlier sweep)."""
        pid = lock_holder(trial_dir(self.sweep_dir, trial))
        if pid is None:
            return False
        if trial.id not in self.busy_since:
            self.busy_since[trial.id] = time.time()
            log.warning("trial %s: its workdir is in use by process %s (a trial of an earlier, killed sweep?); "
                        "waiting up to %.0fs for it to exit", trial.id, pid, self.busy_wait)
        first = self.busy_since[trial.id]
        return time.time() - first < self.busy_wait

    def _launch(self, trial: spec.Trial) -> None:
        workdir = trial_dir(self.sweep_dir, trial)
        storage.makedirs(storage.dirname(workdir))
        command = trial_command(self.sweep, trial, workdir, self.python)
        path = log_path(self.sweep_dir, trial)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "ab") as out:
            offset = out.tell()
            out.write(f"$ {shlex.join(command)}\n".encode())
            out.flush()
            started = time.time()
            try:
                proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                        env=self.env, start_new_session=True, preexec_fn=self.preexec)
            except OSError as e:
                self._record(trial, "failed", f"cannot start {command[0]}: {e}", workdir, 0.0)
                return
        self.running.append(_Running(trial, proc, started, offset))
        log.info("trial %s started (%d running, %d waiting): %s", trial.id, len(self.running), len(self.queue),
                 ", ".join(f"{k}={v}" for k, v in trial.params.items()))

    def _reap(self) -> None:
        for r in [r for r in self.running if r.proc.poll() is not None]:
            self.running.remove(r)
            self._finish(r)

    def _finish(self, r: _Running) -> None:
        wall = time.time() - r.started
        code = r.proc.returncode
        path = log_path(self.sweep_dir, r.trial)
        status, error = classify(code, _read_from(path, r.log_offset))
        with open(path, "a") as out:
            out.write(f"# {describe_exit(code)} after {wall:.1f}s\n")
        if storage.is_remote(self.sweep_dir):
            with open(path, "rb") as f:
                storage.write_bytes_atomic(trial_dir(self.sweep_dir, r.trial) + ".log", f.read())
        if status is None or (self.signals.received and code != 0):
            self.ended += 1
            log.warning("trial %s interrupted after %.1fs (%s); it resumes from its checkpoint when the sweep "
                        "runs again", r.trial.id, wall, describe_exit(code))
            return
        self._record(r.trial, status, error, trial_dir(self.sweep_dir, r.trial), wall)

    def _record(self, trial: spec.Trial, status: str, error: str | None, workdir: str, wall: float) -> None:
        row = result_row(trial, workdir, status, error, wall)
        results_lib.append_result(self.sweep_dir, row)
        self.rows[trial.id] = row
        self.ended += 1
        log.info("trial %s %s in %.1fs (%d/%d)%s", trial.id, status, wall, self.ended, self.total,
                 f": {error}" if error else "")

    def _stop_all(self) -> None:
        """SIGTERM every trial still running and wait for it (no rows: they are unfinished)."""
        for r in self.running:
            _signal(r.proc, signal.SIGTERM)
        for r in self.running:
            r.proc.wait()
        self.running.clear()

    def _interrupted(self) -> SweepInterrupted:
        signum = self.signals.received[0]
        unstarted = len(self.queue)
        return SweepInterrupted(
            f"sweep stopped by signal {signum}: {len(self.rows)} trials finished in this run, "
            f"{self.total - len(self.rows) - unstarted} interrupted (checkpoints saved), {unstarted} not started; "
            f"run the same command again to resume", signum)


def _signal(proc: subprocess.Popen, signum: int) -> None:
    try:
        proc.send_signal(signum)
    except ProcessLookupError:
        pass


def run_process_sweep(sweep: ml_collections.ConfigDict, trials: Sequence[spec.Trial], sweep_dir: str, workers: int,
                      python: str = sys.executable, env: Mapping[str, str] | None = None,
                      busy_wait: float = 300.0) -> list[dict[str, Any]]:
    """Runs each of ``trials`` as its own ``ganjax.main`` process, ``workers`` at once.

    Trials that already have an ``ok`` or ``diverged`` row in
    ``<sweep_dir>/results.jsonl`` are skipped; the others run (an unfinished
    one resumes from its checkpoints) and get a row appended as each ends.

    Args:
      sweep: the sweep ConfigDict (``base`` and ``fixed`` are used).
      trials: the trials to run (e.g. :func:`ganjax.sweep.spec.expand`'s).
      sweep_dir: the sweep folder; trials train in ``<sweep_dir>/trials/<id>``.
      workers: processes at once (>= 1).
      python: the interpreter that runs ``ganjax.main``.
      env: the trials' environment (default: this process's).
      busy_wait: seconds to wait for a live process that still holds a
        trial's workdir before running the trial anyway.

    Returns:
      The result rows of ``trials``, in order (a trial interrupted by a signal
      sent to it alone has no row).

    Raises:
      SweepInterrupted: SIGINT/SIGTERM arrived; running trials were stopped
        (their checkpoints saved) and have no row.
    """
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    storage.makedirs(sweep_dir)
    previous = results_lib.read_results(sweep_dir)
    todo = [t for t in trials if previous.get(t.id, {}).get("status") not in FINISHED]
    if len(todo) < len(trials):
        log.info("process sweep: %d of %d trials already finished (skipped)", len(trials) - len(todo), len(trials))
    rows = {**previous, **_ProcessSweep(sweep, todo, sweep_dir, workers, python, env, busy_wait).run()}
    return [rows[t.id] for t in trials if t.id in rows]


__all__ = ["run_process_sweep", "SweepInterrupted", "trial_dir", "log_path", "trial_command", "child_env",
           "classify", "error_line", "describe_exit", "result_row", "last_step"]
