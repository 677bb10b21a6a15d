"""The InfoGAN-style nets of Lucic et al. 2018 ("Are GANs created equal?",
Table 7; compare_gan's ``infogan`` architecture), without InfoGAN's latent-code head.

G: FC 1024 → BN → ReLU → FC 128·(H/4)·(H/4) → BN → ReLU → reshape → deconv 64
4×4/2 → BN → ReLU → deconv C 4×4/2 → tanh (compare_gan's sigmoid, for data in
[-1, 1]). D: conv 64 4×4/2 → LeakyReLU(0.2) → conv 128 4×4/2 → norm →
LeakyReLU → FC 1024 → norm → LeakyReLU → FC 1, with ``norm`` BatchNorm by
default (Lucic'18; ``none`` for their WGAN-GP/DRAGAN runs). Every layer has a
bias; N(0, 0.02) init; BatchNorm per unit on the FC layers, per channel on
the convs.
"""

from __future__ import annotations

import jax
from flax import linen as nn

from ganjax.models.layers import ACTIVATIONS, Dense, ImageDiscriminator, ImageGenerator, conv_transpose, logits

Array = jax.Array


class InfoGANGenerator(ImageGenerator):
    """z ``[B, z_dim]`` → ``[B, H, H, C]``; ``width``: the deconv's filters (64), the FC map has 2·width."""

    width: int = 64
    fc_width: int = 1024

    @staticmethod
    def base_size(size: int) -> int:
        return size // 4

    @nn.compact
    def __call__(self, z: Array, train: bool = True) -> Array:
        _, base, _ = self.plan()
        h = nn.relu(self.bn(Dense(self.fc_width, self.weight_init, self.dtype)(z), train))
        h = self.project(h, base, 2 * self.width, train, nn.relu, per_unit_bn=True)
        h = self.deconv(h, self.width, train)
        return self.to_image(conv_transpose(self.out_shape[-1], self.weight_init, self.dtype)(h))


class InfoGANDiscriminator(ImageDiscriminator):
    """x ``[B, H, W, C]`` → logits ``[B]``; ``width``: filters of the first conv (64), then 2·width."""

    width: int = 64
    fc_width: int = 1024

    @nn.compact
    def __call__(self, x: Array, train: bool = True) -> Array:
        act = ACTIVATIONS["leaky_relu"]
        h = self.conv_stack(x, [(self.width, 4, 2), (2 * self.width, 4, 2)], train, act)
        nrm = self.normalizer(train)
        h = act(nrm.activations(nrm.dense(self.fc_width)(h.reshape((x.shape[0], -1)))))
        return logits(nrm.dense(1)(h))
