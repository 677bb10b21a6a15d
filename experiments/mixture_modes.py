r"""2-D ring (8 modes) and grid (25 modes) benchmark of VEEGAN'17 / PacGAN'18: GAN, unrolled GAN, PacGAN.

    python -m experiments.mixture_modes --out=DIR [--quick] [--protocol=pacgan|ganjax] [--seeds=5]
        [--steps=N] [--batch-size=N] [--g-width=400] [--d-width=200] [--eval-every=N] [--resume]
        [--datasets=ring_2d,grid_2d] [--methods=gan,unrolled5,pack2,pack3,pack4]

``--protocol=pacgan`` (the default) is PacGAN'18's published setting, read from the authors' code
(``configs/ring_2d.py:pacgan``, :func:`ganjax.config.pacgan_protocol`): ring of radius 1 with σ 0.01,
grid {-4,…,4}² with σ 0.05, a fixed sample of 100,000 training points, G z ~ N(0, I₂) → 4 × 400
(Dense without bias → BatchNorm → ReLU), D 3 LinearMaxout layers of 200 units × 5 pieces, N(0, 0.02²)
init, Adam(1e-4, β1 0.2: the authors' Blocks ``beta1=0.8`` weighs the new gradient), simultaneous updates,
a batch of 100 packs, 400 epochs of 1,000 steps.
``--protocol=ganjax`` is ganjax's own earlier setting (:func:`ganjax.config.mixture_config`).
The report lists every difference that remains from the paper's code.

For each dataset and method, the seeds ``0..N-1`` are trained as **one vmapped program**
(:class:`ganjax.sweep.vmapped.GroupRun`: the seeds' states stacked along a leading axis) in
``DIR/runs/<dataset>/<method>``, checkpointed at every evaluation. ``--resume`` continues those groups
from their last checkpoint — also to a larger ``--steps``, so a long run can be extended over several
sittings — and retrains a group whose settings changed. The methods differ in one config key each:

* ``gan`` — the plain non-saturating GAN;
* ``unrolled5`` — ``unroll_steps = 5``: G's loss against D unrolled 5 updates (Metz et al. 2016);
* ``pack2``, ``pack3``, ``pack4`` — ``pack = m``: D sees m samples at once (PacGAN, Lin et al. 2018).

The trainer's evaluator scores the raw and EMA generators on 2,500 samples (fixed noise per seed) with
:func:`ganjax.metrics.toy.mode_coverage`: a sample is *high quality* within 3σ of its nearest mode
centre, a mode is *captured* if some high-quality sample is nearest to it, and the reverse KL is
KL(q ‖ uniform) of the high-quality samples' distribution over modes.

Writes in ``DIR``:

* ``mixture_modes.md`` — modes captured, high-quality % and reverse KL, mean ± std over seeds, per
  method × dataset, beside the published VEEGAN'17 / PacGAN'18 Table 1 values; per-seed modes; the EMA
  generator's scores; the acceptance targets met or missed; the budget as a fraction of the paper's;
  the protocol's remaining differences;
* ``mixture_modes.png`` — 2,500 generated samples of the first seed per method (columns; real data
  first) for the ring and the grid (rows), mode centres as red crosses;
* ``mixture_modes_curves.png`` (with ``--eval-every``) — modes and high-quality % against step.
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


PROTOCOLS = {
    "pacgan": "PacGAN'18's published protocol (configs/*_2d.py:pacgan; ganjax.config.pacgan_protocol)",
    "ganjax": "ganjax's own setting of mixture_config (G 4×400 ReLU, z ~ N(0, I_256), D 4×200 ReLU, "
              "Adam(1e-4, β1 0.5), batch 500, 20,000 steps)",
}


def add_toy_budget_arguments(parser: argparse.ArgumentParser, seeds: int = 5) -> None:
    """``--protocol``, ``--seeds``, ``--steps``, ``--batch-size``, ``--g-width``, ``--d-width``, ``--eval-every``
    and ``--resume`` (read by :func:`toy_config` and :func:`common.train_seeds`)."""
    parser.add_argument("--protocol", choices=sorted(PROTOCOLS), default="pacgan",
                        help="the training setting: " + "; ".join(f"{k}: {v}" for k, v in PROTOCOLS.items())
                             + " (default pacgan)")
    parser.add_argument("--seeds", type=common.positive(), default=seeds,
                        help=f"seeds 0..N-1, trained as one vmapped group per method and dataset (default {seeds})")
    parser.add_argument("--steps", type=common.positive(), default=None,
                        help="train steps (default: the protocol's, pacgan 400,000 = 400 epochs of 1,000 steps, "
                             "ganjax 20,000; --quick: 20)")
    parser.add_argument("--batch-size", type=common.positive(), default=None,
                        help="pacgan: D inputs (packs) per batch, default 100, i.e. 100·m samples for PacGAN m; "
                             "ganjax: samples per batch, default 500, rounded down to a multiple of the pack size")
    parser.add_argument("--g-width", type=common.positive(), default=None,
                        help="units in each of G's hidden layers (default: the config's 400)")
    parser.add_argument("--d-width", type=common.positive(), default=None,
                        help="units in each of D's hidden layers (default: the config's 200)")
    parser.add_argument("--eval-every", type=common.positive(), default=None,
                        help="also score the generators every N steps (a learning curve; default: only at the end)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the groups in DIR/runs from their last checkpoint (also to more --steps "
                             "than before) instead of training afresh; a group of other settings is retrained")


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
    """The 2-D mixture config of ``--protocol`` (its ``quick`` variant under ``--quick``) for PacGAN ``pack``
    with the budget of ``a`` (``steps``, ``batch_size``, ``g_width``, ``d_width``; ``None`` keeps the
    config's) and evaluations (mode coverage, 2,500 samples) every ``eval_every`` steps and at the last
    step, with a checkpoint at each (so ``--resume`` continues from there).

    ``pacgan``: the batch is ``batch_size`` packs (100 by default), i.e. ``batch_size · pack`` samples;
    ``ganjax``: ``batch_size`` samples rounded down to a multiple of ``pack``."""
    from ganjax.config import PACGAN_PACKS_PER_BATCH, mixture_config

    variants = [v for v in ("pacgan" if a.protocol == "pacgan" else "",
                            f"pack{pack}" if a.protocol == "pacgan" and pack > 1 else "",
                            "quick" if a.quick else "") if v]
    c = mixture_config(dataset, ",".join(variants) or None)
    c.seed = seed
    if a.steps:
        c.num_steps = a.steps
    if a.protocol == "pacgan":
        c.batch_size = (a.batch_size or (c.batch_size // pack if a.quick else PACGAN_PACKS_PER_BATCH)) * pack
    else:
        if a.batch_size:
            c.batch_size = a.batch_size
        c.batch_size -= c.batch_size % pack
    depth_g, depth_d = len(c.model.g.hidden), len(c.model.d.hidden)
    if a.g_width:
        c.model.g.hidden = (a.g_width,) * depth_g
    if a.d_width:
        c.model.d.hidden = (a.d_width,) * depth_d
    common.evaluate_once_at_end(c)
    if a.eval_every:
        c.eval_every = math.gcd(c.num_steps, a.eval_every)
        c.log_every = math.gcd(c.eval_every, c.log_every)
    c.checkpoint_every = c.eval_every
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
    g = common.train_seeds(run.path(os.path.join("runs", dataset, method)), configs, f"{method}-{dataset}",
                           resume=a.resume)
    return {"dataset": dataset, "method": method, "scores": g.scores, "curve": g.curve,
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
        data = next(g["config"].data.to_dict() for g in groups if g["dataset"] == dataset)
        data.pop("num_examples", None)  # the real-data panel draws from the distribution itself
        toy = make_toy(dataset, **data)
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


def nets_text(c) -> str:
    """``'G z ~ N(0, I_2) → [400, …] relu (…), D [200, …] maxout (5 pieces), non_saturating loss,
    simultaneous updates, Adam(lr 0.0001, β1 0.2, β2 0.999)'``: a mixture config's nets and training rule."""
    g_opts, d_opts = c.model.g, c.model.d
    g_text = (f"G z ~ N(0, I_{c.model.z_dim}) → {list(g_opts.hidden)} {g_opts.activation}"
              + (" (Dense without bias → BatchNorm → ReLU)" if g_opts.get("norm_position") == "before_activation" else ""))
    pieces = d_opts.get("maxout_pieces", 1)
    d_text = f"D {list(d_opts.hidden)} " + (f"maxout ({pieces} pieces)" if pieces > 1 else d_opts.activation)
    return (f"{g_text}, {d_text}, {c.loss} loss, {c.update_rule} updates, "
            f"Adam(lr {c.optimizer_g.learning_rate:g}, β1 {c.optimizer_g.b1:g}, β2 {c.optimizer_g.b2:g})")


def budget_text(groups: Sequence[dict], a: argparse.Namespace) -> str:
    """Seeds, steps as a fraction of the protocol's published budget, nets, optimiser and batch per method."""
    from ganjax.config import PACGAN_EPOCH_STEPS, PACGAN_EPOCHS

    c = groups[0]["config"]
    batches = ", ".join(f"{METHODS[g['method']].label} {g['batch_size']}" for g in groups
                        if g["dataset"] == groups[0]["dataset"])
    if a.protocol == "pacgan":
        paper = PACGAN_EPOCHS * PACGAN_EPOCH_STEPS
        fraction = (f"**{c.num_steps:,} of PacGAN'18's {paper:,} steps** ({c.num_steps / PACGAN_EPOCH_STEPS:g} of "
                    f"{PACGAN_EPOCHS} epochs of {PACGAN_EPOCH_STEPS:,} steps, {100 * c.num_steps / paper:.2g}%)")
    else:
        fraction = f"**{c.num_steps:,} steps** (ganjax's own protocol: no published budget)"
    return (f"Protocol `{a.protocol}`: {PROTOCOLS[a.protocol]}. {a.seeds} seeds per method (one vmapped group "
            f"each), {fraction}; {nets_text(c)}; samples per batch: {batches}. Scores at step {c.num_steps:,}, {NUM_SAMPLES} samples per seed "
            f"and generator.")


# The acceptance targets at PacGAN'18's protocol: (method, dataset) → (min modes, min HQ fraction).
TARGETS = {("pack4", "grid_2d"): (23.0, 0.85), ("pack4", "ring_2d"): (7.5, 0.85)}


def target_rows(groups: Sequence[dict]) -> list[list[str]]:
    """Each target of :data:`TARGETS` whose group ran, per generator: measured means and met / missed; and
    the GAN-vs-PacGAN4 mode comparison per dataset."""
    by_key = {(g["dataset"], g["method"]): g for g in groups}
    rows = []
    for (method, dataset), (modes, hq) in TARGETS.items():
        g = by_key.get((dataset, method))
        if g is None:
            continue
        for gen in ("raw", "ema"):
            s = g["scores"][gen]
            m = float(np.mean([e["modes"] for e in s])) if s else math.nan
            q = float(np.mean([e["high_quality"] for e in s])) if s else math.nan
            met = m >= modes and q >= hq
            rows.append([f"{METHODS[method].label}, {DATASETS[dataset]}", gen, f"≥ {modes:g} modes, ≥ {100 * hq:g}% HQ",
                         f"{m:.1f} modes, {100 * q:.1f}% HQ", "met" if met else "missed"])
    for dataset in DATASETS:
        gan, pac = by_key.get((dataset, "gan")), by_key.get((dataset, "pack4"))
        if gan is None or pac is None:
            continue
        for gen in ("raw", "ema"):
            mg = float(np.mean([e["modes"] for e in gan["scores"][gen]])) if gan["scores"][gen] else math.nan
            mp = float(np.mean([e["modes"] for e in pac["scores"][gen]])) if pac["scores"][gen] else math.nan
            rows.append([f"GAN vs PacGAN4, {DATASETS[dataset]}", gen, "GAN fewer modes than PacGAN4",
                         f"{mg:.1f} vs {mp:.1f}", "met" if mg < mp else "missed"])
    return rows


def plot_curves(path: str, groups: Sequence[dict], generator: str = "raw") -> str:
    """Modes captured and high-quality % (mean over seeds) against step, one line per method, per dataset."""
    datasets = list(dict.fromkeys(g["dataset"] for g in groups))
    fig, axes = common.subplots(len(datasets), 2, size=(4.2, 2.8))
    for row, dataset in zip(axes, datasets):
        for g in (g for g in groups if g["dataset"] == dataset):
            steps = [s for s, rows in g["curve"][generator].items() if rows]
            for ax, key, scale in ((row[0], "modes", 1), (row[1], "high_quality", 100)):
                ax.plot(steps, [scale * np.mean([r[key] for r in g["curve"][generator][s]]) for s in steps],
                        marker="o" if len(steps) < 30 else None, markersize=3, label=METHODS[g["method"]].label)
        row[0].set_ylabel(f"{DATASETS[dataset]}\nmodes captured")
        row[1].set_ylabel("high-quality %")
        for ax in row:
            ax.set_xlabel("step")
            ax.grid(alpha=0.3)
        row[0].legend(fontsize=7)
    fig.suptitle(f"{generator} generator, mean over seeds", fontsize=9)
    return common.save(fig, path)


PROTOCOL_DIFFERENCES = """
What `--protocol=pacgan` takes from PacGAN'18's code (`synthetic_data_experiments/2D*_GAN&PacGAN`), and
what still differs:

| | PacGAN'18 code | ganjax `:pacgan` | ganjax's own setting (`--protocol=ganjax`) |
|---|---|---|---|
| ring | 8 modes, radius 1, σ 0.01 | same | radius 2, σ 0.02 |
| grid | 25 modes, spacing 2, σ 0.05 | same | same |
| training data | a fixed sample of 100,000 points; 100,000 packed tuples of m points drawn once (with replacement), shuffled each epoch | the same fixed 100,000 points; each step draws every pack's m points uniformly with replacement from them (fresh tuples) | fresh draws from the mixture |
| data sample per run | a new sample per run | one sample (`data.sample_seed` 0) shared by all seeds | — |
| G | z ~ N(0, I₂); 4 × 400, Dense (no bias) → BatchNorm → ReLU; linear output | same (BatchNorm momentum 0.95, ε 1e-4, as Blocks) | z ~ N(0, I₂₅₆); 4 × 400 ReLU with bias, no BatchNorm |
| G's BatchNorm batch | each of the m pack slots is a separate G call on 100 samples | same: statistics per pack slot (`model.g.bn_groups` = m; one G call on 100·m samples, row n in slot n mod m; before 2026-12-04: over all 100·m) | — |
| D | 3 LinearMaxout layers (200 units × 5 pieces), linear logit | same | 4 × 200 ReLU |
| init | all kernels N(0, 0.02²), biases 0 | same | Glorot uniform |
| optimiser | Blocks' Adam(1e-4, `beta1=0.8`) both players; Blocks' `beta1`/`beta2` weigh the new gradient, so this is β1 0.2, β2 0.999 in Kingma & Ba's (and Optax's) notation | Adam(1e-4, β1 0.2, β2 0.999, ε 1e-8) (before 2026-12-04: β1 0.8, a misreading of Blocks' convention) | Adam(1e-4, β1 0.5) |
| updates | simultaneous: both gradients from one forward pass (one z) | same (before 2026-12-04: G's loss on a noise draw of its own) | alternating |
| loss | NS (D: BCE; G: −log D(G(z))) | same | same |
| batch | 100 packs (100·m samples) | same | 500 samples |
| budget | 400 epochs × 1,000 steps = 400,000 steps | the run's `--steps` (see *Budget*) | 20,000 steps |
| runs | 10 per setting | `--seeds` | `--seeds` |
| score | 2,500 samples, BatchNorm population statistics, ≤ 3σ (Mahalanobis) from the nearest mode | same (ganjax's eval mode uses the running averages) | same |
"""


NOTES = """
* The two published tables come from **different setups** and disagree about the same plain GAN
  (VEEGAN'17: 1 ring mode and 3.3 grid modes; PacGAN'18: 6.3 and 17.3 — and 99.3% vs 0.5% high-quality
  grid samples in VEEGAN against 94.8% in PacGAN): each paper trained its own baseline with its own nets,
  training length, hyperparameters and number of runs, so neither GAN row is a fixed reference, and the
  unrolled-GAN row (VEEGAN's) and the PacGAN rows (PacGAN's) are not from one protocol either.
* The default protocol is PacGAN'18's (see *Protocol*); a run with fewer steps (see *Budget*) measures an
  earlier point of training than the paper's table.
* "High quality" and "captured" follow both papers: within 3σ of the nearest centre (σ = the ring's and
  the grid's component std of the protocol), 2,500 samples; reverse KL as in PacGAN (the high-quality
  samples' mode histogram against the uniform one; ∞ for a seed with no high-quality sample, counted apart).
"""


def main(argv: Sequence[str] | None = None) -> dict:
    run = common.start_run("mixture_modes", __doc__, argv, add_arguments, check_arguments)
    a = run.args
    groups = [train_group(run, dataset, method) for dataset in a.datasets for method in a.methods]
    images = [os.path.basename(plot_samples(run.path("mixture_modes.png"), groups, a.datasets, a.methods))]
    if any(len(g["curve"]["raw"]) > 1 for g in groups):
        images.append(os.path.basename(plot_curves(run.path("mixture_modes_curves.png"), groups)))
    diverged = [f"{METHODS[g['method']].label} on {g['dataset']}: {g['status'].count('diverged')}"
                for g in groups if "diverged" in g["status"]]
    sections = [("Budget", budget_text(groups, a) + (f" Diverged seeds: {'; '.join(diverged)}." if diverged else "")),
                ("Modes, high-quality samples and reverse KL",
                 f"Raw generator, mean ± std over {a.seeds} seeds. Published columns: modes / high-quality % "
                 "from each paper's Table 1 (— where the paper has no such row).\n\n" + score_table(groups)),
                ("Per seed (raw generator)", per_seed_table(groups)),
                ("EMA generator", score_table(groups, "ema"))]
    targets = target_rows(groups)
    if a.protocol == "pacgan" and targets:
        sections.append(("Targets", "The acceptance targets for PacGAN'18's protocol (means over seeds).\n\n"
                         + common.markdown_table(["target", "generator", "wanted", "measured", "verdict"], targets)))
    if a.protocol == "pacgan":
        sections.append(("Protocol", PROTOCOL_DIFFERENCES))
    sections.append(("Notes", NOTES))
    report = common.write_report(
        run, "2-D ring and grid: modes captured, high-quality samples, reverse KL (VEEGAN'17 / PacGAN'18)",
        sections, images)
    common.finish(run, report, images)
    return {"report": report, "image": run.path(images[0]), "images": [run.path(i) for i in images],
            "groups": groups}


if __name__ == "__main__":
    common.run_main(main)
