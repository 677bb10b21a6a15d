"""A sweep's ``results.jsonl`` → ``summary.md``, ``metric_vs_lr.png`` and ``best_of_k.png``.

Vocabulary:

* a *method* is a loss plus its penalty (``"wasserstein+wgan_gp"``; just the
  loss when the penalty is ``none``), from the trial's params, else from the
  base config (``base_params``);
* a *setting* is a trial's params without ``seed``: one hyperparameter point,
  repeated over seeds;
* a trial's *value* is ``best[metric]`` (its best evaluation) if present, else
  ``final[metric]`` (its last); only ``ok`` trials with a finite value enter
  the statistics — diverged and failed trials are counted, never scored.

Statistics over seeds are the mean, the sample standard deviation
(``ddof=1``, :func:`ganjax.stats.seed_std`) and the 95% Student-t interval of the mean; with one seed the
standard deviation is 0 and the interval is NaN (shown as ``—``): one value
says nothing about the spread.

The best-of-k curves follow Lucic et al. 2018 ("Are GANs Created Equal?",
Fig. 4): for a budget of k trials drawn at random (without replacement) from
a method's ok trials — every (setting, seed) pair being one trial — the
distribution of the best value among the k.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
from scipy import stats as scipy_stats

from ganjax.stats import seed_std

from ganjax import plots, storage
from ganjax.errors import ConfigError, unknown_name
from ganjax.sweep import results as results_lib
from ganjax.sweep.spec import group_by

Row = Mapping[str, Any]
Setting = tuple[tuple[str, Any], ...]

SUMMARY = "summary.md"
METRIC_VS_LR = "metric_vs_lr.png"
BEST_OF_K = "best_of_k.png"
# Learning-rate keys the plots use, in order of preference (the first one varied by the sweep).
LR_KEYS = ("optimizer_d.learning_rate", "optimizer_g.learning_rate")
METHOD_KEYS = ("loss", "penalty")
MAX_K = 10
NONE = "—"


# ---------------------------------------------------------------------------------------------------------------------
# Trials → methods, settings, values.


def method_label(params: Mapping[str, Any], base_params: Mapping[str, Any]) -> str:
    """``"non_saturating"``, ``"wasserstein+wgan_gp"``: the loss, plus ``+penalty`` unless it is ``none``.

    ``loss`` and ``penalty`` come from ``params``, else from ``base_params``
    (the base config's); a missing penalty means ``none``.

    Raises:
      KeyError: neither gives a ``loss``.
    """
    loss = params["loss"] if "loss" in params else base_params["loss"]
    penalty = params.get("penalty", base_params.get("penalty", "none"))
    return str(loss) if penalty in (None, "none") else f"{loss}+{penalty}"


def _hashable(v: Any) -> Any:
    """JSON lists (tuples written by the sweep) → tuples, so settings can be dict keys."""
    return tuple(_hashable(x) for x in v) if isinstance(v, (list, tuple)) else v


def setting_key(params: Mapping[str, Any]) -> Setting:
    """The params without ``seed``, as sorted ``((key, value), ...)`` (hashable; lists become tuples)."""
    return tuple(sorted((k, _hashable(v)) for k, v in params.items() if k != "seed"))


def metric_value(row: Row, metric: str) -> float | None:
    """``row["best"][metric]`` if present, else ``row["final"][metric]``; None when absent or not finite."""
    for part in ("best", "final"):
        v = (row.get(part) or {}).get(metric)
        if v is not None:
            return float(v) if isinstance(v, (int, float)) and math.isfinite(v) else None
    return None


def scored(rows: Iterable[Row], metric: str) -> list[tuple[Row, float]]:
    """``[(row, value)]`` of the ``ok`` trials that have a finite ``metric`` value (input order)."""
    pairs = ((r, metric_value(r, metric)) for r in rows if r.get("status") == "ok")
    return [(r, v) for r, v in pairs if v is not None]


def metric_names(rows: Iterable[Row]) -> list[str]:
    """Sorted names of the values in the rows' ``final`` and ``best`` (``eval_step`` left out)."""
    return sorted({k for r in rows for part in ("final", "best") for k in (r.get(part) or {})} - {"eval_step"})


def lr_key(rows: Iterable[Row]) -> str | None:
    """The learning-rate key for plots: the first of :data:`LR_KEYS` with two or more values, else None."""
    rows = list(rows)
    for key in LR_KEYS:
        if len({_hashable(r["params"][key]) for r in rows if key in r["params"]}) > 1:
            return key
    return None


def direction(metric: str) -> str:
    """``"higher is better"`` or ``"lower is better"`` (:data:`results.HIGHER_IS_BETTER`)."""
    return "higher is better" if metric in results_lib.HIGHER_IS_BETTER else "lower is better"


def rank_key(metric: str, value: float | None) -> float:
    """Sort key putting better values of ``metric`` first and missing/NaN values last."""
    if value is None or math.isnan(value):
        return math.inf
    return -value if metric in results_lib.HIGHER_IS_BETTER else value


# ---------------------------------------------------------------------------------------------------------------------
# Statistics.


def seed_statistics(values: Sequence[float]) -> dict[str, float]:
    """Mean, std and 95% interval of the mean of ``values`` (``[n]``, one per seed).

    Returns:
      ``{"mean", "std", "n", "ci95_low", "ci95_high"}``: ``std`` is the sample
      standard deviation (``ddof=1``); the interval is ``mean ± t(0.975, n-1)
      · std / √n`` (Student's t). With ``n == 1``: ``std = 0`` and the interval
      is NaN (undefined from one value). With ``n == 0``: everything NaN.
    """
    x = np.asarray(values, np.float64).reshape(-1)
    n = int(x.size)
    if n == 0:
        return {"mean": math.nan, "std": math.nan, "n": 0, "ci95_low": math.nan, "ci95_high": math.nan}
    mean = float(x.mean())
    std = seed_std(x)
    half = float(scipy_stats.t.ppf(0.975, n - 1)) * std / math.sqrt(n) if n > 1 else math.nan
    return {"mean": mean, "std": std, "n": n, "ci95_low": mean - half, "ci95_high": mean + half}


def best_of_k(values: Sequence[float], k_max: int, higher_is_better: bool, num_draws: int = 1000,
              seed: int = 0) -> np.ndarray:
    """Lucic et al. 2018's best-of-k: the best value among k trials drawn at random, for k = 1..k_max.

    Each draw is a random ordering of the ``n`` trials (without replacement);
    its row ``k - 1`` is the best of its first k. So every draw is monotone in
    k, and at ``k == n`` every draw is the overall best.

    Args:
      values: ``[n]`` finite values, one per trial.
      k_max: the largest budget, ``1 <= k_max <= n``.
      higher_is_better: the metric's direction.
      num_draws: random orderings.
      seed: seed of the orderings.

    Returns:
      ``[k_max, num_draws]`` float64: entry ``[k - 1, d]`` is the best of k in draw d.

    Raises:
      ValueError: ``k_max`` out of range or a value not finite.
    """
    x = np.asarray(values, np.float64).reshape(-1)
    if not 1 <= k_max <= x.size:
        raise ValueError(f"k_max must be in [1, {x.size}] (the number of values), got {k_max}")
    if not np.isfinite(x).all():
        raise ValueError("best_of_k needs finite values")
    rng = np.random.default_rng(seed)
    order = np.argsort(rng.random((num_draws, x.size)), axis=1)[:, :k_max]  # [num_draws, k_max]
    accumulate = np.maximum.accumulate if higher_is_better else np.minimum.accumulate
    return accumulate(x[order], axis=1).T


# ---------------------------------------------------------------------------------------------------------------------
# Per-setting and per-method summaries.


@dataclasses.dataclass(frozen=True)
class SettingSummary:
    """One hyperparameter setting of one method, over its seeds.

    ``hyperparams`` is the setting without loss and penalty; ``trials`` all
    its rows (any status); ``values`` its ok trials' values; ``stats``
    :func:`seed_statistics` of them.
    """

    method: str
    hyperparams: dict[str, Any]
    trials: list[Row]
    values: list[float]
    stats: dict[str, float]


def setting_summaries(rows: Iterable[Row], metric: str, base_params: Mapping[str, Any]) -> list[SettingSummary]:
    """Every (method, setting), sorted by method, then best mean first (settings without values last)."""
    rows = list(rows)
    by_setting = group_by(rows, lambda r: (method_label(r["params"], base_params), setting_key(r["params"])))
    out = []
    for (method, setting), members in by_setting.items():
        values = [v for _, v in scored(members, metric)]
        hyper = {k: v for k, v in setting if k not in METHOD_KEYS}
        out.append(SettingSummary(method, hyper, members, values, seed_statistics(values)))
    return sorted(out, key=lambda s: (s.method, rank_key(metric, s.stats["mean"])))


@dataclasses.dataclass(frozen=True)
class MethodSummary:
    """One method: its trials (any status), best trial and settings (best mean first)."""

    method: str
    trials: list[Row]
    best: tuple[Row, float] | None
    settings: list[SettingSummary]

    def fraction(self, status: str) -> float:
        """Fraction of the method's trials with ``status``."""
        return sum(r.get("status") == status for r in self.trials) / len(self.trials)

    @property
    def best_setting(self) -> SettingSummary | None:
        """The setting with the best mean over seeds (None when no setting has a value)."""
        return self.settings[0] if self.settings and self.settings[0].values else None


def best_trial(rows: Iterable[Row], metric: str) -> tuple[Row, float] | None:
    """The ok trial with the best value (first one on ties), with its value; None when none has one."""
    best = None
    for row, v in scored(rows, metric):
        if best is None or results_lib.better(metric, v, best[1]):
            best = (row, v)
    return best


def method_summaries(rows: Iterable[Row], metric: str, base_params: Mapping[str, Any]) -> list[MethodSummary]:
    """Every method, best first (by its best setting's mean; methods without values last, by name)."""
    rows = list(rows)
    settings = group_by(setting_summaries(rows, metric, base_params), lambda s: s.method)
    out = [MethodSummary(m, members, best_trial(members, metric), settings[m])
           for m, members in group_by(rows, lambda r: method_label(r["params"], base_params)).items()]

    def order(m: MethodSummary) -> tuple[float, str]:
        return rank_key(metric, m.best_setting.stats["mean"] if m.best_setting else None), m.method

    return sorted(out, key=order)


# ---------------------------------------------------------------------------------------------------------------------
# Markdown.


def _number(x: float | None) -> str:
    return NONE if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.4g}"


