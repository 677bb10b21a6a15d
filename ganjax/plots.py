"""Pictures of samples and training curves (PNG files).

* images ``[N, H, W, C]`` in [-1, 1] → an ``nrow × nrow`` grid (seed 002's
  ``make_grid(..., nrow=8, normalize=True)`` look, without normalisation since
  the range is known);
* 2-D points → a scatter plot over the mixture's modes;
* 1-D vectors → a histogram of all values against the target density.
"""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np


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
    """Writes a uint8 ``[H, W, C]`` (C = 1 or 3) array as PNG, atomically."""
    from PIL import Image

    if array.shape[-1] == 1:
        array = array[..., 0]
    tmp = path + ".tmp.png"
    Image.fromarray(array).save(tmp)
    os.replace(tmp, path)


def save_figure(fig, path: str, dpi: int = 80) -> None:
    """Saves a matplotlib figure as PNG atomically and closes it."""
    tmp = path + ".tmp.png"
    fig.savefig(tmp, dpi=dpi)
    pyplot().close(fig)
    os.replace(tmp, path)


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


def save_samples(path: str, samples: np.ndarray, modes: np.ndarray | None = None,
                 target: tuple[float, float] | None = None, title: str = "") -> np.ndarray | None:
    """Saves a picture of ``samples`` and returns the image grid for image data.

    Args:
      path: PNG path.
      samples: ``[N, H, W, C]`` images, ``[N, 2]`` points or ``[N, L]`` 1-D vectors.
      modes: ``[M, 2]`` mixture centres to mark on scatter plots.
      target: ``(mean, std)`` of a 1-D Gaussian to overlay on histograms.
    """
    samples = np.asarray(samples)
    if samples.ndim == 4:
        grid = image_grid(samples, nrow=int(np.ceil(np.sqrt(samples.shape[0]))))
        save_png(path, grid)
        return grid
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 5) if samples.shape[-1] == 2 else (6, 4))
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
    ax.set_title(title)
    fig.tight_layout()
    save_figure(fig, path)
    return None


def save_loss_curves(path: str, rows: Sequence[dict], keys: Sequence[str] = ("d_loss", "g_loss")) -> None:
    """Plots ``keys`` against ``step`` from metrics rows (seed 002's loss plot)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for key, style in zip(keys, ("bo-", "r-", "g-", "k-")):
        points = [(r["step"], r[key]) for r in rows if isinstance(r.get(key), (int, float))]
        if points:
            xs, ys = zip(*points)
            ax.plot(xs, ys, style, markersize=3, label=key)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title("Discriminator and generator training loss")
    ax.legend(loc="best")
    fig.tight_layout()
    save_figure(fig, path)
