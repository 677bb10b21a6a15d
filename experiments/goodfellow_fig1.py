r"""Goodfellow et al. (2014), Figure 1: p_data, p_g, the mapping z → x and D(x) at four moments of training.

    python -m experiments.goodfellow_fig1 --out=DIR [--quick] [--seeds=5] [--d_steps=1000]
        [--during=1000] [--steps=10000]

The paper's 1-D illustration, trained with ganjax's own train step
(:func:`ganjax.train.train_step` through :func:`ganjax.parallel.make_runner`)
and models: x ~ N(4, 1.5) one value per example (``configs/gaussian_1d.py``
with ``data.length=1``, unsorted, D on the raw value), z ~ U(0, 1) in one
dimension, G and D MLPs with two hidden layers of 32 LeakyReLU units, the
non-saturating loss, Adam(2e-4, β1 0.5), batch 256.

The four panels (the paper's (a)–(d)):

* **(a) start** — the initialised pair, before any update;
* **(b) D trained against the fixed G** — ``--d_steps`` D-only steps from (a):
  the same train step with G's learning rate set to 0 inside the state (the
  learning rates live in the state, ``optax.inject_hyperparams``), so Adam's G
  update is exactly 0; afterwards G's optimizer state and EMA are put back, so
  G is bit-for-bit the G of (a) (checked) and only D has moved. D should
  approach D*(x) = p_data(x) / (p_data(x) + p_g(x)), which the table measures;
* **(c) during** — ``--during`` ordinary steps (one D, then one G update) after (b);
* **(d) convergence** — ordinary steps until ``--steps`` in all, where p_g ≈ p_data
  and D ≈ 1/2 everywhere.

Each panel shows p_data (black dots), p_g (green: a histogram of G(z) for
100,000 z ~ U(0, 1), smoothed), D(x) as a probability (blue dashes, right
axis) and, below, the lines z → x = G(z) for evenly spaced z (the paper's lower
lines). The table gives, per panel, mean |D(x) − 1/2| and mean |D(x) − D*(x)|
over the data range μ ± 3σ (a uniform grid), the Jensen–Shannon divergence
between p_g and p_data (nats; ln 2 ≈ 0.693 for disjoint supports), the
Kolmogorov–Smirnov distance of G(z) to N(4, 1.5), and G(z)'s mean and std:
mean ± std over ``--seeds`` seeds. The figure shows the first seed.

Writes ``DIR/goodfellow_fig1.png`` and ``DIR/goodfellow_fig1.md``.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from typing import Any, Sequence

import numpy as np

from experiments import common
from ganjax.errors import ConfigError

MEAN, STD = 4.0, 1.5
GRID = np.linspace(MEAN - 6 * STD, MEAN + 6 * STD, 1801)   # x grid for densities and D(x)
DATA_RANGE = (MEAN - 3 * STD, MEAN + 3 * STD)               # where |D − 1/2| and |D − D*| are averaged
NUM_Z = 100_000                                            # G(z) samples behind p_g
SMOOTH_BINS = 3.0                                          # p_g: Gaussian smoothing of the histogram, in bins
MAP_LINES = 21                                             # z → G(z) lines drawn
QUICK = {"seeds": 1, "d_steps": 20, "during": 20, "steps": 60}
PANELS = (("a", "start"), ("b", "D trained against a fixed G"), ("c", "during training"),
          ("d", "convergence"))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seeds", type=common.positive(), default=5, help="seeds 0..N-1 (default 5)")
    parser.add_argument("--d_steps", type=common.positive(), default=1000,
                        help="D-only steps against the fixed G for panel (b)")
    parser.add_argument("--during", type=common.positive(), default=1000,
                        help="ordinary steps after (b) for panel (c)")
    parser.add_argument("--steps", type=common.positive(), default=10_000,
                        help="ordinary steps in all for panel (d)")


def check_arguments(a: argparse.Namespace) -> None:
    """``--quick``'s budget; ``--steps`` must exceed ``--during``."""
    if a.quick:
        a.seeds, a.d_steps, a.during, a.steps = (QUICK[k] for k in ("seeds", "d_steps", "during", "steps"))
    if a.steps <= a.during:
        raise ConfigError(f"--steps={a.steps} must be larger than --during={a.during}")


