"""2-D mixture of 8 Gaussians on a ring of radius 2, std 0.02 (VEEGAN'17 / PacGAN'18).

Nets and optimiser: :func:`ganjax.config.mixture_config`. Variants: ``quick``.
"""

from ganjax.config import mixture_config


def get_config(arg: str | None = None):
    return mixture_config("ring_2d", arg)
