r"""Lucic et al. 2018 ("Are GANs Created Equal?"): FID per loss over a learning-rate sweep on Fashion-MNIST.

    python -m experiments.lucic_losses --out=DIR [--quick | --full]
        [--methods=mm,ns,ls,wgan,wgan_gp,dragan,hinge] [--lrs=2e-4] [--seeds=2]
        [--steps=1500] [--eval_samples=2000] [--report_only] [--data_dir=DIR] [--cache_dir=DIR]

For each loss (``--methods``, see :data:`METHODS`) every learning rate of
``--lrs`` (G and D alike; Adam β1 0.5, β2 0.999, one D step per G step) is
trained with seeds 0 … ``--seeds``−1 on the InfoGAN-style nets of
``configs/infogan_fashion_mnist.py`` (batch 64; ``:quick``, its narrow nets,
under ``--quick``). It is one ganjax sweep (:mod:`ganjax.sweep.run`, ``vmap``
mode) in ``DIR/runs``: a method's learning rates × seeds differ only in
stacked hyperparameters, so they train as one vmapped program (one group per
method). At the last step the raw generator (no EMA, as in the paper) is
scored with FID on the ganjax Fashion-MNIST domain classifier's features
(``eval.features=classifier``), ``--eval_samples`` generated vs as many train
images. Running the same command again finishes an interrupted sweep; any
other command starts ``DIR/runs`` afresh. The same command with ``--report_only``
writes the report from the trials finished so far, training nothing (a sweep
that spans sittings can be read while it runs or after it was stopped).

Budgets (each flag given on the command line overrides its budget's value):

=============  =======================  =============================  ==============================
               CPU (default)            ``--full`` (an accelerator)    ``--quick`` (the test suite)
=============  =======================  =============================  ==============================
nets           the config's widths      the config's widths            ``:quick`` (FC 256, conv 32)
steps          1,500 (1.6 epochs)       18,740 (20 epochs, the paper)  3
lrs            2e-4 (the config's)      1e-5 … 1e-2, 7 log-spaced      1e-3
seeds          2                        5                              1
eval samples   2,000                    10,000                         200
=============  =======================  =============================  ==============================

Writes in ``DIR``:

* ``lucic_losses_fid.png`` — per method (ordered by median), the final FID of
  every (lr, seed) trial as a point coloured by lr over a box of them;
  diverged (and failed) trials are counted at the top as red crosses;
* ``lucic_losses_best_of_k.png`` — best FID among k trials drawn at random,
  k = 1 … min(n, 10) (:func:`ganjax.sweep.summary.plot_best_of_k`, the
  paper's Fig. 4), and ``lucic_losses_fid_vs_lr.png`` (with two or more lrs);
* ``lucic_losses.md`` — the run record, the budget, a per-method table
  (trials, diverged, failed, min / median / mean ± std FID, best lr and its
  mean FID over seeds, our rank, the paper's Fashion-MNIST best FID and
  rank), FID per learning rate, and notes on what differs from the paper:
  above all, our FID uses the domain classifier, not Inception, so only the
  rankings can be compared, never the values.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
from typing import Any, Mapping, Sequence

import numpy as np

from configs.infogan_fashion_mnist import STEPS_PER_EPOCH
from experiments import common
from ganjax import storage
from ganjax.errors import ConfigError, GanjaxError

NAME = "lucic_losses"
CONFIG = "configs/infogan_fashion_mnist.py"
LR_KEYS = ("optimizer_g.learning_rate", "optimizer_d.learning_rate")
LR = LR_KEYS[1]
METRIC = "fid"
PENALTY_WEIGHT = 10.0  # λ of WGAN-GP (Gulrajani et al.) and DRAGAN (Kodali et al.)
CLIP = 0.01            # WGAN's weight clipping (Arjovsky et al.)


@dataclasses.dataclass(frozen=True)
class Method:
    """One loss of the comparison.

    Attributes:
      label: the paper's name.
      loss, penalty: the config's ``loss`` and ``penalty``; the pair names the method
        (:func:`ganjax.sweep.summary.method_label`), so it is unique in :data:`METHODS`.
      extra: further config keys the method sets.
      published: Lucic et al. 2018's best Fashion-MNIST FID (Inception features), None without a row.
    """

    label: str
    loss: str
    penalty: str = "none"
    extra: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    published: float | None = None

    @property
    def key(self) -> str:
        """The sweep summary's name of the method (``wasserstein+wgan_gp``)."""
        from ganjax.sweep.summary import method_label

        return method_label({"loss": self.loss, "penalty": self.penalty}, {})

    def overrides(self) -> dict[str, Any]:
        """Every config key the method sets."""
        return {"loss": self.loss, "penalty": self.penalty, **self.extra}