def _value(v: Any) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def _params(params: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={_value(v)}" for k, v in sorted(params.items())) or NONE


def _mean_std(s: Mapping[str, float]) -> str:
    return NONE if s["n"] == 0 else f"{_number(s['mean'])} ± {_number(s['std'])}"


def _interval(s: Mapping[str, float]) -> str:
    return NONE if math.isnan(s["ci95_low"]) else f"[{_number(s['ci95_low'])}, {_number(s['ci95_high'])}]"


def _table(header: Sequence[str], body: Iterable[Sequence[str]]) -> list[str]:
    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"

    return [line(header), line(["---"] * len(header)), *(line(cells) for cells in body)]


def _method_cells(m: MethodSummary) -> list[str]:
    if m.best is None:
        trial = value = params = NONE
    else:
        row, v = m.best
        trial, value = row["trial"], _number(v)
        params = _params({k: x for k, x in row["params"].items() if k not in METHOD_KEYS})
    s = m.best_setting
    setting = [NONE, "0", NONE, NONE] if s is None else [_params(s.hyperparams), str(s.stats["n"]),
                                                         _mean_std(s.stats), _interval(s.stats)]
    return [m.method, str(len(m.trials)), f"{m.fraction('diverged'):.0%}", f"{m.fraction('failed'):.0%}", trial,
            params, value, *setting]


def _setting_cells(s: SettingSummary) -> list[str]:
    return [s.method, _params(s.hyperparams), f"{s.stats['n']}/{len(s.trials)}", _mean_std(s.stats),
            _interval(s.stats)]


def summarize(rows: Iterable[Row], metric: str, base_params: Mapping[str, Any]) -> str:
    """``summary.md``: a header, a table per method (best first) and a table of every setting.

    Args:
      rows: ``results.jsonl`` rows (one per trial).
      metric: the score to rank by (its direction from :data:`results.HIGHER_IS_BETTER`).
      base_params: ``{"loss", "penalty"}`` of the base config, for trials whose params lack them.
    """
    rows = list(rows)
    counts = {s: sum(r.get("status") == s for r in rows) for s in results_lib.STATUSES}
    key = lr_key(rows)
    lines = ["# Sweep summary", "",
             f"{len(rows)} trials: " + ", ".join(f"{n} {s}" for s, n in counts.items()) + ". "
             f"Metric: `{metric}` ({direction(metric)}), a trial's best evaluation (else its last). Diverged and "
             f"failed trials are counted but not scored; intervals are 95% Student-t intervals of the mean over "
             f"seeds ({NONE} with one seed).", "",
             f"Learning rate in the plots: `{key}`." if key else "No learning rate is varied: no metric-vs-lr plot."]
    if not scored(rows, metric):
        lines += ["", f"**No trial has a `{metric}` value**: nothing to rank."]
    lines += ["", "## Methods", "", *_table(
        ["method", "trials", "diverged", "failed", "best trial", "its params", f"its {metric}",
         "best setting (by mean)", "seeds", f"{metric} mean ± std", "95% CI"],
        (_method_cells(m) for m in method_summaries(rows, metric, base_params)))]
    lines += ["", "## Settings", "", *_table(
        ["method", "hyperparameters", "seeds (ok/all)", f"{metric} mean ± std", "95% CI"],
        (_setting_cells(s) for s in setting_summaries(rows, metric, base_params)))]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------------------------------
# Plots.


def _colours(rows: Iterable[Row], base_params: Mapping[str, Any]) -> dict[str, str]:
    """A matplotlib colour per method (sorted by name), the same in both plots."""
    methods = sorted({method_label(r["params"], base_params) for r in rows})
    return {m: f"C{i % 10}" for i, m in enumerate(methods)}


def plot_metric_vs_lr(rows: Iterable[Row], metric: str, base_params: Mapping[str, Any], path: str) -> bool:
    """Lucic et al. 2018's metric-vs-learning-rate figure, saved to ``path``.

    x: the learning rate (:func:`lr_key`, log scale); y: the metric. Each
    method has a colour; every scored ok trial is a point, and the per-setting
    means (sorted by learning rate) form a line.

    Returns:
      False (nothing written) when no learning rate is varied or no trial has a value.
    """
    rows = list(rows)
    key = lr_key(rows)
    points = [(r, v) for r, v in scored(rows, metric) if key and float(r["params"].get(key, 0)) > 0]
    if not points:
        return False
    colours = _colours(rows, base_params)
    plt = plots.pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for method, pairs in sorted(group_by(points, lambda p: method_label(p[0]["params"], base_params)).items()):
        ax.scatter([r["params"][key] for r, _ in pairs], [v for _, v in pairs], s=14, alpha=0.45,
                   color=colours[method])
        means = sorted((float(ps[0][0]["params"][key]), float(np.mean([v for _, v in ps])))
                       for ps in group_by(pairs, lambda p: setting_key(p[0]["params"])).values())
        ax.plot(*zip(*means), "-", color=colours[method], label=method)
    ax.set_xscale("log")
    ax.set_xlabel(key)
    ax.set_ylabel(f"{metric} ({direction(metric)})")
    ax.set_title(f"{metric} vs learning rate (points: trials, lines: means over seeds)")
    ax.legend(loc="best", fontsize="small")
    fig.tight_layout()
    plots.save_figure(fig, path)
    return True


def plot_best_of_k(rows: Iterable[Row], metric: str, base_params: Mapping[str, Any], path: str,
                   num_draws: int = 1000, seed: int = 0) -> bool:
    """Best of k random trials per method, k = 1..min(n, 10), saved to ``path``.

    Per method: the median of :func:`best_of_k` as a line, and its 10th–90th
    percentiles as a band.

    Returns:
      False (nothing written) when no trial has a value.
    """
    rows = list(rows)
    by_method = group_by(scored(rows, metric), lambda p: method_label(p[0]["params"], base_params))
    if not by_method:
        return False
    colours = _colours(rows, base_params)
    plt = plots.pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for method, pairs in sorted(by_method.items()):
        values = [v for _, v in pairs]
        draws = best_of_k(values, min(len(values), MAX_K), metric in results_lib.HIGHER_IS_BETTER, num_draws, seed)
        ks = np.arange(1, draws.shape[0] + 1)
        low, median, high = np.percentile(draws, [10, 50, 90], axis=1)
        ax.plot(ks, median, "o-", markersize=3, color=colours[method], label=f"{method} (n={len(values)})")
        ax.fill_between(ks, low, high, color=colours[method], alpha=0.15)
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_xlabel("k (trials drawn at random)")
    ax.set_ylabel(f"best {metric} of k ({direction(metric)})")
    ax.set_title("Best of k trials: median and 10–90% band")
    ax.legend(loc="best", fontsize="small")
    fig.tight_layout()
    plots.save_figure(fig, path)
    return True


# ---------------------------------------------------------------------------------------------------------------------
# Files.


def check_metric(rows: Sequence[Row], metric: str) -> None:
    """Refuses a metric no row has while other evaluation scores are there (a misspelt name).

    Rows without any evaluation (all failed, or no evaluation configured) are
    not an error: the summary then says that no trial has the metric.

    Raises:
      ConfigError: naming the metric and listing the names found.
    """
    names = metric_names(rows)
    evaluated = any(r.get("best") or "eval_step" in (r.get("final") or {}) for r in rows)
    if metric not in names and evaluated:
        raise unknown_name("metric", metric, names)


def write_summary(sweep_dir: str, metric: str, base_params: Mapping[str, Any]) -> list[str]:
    """Writes ``summary.md``, ``metric_vs_lr.png`` and ``best_of_k.png`` into ``sweep_dir`` (atomically).

    A plot that cannot be drawn (see :func:`plot_metric_vs_lr`,
    :func:`plot_best_of_k`) is not written, and an older copy of it is
    removed so that no stale plot of another metric remains.

    Returns:
      The paths written.

    Raises:
      ConfigError: ``results.jsonl`` is missing, or ``metric`` is unknown (:func:`check_metric`).
    """
    rows = list(results_lib.read_results(sweep_dir).values())
    if not rows:
        path = storage.join(sweep_dir, results_lib.RESULTS)
        raise ConfigError(f"no sweep results to summarize: {path} is missing")
    check_metric(rows, metric)
    written = [storage.join(sweep_dir, SUMMARY)]
    storage.write_text_atomic(written[0], summarize(rows, metric, base_params))
    for name, plot in ((METRIC_VS_LR, plot_metric_vs_lr), (BEST_OF_K, plot_best_of_k)):
        out = storage.join(sweep_dir, name)
        if plot(rows, metric, base_params, out):
            written.append(out)
        else:
            storage.remove(out)
    return written
