"""Seed 004's convolutional autoencoder and the generator built on its decoder.

One decoder definition, :class:`ConvDecoder`, is shared by the autoencoder of
phase 1 (:class:`ConvAutoencoder`, trained by :mod:`ganjax.pretrain`) and by
the phase-2 generator (:class:`AEDecoderGenerator`, ``model.generator =
'ae_decoder'``). Both hold it under the name ``decoder``, so the pretrained
``params['decoder']`` subtree of the autoencoder *is* the generator's
``params['decoder']`` subtree.

Shapes for Fashion-MNIST (the seed's 28×28×1, two upsampling layers):
encoder Conv32 3×3/2 → Conv64 3×3/2 → Conv128 3×3/1 (ReLU) gives the code
``[B, 7, 7, 128]`` (the seed's decoder input ``Input(shape=(7, 7, 128))``);
decoder ConvTranspose64 3×3/2 → ConvTranspose32 3×3/2 (ReLU) → Conv1 3×3 →
tanh gives ``[B, 28, 28, 1]`` in [−1, 1] (the seed's sigmoid on [0, 1]
images; tanh(a) = 2·sigmoid(2a) − 1). The generator maps z ``[B, z_dim]``
through Dense(7·7·128) + ReLU (the seed's ``Dense(128 * 7 * 7,
activation='relu')`` + ``Reshape``) into the decoder.
"""

from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
from flax import linen as nn

from ganjax.errors import ConfigError
from ganjax.models.layers import ConvTranspose, kernel_init

Array = jax.Array

_KERNEL = (3, 3)


def code_shape(out_shape: Sequence[int], num_upsamplings: int, code_channels: int) -> tuple[int, int, int]:
    """The code ``(H / 2^k, W / 2^k, code_channels)`` of images ``out_shape = (H, W, C)``.

    Raises ``ConfigError`` if the images are not ``[H, W, C]`` or H, W do not divide by ``2^k``.
    """
    if len(out_shape) != 3:
        raise ConfigError(f"the autoencoder generator needs [H, W, C] images, got examples of shape "
                          f"{tuple(out_shape)}; use model.generator='mlp' for this dataset")
    factor = 2 ** num_upsamplings
    h, w, _ = out_shape
    if h % factor or w % factor:
        raise ConfigError(f"images of {h}x{w} do not divide by 2^{num_upsamplings} = {factor} (one factor 2 "
                          f"per entry of model.g.widths); use fewer upsampling layers")
    return h // factor, w // factor, code_channels


class ConvEncoder(nn.Module):
    """x ``[B, H, W, C]`` → code ``[B, H/2^k, W/2^k, code_channels]``, k = ``len(widths)``.

    Attributes:
      widths: channels of the stride-2 3×3 convolutions (ReLU, 'same' padding).
      code_channels: channels of the final stride-1 3×3 convolution (ReLU).
      weight_init: kernel initialiser name (biases start at zero).
      dtype: compute dtype.
    """

    widths: Sequence[int] = (32, 64)
    code_channels: int = 128
    weight_init: str = "glorot_uniform"
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x: Array) -> Array:
        h = x.astype(self.dtype)
        for width, stride in [(w, 2) for w in self.widths] + [(self.code_channels, 1)]:
            h = nn.relu(nn.Conv(width, _KERNEL, strides=(stride, stride), padding="SAME", dtype=self.dtype,
                                kernel_init=kernel_init(self.weight_init))(h))
        return h


class ConvDecoder(nn.Module):
    """code ``[B, H/2^k, W/2^k, code_channels]`` → images ``[B, H, W, C]`` in [−1, 1].

    Attributes:
      channels: C, the image channels.
      widths: channels of the stride-2 3×3 transposed convolutions (ReLU);
        k = ``len(widths)`` factors of 2 of upsampling.
      weight_init: kernel initialiser name (biases start at zero).
      dtype: compute dtype; the output is float32.
    """

    channels: int
    widths: Sequence[int] = (64, 32)
    weight_init: str = "glorot_uniform"
    dtype: jnp.dtype = jnp.float32

    def setup(self):
        init = kernel_init(self.weight_init)
        self.upsample = [ConvTranspose(w, 3, kernel_init=init, dtype=self.dtype) for w in self.widths]
        self.to_image = nn.Conv(self.channels, _KERNEL, padding="SAME", dtype=self.dtype, kernel_init=init)

    def preactivation(self, code: Array) -> Array:
        """The output layer's input to tanh, float32 ``[B, H, W, C]`` (for losses in logit form)."""
        h = code.astype(self.dtype)
        for layer in self.upsample:
            h = nn.relu(layer(h))
        return self.to_image(h).astype(jnp.float32)

    def __call__(self, code: Array) -> Array:
        return jnp.tanh(self.preactivation(code))