def fig1_config(seed: int):
    """The 1-D problem of Figure 1 built from ``configs/gaussian_1d.py`` (see the module docstring)."""
    from ganjax.config import load_config_file

    c = load_config_file("gaussian_1d")
    c.seed = seed
    c.data.mean, c.data.std, c.data.length, c.data.sort = MEAN, STD, 1, False
    c.model.z_dim = 1
    c.model.noise = "uniform"
    c.model.g.hidden = (32, 32)
    c.model.g.activation = ("leaky_relu", "leaky_relu")
    c.model.d.hidden = (32, 32)
    c.model.d.activation = ("leaky_relu", "leaky_relu")
    c.model.d.features = "raw"
    c.batch_size = 256
    for o in (c.optimizer_g, c.optimizer_d):
        o.learning_rate = 2e-4
    return c


@dataclasses.dataclass
class Panel:
    """One moment of training, measured (host arrays)."""

    joint_steps: int
    d_only_steps: int
    p_data: np.ndarray     # [len(GRID)]
    p_g: np.ndarray        # [len(GRID)]
    d: np.ndarray          # [len(GRID)] D(x) as a probability
    z_lines: np.ndarray    # [MAP_LINES]
    x_lines: np.ndarray    # [MAP_LINES] G(z_lines)
    samples: np.ndarray    # [NUM_Z] G(z)

    def scores(self) -> dict[str, float]:
        from ganjax.metrics.toy import ks_distance_normal

        inside = (GRID >= DATA_RANGE[0]) & (GRID <= DATA_RANGE[1])
        d_star = self.p_data / np.maximum(self.p_data + self.p_g, 1e-300)
        return {"d_half": float(np.mean(np.abs(self.d[inside] - 0.5))),
                "d_star": float(np.mean(np.abs(self.d[inside] - d_star[inside]))),
                "jsd": jensen_shannon(self.p_g, self.p_data),
                "ks": ks_distance_normal(self.samples, MEAN, STD),
                "gen_mean": float(self.samples.mean()), "gen_std": float(self.samples.std())}


def smoothed_density(samples: np.ndarray) -> np.ndarray:
    """A density of ``samples`` on ``GRID``: histogram on the grid's cells, Gaussian-smoothed, normalised."""
    dx = GRID[1] - GRID[0]
    edges = np.concatenate([GRID - dx / 2, [GRID[-1] + dx / 2]])
    hist, _ = np.histogram(samples, bins=edges)
    k = np.arange(-int(4 * SMOOTH_BINS), int(4 * SMOOTH_BINS) + 1)
    kernel = np.exp(-0.5 * (k / SMOOTH_BINS) ** 2)
    dens = np.convolve(hist.astype(np.float64), kernel / kernel.sum(), mode="same")
    return dens / max(dens.sum() * dx, 1e-300)


def jensen_shannon(p: np.ndarray, q: np.ndarray) -> float:
    """JSD(p, q) in nats of two densities on ``GRID`` (each renormalised on it)."""
    p, q = p / p.sum(), q / q.sum()
    m = 0.5 * (p + q)

    def kl(a):
        nz = a > 0
        return float(np.sum(a[nz] * np.log(a[nz] / m[nz])))

    return 0.5 * kl(p) + 0.5 * kl(q)


