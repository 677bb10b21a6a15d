"""Every loss × learning rate × seed on the 2-D ring of 8 Gaussians (mode coverage).

    python -m ganjax.sweep --config=configs/sweeps/ring_losses.py --workdir=runs/ring_losses
    python -m ganjax.sweep --config=configs/sweeps/ring_losses.py:quick --workdir=/tmp/rl   # smoke run

Five losses (``wasserstein`` with weight clipping 0.01, as WGAN), three
learning rates shared by G and D, three seeds: 45 trials in 6 groups of
trials that differ only in learning rate and seed (one compiled program each
in ``vmap`` mode). Ranked by ``modes`` captured (higher is better).
"""

from ganjax.sweep.spec import axis, sweep_config

LOSSES = ("minimax", "non_saturating", "least_squares", "wasserstein", "hinge")


def get_config(arg: str | None = None):
    quick = arg == "quick"
    return sweep_config(
        base="configs/ring_2d.py:quick" if quick else "configs/ring_2d.py",
        axes=[
            axis("loss", grid=LOSSES),
            axis(("optimizer_g.learning_rate", "optimizer_d.learning_rate"),
                 grid=(1e-4, 1e-3) if quick else (3e-5, 1e-4, 3e-4)),
            axis("optimizer_d.clip_value", grid=(0.01,), when={"loss": "wasserstein"}),
        ],
        seeds=2 if quick else 3,
        metric="modes",
        fixed={} if quick else {"num_steps": 5000, "eval_every": 1000, "sample_every": 0, "checkpoint_every": 1000},
    )
