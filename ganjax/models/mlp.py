"""Fully connected generators and discriminators.

Defaults are seed 002's PyTorch MNIST GAN exactly (G 100→256→512→1024→784,
LeakyReLU(0.2), tanh; D 784→1024→512→256→1, LeakyReLU(0.2), Dropout(0.3),
PyTorch's default init). The same modules, configured, give seed 000's Keras
generator (BatchNorm after each activation), seed 003's 1-D Gaussian nets and
the 2-D mixture nets, including PacGAN'18's (a bias-free generator with
BatchNorm before each ReLU, a LinearMaxout discriminator): see the configs.

Concat conditioning (the classic cGAN, Mirza & Osindero 2014): with class
labels, G's input is ``[z, one_hot(y)]`` and D's ``[x, one_hot(y)]`` (after
flattening, or after the moments), one-hot over ``num_classes``. D's
``conditioning='none'`` ignores the labels (ACGAN's D, which only classifies
through its class head). Without labels both nets are exactly the
unconditional ones.
"""

from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
from flax import linen as nn

from ganjax.models import layers
from ganjax.models.layers import Dense, per_layer

Array = jax.Array


def with_one_hot(h: Array, labels: Array | None, num_classes: int) -> Array:
    """``[B, F]`` → ``[B, F + num_classes]``: ``h`` with the one-hot labels appended (``h`` itself without labels)."""
    if labels is None:
        return h
    return jnp.concatenate([h, jax.nn.one_hot(labels, num_classes, dtype=h.dtype)], axis=-1)


