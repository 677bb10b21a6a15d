r"""Score checkpoints post hoc: ``python -m ganjax.evaluate --workdir=DIR [--all | --step=N]``.

Rebuilds the run from ``DIR/config.json``, restores the newest checkpoint (or
``--step``, or ``--all`` of them), scores the raw and EMA generators with the
run's ``eval`` settings (overridable by the flags below) and appends one row
per (step, generator) to ``DIR/eval.jsonl``, protocol included (see
:mod:`ganjax.metrics.evaluator`). Read-only on everything else in DIR.
``--trial=ID`` scores one trial of a sweep (``--workdir`` = the sweep folder
or its ``groups/<group>`` folder); its rows carry ``trial`` and go to the
group folder's ``eval.jsonl``.
"""

from __future__ import annotations

import sys

from absl import app, flags

from ganjax import cli, storage


OVERRIDES = ("metrics", "num_samples", "features", "split", "inception_weights")


def checkpoint_steps(workdir: str, every: bool) -> list[int]:
    """All checkpoint steps of ``workdir`` (``every``) or the newest alone; [] if there is none."""
    from ganjax.checkpoint import Checkpointer

    ckpt = Checkpointer(workdir, async_save=False)
    try:
        latest = ckpt.latest_step()
        return ckpt.steps() if every else ([latest] if latest is not None else [])
    finally:
        ckpt.close()


def evaluate_workdir(workdir: str, steps: list[int] | None = None, overrides: dict | None = None,
                     out: str | None = None, trial: str | None = None) -> list[dict]:
    """Scores ``steps`` (default: the newest) of ``workdir`` (of its sweep trial ``trial``); appends and
    returns the rows (with ``trial`` for a sweep trial)."""
    from ganjax.data import Dataset, image_options_of
    from ganjax.errors import CheckpointError
    from ganjax.metrics.evaluator import Evaluator
    from ganjax.sweep.inference import find_trial, load_trial
    from ganjax.writers import append_jsonl

    if not storage.isdir(workdir):
        raise CheckpointError(f"--workdir={workdir!r} does not exist")
    ref = find_trial(workdir, trial)
    if steps is None:
        steps = checkpoint_steps(ref.workdir, every=False)
    if not steps:
        raise CheckpointError(f"{ref.workdir} holds no checkpoint to evaluate")
    out = out or storage.join(ref.workdir, "eval.jsonl")
    tag = {"trial": trial} if trial else {}
    rows, evaluator = [], None
    for step in steps:
        config, gan, state, restored = load_trial(ref, step)
        if evaluator is None:
            with config.unlocked():
                for k, v in (overrides or {}).items():
                    config.eval[k] = v
            dataset = Dataset(config.dataset, gan.example_shape, toy=gan.toy,
                              image_options=image_options_of(config.dataset, config.data.to_dict()))
            evaluator = Evaluator(config.eval, dataset, config.dataset, config.data_dir or None, config.seed,
                                  num_classes=gan.num_classes)
        for row in evaluator(gan, state):
            row = {"step": restored, **tag, **row}
            append_jsonl(out, row)
            rows.append(row)
    return rows


def main(argv: list[str]) -> int:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    f = flags.FLAGS

    def body():
        from ganjax.errors import CheckpointError, ConfigError
        from ganjax.metrics.evaluator import PROTOCOL_KEYS
        from ganjax.sweep.inference import find_trial

        if f.all and f.step is not None:
            raise ConfigError("--all and --step exclude each other; give one")
        if not storage.isdir(f.workdir):
            raise CheckpointError(f"--workdir={f.workdir!r} does not exist")
        ref = find_trial(f.workdir, f.trial)
        steps = [f.step] if f.step is not None else (checkpoint_steps(ref.workdir, every=True) if f.all else None)
        overrides = {k: getattr(f, k) for k in OVERRIDES if getattr(f, k) is not None}
        out = f.out or storage.join(ref.workdir, "eval.jsonl")
        for row in evaluate_workdir(f.workdir, steps, overrides, out, f.trial):
            scores = " ".join(f"{k} {v:.4g}" for k, v in row.items()
                              if isinstance(v, (int, float)) and k not in PROTOCOL_KEYS + ("step",))
            print(f"{'trial ' + row['trial'] + ' ' if 'trial' in row else ''}step {row['step']} {row['generator']}: "
                  f"{scores} [features {row['features']}, "
                  f"{row['num_samples']} samples]")
        print(f"appended to {out}")

    return cli.run_cli(body)


def _define_flags() -> None:
    """The command's flags, defined when it runs (not at import: importing :func:`evaluate_workdir` next to
    another ganjax command, e.g. ``ganjax.main``, in one process must not define ``--workdir`` twice)."""
    flags.DEFINE_string("workdir", None, "A training workdir.")
    flags.DEFINE_integer("step", None, "Checkpoint step to score (default: newest).")
    flags.DEFINE_bool("all", False, "Score every checkpoint in the workdir.")
    flags.DEFINE_string("metrics", None, "Comma list of metrics, or 'auto' (default: the run's eval.metrics).")
    flags.DEFINE_integer("num_samples", None, "Generated (and real) samples per score (default: the run's).")
    flags.DEFINE_string("features", None, "Image features: classifier | inception (default: the run's).")
    flags.DEFINE_string("split", None, "Real split to compare with (default: the run's eval.split).")
    flags.DEFINE_string("inception_weights", None, "Local Inception weights (.npz or pytorch-fid .pth).")
    flags.DEFINE_string("out", None, "Output JSONL (default: DIR/eval.jsonl; for --trial the group folder's).")
    flags.DEFINE_string("trial", None, "A trial id of a sweep: --workdir is then the sweep folder or its "
                        "groups/<group> folder (vmapped trials are sliced out of the group's checkpoint).")
    flags.mark_flags_as_required(["workdir"])


def cli_main() -> None:
    """The console script ``ganjax-evaluate``: the same as ``python -m ganjax.evaluate``."""
    _define_flags()
    cli.run(main)


if __name__ == "__main__":
    cli_main()
