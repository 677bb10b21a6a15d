"""DCGAN (Radford et al. 2015), as the PyTorch DCGAN tutorial builds it.

G: z → projection to a ``base × base × width·2^(n-1)`` map (a bias-free Dense,
the same function as the tutorial's 1×1 → 4×4 transposed conv) → BatchNorm →
ReLU → ``n − 1`` transposed convs 4×4/2 halving the channels, each with
BatchNorm and ReLU → a transposed conv 4×4/2 to C channels → tanh.
``base`` is 4 (7 for 28×28 images) and ``n = log2(H / base)``; at 64×64 with
width 64 that is the tutorial's 512→256→128→64→3.

D: convs 4×4/2 doubling the channels from ``width`` while the map is larger
than 4×4 and even, LeakyReLU(0.2) after each and normalisation (``norm``,
BatchNorm by default) on all but the first; then a ``k × k`` VALID conv to one
logit on the remaining ``k × k`` map (4×4; 7×7 for 28×28 images).

All convs are bias-free (BatchNorm makes a bias redundant) and initialised
N(0, 0.02), as the tutorial; BatchNorm uses PyTorch's momentum 0.1 (0.9 in
Flax's convention) and epsilon 1e-5.
"""

from __future__ import annotations

import jax
from flax import linen as nn

from ganjax.models.layers import ACTIVATIONS, ImageDiscriminator, ImageGenerator, conv_transpose, logits

Array = jax.Array


class DCGANGenerator(ImageGenerator):
    """z ``[B, z_dim]`` → ``[B, H, H, C]``; ``width`` is the tutorial's ``ngf``."""

    width: int = 64

    @nn.compact
    def __call__(self, z: Array, train: bool = True) -> Array:
        _, base, n = self.plan()
        channels = self.width * 2 ** (n - 1)
        h = self.project(z, base, channels, train, nn.relu, per_unit_bn=False, use_bias=False)
        for _ in range(n - 1):
            channels //= 2
            h = self.deconv(h, channels, train, use_bias=False)
        return self.to_image(conv_transpose(self.out_shape[-1], self.weight_init, self.dtype, use_bias=False)(h))


def strided_plan(size: int, width: int) -> tuple[list[tuple[int, int, int]], int]:
    """DCGAN D's 4×4/2 convs ``(features, 4, 2)`` for a side-``size`` input, and the side left."""
    specs = []
    while size > 4 and size % 2 == 0:
        specs.append((width * 2 ** len(specs), 4, 2))
        size //= 2
    return specs, size


class DCGANDiscriminator(ImageDiscriminator):
    """x ``[B, H, W, C]`` → logits ``[B]``; ``width`` is the tutorial's ``ndf``."""

    width: int = 64

    @nn.compact
    def __call__(self, x: Array, train: bool = True) -> Array:
        specs, side = strided_plan(x.shape[1], self.width)
        h = self.conv_stack(x, specs, train, ACTIVATIONS["leaky_relu"], use_bias=False)
        h = self.normalizer(train).conv(1, side, 1, "VALID", use_bias=False)(h)
        return logits(h.reshape((x.shape[0], 1)))
