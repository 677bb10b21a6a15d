"""One sweep over many machines: ``--worker=I --num_workers=N``.

The sweep's *units* (its vmapped groups in ``vmap`` mode, its trials in
``process`` mode) are listed in a fixed order; worker ``I`` runs units
``I, I + N, I + 2N, …``. Several workers share one sweep folder (a ``gs://``
bucket, or a shared disk) and no lock on it; instead:

* ``sweep.json`` is written create-if-absent by the first worker; every other
  worker checks that its own sweep config is the same (else ``ConfigError``);
* before running a unit a worker takes its *claim*, a :class:`ganjax.lease.Lease`
  at ``claims/<unit>`` renewed while the unit runs. A claim held by a live
  worker is waited for; a dead worker's claim expires and is taken over, and
  the unit resumes from its checkpoints;
* a finished unit's rows go to ``results/<unit>.jsonl``, written once by the
  claim's holder; :func:`ganjax.sweep.results.read_results` merges them, so
  ``--summarize`` (and the last worker to finish) summarize everything.

Both flags default from the scheduler: SLURM job arrays
(``SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN``, ``SLURM_ARRAY_TASK_COUNT``)
and Kubernetes Indexed Jobs (``JOB_COMPLETION_INDEX``, with the count in
``GANJAX_NUM_WORKERS``, which the Job sets to its ``completions``).
"""

from __future__ import annotations

import json
import logging
import os
import time
from typing import Any, Callable, Mapping, Sequence

import ml_collections

from ganjax import config as config_lib
from ganjax import lease as lease_lib
from ganjax import storage
from ganjax.errors import ConfigError
from ganjax.sweep import results as results_lib

log = logging.getLogger("ganjax")

CLAIMS = "claims"
WAIT_SECONDS = 5.0  # between looks at a unit claimed by another live worker


def _env_int(env: Mapping[str, str], name: str) -> int | None:
    value = env.get(name)
    if value in (None, ""):
        return None
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"${name}={value!r} is not an integer (it sets the sweep worker)") from None


def default_worker(env: Mapping[str, str] = os.environ) -> tuple[int | None, int | None]:
    """``(worker, num_workers)`` from SLURM array or Kubernetes Indexed Job variables (None where unset)."""
    slurm = _env_int(env, "SLURM_ARRAY_TASK_ID")
    if slurm is not None:
        return slurm - (_env_int(env, "SLURM_ARRAY_TASK_MIN") or 0), _env_int(env, "SLURM_ARRAY_TASK_COUNT")
    return _env_int(env, "JOB_COMPLETION_INDEX"), _env_int(env, "GANJAX_NUM_WORKERS")


def resolve(worker: int | None, num_workers: int | None, env: Mapping[str, str] = os.environ) -> tuple[int, int]:
    """The flags, else the scheduler's variables, else ``(0, 1)``; ``ConfigError`` for an impossible pair."""
    env_worker, env_count = default_worker(env)
    worker = worker if worker is not None else env_worker
    num_workers = num_workers if num_workers is not None else env_count
    num_workers = 1 if num_workers is None else num_workers
    worker = 0 if worker is None else worker
    if num_workers < 1:
        raise ConfigError(f"--num_workers={num_workers} must be >= 1")
    if not 0 <= worker < num_workers:
        raise ConfigError(f"--worker={worker} must be < --num_workers={num_workers} (workers are numbered 0 to "
                          f"{num_workers - 1})")
    return worker, num_workers


def share(units: Sequence[str], worker: int, num_workers: int) -> list[str]:
    """Worker ``worker``'s units: every ``num_workers``-th, starting at its index."""
    return list(units[worker::num_workers])


def claim_path(sweep_dir: str, unit: str) -> str:
    return storage.join(sweep_dir, CLAIMS, unit)


def check_manifest(sweep_dir: str, manifest: dict[str, Any]) -> None:
    """Writes ``sweep.json`` if absent (create-if-absent); refuses a folder made by another sweep config."""
    path = storage.join(sweep_dir, "sweep.json")
    storage.makedirs(sweep_dir)
    objects = lease_lib.backend(path)
    if objects.create(path, json.dumps(manifest, indent=1)) is not None:
        return
    found, ours = json.loads(objects.read(path)[0])["sweep"], json.loads(json.dumps(manifest))["sweep"]
    keys = config_lib.config_diff(found, ours)
    if not keys:
        return
    flat_old, flat_new = config_lib.flatten(found), config_lib.flatten(ours)
    shown = ", ".join(f"{k}: {flat_old.get(k)!r} there, {flat_new.get(k)!r} here" for k in keys[:3])
    raise ConfigError(f"{path} was written by a different sweep config ({shown}); every worker must run the same "
                      f"--config and overrides; use another --workdir for a new sweep")


def run_share(units: Mapping[str, Any], sweep_dir: str, worker: int, num_workers: int,
              run_unit: Callable[[Any], list[dict]], finished: Callable[[Any], bool]) -> None:
    """Runs worker ``worker``'s share of ``units`` (``{unit id: unit}``, in the sweep's order).

    ``run_unit(unit)`` trains a unit and returns its result rows;
    ``finished(unit)`` says whether results already hold it. A unit claimed by
    a live worker is retried every :data:`WAIT_SECONDS` until its claim is
    released (then it is finished) or expires (then it is taken over).
    """
    mine = share(list(units), worker, num_workers)
    log.info("sweep worker %d of %d: %d of %d units (%s)", worker, num_workers, len(mine), len(units),
             ", ".join(mine) or "none")
    pending = [u for u in mine if not finished(units[u])]
    while pending:
        waiting = []
        for unit in pending:
            claim = lease_lib.Lease(claim_path(sweep_dir, unit))
            holder = claim.acquire()
            if holder is not None:
                log.info("unit %s is claimed by %s: retrying", unit, lease_lib.describe(holder))
                waiting.append(unit)
                continue
            try:
                if not finished(units[unit]):  # another worker may have finished it before the claim
                    claim.start_heartbeat()
                    results_lib.write_unit_results(sweep_dir, unit, run_unit(units[unit]))
            finally:
                claim.release()
        pending = [u for u in waiting if not finished(units[u])]
        if pending:
            time.sleep(WAIT_SECONDS)


def all_finished(trial_ids: Sequence[str], sweep_dir: str, done: Sequence[str]) -> bool:
    """Whether every trial of ``trial_ids`` has a row with a status in ``done``."""
    rows = results_lib.read_results(sweep_dir)
    return all(rows.get(t, {}).get("status") in done for t in trial_ids)


def manifest_of(sweep: ml_collections.ConfigDict, trials) -> dict[str, Any]:
    """``sweep.json``'s content: the sweep config and its trials."""
    return {"sweep": config_lib.to_plain(sweep),
            "trials": [{"id": t.id, "group": t.group, "params": dict(t.params)} for t in trials]}
