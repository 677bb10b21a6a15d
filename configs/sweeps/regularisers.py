"""Regulariser ablation on the Fashion-MNIST DCGAN: none / CR / bCR / LeCam / DiffAugment / ADA.

    python -m ganjax.sweep --config=configs/sweeps/regularisers.py --workdir=runs/regularisers
    python -m ganjax.sweep --config=configs/sweeps/regularisers.py:quick --workdir=/tmp/regs   # smoke run

One architecture and training (``configs/dcgan_fashion_mnist.py``: DCGAN,
non-saturating loss, Adam 2e-4, batch 128, 20 epochs), six methods, three
seeds; each method is its own group (one compiled program of its seeds in
``vmap`` mode). Settings (docs/losses.md, "Regularisers"):

===========  ======================================================================
method       keys
===========  ======================================================================
none         every regulariser off
CR           ``regularizers.cr_real = 10`` (Zhang et al. 2020), T = ``translation``
bCR          CR and ``regularizers.cr_fake = 10`` (Zhao et al. 2020)
LeCam        ``regularizers.lecam = 0.3`` (Tseng et al. 2021, EMA decay 0.99)
DiffAugment  ``augment = 'color,translation,cutout'`` (Zhao et al. 2020)
ADA          ``regularizers.ada = True``: the same three ops with probability p,
             target 0.6, adjusted every 4 steps at the paper's speed
===========  ======================================================================

The methods are a chain of conditional axes (the grid of each applies only
where the earlier ones left every other regulariser off). Ranked by ``fid``
on the ganjax domain classifier's features (lower is better).
"""

from ganjax.config import parse_variants
from ganjax.sweep.spec import axis, sweep_config

DIFFAUGMENT = "color,translation,cutout"
CR = 10.0  # λ_real = λ_fake of CR and bCR
LECAM = 0.3


def get_config(arg: str | None = None):
    quick = "quick" in parse_variants(arg, set())
    off = {"augment": ""}
    axes = [
        axis("augment", grid=("", DIFFAUGMENT)),
        axis("regularizers.cr_real", grid=(0.0, CR), when=off),
        axis("regularizers.cr_fake", grid=(0.0, CR), when={"regularizers.cr_real": CR}),
        axis("regularizers.lecam", grid=(0.0, LECAM), when={**off, "regularizers.cr_real": 0.0}),
        axis("regularizers.ada", grid=(False, True),
             when={**off, "regularizers.cr_real": 0.0, "regularizers.lecam": 0.0}),
    ]
    fixed = {"regularizers.ada_policy": DIFFAUGMENT, "eval_every": 1872, "eval.num_samples": 5000,
             "sample_every": 0}
    if quick:
        fixed.update({"num_steps": 4, "log_every": 2, "checkpoint_every": 4, "eval_every": 4,
                      "eval.num_samples": 200})
    return sweep_config(
        base="configs/dcgan_fashion_mnist.py:quick" if quick else "configs/dcgan_fashion_mnist.py",
        axes=axes, seeds=1 if quick else 3, metric="fid", fixed=fixed)