def maxout(h: Array, pieces: int) -> Array:
    """``[..., width · pieces]`` → ``[..., width]``: the max over each unit's ``pieces`` consecutive
    outputs (unit ``u`` takes outputs ``u·pieces … u·pieces + pieces − 1``, Blocks' ``Maxout`` layout).

    Differentiable in reverse mode to any order (:func:`max_last`); not in forward mode (``jax.jvp``).
    """
    if pieces == 1:
        return h
    return max_last(h.reshape((*h.shape[:-1], h.shape[-1] // pieces, pieces)))


@jax.custom_vjp
def max_last(h: Array) -> Array:
    """``[..., n]`` → ``[...]``: the max over the last axis, as ``jnp.max(h, -1)``, with the same gradient
    (the cotangent split evenly between tied maxima) computed in the backward pass from ``h`` and the max.

    XLA:CPU runs JAX's own rule for ``jnp.max`` (a forward-mode rule, transposed) slowly for a short
    last axis: over maxout's 5 pieces the hand-written backward made PacGAN'18's LinearMaxout D
    step 12% faster. A ``custom_vjp`` has no forward-mode derivative; reverse mode nests (a gradient
    penalty's double backward works).
    """
    return jnp.max(h, axis=-1)


def _max_last_forward(h: Array) -> tuple[Array, tuple[Array, Array]]:
    m = jnp.max(h, axis=-1)
    return m, (h, m)


def _max_last_backward(residuals: tuple[Array, Array], g: Array) -> tuple[Array]:
    h, m = residuals
    hits = (h == m[..., None]).astype(g.dtype)
    return (g[..., None] * hits / jnp.sum(hits, axis=-1, keepdims=True),)


max_last.defvjp(_max_last_forward, _max_last_backward)


class MLPGenerator(nn.Module):
    """z ``[B, z_dim]`` (and labels int32 ``[B]``) → x ``[B, *out_shape]``.

    Attributes:
      out_shape: shape of one generated example, e.g. ``(28, 28, 1)``.
      hidden: widths of the hidden layers.
      activation: one activation name for all hidden layers, or one per layer.
      output: activation of the output layer (``tanh`` for images in [-1, 1],
        ``linear`` for unbounded toy data).
      batch_norm: BatchNorm in each hidden layer (seed 000; PacGAN'18).
      norm_position: where that BatchNorm sits: ``after_activation``
        (Dense → act → BN, seed 000's Keras order) or ``before_activation``
        (Dense → BN → act, PacGAN'18's Blocks order).
      bn_momentum, bn_epsilon: BatchNorm running-average momentum and epsilon
        (Keras conventions: momentum 0.8 keeps 80% of the old average).
      use_bias: a bias in the hidden Dense layers (PacGAN'18's generator has
        none: BatchNorm's shift takes its place); the output layer always has one.
      weight_init: kernel initialiser name (see ``layers.kernel_init``).
      dtype: compute dtype (set from ``compute_dtype``); the output is float32.
      bn_axis_name: device axis to synchronise BatchNorm statistics over (set
        from ``parallel`` and ``sync_batch_norm``; None: per-device statistics).
      num_classes: classes of the labels (set from ``model.num_classes``);
        labels are one-hot encoded and concatenated to ``z``.
      bn_groups: BatchNorm training statistics per group of rows (row ``n`` in
        group ``n mod bn_groups``, :class:`ganjax.models.layers.GroupBatchNorm`):
        PacGAN'18's per-pack-slot generator calls with ``bn_groups = pack``.
        1 = statistics over the whole batch (Flax's ``nn.BatchNorm``).
    """

    out_shape: Sequence[int]
    hidden: Sequence[int] = (256, 512, 1024)
    activation: str | Sequence[str] = "leaky_relu"
    output: str = "tanh"
    batch_norm: bool = False
    norm_position: str = "after_activation"
    bn_momentum: float = 0.8
    bn_epsilon: float = 1e-3
    use_bias: bool = True
    weight_init: str = "torch"
    dtype: jnp.dtype = jnp.float32
    bn_axis_name: str | None = None
    num_classes: int = 0
    bn_groups: int = 1

    @nn.compact
    def __call__(self, z: Array, train: bool = True, labels: Array | None = None) -> Array:
        acts = per_layer(self.activation, len(self.hidden), "model.g.activation")
        before = self.batch_norm and self.norm_position == "before_activation"
        after = self.batch_norm and not before

        def norm(h: Array) -> Array:
            if self.bn_groups > 1:
                return layers.GroupBatchNorm(self.bn_groups, not train, self.bn_momentum, self.bn_epsilon,
                                             self.dtype, self.bn_axis_name)(h)
            return nn.BatchNorm(use_running_average=not train, momentum=self.bn_momentum,
                                epsilon=self.bn_epsilon, dtype=self.dtype, axis_name=self.bn_axis_name)(h)

        h = with_one_hot(z, labels, self.num_classes)
        for width, act in zip(self.hidden, acts):
            h = Dense(width, self.weight_init, self.dtype, use_bias=self.use_bias)(h)
            h = layers.activation(act)(norm(h) if before else h)
            if after:
                h = norm(h)
        size = 1
        for d in self.out_shape:
            size *= d
        x = layers.activation(self.output)(Dense(size, self.weight_init, self.dtype)(h))
        return x.reshape((z.shape[0], *self.out_shape)).astype(jnp.float32)


class MLPDiscriminator(nn.Module):
    """x ``[B, ...]`` (and labels int32 ``[B]``) → logits ``[B]`` (``[B, 1 + class_head]`` with a class head).

    Attributes:
      hidden: widths of the hidden layers.
      activation: one activation name for all hidden layers, or one per layer.
      dropout: dropout rate after each hidden activation (0 disables).
      maxout_pieces: ``k > 1`` makes each hidden layer a LinearMaxout layer
        (Goodfellow et al. 2013; PacGAN'18's D): a Dense of ``width · k``
        units whose outputs are maxed over ``k`` pieces per unit, then
        ``activation`` (``linear`` for plain maxout). 1 = ordinary Dense layers.
      features: ``raw`` feeds the flattened example; ``moments`` feeds only the
        mean and standard deviation of each example (seed 003's "use the mean
        and std as D's input", a minibatch-statistics discriminator).
      weight_init: kernel initialiser name.
      conditioning: what D does with labels: ``concat`` appends their one-hot
        encoding to its input features; ``none`` ignores them.
      dtype: compute dtype (set from ``compute_dtype``); logits are float32.
      num_classes: classes of the labels (set from ``model.num_classes``).
      class_head: ACGAN's class head of this many classes (set from
        ``model.num_classes`` when ``acgan_weight > 0``; 0 = none): the last
        layer then has ``1 + class_head`` outputs, the logit and the class logits.
    """

    hidden: Sequence[int] = (1024, 512, 256)
    activation: str | Sequence[str] = "leaky_relu"
    dropout: float = 0.3
    features: str = "raw"
    maxout_pieces: int = 1
    weight_init: str = "torch"
    conditioning: str = "concat"
    dtype: jnp.dtype = jnp.float32
    num_classes: int = 0
    class_head: int = 0

    @nn.compact
    def __call__(self, x: Array, train: bool = True, labels: Array | None = None) -> Array:
        h = x.reshape((x.shape[0], -1))
        if self.features == "moments":  # computed in float32 before the cast
            h = jnp.stack([jnp.mean(h, axis=1), jnp.std(h, axis=1)], axis=1)
        h = with_one_hot(h, labels if self.conditioning == "concat" else None, self.num_classes)
        acts = per_layer(self.activation, len(self.hidden), "model.d.activation")
        for width, act in zip(self.hidden, acts):
            h = layers.activation(act)(maxout(Dense(width * self.maxout_pieces, self.weight_init, self.dtype)(h),
                                              self.maxout_pieces))
            if self.dropout > 0:
                h = nn.Dropout(self.dropout, deterministic=not train)(h)
        out = Dense(1 + self.class_head, self.weight_init, self.dtype)(h).astype(jnp.float32)
        return out if self.class_head else out[:, 0]
