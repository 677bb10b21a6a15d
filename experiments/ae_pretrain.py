r"""Seed 004: FID over training of the autoencoder-pretrained generator vs the same generator from scratch.

    python -m experiments.ae_pretrain --out=DIR [--quick] [--seeds=3] [--steps=4680]
        [--pretrain_steps=11700] [--eval_every=234] [--eval_samples=10000] [--generator=raw|ema]
        [--resume] [--data_dir=DIR] [--cache_dir=DIR]

Trains ``configs/ae_gan_fashion_mnist.py`` twice per seed with
:func:`ganjax.trainer.train_and_evaluate`, each run in its own workdir
``DIR/runs/<variant>_seed<s>`` (vmapped sweep groups refuse two-phase
training, so the seeds are separate runs; ``--resume`` continues those
workdirs from their checkpoints, so an interrupted figure run, or one
re-run with fewer ``--seeds``, reuses the runs already finished):

* ``pretrained`` — phase 1 trains the convolutional autoencoder for
  ``--pretrain_steps`` steps (the config: 50 epochs), phase 2 the GAN whose
  ``ae_decoder`` generator starts from the pretrained decoder;
* ``scratch`` — the same ``ae_decoder`` generator, discriminator, loss and
  optimizers with ``pretrain.autoencoder_steps=0`` (a fresh decoder).

Seeds 0 … ``--seeds``−1 set ``config.seed`` (initialisation, noise, batch
order; the autoencoder's too). Every ``--eval_every`` GAN steps (and at the
last one) the trainer's evaluator scores the generator with FID on the domain
classifier's features (``eval.features=classifier``, as
``experiments.mnist_mlp``), ``--eval_samples`` generated vs as many train
images. The seed claims the pretrained decoder trains better and more stably;
this script measures both: FID at each evaluation (mean over seeds) and the
run-to-run spread (std of FID across seeds at each evaluation). ``--quick``
(``:quick``, batch 32) overrides ``--seeds``, ``--steps``, ``--pretrain_steps``,
``--eval_every`` and ``--eval_samples`` with 2, 6, 6, 3 and 100.

Writes in ``DIR``:

* ``ae_pretrain_fid.png`` — FID vs GAN step, mean over seeds with a ± std band, per variant;
* ``ae_pretrain.md`` — the run record, a step × variant table of FID mean ± std,
  and the spread table (final FID per seed, std across seeds at the end and
  averaged over the evaluations).
"""

from __future__ import annotations

import argparse
import os
from typing import Any, Sequence

import numpy as np

from experiments import common
from ganjax import storage
from ganjax.stats import seed_std

VARIANTS = ("pretrained", "scratch")
LABELS = {"pretrained": "AE-pretrained decoder", "scratch": "from scratch"}
GENERATORS = ("raw", "ema")
QUICK = {"seeds": 2, "steps": 6, "pretrain_steps": 6, "eval_every": 3, "eval_samples": 100}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from configs.ae_gan_fashion_mnist import STEPS_PER_EPOCH

    parser.add_argument("--seeds", type=common.positive(), default=3, help="runs per variant (seeds 0..N-1)")
    parser.add_argument("--steps", type=common.positive(), default=20 * STEPS_PER_EPOCH,
                        help="GAN steps per run (the config: 20 epochs of 234)")
    parser.add_argument("--pretrain_steps", type=common.positive(), default=50 * STEPS_PER_EPOCH,
                        help="autoencoder steps of the pretrained variant (the seed: 50 epochs)")
    parser.add_argument("--eval_every", type=common.positive(), default=STEPS_PER_EPOCH,
                        help="GAN steps between FID evaluations (default: one epoch)")
    parser.add_argument("--generator", default="raw", help=f"which generator's FID to compare: {', '.join(GENERATORS)}")
    parser.add_argument("--resume", action="store_true",
                        help="continue the runs already in DIR/runs from their checkpoints (a finished run is read, "
                             "not retrained) instead of training afresh; give the same budget arguments")
    common.add_fid_arguments(parser)


