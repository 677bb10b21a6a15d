r"""Seed 002's PyTorch MLP GAN: D and G loss per epoch, the 8×8 sample grid, and FID per epoch.

    python -m experiments.mnist_mlp --out=DIR [--quick] [--epochs=20] [--dataset=fashion_mnist|mnist]
        [--eval_samples=10000] [--seed=0] [--data_dir=DIR] [--cache_dir=DIR]

Trains ``configs/fashion_mnist_mlp.py`` (``:mnist`` with ``--dataset=mnist``:
TFDS downloads MNIST when online, or set ``GANJAX_MNIST_DIR``) with
:func:`ganjax.trainer.train_and_evaluate` in ``DIR/runs/mnist_mlp`` for
``--epochs`` epochs of 468 batches of 128 (the seed's ``drop_last`` loader).
Losses are logged once per epoch, as the mean over the epoch's steps (the
seed's ``np.average`` of the epoch's batch losses); after every epoch the
trainer's evaluator scores the raw and the EMA generator with FID on the
domain classifier's features (``eval.features=classifier``: ganjax's
Fashion-MNIST/MNIST CNN, trained once and cached, about 4 minutes on 2 CPU
cores) from ``--eval_samples`` generated images against as many train images.

Writes in ``DIR``:

* ``mnist_mlp_losses.png`` — the seed's plot (D loss: blue dots, G loss: red
  line, per epoch) next to FID per epoch (raw and EMA generator);
* ``mnist_mlp_samples.png`` — the final 8×8 grid of the raw generator from
  fixed noise (the seed's ``make_grid(..., nrow=8)``), and
  ``mnist_mlp_samples_ema.png``, the same noise through the EMA generator;
* ``mnist_mlp.md`` — per epoch: D loss, G loss, D(real), D(fake), FID (raw and EMA).
"""

from __future__ import annotations

import argparse
import os
from typing import Any, Sequence

from experiments import common
from ganjax import storage

DATASETS = {"fashion_mnist": None, "mnist": "mnist"}   # --dataset → config variant
SCALE = {"fashion_mnist": " For scale (docs/evaluation.md, `classifier_fashion_mnist_v1`, 10,000 images vs 10,000\n"
                          "  train images): the test split scores 0.27, train images of only half the classes\n"
                          "  222.7, uniform noise 538.4."}
QUICK = {"epochs": 2, "steps_per_epoch": 5, "eval_samples": 200}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--epochs", type=common.positive(), default=20, help="epochs (the seed: 200)")
    parser.add_argument("--dataset", default="fashion_mnist", help=f"one of {', '.join(DATASETS)}")
    parser.add_argument("--seed", type=int, default=0)
    common.add_fid_arguments(parser)


def check_arguments(a: argparse.Namespace) -> None:
    """``--quick``'s budget; ``--dataset`` must be known."""
    from ganjax.errors import unknown_name

    if a.dataset not in DATASETS:
        raise unknown_name("--dataset", a.dataset, DATASETS)
    if a.quick:
        a.epochs, a.eval_samples = QUICK["epochs"], QUICK["eval_samples"]


def run_config(a: argparse.Namespace, steps_per_epoch: int):
    """``configs/fashion_mnist_mlp.py`` with one log row, sample grid, checkpoint and FID per epoch."""
    from ganjax.config import load_config_file

    c = load_config_file("fashion_mnist_mlp", DATASETS[a.dataset])
    c.seed = a.seed
    c.num_steps = a.epochs * steps_per_epoch
    c.log_every = c.sample_every = c.checkpoint_every = c.eval_every = steps_per_epoch
    common.score_by_classifier_fid(c, a)
    return c


def epoch_rows(train_rows: Sequence[dict], eval_rows: Sequence[dict], steps_per_epoch: int) -> list[dict]:
    """One dict per epoch: ``epoch``, ``step``, the epoch-mean losses and D outputs, ``fid_raw``, ``fid_ema``."""
    fids = {(r["step"], r["generator"]): r["fid"] for r in eval_rows}
    out = []
    for r in train_rows:
        if "d_loss" not in r:
            continue
        out.append({"epoch": r["step"] // steps_per_epoch, "step": r["step"], "d_loss": r["d_loss"],
                    "g_loss": r["g_loss"], "d_real": r["d_real"], "d_fake": r["d_fake"],
                    "fid_raw": fids.get((r["step"], "raw"), float("nan")),
                    "fid_ema": fids.get((r["step"], "ema"), float("nan"))})
    return out


def plot_losses(path: str, epochs: Sequence[dict], dataset: str) -> str:
    """The seed's loss plot per epoch, and FID per epoch."""
    fig, axes = common.subplots(1, 2, size=(4.6, 3.4))
    ax_loss, ax_fid = axes[0]
    common.plot_series(ax_loss, epochs, ("d_loss", "g_loss"), x="epoch", styles=("bo", "r-"),
                       labels=("Discriminator training loss", "Generator training loss"))
    ax_loss.set_ylabel("loss (mean over the epoch)")
    ax_loss.set_title(f"Training loss per epoch ({dataset})", fontsize=9)
    common.plot_series(ax_fid, epochs, ("fid_raw", "fid_ema"), x="epoch", styles=("ko-", "m.-"),
                       labels=("FID, raw G", "FID, EMA G"))
    ax_fid.set_yscale("log")
    ax_fid.set_ylabel("FID (domain classifier)")
    ax_fid.set_title("FID per epoch (lower is better)", fontsize=9)
    return common.save(fig, path)


