"""Pictures of samples and training curves (PNG files).

* images ``[N, H, W, C]`` in [-1, 1] → an ``nrow × nrow`` grid (seed 002's
  ``make_grid(..., nrow=8, normalize=True)`` look, without normalisation since
  the range is known);
* 2-D points → a scatter plot over the mixture's modes;
* 1-D vectors → a histogram of all values against the target density.
"""

from __future__ import annotations

import io
from typing import Sequence

import numpy as np

from ganjax import storage


def image_grid(images: np.ndarray, nrow: int = 8, pad: int = 2) -> np.ndarray:
    """``[N, H, W, C]`` floats in [-1, 1] → uint8 ``[rows·(H+pad)+pad, nrow·(W+pad)+pad, C]``."""
    images = np.asarray(images, np.float32)
    n, h, w, c = images.shape
    rows = int(np.ceil(n / nrow))
    grid = np.zeros((rows * (h + pad) + pad, nrow * (w + pad) + pad, c), np.uint8)
    pixels = np.clip(np.round((images + 1.0) * 127.5), 0, 255).astype(np.uint8)
    for i in range(n):
        r, col = divmod(i, nrow)
        y, x = pad + r * (h + pad), pad + col * (w + pad)
        grid[y:y + h, x:x + w] = pixels[i]
    return grid


def save_png(path: str, array: np.ndarray) -> None:
    """Writes a uint8 ``[H, W, C]`` (C = 1 or 3) array as PNG to ``path`` (a local path or URL), atomically."""
    from PIL import Image

    if array.shape[-1] == 1:
        array = array[..., 0]
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="png")
    storage.write_bytes_atomic(path, buffer.getvalue())


def save_figure(fig, path: str, dpi: int = 80) -> None:
    """Saves a matplotlib figure as PNG to ``path`` (a local path or URL) atomically and closes it."""
    buffer = io.BytesIO()
    fig.savefig(buffer, dpi=dpi, format="png")
    pyplot().close(fig)
    storage.write_bytes_atomic(path, buffer.getvalue())


