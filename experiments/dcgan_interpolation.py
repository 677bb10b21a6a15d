r"""Radford et al. (2015), latent-space interpolation: walks between random z pairs through a trained DCGAN.

    python -m experiments.dcgan_interpolation --out=DIR [--quick] [--workdir=DIR] [--dataset=fashion_mnist]
        [--image_size=0] [--steps=9360] [--rows=8] [--interp_steps=10] [--interpolation=linear|slerp]
        [--generators=ema,raw] [--seed=0] [--data_dir=DIR]

Without ``--workdir`` it trains ``configs/dcgan_fashion_mnist.py``
(``model.generator=dcgan``, ``model.discriminator=dcgan`` at 28×28; ``:quick``
with ``--quick``) on ``--dataset`` for ``--steps`` steps with
:func:`ganjax.trainer.train_and_evaluate` in ``DIR/runs/dcgan``. With
``--workdir`` it trains nothing and loads that finished (or running) workdir's
newest checkpoint through :func:`ganjax.trainer.load_for_inference`; the
training options are then ignored. ``--quick`` trains ``:quick`` (width 8,
batch 16) for 20 steps and draws 4 rows of 8 images (it overrides ``--steps``,
``--rows`` and ``--interp_steps``).

It draws ``--rows`` pairs ``(z_0, z_1)`` from the generator's noise
distribution (seeded by ``--seed``) and decodes ``--interp_steps`` points
``z(t)``, t = 0 … 1, on each path: ``linear``, ``(1 − t) z_0 + t z_1``, or
``slerp``, the great-circle path ``sin((1 − t) Ω)/sin Ω z_0 + sin(t Ω)/sin Ω z_1``
(Ω the angle between ``z_0`` and ``z_1``), which keeps ``‖z‖`` near that of
Gaussian samples where the linear midpoint shrinks it by about 1/√2.

Writes in ``DIR``:

* ``dcgan_interpolation.png`` — one panel per generator (``--generators``:
  ``ema``, ``raw`` or both), each row one path from ``G(z_0)`` (left) to ``G(z_1)`` (right);
* ``dcgan_interpolation.md`` — the run record, the training budget, and a
  smoothness table: per generator the mean and largest L2 distance between
  consecutive images of a row, the L2 distance between the row's endpoints,
  and their ratio ``path length / endpoint distance`` (1 for a straight
  pixel-space cross-fade; larger when the path takes a detour or jumps).
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any, Callable, Sequence

import numpy as np

from experiments import common
from ganjax import storage

GENERATORS = ("ema", "raw")
QUICK = {"steps": 20, "rows": 4, "interp_steps": 8}


def lerp(z0: np.ndarray, z1: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Linear paths: ``z0, z1 [R, D]``, ``t [K]`` → ``[R, K, D]``."""
    t = t[None, :, None]
    return (1.0 - t) * z0[:, None] + t * z1[:, None]


