"""Lucic et al. 2018 ("Are GANs Created Equal?") loss comparison on Fashion-MNIST, at CPU scale.

    python -m ganjax.sweep --config=configs/sweeps/lucic_fashion.py:narrow --workdir=runs/lucic_narrow
    python -m ganjax.sweep --config=configs/sweeps/lucic_fashion.py:wide --workdir=runs/lucic_wide
    python -m ganjax.sweep --config=configs/sweeps/lucic_fashion.py:quick --workdir=/tmp/lucic   # smoke run

Methods (loss + penalty): MM GAN (``minimax``), NS GAN (``non_saturating``),
LSGAN (``least_squares``), WGAN (``wasserstein`` + weight clipping), WGAN-GP
(``wasserstein`` + ``wgan_gp``), DRAGAN (``non_saturating`` + ``dragan``).
Hyperparameters are drawn at random per method, as in the paper (the ranges
of compare_gan's ``GetDefaultWideRange`` / ``GetDefaultNarrowRange``):

==============  ==============================  ===========================
key             wide                            narrow
==============  ==============================  ===========================
learning rate   log-uniform [1e-5, 1e-2]        log-uniform [1e-4, 1e-3]
β1              uniform [0, 1)                  0.5
n_disc          {1, 5}                          1
clip (WGAN)     log-uniform [1e-3, 1]           log-uniform [1e-2, 1]
λ (GP, DRAGAN)  log-uniform [0.1, 100]          log-uniform [0.1, 10]
==============  ==============================  ===========================

The G and D learning rates and β1 are shared. Differences from the paper, for
a 2-core CPU: seed 002's MLP GAN instead of the InfoGAN net (the image
architectures are another issue), 2,000 steps instead of 20 epochs, 8 draws
per method instead of 100, and FID on the ganjax domain classifier's
features (2,000 samples) instead of Inception's. Ranked by ``fid`` (lower is
better).
"""

from ganjax.config import parse_variants
from ganjax.sweep.spec import axis, sweep_config

LR = ("optimizer_g.learning_rate", "optimizer_d.learning_rate")
B1 = ("optimizer_g.b1", "optimizer_d.b1")
RANGES = {
    "wide": {"lr": (1e-5, 1e-2), "clip": (1e-3, 1.0), "lambda": (0.1, 100.0)},
    "narrow": {"lr": (1e-4, 1e-3), "clip": (1e-2, 1.0), "lambda": (0.1, 10.0)},
}


def get_config(arg: str | None = None):
    variants = parse_variants(arg, {"wide", "narrow"})
    quick = "quick" in variants
    r = RANGES["wide" if "wide" in variants else "narrow"]
    axes = [
        axis("loss", grid=("minimax", "non_saturating", "least_squares", "wasserstein")),
        axis("penalty", grid=("none", "wgan_gp"), when={"loss": "wasserstein"}),
        axis("penalty", grid=("none", "dragan"), when={"loss": "non_saturating"}),
        axis(LR, log_uniform=r["lr"]),
        axis("optimizer_d.clip_value", log_uniform=r["clip"], when={"loss": "wasserstein", "penalty": "none"}),
        axis("penalty_weight", log_uniform=r["lambda"], when={"penalty": ("wgan_gp", "dragan")}),
    ]
    if "wide" in variants:
        axes += [axis(B1, uniform=(0.0, 0.999)), axis("n_disc", choice=(1, 5))]
    fixed = {"optimizer_g.b1": 0.5, "optimizer_d.b1": 0.5, "eval_every": 1000, "eval.num_samples": 2000,
             "num_steps": 2000, "log_every": 500, "checkpoint_every": 1000, "sample_every": 0}
    if quick:
        fixed.update({"num_steps": 20, "eval_every": 10, "log_every": 10, "checkpoint_every": 10,
                      "eval.num_samples": 200})
    return sweep_config(
        base="configs/fashion_mnist_mlp.py:quick" if quick else "configs/fashion_mnist_mlp.py",
        axes=axes, num_random=1 if quick else 8, seeds=2 if quick else 1, metric="fid", fixed=fixed)