# With a gradient penalty, D has no BatchNorm (the paper, after Gulrajani et al.).
UNNORMALISED_D = {"penalty_weight": PENALTY_WEIGHT, "model.d.norm": "none"}

# Published: Lucic, Kurach, Michalski, Gelly, Bousquet, "Are GANs Created Equal? A Large-Scale Study",
# NeurIPS 2018: the best Fashion-MNIST FID per loss after its large hyperparameter search (Inception
# features), the values ganjax's issue 7 quotes. The paper has no hinge-loss GAN.
METHODS: dict[str, Method] = {
    "mm": Method("MM GAN", "minimax", published=29.6),
    "ns": Method("NS GAN", "non_saturating", published=26.5),
    "ls": Method("LSGAN", "least_squares", published=30.7),
    "wgan": Method("WGAN", "wasserstein", extra={"optimizer_d.clip_value": CLIP}, published=21.5),
    "wgan_gp": Method("WGAN-GP", "wasserstein", "wgan_gp", UNNORMALISED_D, published=24.5),
    "dragan": Method("DRAGAN", "non_saturating", "dragan", UNNORMALISED_D, published=27.7),
    "hinge": Method("hinge GAN", "hinge"),
}


@dataclasses.dataclass(frozen=True)
class Budget:
    """A mode's defaults: base config, learning rates, seeds, steps and FID sample count."""

    base: str
    lrs: tuple[float, ...]
    seeds: int
    steps: int
    eval_samples: int


BUDGETS = {
    # 1,500 steps: a pilot NS run's FID (2,000 samples) fell 500.7 → 122.8 → 60.6 → 27.2 → 20.8 → 16.7 → 17.5
    # → 15.4 at steps 250 … 2,000, flat within its noise from about step 1,500 on, and 7 methods × 2 seeds of
    # 1,500 steps take about 2 hours on a quiet 2-core CPU (docs/gallery.md, Lucic section).
    "cpu": Budget(CONFIG, (2e-4,), 2, 1_500, 2_000),
    "full": Budget(CONFIG, tuple(float(f"{x:.3g}") for x in np.logspace(-5, -2, 7)), 5, 20 * STEPS_PER_EPOCH,
                   10_000),  # the paper: 20 epochs
    "quick": Budget(CONFIG + ":quick", (1e-3,), 1, 3, 200),
}
BUDGET_LABELS = {"cpu": "CPU", "full": "--full", "quick": "--quick"}
BUDGET_NOTES = {"cpu": "The CPU default", "full": "`--full`: the paper's budget, meant for an accelerator",
                "quick": "`--quick`: a pipeline check, not a result"}

TABLE_COLUMNS = ["method", "loss + penalty", "trials", "diverged", "failed", "min FID", "median FID",
                 "mean ± std FID", "best lr", "FID at best lr", "our rank", "published best FID (Inception)",
                 "published rank"]


# ---------------------------------------------------------------------------
# Arguments.