def slerp(z0: np.ndarray, z1: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Great-circle paths (Shoemake's slerp, unnormalised ends): ``z0, z1 [R, D]``, ``t [K]`` → ``[R, K, D]``.

    Falls back to the linear path where ``z0`` and ``z1`` are (anti)parallel (sin Ω ≈ 0).
    """
    n0 = z0 / np.linalg.norm(z0, axis=-1, keepdims=True)
    n1 = z1 / np.linalg.norm(z1, axis=-1, keepdims=True)
    omega = np.arccos(np.clip(np.sum(n0 * n1, -1), -1.0, 1.0))[:, None, None]  # [R, 1, 1]
    sin = np.sin(omega)
    tt = t[None, :, None]
    safe = np.where(np.abs(sin) < 1e-6, 1.0, sin)
    spherical = np.sin((1.0 - tt) * omega) / safe * z0[:, None] + np.sin(tt * omega) / safe * z1[:, None]
    return np.where(np.abs(sin) < 1e-6, lerp(z0, z1, t), spherical)


INTERPOLATIONS: dict[str, Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]] = {
    "linear": lerp, "slerp": slerp}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from configs.dcgan_fashion_mnist import STEPS_PER_EPOCH

    parser.add_argument("--workdir", default="", help="a trained ganjax workdir to load instead of training")
    parser.add_argument("--dataset", default="fashion_mnist", help="an image dataset name the config accepts")
    parser.add_argument("--image_size", type=int, default=0,
                        help="config.data.image_size (0 = native; DCGAN makes 28, 32, 64, 128, 256)")
    parser.add_argument("--steps", type=common.positive(), default=20 * STEPS_PER_EPOCH,
                        help="training steps (the config: 20 epochs of 468 batches)")
    parser.add_argument("--rows", type=common.positive(), default=8, help="interpolation paths (rows)")
    parser.add_argument("--interp_steps", type=common.positive(), default=10,
                        help="images per path, endpoints included (>= 2)")
    parser.add_argument("--interpolation", default="linear", help=f"one of {', '.join(INTERPOLATIONS)}")
    parser.add_argument("--generators", default="ema,raw", help=f"comma list of {', '.join(GENERATORS)}")
    parser.add_argument("--seed", type=int, default=0, help="training seed and the seed of the z pairs")
    parser.add_argument("--data_dir", default="", help="TFDS data dir ('' = $TFDS_DATA_DIR or TFDS's default)")


def check_arguments(a: argparse.Namespace) -> None:
    """``--quick``'s budget; known names; an existing ``--workdir``; a config that validates."""
    from ganjax.data import TOY_DATASETS
    from ganjax.errors import ConfigError, unknown_name

    if a.interpolation not in INTERPOLATIONS:
        raise unknown_name("--interpolation", a.interpolation, INTERPOLATIONS)
    a.generators = [g.strip() for g in a.generators.split(",") if g.strip()]
    for g in a.generators or [""]:
        if g not in GENERATORS:
            raise unknown_name("--generators entry", g, GENERATORS)
    if a.quick:
        for key, value in QUICK.items():
            setattr(a, key, value)
    if a.dataset in TOY_DATASETS:
        raise ConfigError(f"--dataset={a.dataset} is a toy distribution; DCGAN needs an image dataset "
                          f"(fashion_mnist, mnist, cifar10, celeb_a, cats_vs_dogs, idx:PATH, folder:PATH)")
    if a.interp_steps < 2:
        raise ConfigError(f"--interp_steps={a.interp_steps} must be >= 2 (the two endpoints)")
    if a.workdir:
        if not storage.exists(storage.join(a.workdir, "config.json")):
            raise ConfigError(f"--workdir={a.workdir} has no config.json: not a ganjax workdir")
        trained_on = json.loads(storage.read_text(storage.join(a.workdir, "config.json"))).get("dataset")
        if trained_on in TOY_DATASETS:
            raise ConfigError(f"--workdir={a.workdir} was trained on the toy distribution {trained_on!r}; "
                              f"interpolation needs an image GAN")
    else:
        from ganjax.config import validate

        validate(run_config(a))  # names and values, before anything is written or loaded


def run_config(a: argparse.Namespace):
    """``configs/dcgan_fashion_mnist.py`` (``:quick`` with ``--quick``) on ``--dataset`` for ``--steps`` steps."""
    from ganjax.config import load_config_file

    c = load_config_file("dcgan_fashion_mnist", "quick" if a.quick else None)
    c.dataset = a.dataset
    if a.image_size:
        c.data.image_size = a.image_size
    c.seed = a.seed
    c.data_dir = a.data_dir
    c.num_steps = a.steps
    c.checkpoint_every = c.sample_every = min(c.checkpoint_every, a.steps)
    return c


def paths(gan, seed: int, rows: int, interp_steps: int, interpolation: str) -> np.ndarray:
    """``[rows, interp_steps, z_dim]`` latent paths between ``rows`` random pairs of the GAN's noise."""
    import jax

    z = np.asarray(gan.sample_noise(jax.random.key(seed), 2 * rows), np.float64)
    t = np.linspace(0.0, 1.0, interp_steps)
    return INTERPOLATIONS[interpolation](z[:rows], z[rows:], t).astype(np.float32)


def decode(gan, state, z: np.ndarray, generators: Sequence[str]) -> dict[str, np.ndarray]:
    """``z [R, K, D]`` → ``{generator: images [R, K, H, W, C]}`` in [−1, 1] (eval mode; one compiled function)."""
    import jax

    from ganjax.train import generate

    sample = jax.jit(lambda s, zz: generate(gan, s, zz))
    r, k, d = z.shape
    out = {}
    for g in generators:
        params = state.ema_params if g == "ema" else state.g_params
        images = np.asarray(sample(state.replace(g_params=params), z.reshape(r * k, d)))
        out[g] = images.reshape(r, k, *images.shape[1:])
    return out


def smoothness(images: np.ndarray) -> dict[str, float]:
    """Of rows ``[R, K, H, W, C]``: mean / max L2 between consecutive images, endpoint L2 and path/endpoint ratio."""
    flat = images.reshape(images.shape[0], images.shape[1], -1).astype(np.float64)
    steps = np.linalg.norm(np.diff(flat, axis=1), axis=-1)            # [R, K-1]
    ends = np.linalg.norm(flat[:, -1] - flat[:, 0], axis=-1)          # [R]
    return {"step_mean": float(steps.mean()), "step_max": float(steps.max()), "endpoint": float(ends.mean()),
            "ratio": float(np.mean(steps.sum(1) / np.maximum(ends, 1e-12)))}


def plot_panels(path: str, grids: dict[str, np.ndarray], interpolation: str) -> str:
    """One image panel per generator: rows of ``[R, K, H, W, C]`` paths."""
    from ganjax import plots

    names = {"ema": "EMA G", "raw": "raw G"}
    first = next(iter(grids.values()))
    r, k = first.shape[:2]
    fig, axes = common.subplots(len(grids), 1, size=(max(4.0, 0.6 * k), max(2.0, 0.6 * r) + 0.4))
    for ax, (gen, images) in zip(axes[:, 0], grids.items()):
        grid = plots.image_grid(images.reshape(r * k, *images.shape[2:]), nrow=k)
        ax.imshow(grid[..., 0] if grid.shape[-1] == 1 else grid, cmap="gray", vmin=0, vmax=255,
                  interpolation="nearest")
        ax.set_axis_off()
        ax.set_title(f"{names[gen]}: {interpolation} interpolation, {k} steps per row", fontsize=9)
    return common.save(fig, path, dpi=110)


def smoothness_table(scores: dict[str, dict[str, float]]) -> str:
    return common.markdown_table(
        ["generator", "mean L2, consecutive images", "max L2, consecutive images", "L2, endpoints",
         "path length / endpoint L2"],
        [[g, f"{s['step_mean']:.3f}", f"{s['step_max']:.3f}", f"{s['endpoint']:.3f}", f"{s['ratio']:.3f}"]
         for g, s in scores.items()])


def budget(config, step: int, loaded: str) -> str:
    source = f"loaded from `{loaded}` (its newest checkpoint)" if loaded else "trained by this command"
    g, d = config.model.g, config.model.d
    return f"""
* Model {source}: G `{config.model.generator}` (width {g.get('width', '?')}), D `{config.model.discriminator}`
  (width {d.get('width', '?')}, norm `{d.get('norm', '?')}`), z ~ `{config.model.noise}`^{config.model.z_dim},
  loss `{config.loss}`, Adam({config.optimizer_g.learning_rate:g}, β1 {config.optimizer_g.b1:g}).
* Dataset `{config.dataset}` (image_size {config.data.get('image_size', 0) or 'native'}); checkpoint at step {step}
  of {config.num_steps}, batch {config.batch_size}: {step * config.batch_size:,} images seen.
"""


def prepare(run: common.Run) -> tuple[Any, Any, Any, int]:
    """``(config, gan, state, step)``: the ``--workdir`` given, or a fresh run trained in ``DIR/runs/dcgan``."""
    from ganjax.trainer import load_for_inference, train_and_evaluate

    a = run.args
    workdir = a.workdir
    if not workdir:
        workdir = run.path(os.path.join("runs", "dcgan"))
        storage.rmtree(workdir)  # the script's own scratch run: always trained afresh
        train_and_evaluate(run_config(a), workdir)
    return load_for_inference(workdir)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    run = common.start_run("dcgan_interpolation", __doc__, argv, add_arguments, check_arguments)
    a = run.args
    config, gan, state, step = prepare(run)
    z = paths(gan, a.seed, a.rows, a.interp_steps, a.interpolation)
    grids = decode(gan, state, z, a.generators)
    scores = {g: smoothness(images) for g, images in grids.items()}
    images = [os.path.basename(plot_panels(run.path("dcgan_interpolation.png"), grids, a.interpolation))]
    report = common.write_report(
        run, "Radford et al. (2015): DCGAN latent-space interpolation",
        [("Training budget", budget(config, step, a.workdir)),
         ("Smoothness", f"{a.rows} rows of {a.interp_steps} images, **{a.interpolation}** interpolation between "
                        f"random z pairs (seed {a.seed}); L2 over all pixels in [−1, 1], averaged over the "
                        f"rows.\n\n" + smoothness_table(scores))],
        images)
    common.finish(run, report, images)
    return {"report": report, "images": [run.path(i) for i in images], "scores": scores, "step": step,
            "paths_shape": z.shape}


if __name__ == "__main__":
    common.run_main(main)