# The same decoder with gradients stopped at its parameters (model.g.freeze_decoder):
# the parameter tree is unchanged, the optimizer's updates of it are exactly zero.
FrozenConvDecoder = nn.map_variables(ConvDecoder, "params", trans_in_fn=jax.lax.stop_gradient, init=True)


class ConvAutoencoder(nn.Module):
    """Phase 1 of seed 004: x ``[B, H, W, C]`` → reconstruction ``[B, H, W, C]`` in [−1, 1].

    Attributes:
      out_shape: ``(H, W, C)``.
      encoder_widths: the encoder's stride-2 convolutions (``pretrain.encoder_widths``).
      code_channels, widths, weight_init: as :class:`AEDecoderGenerator` (``model.g.*``),
        so the decoder has the generator's decoder shapes.
      dtype: compute dtype.
    """

    out_shape: Sequence[int]
    encoder_widths: Sequence[int] = (32, 64)
    code_channels: int = 128
    widths: Sequence[int] = (64, 32)
    weight_init: str = "glorot_uniform"
    dtype: jnp.dtype = jnp.float32

    def setup(self):
        if len(self.encoder_widths) != len(self.widths):
            raise ConfigError(f"pretrain.encoder_widths {tuple(self.encoder_widths)} and model.g.widths "
                              f"{tuple(self.widths)} must have the same length (each entry halves / doubles "
                              f"the image size)")
        self.encoder = ConvEncoder(self.encoder_widths, self.code_channels, self.weight_init, self.dtype)
        self.decoder = ConvDecoder(self.out_shape[-1], self.widths, self.weight_init, self.dtype)

    def preactivation(self, x: Array) -> Array:
        """The decoder's pre-tanh output for images ``x [B, H, W, C]``."""
        code_shape(self.out_shape, len(self.widths), self.code_channels)
        return self.decoder.preactivation(self.encoder(x))

    def __call__(self, x: Array, train: bool = True) -> Array:
        del train  # no dropout or BatchNorm
        return jnp.tanh(self.preactivation(x))


class AEDecoderGenerator(nn.Module):
    """Phase 2 of seed 004: z ``[B, z_dim]`` → Dense + ReLU → reshape to the code → decoder.

    Attributes:
      out_shape: ``(H, W, C)`` of one generated image.
      code_channels: channels of the decoder's input (the autoencoder's code).
      widths: the decoder's transposed convolutions (each doubles H and W).
      freeze_decoder: stop gradients at the decoder's parameters, so the
        adversarial phase trains only the mapping (default: fine-tune all).
      weight_init: kernel initialiser name (biases start at zero).
      dtype: compute dtype; the output is float32.
    """

    out_shape: Sequence[int]
    code_channels: int = 128
    widths: Sequence[int] = (64, 32)
    freeze_decoder: bool = False
    weight_init: str = "glorot_uniform"
    dtype: jnp.dtype = jnp.float32

    def setup(self):
        shape = code_shape(self.out_shape, len(self.widths), self.code_channels)
        size = shape[0] * shape[1] * shape[2]
        self.mapping = nn.Dense(size, dtype=self.dtype, kernel_init=kernel_init(self.weight_init))
        decoder = FrozenConvDecoder if self.freeze_decoder else ConvDecoder
        self.decoder = decoder(self.out_shape[-1], self.widths, self.weight_init, self.dtype)

    def __call__(self, z: Array, train: bool = True) -> Array:
        del train  # no dropout or BatchNorm
        shape = code_shape(self.out_shape, len(self.widths), self.code_channels)
        code = nn.relu(self.mapping(z.astype(self.dtype))).reshape((z.shape[0], *shape))
        return self.decoder(code)
