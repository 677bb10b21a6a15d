"""Running a sweep: trials → results.jsonl → summary.md and plots.

:func:`run_sweep` validates the whole sweep (every trial's config) before it
writes anything, locks the sweep folder, skips trials that already have an
``ok`` or ``diverged`` row in ``results.jsonl`` (so a killed sweep, started
again, finishes without redoing them), runs the rest in ``vmap`` mode (one
stacked program per group, :mod:`ganjax.sweep.vmapped`) or ``process`` mode
(one ``ganjax.main`` per trial, :mod:`ganjax.sweep.process`), appends one row
per finished trial, and writes the summary (:mod:`ganjax.sweep.summary`).

Layout of a sweep folder::

    sweep.json            the sweep config and its trials (ids and params)
    results.jsonl         one row per finished trial
    summary.md, metric_vs_lr.png, best_of_k.png
    groups/<group>-<members>/   vmap mode: metrics.jsonl, checkpoints/
    trials/<id>/          process mode: an ordinary ganjax.main workdir
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from typing import Any

import ml_collections

from ganjax import config as config_lib
from ganjax import storage
from ganjax.errors import GanjaxError
from ganjax.trainer import Interrupted
from ganjax.sweep import results as results_lib
from ganjax.sweep import spec
from ganjax.sweep import workers as workers_lib
from ganjax.workdir import WorkdirLock, check_workdir_path

log = logging.getLogger("ganjax")

DEFAULT_METRIC = {"image": "fid", "mixture": "modes", "gaussian_1d": "ks"}
FINISHED = ("ok", "diverged")


def default_metric(sweep: ml_collections.ConfigDict) -> str:
    """``sweep.metric``, else the headline score of the base config's data kind."""
    if sweep.metric:
        return sweep.metric
    return DEFAULT_METRIC[config_lib.data_kind_of(spec.load_base(sweep).dataset)]


def base_params(sweep: ml_collections.ConfigDict) -> dict[str, Any]:
    """The base config's ``loss`` and ``penalty`` (for trials whose params do not set them)."""
    base = spec.load_base(sweep)
    return {"loss": base.loss, "penalty": base.penalty}


def _write_manifest(sweep: ml_collections.ConfigDict, trials: list[spec.Trial], sweep_dir: str) -> None:
    storage.write_text_atomic(storage.join(sweep_dir, "sweep.json"),
                              json.dumps(workers_lib.manifest_of(sweep, trials), indent=1))


def group_dir(sweep_dir: str, members: list[spec.Trial]) -> str:
    """``groups/<group>-<hash of member ids>``: a group run again with other members starts afresh."""
    digest = hashlib.sha1(",".join(t.id for t in members).encode()).hexdigest()[:6]
    return storage.join(sweep_dir, "groups", f"{members[0].group}-{digest}")


def run_vmapped(sweep: ml_collections.ConfigDict, trials: list[spec.Trial], sweep_dir: str,
                append: bool = True) -> list[dict[str, Any]]:
    """Trains each group of ``trials`` stacked; appends each trial's row as its group finishes
    (unless ``append`` is false); returns the rows.

    A group that cannot run (e.g. its data is missing) gives ``failed`` rows
    naming the error; the other groups go on. SIGTERM/SIGINT stops the running
    group at its next step with a checkpoint and raises ``Interrupted``
    (:class:`ganjax.trainer.Interrupted`); its trials get no row, so the same
    command resumes them.
    """
    from ganjax.sweep.vmapped import GroupRun

    groups = spec.groups(trials)
    written = []
    for n, members in enumerate(groups.values(), 1):
        configs = spec.trial_configs(sweep, members)
        start = time.time()
        folder = group_dir(sweep_dir, members)
        log.info("group %d/%d (%s): %d trials, %s", n, len(groups), os.path.basename(folder), len(members),
                 ", ".join(f"{k}={v}" for k, v in members[0].params.items()
                           if k not in spec.VMAP_KEYS) or "shared settings")
        try:
            rows = GroupRun(members, configs, folder,
                            data_parallel=spec.data_parallel_of(sweep)).run()
        except Interrupted:
            raise  # SIGTERM/SIGINT: the group saved a checkpoint; its trials are unfinished, not failed
        except GanjaxError as e:
            rows = [results_lib.make_row(t, "vmap", "failed", 0, time.time() - start, {}, {}, str(e))
                    for t in members]
        for row in rows:
            if append:
                results_lib.append_result(sweep_dir, row)
        written += rows
        log.info("group %d/%d done in %.1fs: %s", n, len(groups), time.time() - start,
                 ", ".join(f"{r['trial']} {r['status']}" for r in rows))
    return written


