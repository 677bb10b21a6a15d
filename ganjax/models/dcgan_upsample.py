"""Seed 001's Keras image GAN ("cats vs dogs" at 256×256×3): upsampling G, full-resolution D.

G: Dense(width·b·b) → LeakyReLU(0.2) → BatchNorm → reshape ``[b, b, width]`` →
``n`` blocks of (UpSampling2D ×2 → Conv width 3×3 'same' → LeakyReLU(0.2) →
BatchNorm) → Conv C 3×3 'same' → tanh. The seed starts at 7×7 and upsamples
twice (which makes 28×28, although it declares 256×256); here ``b`` is 7 for
28×28 and 8 for 32…256, and ``n = log2(H / b)`` (5 blocks at 256×256).

D: Conv 3×3 'same' with ``widths`` (64, 128, 256, 512) filters, each followed by
LeakyReLU(0.2) and — on all but the first — normalisation (``norm``; the seed's
BatchNorm, after the activation) → global average pooling → Dense 1 (the logit;
the seed's sigmoid is part of the loss). The seed's convs keep the full
resolution (``strides=1``), which costs ~200 GFLOP per 256×256 image;
``strides=2`` halves the map at every conv.

Keras defaults throughout: glorot-uniform kernels, zero biases, BatchNorm
momentum 0.8 (the seed's) and epsilon 1e-3.
"""

from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
from flax import linen as nn

from ganjax.models.layers import (ACTIVATIONS, Conv, ImageDiscriminator, ImageGenerator, logits,
                                  upsample2x)

Array = jax.Array


class UpsampleGenerator(ImageGenerator):
    """z ``[B, z_dim]`` → ``[B, H, H, C]``; ``width``: filters of the Dense map and every conv block."""

    bn_momentum: float = 0.8
    bn_epsilon: float = 1e-3
    weight_init: str = "glorot_uniform"
    width: int = 128

    @staticmethod
    def base_size(size: int) -> int:
        return 7 if size == 28 else 8

    @nn.compact
    def __call__(self, z: Array, train: bool = True) -> Array:
        _, base, n = self.plan()
        act = ACTIVATIONS["leaky_relu"]
        h = self.project(z, base, self.width, train, act, per_unit_bn=True, act_first=True)
        for _ in range(n):
            h = Conv(self.width, 3, weight_init=self.weight_init, dtype=self.dtype)(upsample2x(h))
            h = self.bn(act(h), train)
        return self.to_image(Conv(self.out_shape[-1], 3, weight_init=self.weight_init, dtype=self.dtype)(h))


class UpsampleDiscriminator(ImageDiscriminator):
    """x ``[B, H, W, C]`` → logits ``[B]``."""

    bn_momentum: float = 0.8
    bn_epsilon: float = 1e-3
    weight_init: str = "glorot_uniform"
    widths: Sequence[int] = (64, 128, 256, 512)
    strides: int = 1

    @nn.compact
    def __call__(self, x: Array, train: bool = True) -> Array:
        specs = [(w, 3, self.strides) for w in self.widths]
        h = self.conv_stack(x, specs, train, ACTIVATIONS["leaky_relu"], act_first=True)
        h = jnp.mean(h, axis=(1, 2))
        return logits(self.normalizer(train).dense(1)(h))
