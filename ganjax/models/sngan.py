"""SN-GAN's CIFAR-10 nets (Miyato et al. 2018, appendix B, Tables 3 and 4), with
spectral normalisation in D (``norm='spectral'``, the default; see
:func:`ganjax.models.layers.spectral_normalize`). Biases everywhere, as in
the authors' Chainer code.

``sngan_cnn`` ("standard CNN", Table 3). G: z → dense ``M_g × M_g × 8w`` → BN →
ReLU → deconv 4×4/2 with 4w, 2w, w filters, each BN → ReLU → conv 3×3/1 C →
tanh, ``M_g = H / 8`` (the paper's 4 for CIFAR's 32, 6 for STL's 48), w = 64;
the BN after the dense layer is the Chainer code's (the table lists none). D:
conv 3×3/1 w, 4×4/2 w, 3×3/1 2w, 4×4/2 2w, 3×3/1 4w, 4×4/2 4w, 3×3/1 8w, each
followed by LeakyReLU(0.1) → dense 1; w = 64. N(0, 0.02) init.

``sngan_resnet`` (Table 4). G: z → dense ``4 × 4 × w`` → ``n`` up-blocks → BN →
ReLU → conv 3×3 C → tanh, w = 256, ``n = log2(H / 4)`` (3 for 32×32; a 7×7
start for 28×28). Up-block: BN → ReLU → nearest 2× upsampling → conv 3×3 →
BN → ReLU → conv 3×3, plus the shortcut conv 1×1 of the upsampled input. D:
an optimised first block (conv 3×3 → ReLU → conv 3×3 → 2×2 average pool,
shortcut avg-pool → conv 1×1), down-blocks (ReLU → conv 3×3 → ReLU → conv 3×3
→ avg-pool; shortcut conv 1×1 → avg-pool) until the map is 8×8 (or odd), then
two blocks without resampling (identity shortcut) → ReLU → global sum
pooling → dense 1; w = 128. For CIFAR-10 that is the table's down, down,
plain, plain. Glorot-uniform init. With ``norm`` batch/layer, D normalises
the activations before every ReLU.

Class-conditional ``sngan_resnet`` (``num_classes > 0``, Miyato & Koyama 2018):
G's up-block BatchNorms become per-class conditional BatchNorms and D adds the
projection term ``⟨embed(y), φ(x)⟩`` (:mod:`ganjax.models.conditioning`); with
``num_classes = 0`` both nets are exactly the unconditional ones.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import linen as nn

from ganjax.models.conditioning import ConditionalBatchNorm, projection_logits, uses_labels
from ganjax.models.layers import (ACTIVATIONS, Conv, Dense, DNorm, ImageDiscriminator, ImageGenerator, avg_pool2x,
                                  logits, upsample2x)

Array = jax.Array


class SNGANCNNGenerator(ImageGenerator):
    """z ``[B, z_dim]`` → ``[B, H, H, C]``, H in 32…256 (``M_g = H / 8``)."""

    resolutions = (32, 64, 128, 256)
    width: int = 64

    @staticmethod
    def base_size(size: int) -> int:
        return size // 8

    @nn.compact
    def __call__(self, z: Array, train: bool = True) -> Array:
        _, base, n = self.plan()
        h = self.project(z, base, self.width * 2 ** n, train, nn.relu, per_unit_bn=True)
        for i in reversed(range(n)):
            h = self.deconv(h, self.width * 2 ** i, train)
        return self.to_image(Conv(self.out_shape[-1], 3, weight_init=self.weight_init, dtype=self.dtype)(h))


class SNGANCNNDiscriminator(ImageDiscriminator):
    """x ``[B, H, W, C]`` → logits ``[B]``."""

    norm: str = "spectral"
    width: int = 64

    @nn.compact
    def __call__(self, x: Array, train: bool = True) -> Array:
        w = self.width
        specs = [(w, 3, 1), (w, 4, 2), (2 * w, 3, 1), (2 * w, 4, 2), (4 * w, 3, 1), (4 * w, 4, 2), (8 * w, 3, 1)]
        h = self.conv_stack(x, specs, train, ACTIVATIONS["leaky_relu_0.1"])
        return logits(self.normalizer(train).dense(1)(h.reshape((x.shape[0], -1))))


class SNGANResNetGenerator(ImageGenerator):
    """z ``[B, z_dim]`` (and labels ``[B]`` when ``num_classes > 0``) → ``[B, H, H, C]``.

    Conditional (Miyato & Koyama 2018): every BatchNorm inside the up-blocks
    is a :class:`~ganjax.models.conditioning.ConditionalBatchNorm` (per-class
    γ/β); the final BatchNorm stays unconditional, as in the authors' code.
    """

    weight_init: str = "glorot_uniform"
    width: int = 256
    num_classes: int = 0

    def block_norm(self, x: Array, labels: Array | None, train: bool) -> Array:
        """BatchNorm of an up-block: per-class γ/β when ``labels`` is given."""
        if labels is None:
            return self.bn(x, train)
        return ConditionalBatchNorm(self.num_classes, self.bn_momentum, self.bn_epsilon, self.dtype,
                                    self.bn_axis_name)(x, labels, train)

    def up_block(self, x: Array, train: bool, labels: Array | None = None) -> Array:
        """``[B, S, S, w] → [B, 2S, 2S, w]``."""
        conv = lambda k: Conv(self.width, k, weight_init=self.weight_init, dtype=self.dtype)
        h = conv(3)(upsample2x(nn.relu(self.block_norm(x, labels, train))))
        h = conv(3)(nn.relu(self.block_norm(h, labels, train)))
        return h + conv(1)(upsample2x(x))

    @nn.compact
    def __call__(self, z: Array, train: bool = True, labels: Array | None = None) -> Array:
        _, base, n = self.plan()
        uses_labels(type(self).__name__, self.num_classes, labels)  # a mismatch is a ConfigError
        h = Dense(base * base * self.width, self.weight_init, self.dtype)(z).reshape((z.shape[0], base, base, -1))
        for _ in range(n):
            h = self.up_block(h, train, labels)
        h = nn.relu(self.bn(h, train))
        return self.to_image(Conv(self.out_shape[-1], 3, weight_init=self.weight_init, dtype=self.dtype)(h))


def d_block(nrm: DNorm, x: Array, features: int, down: bool, first: bool) -> Array:
    """One residual D block ``[B, S, S, ·] → [B, S', S', features]`` (S' = S/2 if ``down``)."""
    relu = lambda t: nn.relu(nrm.activations(t))
    h = nrm.conv(features, 3)(x if first else relu(x))
    h = nrm.conv(features, 3)(relu(h))
    shortcut = x
    if first or down or x.shape[-1] != features:  # a 1×1 conv commutes with average pooling
        shortcut = nrm.conv(features, 1)(x)
    if down:
        h, shortcut = avg_pool2x(h), avg_pool2x(shortcut)
    return h + shortcut


class SNGANResNetDiscriminator(ImageDiscriminator):
    """x ``[B, H, W, C]`` (and labels ``[B]`` when ``num_classes > 0``) → logits ``[B]``.

    Conditional: the projection head (Miyato & Koyama 2018,
    :func:`~ganjax.models.conditioning.projection_logits`) on the pooled features.
    """

    norm: str = "spectral"
    weight_init: str = "glorot_uniform"
    width: int = 128
    num_classes: int = 0

    @nn.compact
    def __call__(self, x: Array, train: bool = True, labels: Array | None = None) -> Array:
        nrm = self.normalizer(train)
        h = d_block(nrm, x.astype(self.dtype), self.width, down=True, first=True)
        while h.shape[1] > 8 and h.shape[1] % 2 == 0:
            h = d_block(nrm, h, self.width, down=True, first=False)
        for _ in range(2):
            h = d_block(nrm, h, self.width, down=False, first=False)
        h = jnp.sum(nn.relu(nrm.activations(h)), axis=(1, 2))
        return projection_logits(nrm, h, labels, self.num_classes, type(self).__name__)
