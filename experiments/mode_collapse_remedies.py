r"""Seed 001's mode-collapse remedies — augmentation, several discriminators, learning rates — vs the plain GAN.

    python -m experiments.mode_collapse_remedies --out=DIR [--quick] [--protocol=pacgan|ganjax] [--seeds=3]
        [--steps=N] [--batch-size=N] [--g-width=400] [--d-width=200] [--eval-every=N] [--resume]
        [--image_steps=9360] [--image_config=PATH]
        [--datasets=ring_2d,grid_2d,fashion_mnist] [--remedies=gan,augment,k3,ttur]
        [--eval_samples=10000] [--data_dir=DIR] [--cache_dir=DIR]

Seed 001 (section 4.4, "how do GANs avoid mode collapse?") lists three
remedies: data augmentation, several discriminators, and tuning the learning
rates of G and D. Each is one ganjax config key on top of the plain GAN:

* ``gan`` — the plain GAN of the base config;
* ``augment`` — ``augment``: DiffAugment ``translation,cutout`` on images,
  Gaussian instance noise on the 2-D mixtures (``noise:σ``, σ the mixture's
  mode std: 0.01 on PacGAN's ring, 0.05 on the grid), applied to every example
  D sees, real and generated (:mod:`ganjax.augment`). A σ of the mode's size
  keeps the modes apart and the 3σ high-quality radius resolvable for D; the
  library's default σ 0.1 (sized for images) is 10× the ring's mode std and
  blurs each mode past that radius. The seed's
  rotations and flips would be symmetries of the ring and the grid: a symmetry
  used as augmentation lets G collapse onto one orbit without D seeing it,
  while instance noise keeps different distributions apart;
* ``k3`` — ``num_discriminators = 3``: three independently initialised Ds,
  G's loss the mean over them (:mod:`ganjax.ensemble`);
* ``ttur`` — the two time-scale update rule (Heusel et al. 2017): D's
  learning rate 4 × G's (the base config's rate for G).

Datasets: ``ring_2d`` and ``grid_2d`` with the protocol, nets and budget of
``experiments.mixture_modes`` (``--protocol``, default PacGAN'18's; ``--steps``,
``--batch-size``, ``--g-width``, ``--d-width``, ``--eval-every``, ``--resume``;
the same defaults), scored by mode coverage (modes captured,
% high-quality samples, reverse KL; 2,500 samples); ``fashion_mnist`` with
``--image_config`` (default ``configs/fashion_mnist_mlp.py``, seed 002's MLP
GAN; ``:quick`` under ``--quick``) for ``--image_steps`` steps, scored by the
domain classifier (``eval.features=classifier``) on ``--eval_samples``
samples: FID, classifier score (IS), classes covered (a class counts when it
gets ≥ 1% of the samples) and the class histogram's KL to uniform, and
improved precision / recall (recall is the share of real data the samples
cover). Each (dataset, remedy) trains its seeds ``0..N-1`` as one vmapped
program in ``DIR/runs/<dataset>/<remedy>`` (with a checkpoint of the stacked
states at the last step). ``--quick`` runs 2 seeds for 20
steps on the quick nets with 200 evaluation samples.

Writes in ``DIR``:

* ``mode_collapse_remedies.md`` — the run record, the budget, a table per
  kind of data (mean ± std over seeds, and each remedy's change against the
  plain GAN), per-seed values and notes;
* ``mode_collapse_remedies_toy.png`` — 2,500 samples of the first seed per remedy on the ring and grid;
* ``mode_collapse_remedies_images.png`` — 64 samples of the first seed per remedy on Fashion-MNIST.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
from typing import Any, Mapping, Sequence

import numpy as np

from experiments import common, mixture_modes
from ganjax.errors import ConfigError
from ganjax.stats import seed_std

TOY_DATASETS = {"ring_2d": "ring (8 modes)", "grid_2d": "grid (25 modes)"}
IMAGE_DATASETS = {"fashion_mnist": "Fashion-MNIST (10 classes)"}
DATASETS = {**TOY_DATASETS, **IMAGE_DATASETS}
IMAGE_METRICS = "fid,is,class_coverage,precision_recall"
TTUR_RATIO = 4.0
SAMPLE_SEED = 30_011  # plotted samples: key(this), as experiments.mixture_modes
QUICK = {"seeds": 2, "steps": 20, "image_steps": 20, "eval_samples": 200}


def instance_noise(c) -> str:
    """The ``augment`` policy of instance noise at the 2-D mixture's mode std: ``'noise:0.01'`` on PacGAN's
    ring (the mode std of ``c``'s dataset and data options)."""
    from ganjax.data.toy import make_toy

    return f"noise:{make_toy(c.dataset, **c.data).mode_std:g}"


@dataclasses.dataclass(frozen=True)
class Remedy:
    """One remedy: its label and the config keys it sets on toy data and on images.

    A key's value may be a function of the base config (e.g. :func:`instance_noise`).
    ``d_lr_scale`` multiplies D's learning rate (after the keys are set).
    """

    label: str
    toy: Mapping[str, Any]
    image: Mapping[str, Any]
    d_lr_scale: float = 1.0

    def keys(self, kind: str) -> Mapping[str, Any]:
        return self.toy if kind == "toy" else self.image


REMEDIES: dict[str, Remedy] = {
    "gan": Remedy("plain GAN", {}, {}),
    "augment": Remedy("augmentation", {"augment": instance_noise}, {"augment": "translation,cutout"}),
    "k3": Remedy("3 discriminators", {"num_discriminators": 3}, {"num_discriminators": 3}),
    "ttur": Remedy(f"TTUR (lr_D = {TTUR_RATIO:g} lr_G)", {}, {}, d_lr_scale=TTUR_RATIO),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    mixture_modes.add_toy_budget_arguments(parser, seeds=3)
    parser.add_argument("--image_steps", type=common.positive(), default=None,
                        help="train steps on images (default: --image_config's; --quick: 20)")
    parser.add_argument("--image_config", default="configs/fashion_mnist_mlp.py",
                        help="the image GAN's config file (its ':quick' variant under --quick)")
    parser.add_argument("--datasets", default=",".join(DATASETS),
                        help=f"comma-separated subset of {', '.join(DATASETS)} (default: all)")
    parser.add_argument("--remedies", default=",".join(REMEDIES),
                        help=f"comma-separated subset of {', '.join(REMEDIES)} (default: all; gan is always "
                             "trained, as the baseline)")
    common.add_fid_arguments(parser)


def check_arguments(a: argparse.Namespace) -> None:
    """``--quick``'s budget; known datasets and remedies (``gan`` added first); every config validates."""
    from ganjax.config import validate

    if a.quick:
        for key, value in QUICK.items():
            setattr(a, key, value)
    a.datasets = common.parse_names("datasets", a.datasets, DATASETS)
    remedies = common.parse_names("remedies", a.remedies, REMEDIES, "remedy")
    a.remedies = ["gan"] + [r for r in remedies if r != "gan"]
    for dataset in a.datasets:
        for remedy in a.remedies:
            validate(remedy_config(dataset, remedy, a))


def kind_of(dataset: str) -> str:
    return "toy" if dataset in TOY_DATASETS else "image"


def image_config(dataset: str, a: argparse.Namespace, seed: int = 0):
    """``--image_config`` on ``dataset`` for ``--image_steps`` steps, one classifier evaluation at the end."""
    from ganjax.config import load_config_file

    path, _, arg = a.image_config.partition(":")
    if not os.path.exists(path):
        raise ConfigError(f"--image_config={a.image_config}: no such file")
    c = load_config_file(path, "quick" if a.quick else (arg or None))
    c.dataset = dataset
    c.seed = seed
    if a.image_steps:
        c.num_steps = a.image_steps
    common.evaluate_once_at_end(c)
    common.score_by_classifier_fid(c, a)
    c.eval.metrics = IMAGE_METRICS
    return c


def remedy_config(dataset: str, remedy: str, a: argparse.Namespace, seed: int = 0):
    """The base config of ``dataset`` (:func:`mixture_modes.toy_config` or :func:`image_config`) with the
    remedy's keys and D learning-rate scale."""
    kind = kind_of(dataset)
    c = mixture_modes.toy_config(dataset, a, seed) if kind == "toy" else image_config(dataset, a, seed)
    r = REMEDIES[remedy]
    for key, value in r.keys(kind).items():
        c[key] = value(c) if callable(value) else value
    if r.d_lr_scale != 1.0:
        c.optimizer_d.learning_rate = c.optimizer_g.learning_rate * r.d_lr_scale
    c.checkpoint_every = c.eval_every  # at every evaluation (the last step included): --resume continues there
    return c


def train(run: common.Run, dataset: str, remedy: str) -> dict:
    """Trains the seeds of one remedy on one dataset as one vmapped group; returns scores and samples."""
    import jax

    a = run.args
    configs = [remedy_config(dataset, remedy, a, seed) for seed in range(a.seeds)]
    g = common.train_seeds(run.path(os.path.join("runs", dataset, remedy)), configs, f"{remedy}-{dataset}",
                           resume=a.resume)
    num = mixture_modes.NUM_SAMPLES if kind_of(dataset) == "toy" else 64
    return {"dataset": dataset, "method": remedy, "scores": g.scores, "status": g.status, "wall": g.wall,
            "config": configs[0], "samples": g.samples(0, jax.random.key(SAMPLE_SEED), num)}


# ---------------------------------------------------------------------------
# Tables.

# (column, metric key in the evaluation rows, scale, digits, lower is better)
TOY_COLUMNS = (("modes", "modes", 1, 1, False), ("high-quality %", "high_quality", 100, 1, False),
               ("reverse KL", "reverse_kl", 1, 2, True))
IMAGE_COLUMNS = (("FID (classifier)", "fid", 1, 2, True), ("classes (of 10)", "classes", 1, 1, False),
                 ("class KL", "class_kl", 1, 3, True), ("classifier score", "is", 1, 2, False),
                 ("precision", "precision", 1, 3, False), ("recall", "recall", 1, 3, False))


def values(g: dict, key: str, scale: float = 1.0) -> list[float]:
    """The raw generator's ``key`` per surviving seed (finite values only), times ``scale``."""
    out = [scale * float(e[key]) for e in g["scores"]["raw"]]
    return [v for v in out if math.isfinite(v)]


def cell(g: dict, key: str, scale: float, digits: int) -> str:
    text = common.mean_std(values(g, key, scale), digits)
    missing = len(g["scores"]["raw"]) - len(values(g, key, scale))
    diverged = g["status"].count("diverged")
    notes = ([f"∞ in {missing}"] if missing else []) + ([f"{diverged} diverged"] if diverged else [])
    return text + (f" ({', '.join(notes)})" if notes else "")


def change(g: dict, base: dict, key: str, scale: float, digits: int, lower_is_better: bool) -> str:
    """``'+2.0 ✓'``: the change of the seed mean against the plain GAN; ✓ when better by more than the
    larger of the two seed standard deviations (and by a visible amount at ``digits``), ✗ when worse by
    as much, blank otherwise."""
    if g is base:
        return "—"
    mine, theirs = values(g, key, scale), values(base, key, scale)
    if not mine or not theirs:
        return "—"
    delta = float(np.mean(mine) - np.mean(theirs))
    noise = max(seed_std(mine), seed_std(theirs))
    better = -delta if lower_is_better else delta
    margin = max(noise, 0.5 * 10.0 ** -digits)
    mark = " ✓" if better > margin else " ✗" if -better > margin else ""
    return f"{delta:+.{digits}f}{mark}"


def score_table(groups: Sequence[dict], columns: Sequence[tuple], with_dataset: bool) -> str:
    """Remedy rows (per dataset): ``mean ± std`` over seeds per column, and the change vs the plain GAN
    of the first two columns."""
    base = {g["dataset"]: g for g in groups if g["method"] == "gan"}
    header = (["dataset"] if with_dataset else []) + ["remedy"] + [c[0] for c in columns] + [
        f"Δ {c[0]} vs plain GAN" for c in columns[:2]]
    rows = []
    for g in groups:
        rows.append(([DATASETS[g["dataset"]]] if with_dataset else []) + [REMEDIES[g["method"]].label]
                    + [cell(g, key, scale, digits) for _, key, scale, digits, _ in columns]
                    + [change(g, base[g["dataset"]], key, scale, digits, lower)
                       for _, key, scale, digits, lower in columns[:2]])
    return common.markdown_table(header, rows)


def per_seed_table(groups: Sequence[dict], columns: Sequence[tuple]) -> str:
    """The first column's value per seed (raw generator), and the group's wall time."""
    name, key, scale, digits, _ = columns[0]
    rows = [[DATASETS[g["dataset"]], REMEDIES[g["method"]].label,
             ", ".join(f"{scale * float(e[key]):.{digits}f}" for e in g["scores"]["raw"]) or "all diverged",
             f"{g['wall']:.0f}"] for g in groups]
    return common.markdown_table(["dataset", "remedy", f"{name} for seeds 0, 1, …",
                                  "group wall time (s, compile included)"], rows)


# ---------------------------------------------------------------------------
# Figures.


def sample_panel(samples: np.ndarray) -> np.ndarray:
    """``[64, H, W, C]`` samples in [−1, 1] → the uint8 8×8 grid ``[8(H+2)+2, 8(W+2)+2]`` (``C = 1``) or
    ``[..., 3]``, as matplotlib's ``imshow`` takes it."""
    from ganjax.plots import image_grid

    grid = image_grid(np.asarray(samples), nrow=8)
    return grid[..., 0] if grid.shape[-1] == 1 else grid


def plot_images(path: str, groups: Sequence[dict]) -> str:
    """One 8×8 grid of the first seed's samples per remedy, titled with its FID and classes."""
    fig, axes = common.subplots(1, len(groups), size=(3.0, 3.6))
    for ax, g in zip(axes[0], groups):
        panel = sample_panel(g["samples"])
        ax.imshow(panel, cmap="gray" if panel.ndim == 2 else None, vmin=0, vmax=255)
        ax.axis("off")
        s = g["scores"]["raw"]
        n = s[0]["classes"] if s else 0
        detail = f"FID {s[0]['fid']:.1f}, {n} class{'es' * (n != 1)}" if s else "diverged"
        ax.set_title(f"{REMEDIES[g['method']].label}\n{detail}", fontsize=8)
    return common.save(fig, path, dpi=80)


def training_text(c) -> str:
    """``'1200 steps, batch 500, non_saturating loss, Adam(lr 0.0001, β1 0.5)'`` of config ``c``."""
    return (f"{c.num_steps} steps, batch {c.batch_size}, {c.loss} loss, "
            f"Adam(lr {c.optimizer_g.learning_rate:g}, β1 {c.optimizer_g.b1:g})")


def budget_text(groups: Sequence[dict], a: argparse.Namespace) -> str:
    parts = [f"{a.seeds} seeds per remedy and dataset (one vmapped group each)."]
    by_kind = {kind_of(g["dataset"]): g["config"] for g in groups if g["method"] == "gan"}
    if "toy" in by_kind:
        c = by_kind["toy"]
        parts.append(f"2-D mixtures (protocol `{a.protocol}`): {c.num_steps} steps, batch {c.batch_size}, "
                     f"{mixture_modes.nets_text(c)}; scores of the raw generator at the last step, "
                     f"{mixture_modes.NUM_SAMPLES} samples.")
    if "image" in by_kind:
        c = by_kind["image"]
        parts.append(f"Images: `{a.image_config}`{' (:quick)' if a.quick else ''}, {c.model.generator} G / "
                     f"{c.model.discriminator} D, {training_text(c)}; domain-classifier metrics of the raw "
                     f"generator at the last step on {c.eval.num_samples} samples.")
    return " ".join(parts)


NOTES = """
* Seed 001 names the remedies but gives no experiment or numbers, so there is no published column: each
  remedy is compared with the plain GAN trained with the same nets, budget and seeds. Δ is the change of
  the seed mean; ✓ / ✗ mark a change larger than the larger of the two seed standard deviations in the
  better / worse direction (a rough screen with few seeds, not a significance test).
* Augmentation on the 2-D mixtures is Gaussian instance noise with σ the mixture's mode std (`noise:σ`;
  the library's default σ 0.1, sized for images, would be 5–10× the mode std and blur the modes past the
  3σ high-quality radius), not the seed's rotations and flips: those are symmetries of the ring and the grid, and with DiffAugment-style augmentation of real
  and fake alike a symmetry lets G put all its mass on one orbit without D noticing. On images it is
  DiffAugment's translation + cutout (colour jitter does nothing useful to one grey channel).
* Classes covered and the class KL use the domain classifier's argmax (about 91% test accuracy on
  Fashion-MNIST, as `python -m ganjax.metrics.classifier` trains it), so they count classes *as the classifier sees them*; a class counts as covered with ≥ 1%
  of the samples. Recall (Kynkäänniemi'19) is the complementary, feature-space measure of diversity.
* A short budget measures early training; remedies that act on stability (TTUR, several Ds) may only pay
  off later, and one budget, net and learning rate do not rank remedies in general.
"""


def main(argv: Sequence[str] | None = None) -> dict:
    run = common.start_run("mode_collapse_remedies", __doc__, argv, add_arguments, check_arguments)
    a = run.args
    groups = [train(run, dataset, remedy) for dataset in a.datasets for remedy in a.remedies]
    toy = [g for g in groups if kind_of(g["dataset"]) == "toy"]
    image = [g for g in groups if kind_of(g["dataset"]) == "image"]
    images, sections = [], [("Budget", budget_text(groups, a))]
    if toy:
        labels = {name: r.label for name, r in REMEDIES.items()}
        toy_datasets = [d for d in a.datasets if d in TOY_DATASETS]
        images.append(os.path.basename(mixture_modes.plot_samples(
            run.path("mode_collapse_remedies_toy.png"), toy, toy_datasets, a.remedies, labels)))
        sections += [("2-D ring and grid: modes captured, high-quality samples, reverse KL",
                      f"Raw generator, mean ± std over {a.seeds} seeds.\n\n" + score_table(toy, TOY_COLUMNS, True)),
                     ("2-D mixtures per seed", per_seed_table(toy, TOY_COLUMNS))]
    if image:
        images.append(os.path.basename(plot_images(run.path("mode_collapse_remedies_images.png"), image)))
        sections += [("Fashion-MNIST: FID, classes covered, precision and recall (domain classifier)",
                      f"Raw generator, mean ± std over {a.seeds} seeds.\n\n"
                      + score_table(image, IMAGE_COLUMNS, False)),
                     ("Fashion-MNIST per seed", per_seed_table(image, IMAGE_COLUMNS))]
    sections.append(("Notes", NOTES))
    report = common.write_report(run, "Seed 001's mode-collapse remedies vs the plain GAN", sections, images)
    common.finish(run, report, images)
    return {"report": report, "images": [run.path(i) for i in images], "groups": groups}


if __name__ == "__main__":
    common.run_main(main)
