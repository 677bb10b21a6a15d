"""Differentiable augmentation of D's inputs (DiffAugment, Zhao et al. 2020).

``config.augment`` is ``""`` (off) or a comma list of policies, applied in the
listed order to every image D sees — real and generated alike, in D's updates
and in G's update — so D never sees an un-augmented image and G's gradient
flows through the augmentation (every policy is differentiable w.r.t. the
images):

=================  =====================================================================
policy             transform (per example, as in the DiffAugment reference code)
=================  =====================================================================
``translation``    shift by integers in [−⌊H/8+½⌋, ⌊H/8+½⌋] × [−⌊W/8+½⌋, ⌊W/8+½⌋] pixels,
                   zero-filled (a gather with a validity mask)
``cutout``         zero a ⌊H/2+½⌋ × ⌊W/2+½⌋ square at a random centre (clipped at the border)
``color``          brightness + U[−½, ½); saturation: (x − channel mean)·U[0, 2) + mean;
                   contrast: (x − image mean)·U[½, 3/2) + mean
``noise``          instance noise: x + N(0, σ²) per element, σ 0.1 or ``noise:σ`` (e.g.
                   ``noise:0.01``) (Sønderby et al. 2016; Arjovsky & Bottou 2017); the one
                   policy for any example shape (2-D toy points too)
=================  =====================================================================

A policy that takes a value (:data:`PARAMETERS`) is written ``name:value``;
the value must be a positive, finite number. Instance noise should be scaled
to the data: σ 0.1 is 5% of an image's [−1, 1] range but 10× the mode std of
PacGAN's 2-D ring, whose modes it would blur past the 3σ high-quality radius.

Adding the same Gaussian to real and generated examples convolves both
distributions with it, which is injective: D can still tell any two different
distributions apart, so ``noise`` does not "leak" into G's samples (unlike a
symmetry of the data used as augmentation, which would let G collapse onto
one orbit unseen). The other policies need ``[H, W, C]`` images.

An augmentation is ``fn(key, x [b, H, W, C], shard) -> [b, H, W, C]``. Its
random draws are made for the *global* batch from ``key`` and ``shard.take``
keeps this device's rows (:mod:`ganjax.shard`), so data-parallel runs see the
same augmented batch as one device. The train step draws real and fake
augmentations from different keys (independent draws, the same policy).
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import jax
import jax.numpy as jnp

from ganjax.errors import ConfigError, unknown_name
from ganjax.shard import Shard, single

Array = jax.Array
Augmentation = Callable[[Array, Array, Shard], Array]

TRANSLATION_RATIO = 0.125  # the DiffAugment defaults
CUTOUT_RATIO = 0.5
NOISE_STD = 0.1  # instance noise: 5% of the [-1, 1] pixel range; 1/15 of the 2-D mixtures' nearest-mode gap
PARAMETERS = {"noise": "std"}  # the policies that take a value, 'name:value', and the argument it sets


def _draw(key: Array, shard: Shard, low: float = 0.0, high: float = 1.0) -> Array:
    """U[low, high) per example, ``[b, 1, 1, 1]``, drawn for the global batch."""
    return shard.take(jax.random.uniform(key, (shard.global_batch, 1, 1, 1), jnp.float32, low, high))


def _draw_ints(key: Array, shard: Shard, low: int, high: int) -> Array:
    """Integers in [low, high) per example and spatial axis, ``[b, 2]``, drawn for the global batch."""
    return shard.take(jax.random.randint(key, (shard.global_batch, 2), low, high))


def _scaled(x: Array, mean: Array, factor: Array) -> Array:
    return (x - mean) * factor + mean


def color(key: Array, x: Array, shard: Shard) -> Array:
    """Brightness, saturation and contrast jitter (DiffAugment's ``color``)."""
    k_b, k_s, k_c = jax.random.split(key, 3)
    x = x + _draw(k_b, shard, -0.5, 0.5)
    x = _scaled(x, jnp.mean(x, axis=3, keepdims=True), _draw(k_s, shard, 0.0, 2.0))
    return _scaled(x, jnp.mean(x, axis=(1, 2, 3), keepdims=True), _draw(k_c, shard, 0.5, 1.5))


def _shift(size: int, ratio: float) -> int:
    return int(size * ratio + 0.5)


def translate(x: Array, offsets: Array) -> Array:
    """Shifts each image by ``offsets [b, 2]`` (rows, columns), filling with zeros.

    Output pixel ``(i, j)`` of image ``n`` is ``x[n, i + dy, j + dx]`` where that
    lies inside the image, else 0.
    """

    def one(img: Array, d: Array) -> Array:
        rows, cols = jnp.arange(img.shape[0]) + d[0], jnp.arange(img.shape[1]) + d[1]
        valid = ((rows >= 0) & (rows < img.shape[0]))[:, None] & ((cols >= 0) & (cols < img.shape[1]))[None, :]
        moved = jnp.take(jnp.take(img, jnp.clip(rows, 0, img.shape[0] - 1), axis=0),
                         jnp.clip(cols, 0, img.shape[1] - 1), axis=1)
        return moved * valid[:, :, None].astype(img.dtype)

    return jax.vmap(one)(x, offsets)


def translation(key: Array, x: Array, shard: Shard) -> Array:
    """Random integer translation by up to 1/8 of the height/width (DiffAugment's ``translation``)."""
    h, w = x.shape[1:3]
    sh, sw = _shift(h, TRANSLATION_RATIO), _shift(w, TRANSLATION_RATIO)
    k_h, k_w = jax.random.split(key)
    dy = _draw_ints(k_h, shard, -sh, sh + 1)[:, 0]
    dx = _draw_ints(k_w, shard, -sw, sw + 1)[:, 0]
    return translate(x, jnp.stack([dy, dx], axis=1))


def cutout_mask(shape: Sequence[int], centres: Array) -> Array:
    """``[b, H, W, 1]`` masks, 0 inside a ``⌊H/2+½⌋ × ⌊W/2+½⌋`` square per image.

    ``centres [b, 2]``: DiffAugment's offsets; the square covers rows
    ``[c − s//2, c − s//2 + s)`` (clipped to the image), likewise for columns.
    """
    h, w = shape[1:3]
    sh, sw = _shift(h, CUTOUT_RATIO), _shift(w, CUTOUT_RATIO)
    top, left = centres[:, 0] - sh // 2, centres[:, 1] - sw // 2
    rows, cols = jnp.arange(h)[None, :], jnp.arange(w)[None, :]
    in_rows = (rows >= top[:, None]) & (rows < top[:, None] + sh)
    in_cols = (cols >= left[:, None]) & (cols < left[:, None] + sw)
    return 1.0 - (in_rows[:, :, None] & in_cols[:, None, :])[..., None].astype(jnp.float32)


def cutout(key: Array, x: Array, shard: Shard) -> Array:
    """Masks a random square of half the image size (DiffAugment's ``cutout``)."""
    h, w = x.shape[1:3]
    sh, sw = _shift(h, CUTOUT_RATIO), _shift(w, CUTOUT_RATIO)
    k_h, k_w = jax.random.split(key)
    cy = _draw_ints(k_h, shard, 0, h + (1 - sh % 2))[:, 0]
    cx = _draw_ints(k_w, shard, 0, w + (1 - sw % 2))[:, 0]
    return x * cutout_mask(x.shape, jnp.stack([cy, cx], axis=1)).astype(x.dtype)


def noise(key: Array, x: Array, shard: Shard, std: float = NOISE_STD) -> Array:
    """Adds ``N(0, std²)`` to every element of ``x [b, ...]`` (any example shape)."""
    eps = shard.take(jax.random.normal(key, (shard.global_batch, *x.shape[1:]), jnp.float32))
    return x + (std * eps).astype(x.dtype)


AUGMENTATIONS: dict[str, Augmentation] = {
    "translation": translation,
    "cutout": cutout,
    "color": color,
    "noise": noise,
}
ANY_SHAPE = frozenset({"noise"})  # the policies that do not need [H, W, C] images


def split_entry(entry: str) -> tuple[str, float | None]:
    """A policy entry → ``(name, value)``: ``'noise:0.05'`` → ``('noise', 0.05)``, ``'cutout'`` → ``('cutout', None)``.

    Raises ``ConfigError`` for an unknown name, a value given to a policy that
    takes none, or a value that is not a positive, finite number.
    """
    name, sep, text = (part.strip() for part in entry.partition(":"))
    if name not in AUGMENTATIONS:
        raise unknown_name("augment policy", name, AUGMENTATIONS)
    if not sep:
        return name, None
    if name not in PARAMETERS:
        raise ConfigError(f"augment policy {entry!r}: {name} takes no value; the policies that take one: "
                          f"{', '.join(f'{n}:<{a}>' for n, a in sorted(PARAMETERS.items()))}")
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise ConfigError(f"augment policy {entry!r}: {name}'s {PARAMETERS[name]} must be a positive, finite "
                          f"number, got {text!r}")
    return name, value


def parse_policy(policy: str) -> tuple[str, ...]:
    """``'translation,cutout'`` → ``('translation', 'cutout')``; ``'noise:0.05'`` → ``('noise:0.05',)``;
    ``''`` → ``()``.

    Raises ``ConfigError`` for unknown, empty or repeated names and bad values (:func:`split_entry`).
    """
    if not isinstance(policy, str):
        raise ConfigError(f"augment must be a string (a comma list of {', '.join(sorted(AUGMENTATIONS))}, "
                          f"or '' for none), got {policy!r}")
    if not policy.strip():
        return ()
    entries = tuple(n.strip() for n in policy.split(","))
    names = [split_entry(entry)[0] for entry in entries]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ConfigError(f"augment = {policy!r} lists {', '.join(repeated)} more than once")
    return entries


def image_only(policy: Sequence[str]) -> list[str]:
    """The entries of ``policy`` that need ``[H, W, C]`` images (all but :data:`ANY_SHAPE`)."""
    return [entry for entry in policy if split_entry(entry)[0] not in ANY_SHAPE]


def non_image_error(policy: Sequence[str], dataset: str, shape_text: str) -> ConfigError:
    """The one-line refusal of image policies for ``dataset`` (whose examples ``shape_text`` describes)."""
    return ConfigError(f"augment policies {', '.join(image_only(policy))} need image data ([H, W, C] examples), "
                       f"but dataset {dataset!r} {shape_text}; for it use augment='' or "
                       f"{', '.join(sorted(ANY_SHAPE))}")


def check_images(policy: Sequence[str], example_shape: Sequence[int], dataset: str) -> None:
    """Refuses image policies (all but :data:`ANY_SHAPE`) for data that are not ``[H, W, C]`` images."""
    if image_only(policy) and len(example_shape) != 3:
        raise non_image_error(policy, dataset, f"gives shape {tuple(example_shape)}")


def apply_one(entry: str, key: Array, x: Array, shard: Shard) -> Array:
    """One policy entry (``'cutout'``, ``'noise:0.05'``) applied to ``x [b, ...]`` with ``key``."""
    name, value = split_entry(entry)
    fn = AUGMENTATIONS[name]
    return fn(key, x, shard) if value is None else fn(key, x, shard, value)


def augment(policy: Sequence[str], key: Array, x: Array, shard: Shard | None = None) -> Array:
    """Applies ``policy`` (entries of :func:`parse_policy`, in order) to ``x [b, H, W, C]`` (``[b, ...]``
    for :data:`ANY_SHAPE` policies).

    Policy ``i`` uses ``fold_in(key, i)``; ``shard`` (default: the whole batch)
    places this device's rows in the global batch. ``()`` returns ``x`` itself.
    """
    shard = shard or single(x.shape[0])
    for i, entry in enumerate(policy):
        x = apply_one(entry, jax.random.fold_in(key, i), x, shard)
    return x