class Fig1Run:
    """One seed's GAN, stepped with ganjax's compiled train step, measured at the four moments."""

    def __init__(self, seed: int):
        import jax

        from ganjax.config import build
        from ganjax.parallel import make_runner
        from ganjax.train import apply_model, generate, init_state

        self.config = fig1_config(seed)
        _, self.gan = build(self.config)
        self.runner = make_runner(self.gan, "none", self.config.batch_size)
        self.state = self.runner.put(init_state(self.gan, seed))
        self.joint = self.d_only = 0
        z = np.asarray(jax.random.uniform(jax.random.key(seed + 1), (NUM_Z, 1)))
        self.z = np.concatenate([z, np.linspace(0.0, 1.0, MAP_LINES)[:, None]]).astype(np.float32)
        gan = self.gan
        self._generate = jax.jit(lambda s, zz: generate(gan, s, zz))
        self._d = jax.jit(lambda s, x: jax.nn.sigmoid(
            apply_model(gan.discriminator, s.d_params, s.d_state, x, train=False)[0]))

    def steps(self, n: int) -> None:
        """``n`` ordinary train steps (one D update, then one G update)."""
        for _ in range(n):
            self.state, _ = self.runner.step(self.state, None)
        self.joint += n

    def d_only_steps(self, n: int) -> None:
        """``n`` train steps with G's learning rate 0; G's optimizer state and EMA restored after."""
        import jax

        from ganjax import optim

        saved_g = jax.device_get((self.state.g_params, self.state.g_opt, self.state.ema_params))
        frozen = dict(self.config.optimizer_g.to_dict(), learning_rate=0.0)
        self.state = self.state.replace(g_opt=optim.set_hyperparams(self.state.g_opt, frozen))
        for _ in range(n):
            self.state, _ = self.runner.step(self.state, None)
        moved = jax.tree.leaves(jax.tree.map(lambda a, b: not np.array_equal(a, b), saved_g[0],
                                             jax.device_get(self.state.g_params)))
        if any(moved):
            raise RuntimeError("G's parameters changed during the D-only phase")
        self.state = self.runner.put(self.state.replace(g_opt=saved_g[1], ema_params=saved_g[2]))
        self.d_only += n

    def measure(self) -> Panel:
        from ganjax.plots import normal_pdf

        x = np.asarray(self._generate(self.state, self.z))[:, 0]
        samples, lines = x[:NUM_Z], x[NUM_Z:]
        d = np.asarray(self._d(self.state, GRID[:, None].astype(np.float32)))
        return Panel(self.joint, self.d_only, normal_pdf(GRID, MEAN, STD), smoothed_density(samples), d,
                     self.z[NUM_Z:, 0], lines, samples)


def run_seed(seed: int, d_steps: int, during: int, steps: int) -> list[Panel]:
    """The four panels of one seed."""
    r = Fig1Run(seed)
    panels = [r.measure()]
    r.d_only_steps(d_steps)
    panels.append(r.measure())
    r.steps(during)
    panels.append(r.measure())
    r.steps(steps - during)
    panels.append(r.measure())
    return panels


def plot_panels(path: str, panels: Sequence[Panel], seed: int) -> str:
    """The paper's four panels for one seed."""
    all_x = np.concatenate([p.samples for p in panels])
    lo = min(MEAN - 4 * STD, float(np.quantile(all_x, 0.001)))
    hi = max(MEAN + 4 * STD, float(np.quantile(all_x, 0.999)))
    peak = 1.6 * panels[0].p_data.max()
    fig, axes = common.subplots(1, 4, size=(3.6, 3.4))
    for ax, panel, (letter, title) in zip(axes[0], panels, PANELS):
        ax.plot(GRID, panel.p_data, "k:", lw=1.5, label="p_data")
        ax.plot(GRID, np.minimum(panel.p_g, peak * 1.05), "g-", lw=1.2,
                label="p_g" + (" (peak cut)" if panel.p_g.max() > peak else ""))
        x_line, z_line = -0.12 * peak, -0.42 * peak
        ax.axhline(x_line, color="k", lw=0.6)
        ax.axhline(z_line, color="k", lw=0.6)
        for z, x in zip(panel.z_lines, panel.x_lines):
            ax.annotate("", xy=(x, x_line), xytext=(lo + z * (hi - lo), z_line),
                        arrowprops={"arrowstyle": "->", "lw": 0.5, "color": "0.3"})
        ax.text(lo, z_line - 0.04 * peak, "z ~ U(0,1)", fontsize=7, va="top")
        ax.text(lo, x_line + 0.02 * peak, "x", fontsize=7)
        ax.set_xlim(lo, hi)
        bottom = z_line - 0.12 * peak
        ax.set_ylim(bottom, peak)
        ax.set_yticks([])
        ax.set_xlabel("x")
        d_ax = ax.twinx()
        d_ax.plot(GRID, panel.d, "b--", lw=1.2, label="D(x)")
        d_ax.axhline(0.5, color="b", lw=0.4, ls=":")
        d_ax.set_ylim(bottom / peak, 1.0)  # D = 0 on the densities' 0 line, D = 1 at the top
        d_ax.set_yticks([0, 0.5, 1])
        steps = f"{panel.joint_steps} steps" + (f" + {panel.d_only_steps} D-only" if panel.d_only_steps else "")
        ax.set_title(f"({letter}) {title}\n{steps}", fontsize=8)
        if letter == "a":
            handles = ax.get_legend_handles_labels()
            d_handles = d_ax.get_legend_handles_labels()
            ax.legend(handles[0] + d_handles[0], handles[1] + d_handles[1], loc="upper right", fontsize=7)
    fig.suptitle(f"Goodfellow et al. 2014, Fig. 1, with ganjax (seed {seed})", fontsize=9)
    return common.save(fig, path)


