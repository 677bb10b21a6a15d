r"""Run a sweep: ``python -m ganjax.sweep --config=configs/sweeps/NAME.py[:ARG] --workdir=DIR``.

Trains every trial of the sweep (``--mode=vmap``: trials that differ only in
learning rates, betas, penalty weight and seed are stacked into one compiled
program; ``--mode=process``: one ``ganjax.main`` per trial, ``--workers`` at
once), skipping trials already finished in DIR, and writes DIR/results.jsonl,
DIR/summary.md and plots. Override sweep keys with ``--config.KEY=VALUE``
(e.g. ``--config.seeds=5``).

``python -m ganjax.sweep --summarize DIR`` rewrites summary.md and the plots
from DIR/results.jsonl (and the workers' DIR/results/*.jsonl) and DIR/sweep.json alone.

``--worker=I --num_workers=N`` runs worker I's share of a sweep spread over N
machines sharing DIR (e.g. ``gs://bucket/sweep``); both default from SLURM
array and Kubernetes Indexed Job variables (:mod:`ganjax.sweep.workers`).
"""

from __future__ import annotations

import json

from absl import app, flags
from ml_collections import config_flags

from ganjax import cli, storage

config_flags.DEFINE_config_file("config", None, "Sweep config file, e.g. configs/sweeps/ring_losses.py:quick.")
flags.DEFINE_string("workdir", None, "Sweep folder (created; finished trials in it are skipped).")
flags.DEFINE_enum("mode", None, ["vmap", "process"], "Override the sweep's execution mode.")
flags.DEFINE_integer("workers", None, "Processes at once in process mode (overrides the sweep's).", lower_bound=1)
flags.DEFINE_string("summarize", None, "Only rewrite DIR's summary.md and plots from its results.jsonl.")
flags.DEFINE_string("metric", None, "With --summarize: rank by this score instead of the sweep's metric.")
flags.DEFINE_integer("worker", None, "This machine's index in a multi-machine sweep (default: $SLURM_ARRAY_TASK_ID "
                     "- $SLURM_ARRAY_TASK_MIN, else $JOB_COMPLETION_INDEX, else 0).")
flags.DEFINE_integer("num_workers", None, "Machines sharing the sweep folder (default: $SLURM_ARRAY_TASK_COUNT, "
                     "else $GANJAX_NUM_WORKERS, else 1).")


def _summarize(sweep_dir: str, metric: str | None) -> None:
    from ganjax.errors import ConfigError
    from ganjax.sweep import run as run_lib
    from ganjax.sweep.summary import write_summary

    manifest = storage.join(sweep_dir, "sweep.json")
    if not storage.exists(manifest):
        raise ConfigError(f"{sweep_dir} is not a sweep folder: {manifest} is missing")
    import ml_collections

    sweep = ml_collections.ConfigDict(json.loads(storage.read_text(manifest))["sweep"])
    for path in write_summary(sweep_dir, metric or run_lib.default_metric(sweep), run_lib.base_params(sweep)):
        print(path)


def main(argv: list[str]) -> int:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    f = flags.FLAGS

    def body():
        from ganjax.errors import ConfigError

        if f.summarize:
            return _summarize(f.summarize, f.metric)
        if f.config is None or not f.workdir:
            raise ConfigError("give --config=configs/sweeps/NAME.py and --workdir=DIR (or --summarize=DIR)")
        from ganjax.sweep import spec, workers
        from ganjax.sweep.run import run_sweep

        worker, num_workers = workers.resolve(f.worker, f.num_workers)
        sweep = spec.with_resolved_base(f.config, f["config"].config_filename.partition(":")[0])
        rows = run_sweep(sweep, f.workdir, f.mode, f.workers, worker, num_workers)
        counts = {s: sum(r["status"] == s for r in rows.values()) for s in ("ok", "diverged", "failed")}
        print(f"{len(rows)} trials: " + ", ".join(f"{n} {s}" for s, n in counts.items())
              + f"; results in {storage.join(f.workdir, 'results.jsonl')}, summary in "
              f"{storage.join(f.workdir, 'summary.md')}")
        return 1 if counts["failed"] else 0

    return cli.run_cli(body)


def cli_main() -> None:
    """The console script ``ganjax-sweep``: the same as ``python -m ganjax.sweep``."""
    cli.run(main)


if __name__ == "__main__":
    cli_main()