def parse_lrs(text: str) -> tuple[float, ...]:
    """``'1e-4,2e-4'`` → ``(1e-4, 2e-4)`` (duplicates dropped); a bad entry raises ``ConfigError``."""
    entries = [t.strip() for t in text.split(",") if t.strip()]
    if not entries:
        raise ConfigError(f"--lrs must list at least one learning rate (e.g. 1e-4,2e-4), got {text!r}")
    lrs = []
    for t in entries:
        try:
            lr = float(t)
        except ValueError:
            raise ConfigError(f"--lrs entry {t!r} is not a number; give positive learning rates such as "
                              f"1e-4,2e-4") from None
        if not (math.isfinite(lr) and lr > 0):
            raise ConfigError(f"--lrs entry {t!r} must be a positive finite learning rate")
        lrs.append(lr)
    return tuple(dict.fromkeys(lrs))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--full", action="store_true",
                        help="the paper's budget (20 epochs, 7 lrs, 5 seeds, 10,000 eval samples): for an accelerator")
    parser.add_argument("--methods", default=",".join(METHODS),
                        help=f"comma-separated subset of {', '.join(METHODS)} (default: all)")
    parser.add_argument("--lrs", default=None,
                        help="comma-separated learning rates, G and D alike (default: per budget, below)")
    parser.add_argument("--seeds", type=common.positive(), default=None,
                        help="seeds 0..N-1 per lr (default: per budget)")
    parser.add_argument("--steps", type=common.positive(), default=None, help="train steps (default: per budget)")
    parser.add_argument("--report_only", action="store_true",
                        help="write the report from the trials finished so far in DIR/runs (the same settings), "
                             "training nothing: while the sweep runs, or after it was stopped")
    common.add_fid_arguments(parser)
    parser.set_defaults(eval_samples=None)
    parser.epilog = "Defaults per budget (a flag given overrides its budget's value): " + "; ".join(
        f"{label}: --lrs={','.join(f'{lr:g}' for lr in b.lrs)} --seeds={b.seeds} --steps={b.steps} "
        f"--eval_samples={b.eval_samples}" for label, b in ((BUDGET_LABELS[n], b) for n, b in BUDGETS.items()))


def budget_name(a: argparse.Namespace) -> str:
    return "quick" if a.quick else "full" if a.full else "cpu"


def check_arguments(a: argparse.Namespace) -> None:
    """Fills the budget's defaults, parses ``--methods``/``--lrs`` and validates every trial (before writing)."""
    if a.quick and a.full:
        raise ConfigError("--quick and --full exclude each other: give at most one of them")
    budget = BUDGETS[budget_name(a)]
    a.methods = common.parse_names("methods", a.methods, METHODS)
    a.lrs = parse_lrs(a.lrs) if a.lrs is not None else budget.lrs
    for key in ("seeds", "steps", "eval_samples"):
        if getattr(a, key) is None:
            setattr(a, key, getattr(budget, key))
    a.base = budget.base
    from ganjax.sweep.spec import expand

    expand(make_sweep(a))  # every trial's config is valid


# ---------------------------------------------------------------------------
# The sweep.


def method_axes(names: Sequence[str]) -> list:
    """Sweep axes giving each trial exactly the keys of one method of ``names``.

    A grid over the methods' losses; per loss, a grid over its methods'
    penalties; then each method's other keys, conditional on its (loss,
    penalty) pair — so ``--methods=wgan_gp`` alone is Wasserstein with the
    gradient penalty only.
    """
    from ganjax.sweep.spec import axis

    methods = [METHODS[n] for n in names]
    losses = tuple(dict.fromkeys(m.loss for m in methods))
    axes = [axis("loss", grid=losses)]
    axes += [axis("penalty", grid=tuple(m.penalty for m in methods if m.loss == loss), when={"loss": loss})
             for loss in losses]
    axes += [axis(key, grid=(value,), when={"loss": m.loss, "penalty": m.penalty})
             for m in methods for key, value in m.extra.items()]
    return axes


