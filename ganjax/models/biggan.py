"""BigGAN (Brock et al. 2018) at 32×32, 64×64 and 128×128, in the PyTorch-StudioGAN
``big_resnet`` layout (the compare_gan ``resnet_biggan`` layout at 32 and 128 has the
same parameter counts; see docs/architectures.md, "BigGAN").

G (``biggan``): z is split into ``n + 1`` equal chunks (hierarchical z / skip-z,
:func:`~ganjax.models.conditioning.hierarchical_z`), ``n`` the number of
up-blocks. ``z₀`` → dense ``4 × 4 × ch·m₀`` → ``n`` up-blocks → BatchNorm →
ReLU → conv 3×3 C → tanh. Up-block ``i`` (``ch·mᵢ → ch·mᵢ₊₁``):
cBN → ReLU → nearest 2× → conv 3×3 → cBN → ReLU → conv 3×3, plus the shortcut
conv 1×1 of the upsampled input; both cBNs are
:class:`~ganjax.models.conditioning.LinearConditionalBatchNorm` of
``[shared class embedding, zᵢ]`` (of ``zᵢ`` alone when unconditional). A
self-attention block (SAGAN's, :class:`SelfAttention`) follows the block whose
output has side ``attention`` (default ``H / 2``: 16, 32, 64). Spectral norm on
every conv and dense kernel (``spectral``), orthogonal init.

D (``biggan``): residual blocks (the first one "optimised", as SN-GAN's;
1×1 shortcut convs where the block resamples or changes width, identity
otherwise), all but the last halving the map (at 32: the first two, as SN-GAN's
CIFAR D), self-attention after the first
block whose output has side ``attention`` (default ``H / 2``), ReLU → global
sum pooling → dense 1, plus the projection term ⟨embed(y), φ⟩ when conditional.

Channel multipliers (``ch`` = ``width``, 96 in StudioGAN and BigGAN): :data:`G_CHANNELS`
(32: 4, 4, 4, 4; 64: 16, 8, 4, 2, 1; 128: 16, 16, 8, 4, 2, 1) and :data:`D_CHANNELS`
(32: 2, 2, 2, 2; 64: 1, 2, 4, 8, 16; 128: 1, 2, 4, 8, 16, 16).
"""

from __future__ import annotations

from typing import ClassVar

import jax
import jax.numpy as jnp
from flax import linen as nn

from ganjax.errors import ConfigError
from ganjax.models.conditioning import (LinearConditionalBatchNorm, block_conditions, hierarchical_z,
                                        projection_logits, uses_labels)
from ganjax.models.layers import Conv, Dense, ImageDiscriminator, ImageGenerator, upsample2x
from ganjax.models.sngan import d_block

Array = jax.Array

# G: the feature map after the dense layer has ch·m[0] channels, up-block i makes ch·m[i+1].
G_CHANNELS: dict[int, tuple[int, ...]] = {32: (4, 4, 4, 4), 64: (16, 8, 4, 2, 1), 128: (16, 16, 8, 4, 2, 1)}
# D: block i makes ch·m[i] channels; the first D_DOWNSAMPLING[H] blocks halve the map, the others keep it.
D_CHANNELS: dict[int, tuple[int, ...]] = {32: (2, 2, 2, 2), 64: (1, 2, 4, 8, 16), 128: (1, 2, 4, 8, 16, 16)}
D_DOWNSAMPLING: dict[int, int] = {32: 2, 64: 4, 128: 5}
RESOLUTIONS = tuple(sorted(G_CHANNELS))


def attention_side(attention: int | None, size: int) -> int:
    """The feature-map side that gets self-attention: ``attention``, or ``size / 2`` for None (0 = none)."""
    return size // 2 if attention is None else attention


def max_pool2x(x: Array) -> Array:
    """2×2 max pooling ``[B, H, W, C] → [B, H/2, W/2, C]``."""
    return nn.max_pool(x, (2, 2), strides=(2, 2))