def save_grids(run: common.Run, workdir: str, config, state) -> list[str]:
    """The raw generator's final grid (the trainer's ``samples/step_<N>.png``) and the EMA one."""
    import jax
    import numpy as np

    from ganjax import plots
    from ganjax.config import build
    from ganjax.train import generate
    from ganjax.trainer import fixed_noise

    raw = run.path("mnist_mlp_samples.png")
    storage.copy(storage.join(workdir, "samples", f"step_{config.num_steps}.png"), raw)
    _, gan = build(config)
    ema = np.asarray(jax.jit(lambda s, z: generate(gan, s, z, ema=True))(state, fixed_noise(gan, config.seed, 64)))
    ema_path = run.path("mnist_mlp_samples_ema.png")
    plots.save_png(ema_path, plots.image_grid(ema, nrow=8))
    return [raw, ema_path]


def table(epochs: Sequence[dict]) -> str:
    return common.markdown_table(
        ["epoch", "step", "D loss", "G loss", "D(real)", "D(fake)", "FID raw", "FID EMA"],
        [[e["epoch"], e["step"], f"{e['d_loss']:.4f}", f"{e['g_loss']:.4f}", f"{e['d_real']:.3f}",
          f"{e['d_fake']:.3f}", f"{e['fid_raw']:.2f}", f"{e['fid_ema']:.2f}"] for e in epochs])


def notes(epochs: Sequence[dict], a: argparse.Namespace, features: str) -> str:
    best = min(epochs, key=lambda e: e["fid_raw"])
    first, last = epochs[0], epochs[-1]
    trend = ""
    if len(epochs) > 1 and best is last:
        trend = (f" The raw FID is still falling at the last epoch: {a.epochs} epochs are far from the seed's 200, "
                 f"and the samples are still rough (noisy textures; see the grid).")
    return f"""
* The seed (002) trains 200 epochs on MNIST and shows its loss plot and one 8×8 grid, no score. This run:
  {a.epochs} epochs on {a.dataset}, the seed's nets, initialisation, Adam(2e-4, betas 0.9/0.999), batch 128
  and BCE. Epoch 1: D loss {first['d_loss']:.3f}, G loss {first['g_loss']:.3f}; last epoch: D
  {last['d_loss']:.3f}, G {last['g_loss']:.3f}, D(real) {last['d_real']:.2f}, D(fake) {last['d_fake']:.2f}
  (at the equilibrium D(x) = 1/2 the losses would be ln 4 ≈ 1.386 and ln 2 ≈ 0.693).
* FID is on the domain classifier's 128-d features ({features}), {a.eval_samples} generated vs
  {a.eval_samples} train images; it is not comparable with Inception FIDs in papers.{SCALE.get(a.dataset, "")}
  Best raw FID here: {best['fid_raw']:.2f} at epoch {best['epoch']}; last: raw {last['fid_raw']:.2f},
  EMA {last['fid_ema']:.2f}.{trend}
* The EMA generator (decay 0.999, about two epochs' memory) is ganjax's addition, not the seed's. While G
  still improves quickly it lags behind the raw G and scores worse; it helps once G oscillates
  around a fixed quality.
"""


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    from configs.fashion_mnist_mlp import STEPS_PER_EPOCH
    from ganjax.trainer import train_and_evaluate

    run = common.start_run("mnist_mlp", __doc__, argv, add_arguments, check_arguments)
    a = run.args
    steps_per_epoch = QUICK["steps_per_epoch"] if a.quick else STEPS_PER_EPOCH
    config = run_config(a, steps_per_epoch)
    workdir = run.path(os.path.join("runs", "mnist_mlp"))
    storage.rmtree(workdir)  # this script's own scratch run: always trained afresh
    state = train_and_evaluate(config, workdir)
    train_rows, eval_rows = common.metric_rows(workdir)
    epochs = epoch_rows(train_rows, eval_rows, steps_per_epoch)
    images = [plot_losses(run.path("mnist_mlp_losses.png"), epochs, a.dataset),
              *save_grids(run, workdir, config, state)]
    images = [os.path.basename(p) for p in images]
    features = eval_rows[-1]["features"] if eval_rows else "?"
    report = common.write_report(
        run, f"Seed 002: MLP GAN on {a.dataset}",
        [("Per epoch", f"Losses and D outputs are means over the epoch's {steps_per_epoch} steps; FID "
                       f"(domain classifier `{features}`) of {a.eval_samples} images at the epoch's end.\n\n"
                       + table(epochs)),
         ("Notes", common.full_run_reading(run, notes(epochs, a, features)))],
        images)
    common.finish(run, report, images)
    return {"report": report, "images": [run.path(i) for i in images], "epochs": epochs}


if __name__ == "__main__":
    common.run_main(main)
