"""Generator and discriminator registries.

A generator maps noise ``z [B, z_dim]`` to examples ``[B, *example_shape]``
(``__call__(z, train)``); a discriminator maps examples to logits ``[B]``
(``__call__(x, train)``). Both are Flax Linen modules; mutable state lives in
the ``batch_stats`` collection and dropout draws from the ``dropout`` RNG.

``model.generator`` / ``model.discriminator`` pick the class by name and
``model.g`` / ``model.d`` hold its keyword options (its dataclass fields).

Class-conditional modules (``model.num_classes > 0``): a module is
conditional iff its ``__call__`` has a ``labels`` parameter (int32 ``[B]`` or
None); it then has a dataclass field ``num_classes: int = 0``, which the
builder fills from ``model.num_classes`` (as ``out_shape`` from the
dataset). A discriminator with a field ``class_head`` can grow ACGAN's class
head (``acgan_weight > 0``, :mod:`ganjax.acgan`): the builder sets
``class_head = num_classes`` and D then returns ``[B, 1 + num_classes]``.

Image architectures (one module per family): ``dcgan`` (:mod:`.dcgan`),
``dcgan_upsample`` (seed 001, :mod:`.dcgan_upsample`), ``infogan``
(:mod:`.infogan`), ``sngan_cnn`` and ``sngan_resnet`` (:mod:`.sngan`). Their
discriminators take ``norm`` = none | batch | layer | spectral; spectral
normalisation keeps its power-iteration vectors in the ``spectral``
collection, i.e. in ``d_state``.

Both are :class:`ganjax.registry.Registry` instances: :func:`register_generator`
and :func:`register_discriminator` (also ``ganjax.register_generator`` /
``ganjax.register_discriminator``) add a researcher's own module class, whose
dataclass fields then become its ``model.g`` / ``model.d`` options.
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any, Mapping, Sequence

from flax import linen as nn

from ganjax.errors import ConfigError, unknown_name
from ganjax.models import layers
from ganjax.models.dcgan import DCGANDiscriminator, DCGANGenerator
from ganjax.models.dcgan_upsample import UpsampleDiscriminator, UpsampleGenerator
from ganjax.models.infogan import InfoGANDiscriminator, InfoGANGenerator
from ganjax.models.autoencoder import AEDecoderGenerator
from ganjax.models.biggan import BigGANDiscriminator, BigGANGenerator
from ganjax.models.keras_gan import KerasConvDiscriminator
from ganjax.models.mlp import MLPDiscriminator, MLPGenerator
from ganjax.models.sngan import (SNGANCNNDiscriminator, SNGANCNNGenerator, SNGANResNetDiscriminator,
                                 SNGANResNetGenerator)
from ganjax.registry import Registry, RegistrationError

G_SIGNATURE = ("a flax.linen.Module class with a field out_shape (the example shape) and "
               "__call__(self, z [B, z_dim], train: bool) -> [B, *out_shape]")
D_SIGNATURE = "a flax.linen.Module class with __call__(self, x [B, *example_shape], train: bool) -> logits [B]"


def is_conditional(cls: type[nn.Module]) -> bool:
    """Whether a module class takes class labels: its ``__call__`` has a ``labels`` parameter."""
    return "labels" in inspect.signature(cls.__call__).parameters


def _module_check(kind: str, expected: str, fields: tuple[str, ...] = ()):
    """The registration check of a generator or discriminator class: a Linen module called ``(x, train=...)``;
    a conditional one (``labels`` parameter) also has the field ``num_classes``."""
    def check(name: str, cls: Any) -> None:
        if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
            raise RegistrationError(f"{kind} {name!r}: {cls!r} is not a flax.linen.Module class; expected {expected}")
        try:
            inspect.signature(cls.__call__).bind(None, None, train=True)
        except TypeError:
            raise RegistrationError(f"{kind} {name!r}: {cls.__name__}.__call__"
                                    f"{inspect.signature(cls.__call__)} has the wrong signature; "
                                    f"expected {expected}") from None
        needed = fields + (("num_classes",) if is_conditional(cls) else ())
        missing = [f for f in needed if f not in {x.name for x in dataclasses.fields(cls)}]
        if missing:
            raise RegistrationError(f"{kind} {name!r}: {cls.__name__} lacks the field(s) {', '.join(missing)}; "
                                    f"expected {expected}")
    return check


GENERATORS: Registry[type[nn.Module]] = Registry("generator", _module_check("generator", G_SIGNATURE, ("out_shape",)))
DISCRIMINATORS: Registry[type[nn.Module]] = Registry("discriminator", _module_check("discriminator", D_SIGNATURE))


def register_generator(name: str, cls: type[nn.Module] | None = None, *, override: bool = False):
    """Registers a generator class as ``model.generator = name``; without ``cls``, a class decorator.

    ``cls`` is a Linen module with a field ``out_shape`` (set from the
    dataset) and ``__call__(self, z, train)`` mapping ``[B, z_dim]`` to
    ``[B, *out_shape]``; its other fields are ``model.g`` options. Optional
    fields ``dtype`` and ``bn_axis_name`` are set from ``compute_dtype`` and
    ``parallel``/``sync_batch_norm``.

    Raises:
      RegistrationError: not such a class, or ``name`` taken (unless ``override``).
    """
    return GENERATORS.register(name, cls, override=override)


def register_discriminator(name: str, cls: type[nn.Module] | None = None, *, override: bool = False):
    """Registers a discriminator class as ``model.discriminator = name``; without ``cls``, a class decorator.

    ``cls`` is a Linen module with ``__call__(self, x, train)`` mapping
    ``[B, *example_shape]`` to logits ``[B]``; its fields are ``model.d``
    options (``dtype``/``bn_axis_name`` as for generators). An optional class
    attribute ``input_rank`` (e.g. 3 for ``[H, W, C]``) refuses datasets of
    another rank.

    Raises:
      RegistrationError: not such a class, or ``name`` taken (unless ``override``).
    """
    return DISCRIMINATORS.register(name, cls, override=override)

for _name, _cls in (("mlp", MLPGenerator), ("dcgan", DCGANGenerator), ("dcgan_upsample", UpsampleGenerator),
                   ("infogan", InfoGANGenerator), ("sngan_cnn", SNGANCNNGenerator),
                   ("sngan_resnet", SNGANResNetGenerator), ("biggan", BigGANGenerator),
                   ("ae_decoder", AEDecoderGenerator)):  # seed 004: noise → Dense → pretrained autoencoder decoder
    register_generator(_name, _cls)
for _name, _cls in (("mlp", MLPDiscriminator), ("keras_conv", KerasConvDiscriminator), ("dcgan", DCGANDiscriminator),
                   ("dcgan_upsample", UpsampleDiscriminator), ("infogan", InfoGANDiscriminator),
                   ("sngan_cnn", SNGANCNNDiscriminator), ("sngan_resnet", SNGANResNetDiscriminator),
                   ("biggan", BigGANDiscriminator)):
    register_discriminator(_name, _cls)
GENERATORS.mark_builtin()
DISCRIMINATORS.mark_builtin()


# Fields set by ganjax from other config keys, never through model.g / model.d:
# out_shape (the dataset), dtype (compute_dtype), bn_axis_name (parallel +
# sync_batch_norm), num_classes (model.num_classes), class_head (ACGAN's
# class head: model.num_classes when acgan_weight > 0, else 0).
RUNTIME_FIELDS = ("out_shape", "dtype", "bn_axis_name", "num_classes", "class_head")


def _fields(cls: type[nn.Module]) -> list[str]:
    return [f.name for f in dataclasses.fields(cls) if f.name not in ("parent", "name")]


def _options(cls: type[nn.Module]) -> list[str]:
    return [f for f in _fields(cls) if f not in RUNTIME_FIELDS]


def _positive_ints(v: Any) -> bool:
    return (isinstance(v, (tuple, list)) and len(v) > 0
            and all(isinstance(w, int) and not isinstance(w, bool) and w > 0 for w in v))


def _positive_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v > 0


def _one_of(choices: Sequence[str]):
    return lambda v: isinstance(v, str) and v in choices


def _names_in(choices: Mapping[str, Any]):
    def ok(v: Any) -> bool:
        return all(isinstance(n, str) and n in choices for n in ([v] if isinstance(v, str) else v))
    return ok


MLP_FEATURES = ("raw", "moments")

# Checks of module options by field name (applied to every model that has the
# field): (predicate, what a valid value is).
OPTION_CHECKS: dict[str, tuple[Any, str]] = {
    "hidden": (_positive_ints, "a non-empty list of positive integers"),
    "widths": (_positive_ints, "a non-empty list of positive integers"),
    "dropout": (lambda v: isinstance(v, (int, float)) and 0.0 <= v < 1.0, "a rate in [0, 1)"),
    "bn_momentum": (lambda v: isinstance(v, (int, float)) and 0.0 <= v < 1.0, "in [0, 1)"),
    "activation": (_names_in(layers.ACTIVATIONS), f"one of {', '.join(sorted(layers.ACTIVATIONS))} "
                                                  f"(or a list of them, one per hidden layer)"),
    "output": (_names_in(layers.ACTIVATIONS), f"one of {', '.join(sorted(layers.ACTIVATIONS))}"),
    "weight_init": (layers.is_kernel_init, f"one of {', '.join(sorted(layers.KERNEL_INITS))}, or normal_<std> "
                                           "(N(0, std²), std > 0, e.g. normal_0.01)"),
    "use_bias": (lambda v: isinstance(v, bool), "true or false"),
    "norm_position": (_one_of(("after_activation", "before_activation")), "after_activation or before_activation"),
    "maxout_pieces": (_positive_int, "a positive integer (1 = no maxout)"),
    "bn_groups": (_positive_int, "a positive integer (1 = BatchNorm statistics over the whole batch)"),
    "features": (_names_in(dict.fromkeys(MLP_FEATURES)), f"one of {', '.join(MLP_FEATURES)}"),
    "batch_norm": (lambda v: isinstance(v, bool), "true or false"),
    "norm": (_one_of(layers.D_NORMS), f"one of {', '.join(layers.D_NORMS)}"),
    "width": (_positive_int, "a positive integer"),
    "fc_width": (_positive_int, "a positive integer"),
    "strides": (lambda v: v in (1, 2) and not isinstance(v, bool), "1 or 2"),
    "bn_epsilon": (lambda v: isinstance(v, (int, float)) and v > 0, "> 0"),
    "freeze_decoder": (lambda v: isinstance(v, bool), "true or false"),
    "code_channels": (lambda v: _positive_ints([v]), "a positive integer"),
    "conditioning": (_one_of(("concat", "none")), "concat or none"),
    "shared_dim": (_positive_int, "a positive integer"),
    "attention": (lambda v: v is None or (isinstance(v, int) and not isinstance(v, bool) and v >= 0),
                  "the side of a feature map (e.g. 16), 0 for none, or None for H/2"),
    "spectral": (lambda v: isinstance(v, bool), "true or false"),
}


def _check_options(prefix: str, options: Mapping[str, Any]) -> None:
    for key, value in options.items():
        if key in OPTION_CHECKS:
            ok, valid = OPTION_CHECKS[key]
            if not ok(value):
                raise ConfigError(f"{prefix}.{key} = {value!r} is invalid; it must be {valid}")


def _checked_options(kind: str, registry: Mapping[str, type[nn.Module]], name: str,
                     options: Mapping[str, Any]) -> tuple[type[nn.Module], dict[str, Any]]:
    if name not in registry:
        raise unknown_name(kind, name, registry)
    cls = registry[name]
    valid = _options(cls)
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ConfigError(f"unknown option(s) {unknown} for {kind} {name!r}; valid options: {', '.join(valid)}")
    as_tuples = {k: tuple(v) if isinstance(v, list) else v for k, v in options.items()}
    _check_options("model.g" if kind == "generator" else "model.d", as_tuples)
    return cls, as_tuples


def option_defaults(kind: str, name: str) -> dict[str, Any]:
    """``{option: default}`` of the registered ``kind`` (``"generator"`` / ``"discriminator"``) ``name``:
    the value a ``model.g`` / ``model.d`` option has when the config does not set it ({} for an unknown
    name, e.g. a user module not imported)."""
    registry = GENERATORS if kind == "generator" else DISCRIMINATORS
    if name not in registry:
        return {}
    fields = {f.name: f for f in dataclasses.fields(registry[name])}
    return {k: fields[k].default for k in _options(registry[name]) if fields[k].default is not dataclasses.MISSING}


def check_generator_options(name: str, options: Mapping[str, Any] = {}) -> None:
    """Checks a generator's name and options without an output shape (before data loading)."""
    _checked_options("generator", GENERATORS, name, options)