def check_arguments(a: argparse.Namespace) -> None:
    """``--quick``'s budget; ``--generator`` must be known, ``--eval_every`` at most ``--steps``; valid configs."""
    from ganjax.errors import ConfigError, unknown_name

    if a.generator not in GENERATORS:
        raise unknown_name("--generator", a.generator, GENERATORS)
    if a.quick:
        for key, value in QUICK.items():
            setattr(a, key, value)
    if a.eval_every > a.steps:
        raise ConfigError(f"--eval_every={a.eval_every} must be at most --steps={a.steps}")
    from ganjax.config import validate

    for variant in VARIANTS:
        validate(run_config(a, variant, 0))  # before anything is written or loaded


def run_config(a: argparse.Namespace, variant: str, seed: int):
    """``configs/ae_gan_fashion_mnist.py`` (``:quick`` with ``--quick``) for one variant and seed, scored by FID."""
    from ganjax.config import load_config_file

    c = load_config_file("ae_gan_fashion_mnist", "quick" if a.quick else None)
    c.seed = seed
    c.num_steps = a.steps
    c.pretrain.autoencoder_steps = a.pretrain_steps if variant == "pretrained" else 0
    c.eval_every = a.eval_every
    c.checkpoint_every = a.steps  # only the final checkpoint: the curves come from metrics.jsonl
    c.sample_every = a.steps
    common.score_by_classifier_fid(c, a)
    c.eval.ema = a.generator == "ema"
    return c


def fid_curve(eval_rows: Sequence[dict], generator: str) -> dict[int, float]:
    """``{step: FID}`` of one run's ``generator`` evaluations."""
    return {r["step"]: float(r["fid"]) for r in eval_rows if r["generator"] == generator}


def stack_curves(curves: Sequence[dict[int, float]]) -> tuple[list[int], np.ndarray]:
    """``(steps, FID [seeds, steps])`` over the steps every run evaluated."""
    steps = sorted(set.intersection(*(set(c) for c in curves)))
    return steps, np.array([[c[s] for s in steps] for c in curves], np.float64)


def pretrain_mse(workdir: str) -> float:
    """The autoencoder's last logged reconstruction MSE ([−1, 1] pixels); NaN without phase 1."""
    from ganjax.writers import read_jsonl

    rows = [r for r in read_jsonl(storage.join(workdir, "pretrain", "metrics.jsonl")) if "mse" in r]
    return float(rows[-1]["mse"]) if rows else float("nan")


def plot_fid(path: str, steps: Sequence[int], fids: dict[str, np.ndarray], generator: str) -> str:
    """FID vs step: the mean over seeds (line) and ± std (band) of each variant."""
    fig, axes = common.subplots(1, 1, size=(5.5, 3.8))
    ax = axes[0, 0]
    for variant, colour in zip(VARIANTS, ("tab:blue", "tab:red")):
        mean, std = fids[variant].mean(0), seed_std(fids[variant], axis=0)
        ax.plot(steps, mean, "o-", color=colour, markersize=3,
                label=f"{LABELS[variant]} ({fids[variant].shape[0]} seeds)")
        ax.fill_between(steps, mean - std, mean + std, color=colour, alpha=0.2)
    ax.set_yscale("log")
    ax.set_xlabel("GAN step")
    ax.set_ylabel(f"FID, {generator} G (domain classifier)")
    ax.set_title("Seed 004: FID over training, mean ± std over seeds", fontsize=9)
    ax.legend(loc="best", fontsize=8)
    return common.save(fig, path)


def fid_table(steps: Sequence[int], fids: dict[str, np.ndarray]) -> str:
    """One row per evaluation step: FID mean ± std over seeds of each variant."""
    return common.markdown_table(
        ["step", *(f"{LABELS[v]} FID" for v in VARIANTS)],
        [[s, *(common.mean_std(fids[v][:, i], 2) for v in VARIANTS)] for i, s in enumerate(steps)])


