"""Fully connected generators and discriminators.

Defaults are seed 002's PyTorch MNIST GAN exactly (G 100→256→512→1024→784,
LeakyReLU(0.2), tanh; D 784→1024→512→256→1, LeakyReLU(0.2), Dropout(0.3),
PyTorch's default init). The same modules, configured, give seed 000's Keras
generator (BatchNorm after each activation), seed 003's 1-D Gaussian nets and
the 2-D mixture nets: see the configs.
"""

from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
from flax import linen as nn

from ganjax.models import layers
from ganjax.models.layers import Dense, per_layer

Array = jax.Array


class MLPGenerator(nn.Module):
    """z ``[B, z_dim]`` → x ``[B, *out_shape]``.

    Attributes:
      out_shape: shape of one generated example, e.g. ``(28, 28, 1)``.
      hidden: widths of the hidden layers.
      activation: one activation name for all hidden layers, or one per layer.
      output: activation of the output layer (``tanh`` for images in [-1, 1],
        ``linear`` for unbounded toy data).
      batch_norm: BatchNorm after each hidden activation (seed 000).
      bn_momentum, bn_epsilon: BatchNorm running-average momentum and epsilon
        (Keras conventions: momentum 0.8 keeps 80% of the old average).
      weight_init: kernel initialiser name (see ``layers.KERNEL_INITS``).
      dtype: compute dtype (set from ``compute_dtype``); the output is float32.
      bn_axis_name: device axis to synchronise BatchNorm statistics over (set
        from ``parallel`` and ``sync_batch_norm``; None: per-device statistics).
    """

    out_shape: Sequence[int]
    hidden: Sequence[int] = (256, 512, 1024)
    activation: str | Sequence[str] = "leaky_relu"
    output: str = "tanh"
    batch_norm: bool = False
    bn_momentum: float = 0.8
    bn_epsilon: float = 1e-3
    weight_init: str = "torch"
    dtype: jnp.dtype = jnp.float32
    bn_axis_name: str | None = None

    @nn.compact
    def __call__(self, z: Array, train: bool = True) -> Array:
        acts = per_layer(self.activation, len(self.hidden), "model.g.activation")
        h = z
        for width, act in zip(self.hidden, acts):
            h = layers.activation(act)(Dense(width, self.weight_init, self.dtype)(h))
            if self.batch_norm:
                h = nn.BatchNorm(use_running_average=not train, momentum=self.bn_momentum,
                                 epsilon=self.bn_epsilon, dtype=self.dtype, axis_name=self.bn_axis_name)(h)
        size = 1
        for d in self.out_shape:
            size *= d
        x = layers.activation(self.output)(Dense(size, self.weight_init, self.dtype)(h))
        return x.reshape((z.shape[0], *self.out_shape)).astype(jnp.float32)


class MLPDiscriminator(nn.Module):
    """x ``[B, ...]`` → logits ``[B]``.

    Attributes:
      hidden: widths of the hidden layers.
      activation: one activation name for all hidden layers, or one per layer.
      dropout: dropout rate after each hidden activation (0 disables).
      features: ``raw`` feeds the flattened example; ``moments`` feeds only the
        mean and standard deviation of each example (seed 003's "use the mean
        and std as D's input", a minibatch-statistics discriminator).
      weight_init: kernel initialiser name.
      dtype: compute dtype (set from ``compute_dtype``); logits are float32.
    """

    hidden: Sequence[int] = (1024, 512, 256)
    activation: str | Sequence[str] = "leaky_relu"
    dropout: float = 0.3
    features: str = "raw"
    weight_init: str = "torch"
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x: Array, train: bool = True) -> Array:
        h = x.reshape((x.shape[0], -1))
        if self.features == "moments":  # computed in float32 before the cast
            h = jnp.stack([jnp.mean(h, axis=1), jnp.std(h, axis=1)], axis=1)
        acts = per_layer(self.activation, len(self.hidden), "model.d.activation")
        for width, act in zip(self.hidden, acts):
            h = layers.activation(act)(Dense(width, self.weight_init, self.dtype)(h))
            if self.dropout > 0:
                h = nn.Dropout(self.dropout, deterministic=not train)(h)
        return Dense(1, self.weight_init, self.dtype)(h)[:, 0].astype(jnp.float32)