def _build(kind: str, registry: Mapping[str, type[nn.Module]], name: str,
           options: Mapping[str, Any], **runtime: Any) -> nn.Module:
    cls, as_tuples = _checked_options(kind, registry, name, options)
    check_shape = getattr(cls, "check_out_shape", None)
    if check_shape is not None:  # image generators: a resolution they cannot make is refused here
        check_shape(name, runtime["out_shape"])
    fixed = {k: v for k, v in runtime.items() if k in _fields(cls) and v is not None}
    return cls(**fixed, **as_tuples)


def build_generator(name: str, example_shape: Sequence[int], options: Mapping[str, Any] = {},
                    **runtime: Any) -> nn.Module:
    """Instantiates generator ``name`` producing ``[B, *example_shape]``.

    ``runtime`` may set ``dtype`` (compute dtype) and ``bn_axis_name`` (the
    axis over which BatchNorm statistics are synchronised) where the module
    has those fields.
    """
    return _build("generator", GENERATORS, name, options, out_shape=tuple(example_shape), **runtime)


def build_discriminator(name: str, options: Mapping[str, Any] = {}, **runtime: Any) -> nn.Module:
    """Instantiates discriminator ``name`` (``runtime`` as in :func:`build_generator`)."""
    return _build("discriminator", DISCRIMINATORS, name, options, **runtime)