def make_sweep(a: argparse.Namespace):
    """The sweep config: methods × ``a.lrs`` (G and D) × seeds over ``a.base``; FID of the raw G at the end."""
    from ganjax.sweep.spec import axis, sweep_config

    import jax

    steps = a.steps
    # On a CPU one step per call (log_every = 1): the vmapped group then runs no lax.scan, whose loop body
    # XLA:CPU runs these conv nets ~4x slower in (2.1 s vs 0.5 s per InfoGAN step, 2 cores).
    log_every = 1 if jax.default_backend() == "cpu" else math.gcd(steps, 100)
    # Long groups checkpoint about every 2,000 steps (a multiple of log_every keeps 20+ steps per call), the
    # CPU budget's every 500 (a group takes some 20 minutes there), short ones only at the end.
    every = 2000 if steps > 4000 else 500
    checkpoint_every = log_every * max(1, every // log_every) if steps > 1000 else steps
    fixed = {"num_steps": steps, "eval_every": steps, "log_every": log_every, "checkpoint_every": checkpoint_every,
             "sample_every": 0, "eval.ema": False, **common.classifier_fid_keys(a)}
    return sweep_config(base=a.base, axes=[*method_axes(a.methods), axis(LR_KEYS, grid=a.lrs)],
                        seeds=a.seeds, metric=METRIC, fixed=fixed)


def holds_sweep(sweep_dir: str, sweep) -> bool:
    """True if ``sweep_dir``'s ``sweep.json`` holds this very sweep (base, axes, fixed keys, seeds and trial ids)."""
    from ganjax.config import to_plain
    from ganjax.sweep.spec import expand

    manifest = storage.join(sweep_dir, "sweep.json")
    if not storage.exists(manifest):
        return False
    old = json.loads(storage.read_text(manifest))
    return (old.get("sweep") == json.loads(json.dumps(to_plain(sweep)))
            and [t["id"] for t in old.get("trials", [])] == [t.id for t in expand(sweep)])


def clear_stale_runs(sweep_dir: str, sweep) -> bool:
    """Removes ``sweep_dir`` unless it holds this very sweep (:func:`holds_sweep`; then it resumes); True if
    removed.

    Trial ids hash only a trial's own params, not the sweep's fixed keys (steps,
    eval samples), so a folder of another budget must not be resumed. The
    manifest's ``sweep`` holds base, axes, fixed keys and seeds, its ``trials``
    the ids.
    """
    if not storage.exists(sweep_dir) or holds_sweep(sweep_dir, sweep):
        return False
    storage.rmtree(sweep_dir)
    return True


def finished_rows(sweep_dir: str, sweep) -> list[dict[str, Any]]:
    """``--report_only``: the result rows of the trials of ``sweep`` that have finished in ``sweep_dir``, in
    the sweep's order, read without training or changing anything there.

    Raises:
      ConfigError: ``sweep_dir`` holds another sweep or none, or no trial has finished yet.
    """
    from ganjax.sweep.results import read_results
    from ganjax.sweep.spec import expand

    if not holds_sweep(sweep_dir, sweep):
        raise ConfigError(f"--report_only: {sweep_dir} holds no run of this sweep (none yet, or one with other "
                          f"settings); run the same command without --report_only first")
    results = read_results(sweep_dir)
    rows = [results[t.id] for t in expand(sweep) if t.id in results]
    if not rows:
        raise ConfigError(f"--report_only: no trial in {sweep_dir} has finished yet")
    return rows


def partial_text(a: argparse.Namespace, rows: Sequence[Mapping[str, Any]], total: int) -> str:
    """The report's warning when only some trials have finished (``--report_only`` on a running or stopped
    sweep); '' when all have."""
    if len(rows) == total:
        return ""
    done = {method_of(r["params"]) for r in rows}
    missing = [METHODS[n].label for n in a.methods if n not in done]
    return (f"**Partial report** (`--report_only`): {len(rows)} of {total} trials have finished"
            + (f"; no trial of {', '.join(missing)} yet" if missing else "")
            + ". The ranking covers the finished methods only.\n\n")


# ---------------------------------------------------------------------------
# Results → per-method statistics.


def method_of(params: Mapping[str, Any]) -> str:
    """The :data:`METHODS` name of a trial's params (by its loss and penalty)."""
    pair = (params["loss"], params.get("penalty", "none"))
    for name, m in METHODS.items():
        if (m.loss, m.penalty) == pair:
            return name
    raise ConfigError(f"no method has loss={pair[0]!r} with penalty={pair[1]!r}")


def final_fid(row: Mapping[str, Any]) -> float | None:
    """A trial's FID at its last evaluation; None unless the trial is ok with a finite FID."""
    v = (row.get("final") or {}).get(METRIC)
    ok = row.get("status") == "ok" and isinstance(v, (int, float)) and math.isfinite(v)
    return float(v) if ok else None


def method_stats(rows: Sequence[Mapping[str, Any]], names: Sequence[str]) -> list[dict[str, Any]]:
    """One dict per method of ``names`` (in that order): counts, FIDs, best lr, our and the paper's rank.

    ``best_lr`` is the lr whose mean FID over seeds is lowest (``best_lr_fid``
    that mean: the analogue of the paper's best-model FID); ``rank`` orders the
    methods with a value by it, ``published_rank`` those with a published FID.
    """
    from ganjax.sweep import summary

    best_settings = {m.method: m.best_setting for m in summary.method_summaries(rows, METRIC, {})}
    stats = []
    for name in names:
        mine = [r for r in rows if method_of(r["params"]) == name]
        scored = [(v, float(r["params"][LR])) for r, v in ((r, final_fid(r)) for r in mine) if v is not None]
        setting = best_settings.get(METHODS[name].key)
        stats.append({"name": name, "trials": len(mine), "fids": [v for v, _ in scored],
                      "lrs": [lr for _, lr in scored],
                      "diverged": sum(r["status"] == "diverged" for r in mine),
                      "failed": sum(r["status"] == "failed" for r in mine),
                      "best_lr": float(setting.hyperparams[LR]) if setting else None,
                      "best_lr_fid": setting.stats["mean"] if setting else None,
                      "published": METHODS[name].published})
    for key, rank in (("best_lr_fid", "rank"), ("published", "published_rank")):
        order = sorted((s[key], s["name"]) for s in stats if s[key] is not None and math.isfinite(s[key]))
        for s in stats:
            s[rank] = next((i for i, (_, n) in enumerate(order, 1) if n == s["name"]), None)
    return stats


def _fid(x: float | None) -> str:
    return "—" if x is None else f"{x:.1f}"


def method_table(stats: Sequence[Mapping[str, Any]]) -> str:
    """The per-method table (:data:`TABLE_COLUMNS`), rows in ``stats`` order."""
    rows = []
    for s in stats:
        m, fids = METHODS[s["name"]], s["fids"]
        rows.append([m.label, f"`{m.key}`", s["trials"], s["diverged"], s["failed"],
                     _fid(min(fids) if fids else None), _fid(float(np.median(fids)) if fids else None),
                     common.mean_std(fids, 1), "—" if s["best_lr"] is None else f"{s['best_lr']:g}",
                     _fid(s["best_lr_fid"]), s["rank"] or "—", _fid(s["published"]), s["published_rank"] or "—"])
    return common.markdown_table(TABLE_COLUMNS, rows)


def lr_table(rows: Sequence[Mapping[str, Any]], names: Sequence[str], lrs: Sequence[float]) -> str:
    """Method × learning rate: final FID, mean ± std over the ok seeds, and how many seeds diverged or failed."""
    def cell(members: list) -> str:
        fids = [v for v in map(final_fid, members) if v is not None]
        lost = len(members) - len(fids)
        return common.mean_std(fids, 1) + (f" ({lost}/{len(members)} diverged or failed)" if lost else "")

    body = [[METHODS[n].label, *(cell([r for r in rows if method_of(r["params"]) == n
                                       and float(r["params"][LR]) == lr]) for lr in lrs)] for n in names]
    return common.markdown_table(["method", *(f"lr {lr:g}" for lr in lrs)], body)


def rank_agreement(stats: Sequence[Mapping[str, Any]]) -> str:
    """Spearman's ρ between our ranking and the paper's, over methods that have both (needs three)."""
    from scipy import stats as scipy_stats

    pairs = [(s["best_lr_fid"], s["published"]) for s in stats
             if s["best_lr_fid"] is not None and s["published"] is not None]
    if len(pairs) < 3:
        return f"Too few methods with both an FID and a published value ({len(pairs)}) for a rank correlation."
    rho = scipy_stats.spearmanr(*zip(*pairs)).statistic
    return (f"Spearman's rank correlation between our FID at the best lr and the published best FID, over the "
            f"{len(pairs)} methods with both: ρ = {rho:+.2f} (+1: the same order, −1: reversed).")


# ---------------------------------------------------------------------------
# Plot.


def plot_fid(path: str, stats: Sequence[Mapping[str, Any]], lrs: Sequence[float]) -> str:
    """Per method, ordered by median: a box of the ok trials' FIDs, each trial a point coloured by its lr,
    and the diverged and failed trials as counted red crosses at the top."""
    from matplotlib import colormaps
    from matplotlib.lines import Line2D

    order = sorted(stats, key=lambda s: (not s["fids"], float(np.median(s["fids"])) if s["fids"] else 0.0))
    fig, axes = common.subplots(1, 1, size=(max(5.0, 1.4 * len(order) + 2.0), 4.4))
    ax = axes[0, 0]
    cmap = colormaps["viridis"]
    colour = {lr: cmap(i / max(1, len(lrs) - 1)) for i, lr in enumerate(lrs)}
    rng = np.random.default_rng(0)
    for i, s in enumerate(order):
        if s["fids"]:
            ax.boxplot([s["fids"]], positions=[i], widths=0.5, showfliers=False, manage_ticks=False,
                       medianprops={"color": "k"})
            jitter = rng.uniform(-0.15, 0.15, len(s["fids"]))
            ax.scatter(i + jitter, s["fids"], s=22, c=[colour[lr] for lr in s["lrs"]], edgecolors="k",
                       linewidths=0.4, zorder=3)
        lost = [f"{s[k]} {k}" for k in ("diverged", "failed") if s[k]]
        if lost:
            ax.plot([i], [0.95], "x", color="red", markersize=8, mew=2, transform=ax.get_xaxis_transform())
            ax.text(i + 0.1, 0.95, "\n".join(lost), color="red", fontsize=7, va="center",
                    transform=ax.get_xaxis_transform())
    values = [v for s in stats for v in s["fids"]]
    if values and max(values) > 10 * min(values):
        ax.set_yscale("log")
    if values:
        low, high = min(values), max(values)
        pad = (high / low) ** 0.15 if ax.get_yscale() == "log" else None
        ax.set_ylim(*((low / pad, high * pad ** 2) if pad else (low - 0.1 * (high - low + 1),
                                                                  high + 0.3 * (high - low + 1))))
    ax.set_xticks(range(len(order)))
    ax.set_xticklabels([f"{METHODS[s['name']].label}\n{METHODS[s['name']].key}" for s in order], fontsize=7)
    ax.set_xlim(-0.6, len(order) - 0.4)
    ax.set_ylabel("final FID (domain classifier; lower is better)")
    ax.set_title("FID per loss over all (lr, seed) trials; box: ok trials; red ×: diverged or failed", fontsize=9)
    handles = [Line2D([], [], marker="o", ls="", color=colour[lr], markeredgecolor="k", label=f"{lr:g}")
               for lr in lrs]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=7, title="lr (G and D)",
              title_fontsize=7)
    return common.save(fig, path)