def run_sweep(sweep: ml_collections.ConfigDict, sweep_dir: str, mode: str | None = None,
              workers: int | None = None, worker: int = 0, num_workers: int = 1) -> dict[str, dict[str, Any]]:
    """Runs (or finishes) ``sweep`` in ``sweep_dir``; returns ``{trial id: result row}``.

    With ``num_workers > 1`` runs worker ``worker``'s share only (see
    :mod:`ganjax.sweep.workers`) and writes the summary if the sweep is then complete.

    Raises:
      ConfigError: a bad sweep config or trial config (before anything is written), or
        another sweep's folder (``num_workers > 1``).
      WorkdirBusy: another live sweep process holds ``sweep_dir``.
      Interrupted: SIGTERM/SIGINT in ``vmap`` mode; the running group saved a checkpoint at the step it
        reached (``process`` mode: :class:`ganjax.sweep.process.SweepInterrupted`).
    """
    if mode is not None:
        sweep.mode = mode
    if workers is not None:
        sweep.workers = workers
    trials = spec.expand(sweep)  # validates everything first
    metric = default_metric(sweep)
    check_workdir_path(sweep_dir)
    if num_workers > 1:
        return _run_worker(sweep, trials, sweep_dir, worker, num_workers, metric)
    storage.makedirs(sweep_dir)
    with WorkdirLock(sweep_dir):
        _write_manifest(sweep, trials, sweep_dir)
        done = {k for k, r in results_lib.read_results(sweep_dir).items() if r["status"] in FINISHED}
        todo = [t for t in trials if t.id not in done]
        log.info("sweep: %d trials, %d already finished, %d to run (%s mode)", len(trials), len(trials) - len(todo),
                 len(todo), sweep.mode)
        if todo and sweep.mode == "vmap":
            run_vmapped(sweep, todo, sweep_dir)
        elif todo:
            from ganjax.sweep.process import run_process_sweep

            run_process_sweep(sweep, todo, sweep_dir, sweep.workers)
        from ganjax.sweep.summary import write_summary

        results = results_lib.read_results(sweep_dir)
        write_summary(sweep_dir, metric, base_params(sweep))
    ids = {t.id for t in trials}
    return {k: r for k, r in results.items() if k in ids}


def _units(sweep: ml_collections.ConfigDict, trials: list[spec.Trial], sweep_dir: str) -> dict[str, list[spec.Trial]]:
    """``{unit id: its trials}``: the vmapped groups (named as their folders) or, in process mode, the trials."""
    if sweep.mode == "vmap":
        return {os.path.basename(group_dir(sweep_dir, m)): m for m in spec.groups(trials).values()}
    return {t.id: [t] for t in trials}


def _run_worker(sweep, trials, sweep_dir, worker, num_workers, metric) -> dict[str, dict[str, Any]]:
    """One worker of a multi-machine sweep: its claimed units, then the summary if everything is finished."""
    workers_lib.check_manifest(sweep_dir, workers_lib.manifest_of(sweep, trials))

    def run_unit(members: list[spec.Trial]) -> list[dict[str, Any]]:
        if sweep.mode == "vmap":
            return run_vmapped(sweep, members, sweep_dir, append=False)
        from ganjax.sweep.process import run_process_sweep

        return run_process_sweep(sweep, members, sweep_dir, 1)

    def finished(members: list[spec.Trial]) -> bool:
        return workers_lib.all_finished([t.id for t in members], sweep_dir, FINISHED)

    workers_lib.run_share(_units(sweep, trials, sweep_dir), sweep_dir, worker, num_workers, run_unit, finished)
    results = results_lib.read_results(sweep_dir)
    if workers_lib.all_finished([t.id for t in trials], sweep_dir, FINISHED):
        from ganjax.sweep.summary import write_summary

        write_summary(sweep_dir, metric, base_params(sweep))
    else:
        log.info("sweep worker %d: its share is done; the other workers' trials are still running (run "
                 "--summarize %s when all have finished)", worker, sweep_dir)
    ids = {t.id for t in trials}
    return {k: r for k, r in results.items() if k in ids}