def check_input_shape(name: str, example_shape: Sequence[int], dataset: str) -> None:
    """Refuses a discriminator that cannot take the dataset's examples (e.g. a conv net on vectors)."""
    rank = getattr(DISCRIMINATORS[name], "input_rank", None)
    if rank is not None and len(example_shape) != rank:
        raise ConfigError(f"discriminator {name!r} needs examples of rank {rank} ([H, W, C] images), but dataset "
                          f"{dataset!r} gives shape {tuple(example_shape)}; choose a discriminator for it, e.g. 'mlp'")


def conditional_names(registry: Mapping[str, type[nn.Module]]) -> list[str]:
    """The names in ``registry`` (GENERATORS or DISCRIMINATORS) of conditional modules."""
    return sorted(n for n in registry if is_conditional(registry[n]))


def class_head_names() -> list[str]:
    """The discriminators that can grow ACGAN's class head (a ``class_head`` field)."""
    return sorted(n for n in DISCRIMINATORS if "class_head" in _fields(DISCRIMINATORS[n]))


def check_conditioning(generator: str, discriminator: str, num_classes: int, acgan: bool) -> None:
    """Refuses (``ConfigError``) modules that cannot be class-conditional with ``num_classes > 0``.

    G must be conditional; D must be conditional, or have ACGAN's class head
    (``acgan``: D needs a ``class_head`` field then, conditional or not).
    """
    if not num_classes:
        return
    if not is_conditional(GENERATORS[generator]):
        raise ConfigError(f"generator {generator!r} is unconditional (its __call__ takes no labels), but "
                          f"model.num_classes = {num_classes}; conditional generators: "
                          f"{', '.join(conditional_names(GENERATORS)) or 'none'}")
    if acgan and discriminator not in class_head_names():
        raise ConfigError(f"discriminator {discriminator!r} has no ACGAN class head (field class_head), but "
                          f"acgan_weight > 0; discriminators with one: {', '.join(class_head_names()) or 'none'}")
    if not acgan and not is_conditional(DISCRIMINATORS[discriminator]):
        raise ConfigError(f"discriminator {discriminator!r} is unconditional (its __call__ takes no labels), but "
                          f"model.num_classes = {num_classes}; conditional discriminators: "
                          f"{', '.join(conditional_names(DISCRIMINATORS)) or 'none'} "
                          f"(or acgan_weight > 0 with a class head: {', '.join(class_head_names()) or 'none'})")


def unsynchronised(module: nn.Module) -> nn.Module:
    """The same module with BatchNorm statistics local (for init and sampling,
    which run outside any named device axis)."""
    return module.clone(bn_axis_name=None) if getattr(module, "bn_axis_name", None) else module