def spread_table(fids: dict[str, np.ndarray], mse: dict[str, list[float]]) -> str:
    """Per variant: final FID (mean ± std, per seed), the std across seeds at the end and over all evaluations."""
    rows = []
    for v in VARIANTS:
        f = fids[v]
        std = seed_std(f, axis=0)
        rows.append([LABELS[v], common.mean_std(f[:, -1], 2), ", ".join(f"{x:.2f}" for x in f[:, -1]),
                     f"{std[-1]:.2f}", f"{std.mean():.2f}", f"{std.max():.2f}",
                     common.mean_std(mse[v], 4) if np.isfinite(mse[v]).all() else "—"])
    return common.markdown_table(
        ["variant", "final FID", "final FID per seed", "std across seeds, final",
         "std across seeds, mean over evaluations", "std across seeds, max", "autoencoder MSE (phase 1)"], rows)


def notes(a: argparse.Namespace, steps: Sequence[int], fids: dict[str, np.ndarray]) -> str:
    final = {v: fids[v][:, -1].mean() for v in VARIANTS}
    spread = {v: seed_std(fids[v], axis=0).mean() for v in VARIANTS}
    better = min(VARIANTS, key=final.get)
    steadier = min(VARIANTS, key=spread.get)
    return f"""
* Budget per run: {a.steps} GAN steps (batch {run_batch(a)}); the pretrained variant first trains the
  autoencoder for {a.pretrain_steps} steps, compute the scratch variant does not get. {a.seeds} seeds per
  variant; FID ({a.generator} generator) every {a.eval_every} steps, {a.eval_samples} generated vs
  {a.eval_samples} train images, on the domain classifier's features (not comparable with Inception FIDs).
* Final mean FID: {LABELS['pretrained']} {final['pretrained']:.2f}, {LABELS['scratch']} {final['scratch']:.2f}
  (lower: {LABELS[better]}). Run-to-run spread (std across seeds, mean over the {len(steps)} evaluations):
  {spread['pretrained']:.2f} vs {spread['scratch']:.2f} (smaller: {LABELS[steadier]}).
* With {a.seeds} seeds a std is a rough estimate; differences smaller than the spread are not evidence
  either way.
"""


def run_batch(a: argparse.Namespace) -> int:
    return run_config(a, "scratch", 0).batch_size


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    from ganjax.data import make_dataset
    from ganjax.trainer import train_and_evaluate

    run = common.start_run("ae_pretrain", __doc__, argv, add_arguments, check_arguments)
    a = run.args
    first = run_config(a, "pretrained", 0)
    dataset = make_dataset(first.dataset, first.data.to_dict(), data_dir=a.data_dir or None)
    curves: dict[str, list[dict[int, float]]] = {v: [] for v in VARIANTS}
    mse: dict[str, list[float]] = {v: [] for v in VARIANTS}
    for seed in range(a.seeds):
        for variant in VARIANTS:
            workdir = run.path(os.path.join("runs", f"{variant}_seed{seed}"))
            if not a.resume:
                storage.rmtree(workdir)  # the script's own runs: trained afresh
            train_and_evaluate(run_config(a, variant, seed), workdir, dataset)
            curves[variant].append(fid_curve(common.metric_rows(workdir)[1], a.generator))
            mse[variant].append(pretrain_mse(workdir))
    stacked = {v: stack_curves(curves[v]) for v in VARIANTS}
    steps = sorted(set(stacked["pretrained"][0]) & set(stacked["scratch"][0]))
    fids = {v: stacked[v][1][:, [stacked[v][0].index(s) for s in steps]] for v in VARIANTS}
    images = [os.path.basename(plot_fid(run.path("ae_pretrain_fid.png"), steps, fids, a.generator))]
    report = common.write_report(
        run, "Seed 004: autoencoder-pretrained generator vs from scratch",
        [("FID over training", f"FID of the {a.generator} generator, mean ± std over {a.seeds} seeds.\n\n"
                               + fid_table(steps, fids)),
         ("Run-to-run spread", spread_table(fids, mse)),
         ("Notes", common.full_run_reading(run, notes(a, steps, fids)))],
        images)
    common.finish(run, report, images)
    return {"report": report, "images": [run.path(i) for i in images], "steps": steps, "fids": fids}


if __name__ == "__main__":
    common.run_main(main)