# ---------------------------------------------------------------------------
# Report.


def budget_text(a: argparse.Namespace, config, rows: Sequence[Mapping[str, Any]]) -> str:
    from ganjax.models.infogan import InfoGANDiscriminator, InfoGANGenerator

    def width(net: str, module, key: str) -> int:  # the config's value, else the net's default
        return config.model[net].get(key, getattr(module, key))

    g, d = (lambda k: width("g", InfoGANGenerator, k)), (lambda k: width("d", InfoGANDiscriminator, k))
    wall = sum(float(r.get("wall_seconds", 0.0)) for r in rows)
    return (f"{BUDGET_NOTES[budget_name(a)]}. Base `{a.base}`: G FC {g('fc_width')}, FC map and deconv "
            f"{2 * g('width')} and {g('width')} channels; D conv {d('width')} and {2 * d('width')} channels, FC "
            f"{d('fc_width')}; z ~ "
            f"U(−1, 1)^{config.model.z_dim}; batch {config.batch_size}; Adam(β1 {config.optimizer_g.b1:g}, β2 "
            f"{config.optimizer_g.b2:g}), n_disc {config.n_disc}. {len(a.methods)} method(s) × {len(a.lrs)} learning "
            f"rate(s) ({', '.join(f'{lr:g}' for lr in a.lrs)}; G and D alike) × {a.seeds} seed(s) = "
            f"{len(a.methods) * len(a.lrs) * a.seeds} "
            f"trials, {a.steps} steps each ({a.steps / STEPS_PER_EPOCH:.2f} epochs of {STEPS_PER_EPOCH}); one "
            f"vmapped group per method in `runs/`. WGAN clips D's weights to ±{CLIP:g}; WGAN-GP and DRAGAN use "
            f"λ = {PENALTY_WEIGHT:g} and no BatchNorm in D. FID of the raw generator at step {a.steps}, "
            f"{a.eval_samples} generated vs {a.eval_samples} train images. Training and scoring wall time "
            f"summed over the finished trials' groups: {wall:.0f} s.")


