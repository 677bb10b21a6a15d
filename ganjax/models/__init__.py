"""Generator and discriminator registries.

A generator maps noise ``z [B, z_dim]`` to examples ``[B, *example_shape]``
(``__call__(z, train)``); a discriminator maps examples to logits ``[B]``
(``__call__(x, train)``). Both are Flax Linen modules; mutable state lives in
the ``batch_stats`` collection and dropout draws from the ``dropout`` RNG.

``model.generator`` / ``model.discriminator`` pick the class by name and
``model.g`` / ``model.d`` hold its keyword options (its dataclass fields).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Sequence

from flax import linen as nn

from ganjax.errors import ConfigError, unknown_name
from ganjax.models.keras_gan import KerasConvDiscriminator
from ganjax.models.mlp import MLPDiscriminator, MLPGenerator

GENERATORS: dict[str, type[nn.Module]] = {
    "mlp": MLPGenerator,
}

DISCRIMINATORS: dict[str, type[nn.Module]] = {
    "mlp": MLPDiscriminator,
    "keras_conv": KerasConvDiscriminator,
}


def _options(cls: type[nn.Module]) -> list[str]:
    reserved = {"parent", "name", "out_shape"}
    return [f.name for f in dataclasses.fields(cls) if f.name not in reserved]


def _build(kind: str, registry: Mapping[str, type[nn.Module]], name: str,
           options: Mapping[str, Any], **fixed: Any) -> nn.Module:
    if name not in registry:
        raise unknown_name(kind, name, registry)
    cls = registry[name]
    valid = _options(cls)
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ConfigError(f"unknown option(s) {unknown} for {kind} {name!r}; valid options: {', '.join(valid)}")
    as_tuples = {k: tuple(v) if isinstance(v, list) else v for k, v in options.items()}
    return cls(**fixed, **as_tuples)


def build_generator(name: str, example_shape: Sequence[int], options: Mapping[str, Any] = {}) -> nn.Module:
    """Instantiates generator ``name`` producing ``[B, *example_shape]``."""
    return _build("generator", GENERATORS, name, options, out_shape=tuple(example_shape))


def build_discriminator(name: str, options: Mapping[str, Any] = {}) -> nn.Module:
    """Instantiates discriminator ``name``."""
    return _build("discriminator", DISCRIMINATORS, name, options)