def pyplot():
    """matplotlib.pyplot on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def normal_pdf(x: np.ndarray, mean: float, std: float) -> np.ndarray:
    """The N(mean, std²) density at ``x`` (any shape)."""
    x = np.asarray(x, np.float64)
    return np.exp(-0.5 * ((x - mean) / std) ** 2) / (std * np.sqrt(2 * np.pi))


def sample_title(config, step: int, ema: bool, trial: str | None = None) -> str:
    """The title of a sample picture: what made it (data, loss, generator), when, and which weights."""
    parts = [config.dataset, f"{config.loss} loss", f"{config.model.generator} G", f"step {step}",
             "EMA generator" if ema else "raw generator"]
    return " | ".join(parts + ([f"trial {trial}"] if trial else []))


def save_image_grid(path: str, grid: np.ndarray, title: str, dpi: int = 100) -> None:
    """A uint8 ``[H, W, C]`` grid as a titled PNG at least 600 pixels wide (pixels stay sharp)."""
    plt = pyplot()
    height, width = grid.shape[:2]
    fig_w = min(max(6.0, width / dpi), 24.0)
    fig, ax = plt.subplots(figsize=(fig_w, fig_w * height / width + 0.5))
    ax.imshow(grid[..., 0] if grid.shape[-1] == 1 else grid, cmap="gray", vmin=0, vmax=255,
              interpolation="nearest")
    ax.set_axis_off()
    ax.set_title(title, fontsize=11)
    fig.tight_layout()
    save_figure(fig, path, dpi=dpi)


def save_samples(path: str, samples: np.ndarray, modes: np.ndarray | None = None,
                 target: tuple[float, float] | None = None, title: str = "",
                 nrow: int | None = None) -> np.ndarray | None:
    """Saves a picture of ``samples`` and returns the image grid for image data.

    Args:
      path: PNG path.
      samples: ``[N, H, W, C]`` images, ``[N, 2]`` points or ``[N, L]`` 1-D vectors.
      modes: ``[M, 2]`` mixture centres to mark on scatter plots.
      target: ``(mean, std)`` of a 1-D Gaussian to overlay on histograms.
      title: the picture's title (see :func:`sample_title`).
      nrow: images per grid row (None: a square grid).
    """
    samples = np.asarray(samples)
    if samples.ndim == 4:
        grid = image_grid(samples, nrow=nrow or int(np.ceil(np.sqrt(samples.shape[0]))))
        save_image_grid(path, grid, title)
        return grid
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 6) if samples.shape[-1] == 2 else (7, 4.5))
    if samples.ndim == 2 and samples.shape[1] == 2:
        ax.scatter(samples[:, 0], samples[:, 1], s=3, alpha=0.5, label="generated")
        if modes is not None:
            ax.scatter(modes[:, 0], modes[:, 1], marker="x", c="red", s=40, label="modes")
        ax.set_aspect("equal")
    else:
        values = samples.reshape(-1)
        ax.hist(values, bins=60, density=True, alpha=0.6, label="generated")
        if target is not None:
            mean, std = target
            xs = np.linspace(mean - 4 * std, mean + 4 * std, 200)
            ax.plot(xs, normal_pdf(xs, mean, std), "g-", label=f"N({mean:g}, {std:g}²)")
    ax.legend(loc="best")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    save_figure(fig, path, dpi=100)
    return None


MARKERS_UP_TO = 40  # rows per curve drawn with markers: a short run's few points stay visible
NOT_SCORES = ("step", "trial", "kind", "generator", "alive", "num_modes")  # num_modes: a property of the data


def _points(rows: Sequence[dict], key: str) -> tuple[list[float], list[float]]:
    points = [(r["step"], r[key]) for r in rows
              if isinstance(r.get(key), (int, float)) and not isinstance(r.get(key), bool)]
    return ([p[0] for p in points], [p[1] for p in points]) if points else ([], [])


def eval_scores(rows: Sequence[dict], limit: int = 4) -> list[str]:
    """The score names evaluation rows carry (protocol fields aside), in order of appearance, at most ``limit``."""
    from ganjax.metrics.evaluator import PROTOCOL_KEYS

    names: list[str] = []
    for r in rows:
        names += [k for k, v in r.items() if k not in names and k not in PROTOCOL_KEYS + NOT_SCORES
                  and isinstance(v, (int, float)) and not isinstance(v, bool)]
    return names[:limit]


def _curve(ax, xs: Sequence[float], ys: Sequence[float], label: str, color: str, dashed: bool = False) -> None:
    # Different marker sizes too: equal values at one step (raw and EMA) still show both points.
    ax.plot(xs, ys, "--" if dashed else "-", color=color, linewidth=1.5, label=label,
            marker=("s" if dashed else "o") if len(xs) <= MARKERS_UP_TO else None, markersize=3.5 if dashed else 6)


def save_loss_curves(path: str, rows: Sequence[dict], keys: Sequence[str] = ("d_loss", "g_loss")) -> None:
    """Saves :func:`loss_curve_figure` of ``rows`` as a PNG."""
    save_figure(loss_curve_figure(rows, keys), path, dpi=100)


def loss_curve_figure(rows: Sequence[dict], keys: Sequence[str] = ("d_loss", "g_loss")):
    """Plots ``keys`` against ``step`` (top panel) and each evaluation score below it (one panel per score).

    ``rows``: ``metrics.jsonl`` rows (and ``eval.jsonl`` rows): training rows
    give the losses, rows with ``kind == 'eval'`` or a ``generator`` the
    scores, one curve per generator (raw, EMA). Curves get markers when they
    have at most :data:`MARKERS_UP_TO` points and differ in colour and dash,
    so both losses stay visible however long or short the run.
    """
    plt = pyplot()
    train = [r for r in rows if r.get("kind") != "eval" and "generator" not in r]
    evals = [r for r in rows if r.get("kind") == "eval" or "generator" in r]
    scores = eval_scores(evals)
    fig, axes = plt.subplots(1 + len(scores), 1, figsize=(7, 3.6 + 2.4 * len(scores)), sharex=True, squeeze=False)
    ax = axes[0, 0]
    for i, (key, color) in enumerate(zip(keys, ("tab:blue", "tab:red", "tab:green", "black"))):
        xs, ys = _points(train, key)
        if xs:
            _curve(ax, xs, ys, key, color, dashed=i % 2 == 1)
    ax.set_ylabel("loss")
    ax.set_title("Discriminator and generator training loss")
    ax.legend(loc="best")
    ax.grid(alpha=0.3)
    for (ax,), score in zip(axes[1:], scores):
        for generator, color in (("raw", "tab:purple"), ("ema", "tab:orange")):
            xs, ys = _points([r for r in evals if r.get("generator", "raw") == generator], score)
            if xs:
                _curve(ax, xs, ys, f"{score} ({generator})", color, dashed=generator == "ema")
        ax.set_ylabel(score)
        ax.legend(loc="best")
        ax.grid(alpha=0.3)
    axes[-1, 0].set_xlabel("step")
    fig.tight_layout()
    return fig