NOTES = f"""
* **Our FID is not the paper's FID.** ganjax scores with its own Fashion-MNIST domain classifier's
  features (`eval.features=classifier`, a small CNN trained on Fashion-MNIST), the paper with
  Inception-v3 features of the images upscaled to 299×299. The two scales have nothing in common, so the
  published values are shown only for their **order**: compare the ranks, never the numbers.
* **Far smaller search.** The paper drew 100 hyperparameter settings per loss at random (learning rate,
  β1, n_disc, λ, clipping; wide and narrow ranges), then re-trained the best one 50 times and reported
  that mean. Here each loss gets the same learning rates (on a CPU by default only the config's 2e-4)
  × a few seeds, with β1 = 0.5, one D
  step per G step, λ = 10 and clip 0.01 fixed; "FID at best lr" (mean over seeds at the lr with the best
  mean) plays the role of the paper's best-model FID, and the best-of-k curves show how much of the
  ranking is the luck of a small budget.
* **Shorter training** unless `--full`: the CPU default trains {BUDGETS['cpu'].steps:,} steps
  ({BUDGETS['cpu'].steps / STEPS_PER_EPOCH:.1f} epochs; the paper: 20).
  The budget was picked where a pilot NS run's FID flattened (docs/gallery.md), so the methods are ranked near
  where NS levels off, not by how fast they start; slower starters (WGAN with clipping) may still be ranked
  low for that reason.
* The hinge loss is ganjax's addition (no row in the paper). WGAN and WGAN-GP use Adam like every other
  loss, as the paper did (not the RMSProp of the WGAN paper).
* Diverged trials (a NaN/Inf loss, gradient or parameter: frozen and reported by the sweep) have no FID;
  they are counted in the table and marked in the figure, not scored.
"""


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    from ganjax.sweep import summary
    from ganjax.sweep.run import base_params, run_sweep
    from ganjax.sweep.spec import expand, load_base

    run = common.start_run(NAME, __doc__, argv, add_arguments, check_arguments)
    a = run.args
    sweep = make_sweep(a)
    sweep_dir = run.path("runs")
    if a.report_only:
        rows = finished_rows(sweep_dir, sweep)
    else:
        if clear_stale_runs(sweep_dir, sweep):
            print(f"experiments.{NAME}: {sweep_dir} held another sweep; starting afresh")
        rows = list(run_sweep(sweep, sweep_dir).values())
    failed = [r for r in rows if r["status"] == "failed"]
    if len(failed) == len(rows):
        raise GanjaxError(f"every trial failed; the first: {failed[0]['error']}")
    stats = method_stats(rows, a.methods)
    images = [plot_fid(run.path(f"{NAME}_fid.png"), stats, a.lrs)]
    base = base_params(sweep)
    for suffix, plot in (("best_of_k", summary.plot_best_of_k), ("fid_vs_lr", summary.plot_metric_vs_lr)):
        if plot(rows, METRIC, base, run.path(f"{NAME}_{suffix}.png")):
            images.append(f"{NAME}_{suffix}.png")
    images = [os.path.basename(p) for p in images]
    errors = sorted({r["error"] for r in failed})
    report = common.write_report(
        run, "Lucic et al. 2018 on Fashion-MNIST: FID per GAN loss over a learning-rate sweep",
        [("Budget", partial_text(a, rows, len(expand(sweep))) + budget_text(a, load_base(sweep), rows)),
         ("Methods",
          "FID at the last step over every ok (lr, seed) trial of a method (mean ± sample std, ddof=1, over n trials); best lr: "
          "the lr with the lowest mean FID over its seeds, and that mean; our rank orders the methods by it. "
          "Published: Lucic et al. 2018, best Fashion-MNIST FID (Inception features; rank among the methods "
          "shown). **The two FIDs use different feature extractors: compare ranks only.**\n\n"
          + method_table(stats) + "\n\n" + rank_agreement(stats)
          + ("\n\nFailed groups: " + "; ".join(errors) if errors else "")),
         ("FID per learning rate", lr_table(rows, a.methods, a.lrs)),
         ("Notes", NOTES)],
        images)
    common.finish(run, report, images)
    return {"report": report, "images": [run.path(i) for i in images], "stats": stats, "rows": rows}


if __name__ == "__main__":
    common.run_main(main)
