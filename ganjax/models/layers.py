"""Named building blocks shared by the architectures: activations, initialisers."""

from __future__ import annotations

import functools
from typing import Callable, Sequence

import jax
import jax.numpy as jnp
from flax import linen as nn

from ganjax.errors import unknown_name

Array = jax.Array

ACTIVATIONS: dict[str, Callable[[Array], Array]] = {
    "relu": nn.relu,
    "leaky_relu": functools.partial(nn.leaky_relu, negative_slope=0.2),
    "sigmoid": nn.sigmoid,
    "tanh": jnp.tanh,
    "linear": lambda x: x,
}


def _torch_linear_init(key, shape, dtype=jnp.float32):
    """PyTorch's default ``nn.Linear``/``nn.Conv`` init: U(±1/sqrt(fan_in))."""
    fan_in = 1
    for d in shape[:-1]:
        fan_in *= d
    bound = 1.0 / jnp.sqrt(jnp.asarray(fan_in, jnp.float32))
    return jax.random.uniform(key, shape, dtype, -bound, bound)


# Kernel initialisers by name. For "torch" the bias needs the kernel's fan-in,
# which Flax's bias initialiser cannot see: `Dense` below supplies it.
KERNEL_INITS: dict[str, Callable] = {
    "torch": _torch_linear_init,
    "glorot_uniform": nn.initializers.glorot_uniform(),
    "lecun_normal": nn.initializers.lecun_normal(),
    "normal_0.02": nn.initializers.normal(0.02),
}


def activation(name: str) -> Callable[[Array], Array]:
    """Looks up an activation function by name."""
    if name not in ACTIVATIONS:
        raise unknown_name("activation", name, ACTIVATIONS)
    return ACTIVATIONS[name]


def kernel_init(name: str) -> Callable:
    """Looks up a kernel initialiser by name."""
    if name not in KERNEL_INITS:
        raise unknown_name("kernel_init", name, KERNEL_INITS)
    return KERNEL_INITS[name]


def per_layer(spec: str | Sequence[str], num_layers: int, what: str) -> tuple[str, ...]:
    """Expands one activation name, or checks a per-layer list has ``num_layers`` names."""
    if isinstance(spec, str):
        return (spec,) * num_layers
    spec = tuple(spec)
    if len(spec) != num_layers:
        from ganjax.errors import ConfigError

        raise ConfigError(f"{what} has {len(spec)} entries {spec} but there are {num_layers} hidden layers")
    return spec


class Dense(nn.Module):
    """A dense layer ``[..., fan_in] → [..., features]`` with a named init.

    ``weight_init="torch"`` matches ``torch.nn.Linear`` exactly in distribution
    (kernel and bias both U(±1/sqrt(fan_in))); other inits use a zero bias.
    """

    features: int
    weight_init: str = "torch"
    dtype: jnp.dtype = jnp.float32  # compute dtype; parameters stay float32

    @nn.compact
    def __call__(self, x: Array) -> Array:
        x = x.astype(self.dtype)
        fan_in = x.shape[-1]
        kernel = self.param("kernel", kernel_init(self.weight_init), (fan_in, self.features), jnp.float32)
        if self.weight_init == "torch":
            bound = 1.0 / jnp.sqrt(fan_in)
            bias_init = lambda k, s, d=jnp.float32: jax.random.uniform(k, s, d, -bound, bound)
        else:
            bias_init = nn.initializers.zeros
        bias = self.param("bias", bias_init, (self.features,), jnp.float32)
        return jnp.dot(x, kernel.astype(self.dtype)) + bias.astype(self.dtype)
