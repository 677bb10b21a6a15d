"""The researcher's ``ra_hinge`` loss (configs/examples/my_loss.py) against built-in losses on the 2-D ring.

    python -m ganjax.sweep --config=configs/examples/my_loss_sweep.py --workdir=runs/my_loss_sweep
    python -m ganjax.sweep --config=configs/examples/my_loss_sweep.py:quick --workdir=/tmp/mls   # smoke run

Every trial's config is configs/examples/my_loss.py's, whose ``imports``
registers ``ra_hinge`` and ``gp0`` in the sweep process (``mode='vmap'``) and
in every trial process (``--mode=process``). Axes: the loss (the user's, two
relativistic built-ins, two classic ones), the penalty (the user's ``gp0`` at
weight 1, or none) and the learning rate shared by G and D; three seeds.
Ranked by ``modes`` captured (higher is better).
"""

from ganjax.sweep.spec import axis, sweep_config

LOSSES = ("ra_hinge", "ragan", "rsgan", "non_saturating", "hinge")


def get_config(arg: str | None = None):
    quick = arg == "quick"
    return sweep_config(
        base="configs/examples/my_loss.py:quick" if quick else "configs/examples/my_loss.py",
        axes=[
            axis("loss", grid=("ra_hinge", "ragan", "hinge") if quick else LOSSES),
            axis("penalty", grid=("gp0",) if quick else ("gp0", "none")),
            axis(("optimizer_g.learning_rate", "optimizer_d.learning_rate"), grid=(1e-4,) if quick else (1e-4, 3e-4)),
        ],
        seeds=2 if quick else 3,
        metric="modes",
        fixed={} if quick else {"num_steps": 5000, "eval_every": 1000, "sample_every": 0, "checkpoint_every": 1000},
    )