def score_table(per_seed: Sequence[Sequence[Panel]]) -> str:
    rows = []
    for i, (letter, title) in enumerate(PANELS):
        scores = [seed_panels[i].scores() for seed_panels in per_seed]
        first = per_seed[0][i]
        rows.append([f"({letter}) {title}", first.joint_steps, first.d_only_steps,
                     *(common.mean_std([s[k] for s in scores]) for k in
                       ("d_half", "d_star", "jsd", "ks", "gen_mean", "gen_std"))])
    return common.markdown_table(["panel", "steps", "D-only steps", "mean abs(D − 1/2)", "mean abs(D − D*)",
                                  "JSD(p_g, p_data), nats", "KS to N(4, 1.5)", "G(z) mean", "G(z) std"], rows)


def notes(per_seed: Sequence[Sequence[Panel]]) -> str:
    def stat(i: int, key: str) -> str:
        return common.mean_std([p[i].scores()[key] for p in per_seed], 3)

    return f"""
* The paper draws (a) as a pair already near convergence (p_g similar to p_data, D partially accurate);
  here (a) is the initialised pair, so p_g is a narrow bump away from p_data (JSD {stat(0, 'jsd')} nats,
  ln 2 = 0.693 for disjoint supports) and D is an untrained, slowly varying curve.
* (b): after the D-only phase D approaches the optimal D* = p_data / (p_data + p_g) (mean abs(D − D*) over
  μ ± 3σ: {stat(0, 'd_star')} before, {stat(1, 'd_star')} after). With p_g and p_data almost disjoint, D* is
  close to a step from 0 to 1; D is a smooth sigmoid-like curve that is flatter where neither
  distribution puts data (its value there is unconstrained), so mean abs(D − D*) is not 0.
* (d): mean abs(D − 1/2) = {stat(3, 'd_half')} and KS = {stat(3, 'ks')}: D is close to, not exactly, 1/2
  and p_g ≈ p_data up to the tails — a G fed bounded z ~ U(0, 1) through a small MLP cannot reproduce
  the Gaussian's unbounded tails, and alternating SGD keeps oscillating around the equilibrium rather
  than settling at it. The paper's (d) is an idealised drawing. Outside the data range D is
  unconstrained (no real or generated x there) and drifts away from 1/2.
* p_g is a staircase, not a smooth bump: a LeakyReLU G is piecewise linear, so it maps the uniform z to a
  piecewise-constant density (one step per linear piece; the lines z → x show the pieces).
* p_g is estimated from 100,000 G(z) values (histogram on a 0.01-wide grid, smoothed with a Gaussian of
  3 cells); the JSD depends slightly on that smoothing.
"""


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    run = common.start_run("goodfellow_fig1", __doc__, argv, add_arguments, check_arguments)
    a = run.args
    per_seed = [run_seed(seed, a.d_steps, a.during, a.steps) for seed in range(a.seeds)]
    image = os.path.basename(plot_panels(run.path("goodfellow_fig1.png"), per_seed[0], 0))
    report = common.write_report(
        run, "Goodfellow et al. (2014), Figure 1, with ganjax",
        [("Per panel", f"Mean ± std over {a.seeds} seed(s); D averaged over the data range "
                       f"[{DATA_RANGE[0]:g}, {DATA_RANGE[1]:g}] (μ ± 3σ).\n\n" + score_table(per_seed)),
         ("How panel (b) is made", "G is held fixed by setting its learning rate to 0 inside the train "
          "state for the D-only steps (Adam's update is then exactly 0; G's parameters are checked to be "
          "unchanged) and restoring G's optimizer state and EMA afterwards; D trains as usual."),
         ("Notes", common.full_run_reading(run, notes(per_seed)))],
        [image])
    common.finish(run, report, [image])
    return {"report": report, "images": [run.path(image)],
            "scores": [[p.scores() for p in panels] for panels in per_seed]}


if __name__ == "__main__":
    common.run_main(main)
