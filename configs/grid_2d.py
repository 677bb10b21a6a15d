"""2-D mixture of 25 Gaussians on the grid {-4,-2,0,2,4}², std 0.05 (VEEGAN'17 / PacGAN'18).

Nets and optimiser: :func:`ganjax.config.mixture_config`. Variants: ``quick``.
"""

from ganjax.config import mixture_config


def get_config(arg: str | None = None):
    return mixture_config("grid_2d", arg)
