"""Seed 000's Keras MNIST discriminator (its generator is ``MLPGenerator`` with
BatchNorm, see ``configs/mnist_keras.py``)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import linen as nn

from ganjax.models.layers import activation, kernel_init

Array = jax.Array


class KerasConvDiscriminator(nn.Module):
    """x ``[B, H, W, C]`` → logits ``[B]``:
    Conv64 3×3/2 → LeakyReLU(0.2) → Dropout(0.3) → Conv128 3×3/2 → LeakyReLU →
    Dropout(0.3) → Flatten → Dense 1 ('same' padding, Keras' glorot-uniform init,
    zero bias)."""

    input_rank = 3  # [H, W, C] examples (a class attribute, not an option)

    widths: tuple[int, ...] = (64, 128)
    dropout: float = 0.3
    weight_init: str = "glorot_uniform"
    dtype: jnp.dtype = jnp.float32  # compute dtype; logits are float32

    @nn.compact
    def __call__(self, x: Array, train: bool = True) -> Array:
        h = x.astype(self.dtype)
        for width in self.widths:
            h = nn.Conv(width, (3, 3), strides=(2, 2), padding="SAME", kernel_init=kernel_init(self.weight_init),
                        dtype=self.dtype)(h)
            h = nn.Dropout(self.dropout, deterministic=not train)(activation("leaky_relu")(h))
        h = h.reshape((h.shape[0], -1))
        return nn.Dense(1, kernel_init=kernel_init(self.weight_init), dtype=self.dtype)(h)[:, 0].astype(jnp.float32)