class SelfAttention(nn.Module):
    """SAGAN's self-attention block (Zhang et al. 2019) as in BigGAN: ``[B, H, W, C]`` → the same shape.

    ``θ = conv₁ₓ₁(x)`` (C/8), ``φ = maxpool(conv₁ₓ₁(x))`` (C/8),
    ``g = maxpool(conv₁ₓ₁(x))`` (C/2), ``β = softmax(θ φᵀ)`` over the pooled
    positions, ``o = conv₁ₓ₁(β g)`` (C); returns ``x + σ·o``, σ a scalar that
    starts at 0. All four convs are bias-free, spectrally normalised when
    ``spectral``. Needs C ≥ 8 and even H, W.
    """

    spectral: bool = True
    weight_init: str = "orthogonal"
    dtype: jnp.dtype = jnp.float32

    def conv1x1(self, name: str, features: int, x: Array, train: bool) -> Array:
        return Conv(features, 1, weight_init=self.weight_init, use_bias=False, spectral=self.spectral,
                    dtype=self.dtype, name=name)(x, train)

    @nn.compact
    def __call__(self, x: Array, train: bool = True) -> Array:
        b, h, w, c = x.shape
        if c < 8:
            raise ConfigError(f"self-attention on a {h}×{w}×{c} feature map needs at least 8 channels; "
                              f"raise the width or set attention=0")
        theta = self.conv1x1("theta", c // 8, x, train).reshape(b, h * w, c // 8)
        phi = max_pool2x(self.conv1x1("phi", c // 8, x, train)).reshape(b, h * w // 4, c // 8)
        g = max_pool2x(self.conv1x1("g", c // 2, x, train)).reshape(b, h * w // 4, c // 2)
        beta = jax.nn.softmax(jnp.einsum("bqc,bkc->bqk", theta, phi).astype(jnp.float32), axis=-1)
        o = jnp.einsum("bqk,bkc->bqc", beta.astype(g.dtype), g).reshape(b, h, w, c // 2)
        sigma = self.param("sigma", nn.initializers.zeros, (), jnp.float32)
        return x + sigma.astype(x.dtype) * self.conv1x1("o", c, o, train)


def _check_attention(who: str, attention: int | None, size: int, sides: list[int]) -> int:
    """The side that gets self-attention (0: none); a side that is not in ``sides`` is a ConfigError."""
    side = attention_side(attention, size)
    if side != 0 and side not in sides:
        raise ConfigError(f"{who}: attention = {attention!r} is not the side of one of its feature maps "
                          f"({', '.join(map(str, sorted(set(sides))))}); use one of them, or 0 for none")
    return side


class BigGANGenerator(ImageGenerator):
    """z ``[B, z_dim]`` (and labels ``[B]`` when ``num_classes > 0``) → ``[B, H, H, C]``, H in 32, 64, 128.

    ``z_dim`` must be a multiple of ``n + 1`` (4, 5, 6 chunks at 32, 64, 128).

    Attributes:
      width: ``ch``, the channel multiplier (96).
      shared_dim: size of the shared class embedding (128).
      attention: side of the feature map followed by self-attention (None: H/2; 0: none).
      spectral: spectral normalisation of every kernel.
      num_classes: 0 (unconditional: each block's cBN sees only its z chunk) or the class count.
    """

    supports_truncation: ClassVar[bool] = True
    resolutions = RESOLUTIONS

    width: int = 96
    shared_dim: int = 128
    attention: int | None = None
    spectral: bool = True
    num_classes: int = 0
    weight_init: str = "orthogonal"
    bn_epsilon: float = 1e-4

    def cbn(self, x: Array, cond: Array, train: bool) -> Array:
        return LinearConditionalBatchNorm(self.spectral, self.weight_init, self.bn_momentum, self.bn_epsilon,
                                          self.dtype, self.bn_axis_name)(x, cond, train)

    def conv(self, features: int, kernel_size: int, x: Array, train: bool) -> Array:
        return Conv(features, kernel_size, weight_init=self.weight_init, spectral=self.spectral,
                    dtype=self.dtype)(x, train)

    def up_block(self, x: Array, features: int, cond: Array, train: bool) -> Array:
        """``[B, S, S, ·] → [B, 2S, 2S, features]``, both BatchNorms conditioned on ``cond [B, D]``."""
        h = self.conv(features, 3, upsample2x(nn.relu(self.cbn(x, cond, train))), train)
        h = self.conv(features, 3, nn.relu(self.cbn(h, cond, train)), train)
        return h + self.conv(features, 1, upsample2x(x), train)

    @nn.compact
    def __call__(self, z: Array, train: bool = True, labels: Array | None = None) -> Array:
        size, base, n = self.plan()
        who = type(self).__name__
        channels = [self.width * m for m in G_CHANNELS[size]]
        attention = _check_attention(who, self.attention, size, [base * 2 ** (i + 1) for i in range(n)])
        z0, chunks = hierarchical_z(z, n)
        shared = None
        if uses_labels(who, self.num_classes, labels):
            shared = nn.Embed(self.num_classes, self.shared_dim, embedding_init=nn.initializers.normal(1.0),
                              name="shared")(labels)
        conds = block_conditions(chunks, shared)
        h = Dense(base * base * channels[0], self.weight_init, self.dtype, spectral=self.spectral)(z0, train)
        h = h.reshape((z.shape[0], base, base, channels[0]))
        for i in range(n):
            h = self.up_block(h, channels[i + 1], conds[i], train)
            if h.shape[1] == attention:
                h = SelfAttention(self.spectral, self.weight_init, self.dtype)(h, train)
        h = nn.relu(self.bn(h, train))
        return self.to_image(self.conv(self.out_shape[-1], 3, h, train))


class BigGANDiscriminator(ImageDiscriminator):
    """x ``[B, H, H, C]`` (and labels ``[B]`` when ``num_classes > 0``) → logits ``[B]``, H in 32, 64, 128.

    Attributes:
      width: ``ch`` (96).
      attention: side of the feature map followed by self-attention (None: H/2; 0: none).
      num_classes: 0 (no projection term) or the class count.
    """

    norm: str = "spectral"
    weight_init: str = "orthogonal"
    width: int = 96
    attention: int | None = None
    num_classes: int = 0

    @nn.compact
    def __call__(self, x: Array, train: bool = True, labels: Array | None = None) -> Array:
        who = type(self).__name__
        size = x.shape[1]
        if size not in D_CHANNELS or x.shape[2] != size:
            raise ConfigError(f"discriminator 'biggan' takes square images with H in "
                              f"{', '.join(map(str, RESOLUTIONS))}, got {tuple(x.shape[1:])}")
        mult = D_CHANNELS[size]
        downs = D_DOWNSAMPLING[size]
        sides = [size // 2 ** min(i + 1, downs) for i in range(len(mult))]
        attention = _check_attention(who, self.attention, size, sides)
        nrm = self.normalizer(train)
        h = x.astype(self.dtype)
        for i, m in enumerate(mult):
            h = d_block(nrm, h, self.width * m, down=i < downs, first=i == 0)
            if h.shape[1] == attention:
                h = SelfAttention(nrm.norm == "spectral", self.weight_init, self.dtype)(h, train)
                attention = 0  # once: the last blocks keep the side
        h = jnp.sum(nn.relu(nrm.activations(h)), axis=(1, 2))
        return projection_logits(nrm, h, labels, self.num_classes, who)
