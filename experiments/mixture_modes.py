r"""2-D ring (8 modes) and grid (25 modes) benchmark of VEEGAN'17 / PacGAN'18: GAN, unrolled GAN, PacGAN.

    python -m experiments.mixture_modes --out=DIR [--quick] [--seeds=5] [--steps=20000]
        [--batch-size=500] [--g-width=400] [--d-width=200] [--datasets=ring_2d,grid_2d]
        [--methods=gan,unrolled5,pack2,pack3,pack4]

For each dataset (``configs/ring_2d.py``: 8 Gaussians on a circle of radius 2,
std 0.02; ``configs/grid_2d.py``: 25 Gaussians on {-4,-2,0,2,4}², std 0.05)
and each method, the seeds ``0..N-1`` are trained as **one vmapped program**
(:class:`ganjax.sweep.vmapped.GroupRun`: the seeds' states stacked along a
leading axis, one ``jit(scan(vmap(train_step)))``) in
``DIR/runs/<dataset>/<method>``. The methods differ in one config key each:

* ``gan`` — the plain non-saturating GAN of :func:`ganjax.config.mixture_config`;
* ``unrolled5`` — ``unroll_steps = 5``: G's loss against D unrolled 5 updates (Metz et al. 2016);
* ``pack2``, ``pack3``, ``pack4`` — ``pack = m``: D sees m samples at once (PacGAN, Lin et al. 2018).

Nets: G 4 × ``--g-width`` ReLU (the config's 400), D 4 × ``--d-width`` ReLU
(200), z ~ N(0, I_256), Adam(1e-4, β1 = 0.5), batch ``--batch-size`` (500;
rounded down to a multiple of m for ``pack = m``, e.g. 498 for m = 3).
At the end the trainer's evaluator scores the raw generator on 2,500 samples
(fixed noise per seed) with :func:`ganjax.metrics.toy.mode_coverage`: a
sample is *high quality* within 3σ of its nearest mode centre, a mode is
*captured* if some high-quality sample is nearest to it, and the reverse KL
is KL(q ‖ uniform) of the high-quality samples' distribution over modes.

Writes in ``DIR``:

* ``mixture_modes.md`` — modes captured, high-quality % and reverse KL, mean ± std over
  seeds, per method × dataset, beside the published VEEGAN'17 / PacGAN'18 Table 1 values;
  per-seed modes; the EMA generator's scores; the budget;
* ``mixture_modes.png`` — 2,500 generated samples of the first seed per method (columns;
  real data first) for the ring and the grid (rows), mode centres as red crosses.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
from typing import Any, Mapping, Sequence

import numpy as np

from experiments import common
from experiments.common import parse_names
from ganjax.errors import ConfigError

DATASETS = {"ring_2d": "ring (8 modes)", "grid_2d": "grid (25 modes)"}
NUM_SAMPLES = 2500      # the papers' 2,500 generated samples (the evaluator's mixture default)
PLOT_SEED_OFFSET = 30_011  # scatter-plot noise: key(seed + this)
QUICK = {"seeds": 2, "steps": 20}


@dataclasses.dataclass(frozen=True)
class Method:
    """One benchmarked method: a label and the config keys it sets over ``mixture_config``."""

    label: str
    overrides: Mapping[str, Any]

    @property
    def pack(self) -> int:
        return int(self.overrides.get("pack", 1))


METHODS: dict[str, Method] = {
    "gan": Method("GAN", {}),
    "unrolled5": Method("Unrolled GAN (k = 5)", {"unroll_steps": 5}),
    "pack2": Method("PacGAN2", {"pack": 2}),
    "pack3": Method("PacGAN3", {"pack": 3}),
    "pack4": Method("PacGAN4", {"pack": 4}),
}

# Published Table 1 values: (modes captured, high-quality samples %), per (method, dataset).
# VEEGAN: Srivastava, Valkov, Russell, Gutmann, Sutton, "VEEGAN: Reducing Mode Collapse in GANs using
#   Implicit Variational Learning", NeurIPS 2017, Table 1 (2D Ring / 2D Grid, averaged over 10 runs).
# PacGAN: Lin, Khetan, Fanti, Oh, "PacGAN: The power of two samples in generative adversarial networks",
#   NeurIPS 2018, Table 1 (2D-ring / 2D-grid, averaged over 10 trials).
PUBLISHED: dict[str, dict[tuple[str, str], tuple[float, float]]] = {
    "VEEGAN'17": {("gan", "ring_2d"): (1.0, 99.3), ("gan", "grid_2d"): (3.3, 0.5),
                  ("unrolled5", "ring_2d"): (7.6, 35.6), ("unrolled5", "grid_2d"): (23.6, 16.0)},
    "PacGAN'18": {("gan", "ring_2d"): (6.3, 98.2), ("gan", "grid_2d"): (17.3, 94.8),
                  ("pack4", "ring_2d"): (7.8, 95.9), ("pack4", "grid_2d"): (24.8, 93.6)},
}

TABLE_COLUMNS = ["method", "dataset", "modes", "high-quality %", "reverse KL",
                 *(f"{source} modes / HQ %" for source in PUBLISHED)]


def add_toy_budget_arguments(parser: argparse.ArgumentParser, seeds: int = 5) -> None:
    """``--seeds``, ``--steps``, ``--batch-size``, ``--g-width``, ``--d-width`` (read by :func:`toy_config`)."""
    parser.add_argument("--seeds", type=common.positive(), default=seeds,
                        help=f"seeds 0..N-1, trained as one vmapped group per method and dataset (default {seeds})")
    parser.add_argument("--steps", type=common.positive(), default=None,
                        help="train steps (default: the config's 20,000; --quick: 20)")
    parser.add_argument("--batch-size", type=common.positive(), default=None,
                        help="batch (default: the config's 500), rounded down to a multiple of the pack size")
    parser.add_argument("--g-width", type=common.positive(), default=None,
                        help="units in each of G's hidden layers (default: the config's 400)")
    parser.add_argument("--d-width", type=common.positive(), default=None,
                        help="units in each of D's hidden layers (default: the config's 200)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_toy_budget_arguments(parser)
    parser.add_argument("--datasets", default=",".join(DATASETS),
                        help=f"comma-separated subset of {', '.join(DATASETS)} (default: both)")
    parser.add_argument("--methods", default=",".join(METHODS),
                        help=f"comma-separated subset of {', '.join(METHODS)} (default: all)")


def check_arguments(a: argparse.Namespace) -> None:
    """``--quick``'s budget; the methods are known and each method's batch keeps at least one pack."""
    if a.quick:
        a.seeds, a.steps = QUICK["seeds"], a.steps or QUICK["steps"]
    a.methods = parse_names("methods", a.methods, METHODS)
    a.datasets = parse_names("datasets", a.datasets, DATASETS)
    for name in a.methods:
        c = method_config("ring_2d", name, a)
        if c.batch_size < 1:
            raise ConfigError(f"--batch-size={a.batch_size} is smaller than {name}'s pack {METHODS[name].pack}")
        from ganjax.config import validate

        validate(c)


def toy_config(dataset: str, a: argparse.Namespace, seed: int = 0, pack: int = 1):
    """``mixture_config(dataset)`` (its ``quick`` variant under ``--quick``) with the budget of ``a``
    (``steps``, ``batch_size`` rounded down to a multiple of ``pack``, ``g_width``, ``d_width``; ``None``
    keeps the config's) and one evaluation (mode coverage, 2,500 samples) at the last step."""
    from ganjax.config import mixture_config

    c = mixture_config(dataset, "quick" if a.quick else None)
    c.seed = seed
    if a.steps:
        c.num_steps = a.steps
    if a.batch_size:
        c.batch_size = a.batch_size
    c.batch_size -= c.batch_size % pack
    depth_g, depth_d = len(c.model.g.hidden), len(c.model.d.hidden)
    if a.g_width:
        c.model.g.hidden = (a.g_width,) * depth_g
    if a.d_width:
        c.model.d.hidden = (a.d_width,) * depth_d
    common.evaluate_once_at_end(c)
    c.eval.num_samples = NUM_SAMPLES
    return c


def method_config(dataset: str, method: str, a: argparse.Namespace, seed: int = 0):
    """:func:`toy_config` with the method's keys."""
    m = METHODS[method]
    c = toy_config(dataset, a, seed, m.pack)
    for key, value in m.overrides.items():
        c[key] = value
    return c


def train_group(run: common.Run, dataset: str, method: str) -> dict:
    """Trains the seeds of one method on one dataset as one vmapped group; returns its scores and samples."""
    import jax

    a = run.args
    configs = [method_config(dataset, method, a, seed) for seed in range(a.seeds)]
    g = common.train_seeds(run.path(os.path.join("runs", dataset, method)), configs, f"{method}-{dataset}")
    return {"dataset": dataset, "method": method, "scores": g.scores,
            "samples": g.samples(0, jax.random.key(PLOT_SEED_OFFSET), NUM_SAMPLES),
            "status": g.status, "batch_size": configs[0].batch_size, "config": configs[0], "wall": g.wall}


def kl_cell(values: Sequence[float]) -> str:
    """``mean ± std`` of the finite reverse KLs; seeds without a high-quality sample (KL = ∞) counted apart."""
    values = [float(v) for v in values]  # metrics.jsonl stores ∞ as "inf"
    finite = [v for v in values if math.isfinite(v)]
    cell = common.mean_std(finite, 2)
    missing = len(values) - len(finite)
    return cell + (f" (∞ in {missing}/{len(values)} seeds)" if missing else "")


def published_cell(source: str, method: str, dataset: str) -> str:
    value = PUBLISHED[source].get((method, dataset))
    return "—" if value is None else f"{value[0]:g} / {value[1]:g}"


def score_row(g: dict, generator: str = "raw") -> list[str]:
    s = g["scores"][generator]
    return [METHODS[g["method"]].label, DATASETS[g["dataset"]],
            common.mean_std([e["modes"] for e in s], 1),
            common.mean_std([100 * e["high_quality"] for e in s], 1),
            kl_cell([e["reverse_kl"] for e in s]),
            *(published_cell(source, g["method"], g["dataset"]) for source in PUBLISHED)]


def score_table(groups: Sequence[dict], generator: str = "raw") -> str:
    """Method × dataset rows: modes, high-quality %, reverse KL (mean ± std over seeds), published values."""
    return common.markdown_table(TABLE_COLUMNS, [score_row(g, generator) for g in groups])


def per_seed_table(groups: Sequence[dict]) -> str:
    """Modes captured and high-quality % of the raw generator, per seed."""
    rows = [[METHODS[g["method"]].label, DATASETS[g["dataset"]],
             ", ".join(f"{e['modes']} ({100 * e['high_quality']:.0f}%)" for e in g["scores"]["raw"]),
             f"{g['wall']:.0f}"] for g in groups]
    return common.markdown_table(["method", "dataset", "modes (high-quality %) for seeds 0, 1, …",
                                  "group wall time (s, compile included)"], rows)


def plot_samples(path: str, groups: Sequence[dict], datasets: Sequence[str], methods: Sequence[str],
                 labels: Mapping[str, str] | None = None) -> str:
    """Rows: datasets; columns: real data, then each method's first seed; mode centres as red crosses.

    ``groups`` are :func:`train_group`-style dicts (``dataset``, ``method``, ``scores``, ``samples``);
    ``labels`` maps method names to panel titles (default: this script's :data:`METHODS` labels).
    """
    labels = labels or {name: m.label for name, m in METHODS.items()}
    import jax

    from ganjax.data.toy import make_toy

    fig, axes = common.subplots(len(datasets), len(methods) + 1, size=(2.6, 2.6))
    by_key = {(g["dataset"], g["method"]): g for g in groups}

    def panel_title(dataset: str, method: str) -> str:
        s = by_key[dataset, method]["scores"]["raw"]
        if not s:
            return f"{labels[method]}\n(all seeds diverged)"
        return f"{labels[method]}\n{s[0]['modes']} modes, {100 * s[0]['high_quality']:.0f}% HQ"

    for row, dataset in zip(axes, datasets):
        toy = make_toy(dataset)
        real = np.asarray(toy.sample(jax.random.key(0), NUM_SAMPLES))
        lim = np.abs(toy.modes).max() + 1.5
        panels = [("real data", real)] + [(panel_title(dataset, m), by_key[dataset, m]["samples"]) for m in methods]
        for ax, (title, pts) in zip(row, panels):
            ax.scatter(pts[:, 0], pts[:, 1], s=1, c="tab:blue", alpha=0.3, linewidths=0)
            ax.scatter(toy.modes[:, 0], toy.modes[:, 1], s=18, c="red", marker="x", linewidths=1)
            ax.set_xlim(-lim, lim)
            ax.set_ylim(-lim, lim)
            ax.set_aspect("equal")
            ax.tick_params(labelsize=6)
            ax.set_title(title, fontsize=8)
        row[0].set_ylabel(DATASETS[dataset], fontsize=9)
    return common.save(fig, path, dpi=70)


def budget_text(groups: Sequence[dict], a: argparse.Namespace) -> str:
    c = groups[0]["config"]
    batches = ", ".join(f"{METHODS[g['method']].label} {g['batch_size']}" for g in groups
                        if g["dataset"] == groups[0]["dataset"])
    return (f"{a.seeds} seeds per method (one vmapped group each), {c.num_steps} steps, "
            f"G {list(c.model.g.hidden)} ReLU, D {list(c.model.d.hidden)} ReLU, z_dim {c.model.z_dim}, "
            f"{c.loss} loss, Adam(lr {c.optimizer_g.learning_rate:g}, β1 {c.optimizer_g.b1:g}); "
            f"batch per method: {batches}. Scores: the raw generator at step {c.num_steps}, "
            f"{NUM_SAMPLES} samples per seed.")


NOTES = """
* The two published tables come from **different setups** and disagree about the same plain GAN
  (VEEGAN'17: 1 ring mode and 3.3 grid modes; PacGAN'18: 6.3 and 17.3 — and 99.3% vs 0.5% high-quality
  grid samples in VEEGAN against 94.8% in PacGAN): each paper trained its own baseline with its own nets,
  training length, hyperparameters and number of runs, so neither GAN row is a fixed reference, and the
  unrolled-GAN row (VEEGAN's) and the PacGAN rows (PacGAN's) are not from one protocol either.
* This script's defaults follow `mixture_config` (G 4 × 400, D 4 × 200, Adam(1e-4, β1 0.5), batch 500,
  20,000 steps). A run with fewer steps or narrower nets (see *Budget*) measures an earlier point of a
  smaller model than the papers' and is not their budget.
* "High quality" and "captured" follow both papers: within 3σ of the nearest centre (σ = 0.02 ring,
  0.05 grid), 2,500 samples; reverse KL as in PacGAN (the high-quality samples' mode histogram against
  the uniform one; ∞ for a seed with no high-quality sample, counted apart).
"""


def main(argv: Sequence[str] | None = None) -> dict:
    run = common.start_run("mixture_modes", __doc__, argv, add_arguments, check_arguments)
    a = run.args
    groups = [train_group(run, dataset, method) for dataset in a.datasets for method in a.methods]
    image = os.path.basename(plot_samples(run.path("mixture_modes.png"), groups, a.datasets, a.methods))
    diverged = [f"{METHODS[g['method']].label} on {g['dataset']}: {g['status'].count('diverged')}"
                for g in groups if "diverged" in g["status"]]
    report = common.write_report(
        run, "2-D ring and grid: modes captured, high-quality samples, reverse KL (VEEGAN'17 / PacGAN'18)",
        [("Budget", budget_text(groups, a) + (f" Diverged seeds: {'; '.join(diverged)}." if diverged else "")),
         ("Modes, high-quality samples and reverse KL",
          f"Raw generator, mean ± std over {a.seeds} seeds. Published columns: modes / high-quality % "
          "from each paper's Table 1 (— where the paper has no such row).\n\n" + score_table(groups)),
         ("Per seed (raw generator)", per_seed_table(groups)),
         ("EMA generator", score_table(groups, "ema")),
         ("Notes", NOTES)],
        [image])
    common.finish(run, report, [image])
    return {"report": report, "image": run.path(image), "groups": groups}


if __name__ == "__main__":
    common.run_main(main)
