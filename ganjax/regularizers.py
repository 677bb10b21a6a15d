r"""Regularisers and training tricks of the GAN step: CR, bCR, zCR, LeCam, top-k, ADA.

Every one is off by default (``config.regularizers``, :data:`DEFAULTS`), and
then the step is exactly the plain one: no extra term, no extra network call,
no extra state. The train step calls four hooks of this module —
:func:`d_terms` in D's loss, :func:`g_terms` and :func:`g_loss_fn` in G's
loss, :func:`ada_augment` in what D sees (:func:`ganjax.train.d_view`) — and
:func:`after_step` once per step. Notation: ``D(·)`` are D's logits on what D
sees (augmented and packed like every D input, :func:`ganjax.train.d_view`),
means are over the global batch, ``x`` real and ``G(z)`` generated examples.

===========  =====================================================================  ==========================
regulariser  term (added to the loss of)                                            keys (``regularizers.*``)
===========  =====================================================================  ==========================
CR           λ_real · mean((D(x) − D(T(x)))²)                               (D)      ``cr_real``, ``cr_augment``
bCR          CR plus λ_fake · mean((D(G(z)) − D(T(G(z))))²)                 (D)      ``cr_fake``
zCR          λ_dis · mean((D(G(z)) − D(G(z + Δz)))²)                        (D)      ``zcr_dis``, ``zcr_sigma``
             − λ_gen · mean((G(z) − G(z + Δz))²) over examples and elements (G)     ``zcr_gen``
LeCam        λ · (mean((D(x) − α_F)²) + mean((D(G(z)) − α_R)²))            (D)      ``lecam``, ``lecam_decay``
top-k        G's loss on the k = ⌈f·B⌉ generated examples with the highest D(G(z))  ``topk``, ``topk_gamma``,
                                                                                    ``topk_min``,
                                                                                    ``topk_epoch_steps``
ADA          augment every D input with probability p per example and op;           ``ada``, ``ada_target``,
             p follows sign(r_t − target), r_t = mean(sign(D(x)))                   ``ada_interval``,
                                                                                    ``ada_kimg``, ``ada_policy``
===========  =====================================================================  ==========================

* CR (Zhang et al. 2020) and bCR (Zhao et al. 2020, "Improved consistency
  regularization"): ``T`` is the DiffAugment policy ``cr_augment``
  (:mod:`ganjax.augment`), drawn per example from its own key and applied to
  the examples *before* the rest of D's view, which uses the same draws for
  ``x`` and ``T(x)``; gradients flow through both D calls.
* zCR (Zhao et al. 2020): Δz ~ N(0, σ²I) with σ = ``zcr_sigma``; D's term
  compares the generated batch of the D update with the batch from the same
  noise plus Δz (one more G call, no gradient to G); G's term, one more G call
  in G's update, rewards G for spreading nearby noise apart.
* LeCam (Tseng et al. 2021): α_R and α_F are exponential moving averages of
  mean D(x) and mean D(G(z)) with decay ``lecam_decay`` (0.99, the paper's),
  starting at 0, updated in every D update with that update's logits (no
  gradient) before the term uses them, as in the authors' code; one pair per
  discriminator with ``num_discriminators`` > 1. The term is the paper's Eq. 3
  (the authors' code applies a ReLU inside the squares; we do not).
* top-k (Sinha et al. 2020): with ``e = ⌊step / topk_epoch_steps⌋`` completed
  epochs, ``f = max(topk_gamma^e, topk_min)`` and ``k = ⌈f · B⌉``, ``B`` the
  global number of D inputs of G's batch (``batch_size / pack``). G's loss is
  the configured G loss on those k examples (ties: the lower index first); a
  loss whose G loss takes the real logits too gets the real logits at the same
  positions. The selection is over the global batch, so it is the same on 1 or
  N devices. ``topk_epoch_steps = 0`` means ⌊training examples / batch_size⌋.
* ADA (Karras et al. 2020): each op of ``ada_policy`` is applied to an example
  with probability p (independent draws per example and op), to every D input
  (real and generated, in D's and G's updates), before DiffAugment and
  packing. r_t is the mean of sign(D(x)) over the real batches of the last D
  update of each step, averaged over ``ada_interval`` steps (and the
  discriminators); after every ``ada_interval`` steps
  ``p ← clip(p + sign(r_t − ada_target) · ada_interval · batch_size / (1000 · ada_kimg), 0, 1)``,
  the paper's speed (p can cross [0, 1] in ``ada_kimg`` thousand real images).
  p starts at 0, lives in the train state (so it is checkpointed), and is
  logged as ``ada_p``.

The state these need — LeCam's anchors (per discriminator) and ADA's p and
r_t sum — is :attr:`ganjax.train.GANState.regs`, ``{}`` when they are off
(and then not part of the state pytree: the checkpoint layout is unchanged).
Logged metrics, only for what is on: ``cr_real``, ``cr_fake``, ``zcr_d``,
``zcr_g``, ``lecam``, ``topk_k``, ``ada_p``, ``ada_r``.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp
import ml_collections

from ganjax import augment as augment_lib
from ganjax import ensemble
from ganjax.errors import ConfigError
from ganjax.shard import Shard

Array = jax.Array

# Config keys and their "off" values; configs saved before the keys existed read these.
DEFAULTS: dict[str, Any] = {
    "cr_real": 0.0,  # λ_real of CR (Zhang et al. 2020); bCR adds cr_fake
    "cr_fake": 0.0,  # λ_fake of bCR (Zhao et al. 2020)
    "cr_augment": "translation",  # T: a DiffAugment policy (ganjax.augment)
    "zcr_dis": 0.0,  # λ_dis of zCR
    "zcr_gen": 0.0,  # λ_gen of zCR
    "zcr_sigma": 0.03,  # σ_noise of zCR's Δz
    "lecam": 0.0,  # λ of LeCam (Tseng et al. 2021)
    "lecam_decay": 0.99,  # the EMA decay of its anchors
    "topk": False,  # top-k generator training (Sinha et al. 2020)
    "topk_gamma": 0.99,  # f decays by this factor per epoch ...
    "topk_min": 0.5,  # ... down to this fraction ν
    "topk_epoch_steps": 0,  # steps per epoch; 0 = training examples // batch_size
    "ada": False,  # adaptive augmentation probability (Karras et al. 2020)
    "ada_target": 0.6,  # the target of r_t = E[sign(D(x))]
    "ada_interval": 4,  # steps between adjustments of p
    "ada_kimg": 500.0,  # thousands of real images for p to cross [0, 1]
    "ada_policy": "translation,color",  # the ops applied with probability p (ganjax.augment)
}
PER_D = frozenset({"lecam"})  # state entries with one value per discriminator ([K] for K > 1)
ADA_KEY = 1_000  # ADA's draws: fold_in(view key, ADA_KEY + op index), apart from DiffAugment's fold_in(key, i)


@dataclasses.dataclass(frozen=True)
class Regularizers:
    """The regularisers' options (static; hashable as part of :class:`ganjax.train.GAN`). See :data:`DEFAULTS`."""

    cr_real: float = 0.0
    cr_fake: float = 0.0
    cr_augment: tuple[str, ...] = ("translation",)
    zcr_dis: float = 0.0
    zcr_gen: float = 0.0
    zcr_sigma: float = 0.03
    lecam: float = 0.0
    lecam_decay: float = 0.99
    topk: bool = False
    topk_gamma: float = 0.99
    topk_min: float = 0.5
    topk_epoch_steps: int = 0
    ada: bool = False
    ada_target: float = 0.6
    ada_interval: int = 4
    ada_kimg: float = 500.0
    ada_policy: tuple[str, ...] = ("translation", "color")


OFF = Regularizers()


# --- config ---------------------------------------------------------------------------------------------

def default_config() -> ml_collections.ConfigDict:
    """``config.regularizers``: every regulariser off."""
    return ml_collections.ConfigDict(dict(DEFAULTS))


def _values(c: ml_collections.ConfigDict) -> dict[str, Any]:
    """``c.regularizers`` over :data:`DEFAULTS` (a config saved before the key existed has none)."""
    given = c.get("regularizers", None)
    given = given.to_dict() if isinstance(given, ml_collections.ConfigDict) else dict(given or {})
    unknown = sorted(set(given) - set(DEFAULTS))
    if unknown:
        raise ConfigError(f"unknown key(s) regularizers.{', regularizers.'.join(unknown)}; valid keys: "
                          f"{', '.join(DEFAULTS)}")
    return {**DEFAULTS, **given}


def _number(v: dict, key: str, low: float, high: float = math.inf, high_open: bool = False) -> float:
    x = v[key]
    ok = isinstance(x, (int, float)) and not isinstance(x, bool) and low <= x and (x < high if high_open else x <= high)
    if not ok:
        bound = "" if high == math.inf else f" and {'<' if high_open else '<='} {high}"
        raise ConfigError(f"regularizers.{key} must be a number >= {low}{bound}, got {x!r}")
    return float(x)


def _integer(v: dict, key: str, low: int) -> int:
    x = v[key]
    if not (isinstance(x, int) and not isinstance(x, bool) and x >= low):
        raise ConfigError(f"regularizers.{key} must be an integer >= {low}, got {x!r}")
    return x


def _flag(v: dict, key: str) -> bool:
    if not isinstance(v[key], bool):
        raise ConfigError(f"regularizers.{key} must be true or false, got {v[key]!r}")
    return v[key]


def _policy(v: dict, key: str, used: bool, image_data: bool, dataset: str) -> tuple[str, ...]:
    """A policy key's ops; when ``used``, at least one, and shape-free ones only for non-image data."""
    policy = augment_lib.parse_policy(v[key])
    if used and not policy:
        raise ConfigError(f"regularizers.{key} must name at least one of "
                          f"{', '.join(sorted(augment_lib.AUGMENTATIONS))}")
    if used and augment_lib.image_only(policy) and not image_data:
        raise ConfigError(f"regularizers.{key} = {v[key]!r}: {', '.join(augment_lib.image_only(policy))} need image "
                          f"data ([H, W, C] examples), but dataset {dataset!r} is not; use "
                          f"{', '.join(sorted(augment_lib.ANY_SHAPE))}")
    return policy


def from_config(c: ml_collections.ConfigDict, image_data: bool, num_examples: int | None = None) -> Regularizers:
    """Validated options from ``c.regularizers`` (``ConfigError`` naming the bad key and value).

    ``image_data``: whether examples are ``[H, W, C]`` images (else only
    shape-free augmentation policies are allowed); ``num_examples``: the
    training set's size, for top-k's default epoch (None when unknown: a toy
    distribution, or a GAN rebuilt for sampling).
    """
    v = _values(c)
    opts = Regularizers(
        cr_real=_number(v, "cr_real", 0.0), cr_fake=_number(v, "cr_fake", 0.0),
        cr_augment=_policy(v, "cr_augment", bool(v["cr_real"] or v["cr_fake"]), image_data, c.dataset),
        zcr_dis=_number(v, "zcr_dis", 0.0), zcr_gen=_number(v, "zcr_gen", 0.0),
        zcr_sigma=_number(v, "zcr_sigma", 0.0),
        lecam=_number(v, "lecam", 0.0), lecam_decay=_number(v, "lecam_decay", 0.0, 1.0, high_open=True),
        topk=_flag(v, "topk"), topk_gamma=_number(v, "topk_gamma", 0.0, 1.0), topk_min=_number(v, "topk_min", 0.0, 1.0),
        topk_epoch_steps=_integer(v, "topk_epoch_steps", 0),
        ada=_flag(v, "ada"), ada_target=_number(v, "ada_target", -1.0, 1.0),
        ada_interval=_integer(v, "ada_interval", 1), ada_kimg=_number(v, "ada_kimg", 0.0),
        ada_policy=_policy(v, "ada_policy", v["ada"] is True, image_data, c.dataset))
    if opts.ada and opts.ada_kimg <= 0:
        raise ConfigError(f"regularizers.ada_kimg must be > 0 with regularizers.ada on, got {opts.ada_kimg!r}")
    if opts.topk and opts.topk_min <= 0:
        raise ConfigError(f"regularizers.topk_min must be > 0 (the smallest fraction of G's batch), "
                          f"got {opts.topk_min!r}")
    if opts.topk and not opts.topk_epoch_steps:
        if num_examples is None and not image_data:
            raise ConfigError(f"regularizers.topk on dataset {c.dataset!r} (sampled afresh, no epochs) needs "
                              f"regularizers.topk_epoch_steps > 0, the steps after which k decays")
        steps = (num_examples or 0) // c.batch_size
        opts = dataclasses.replace(opts, topk_epoch_steps=max(steps, 1))
    return opts


# --- state ----------------------------------------------------------------------------------------------

def init_state(opts: Regularizers, num_discriminators: int) -> dict[str, Any]:
    """The regularisers' train state: ``{}`` when none needs one.

    ``lecam``: ``{"real": α_R, "fake": α_F}``, ``[]`` float32 each (``[K]`` for K
    discriminators); ``ada``: ``{"p": [], "r_sum": []}`` float32.
    """
    per_d = () if num_discriminators == 1 else (num_discriminators,)
    zeros = lambda shape=(): jnp.zeros(shape, jnp.float32)  # noqa: E731
    state = {}
    if opts.lecam:
        state["lecam"] = {"real": zeros(per_d), "fake": zeros(per_d)}
    if opts.ada:
        state["ada"] = {"p": zeros(), "r_sum": zeros()}
    return state


def per_discriminator(regs: Mapping[str, Any]) -> dict[str, Any]:
    """The entries of ``regs`` held per discriminator (stacked ``[K]``; mapped with the D parameters)."""
    return {name: value for name, value in regs.items() if name in PER_D}


def with_per_discriminator(regs: Mapping[str, Any], per_d: Mapping[str, Any]) -> dict[str, Any]:
    """``regs`` with its per-discriminator entries replaced by ``per_d``."""
    return {**regs, **per_d}


# --- what D sees: ADA ------------------------------------------------------------------------------------

def apply_with_probability(policy: tuple[str, ...], p: Array, key: Array, x: Array, shard: Shard) -> Array:
    """Each op of ``policy`` applied to each example of ``x [b, ...]`` with probability ``p`` (independently).

    Op ``i`` draws its transform from ``fold_in(key, ADA_KEY + i)`` and its
    coin from ``fold_in(key, ADA_KEY + 100 + i)``, both for the global batch.
    """
    for i, entry in enumerate(policy):
        moved = augment_lib.apply_one(entry, jax.random.fold_in(key, ADA_KEY + i), x, shard)
        coin = shard.uniform(jax.random.fold_in(key, ADA_KEY + 100 + i), (1,) * (x.ndim - 1))
        x = jnp.where(coin < p, moved, x)
    return x


def ada_augment(opts: Regularizers, regs: Mapping[str, Any] | None, key: Array, x: Array, shard: Shard) -> Array:
    """ADA's augmentation of examples ``x [b, ...]`` with the state's p; ``x`` itself when ADA is off."""
    if not opts.ada:
        return x
    return apply_with_probability(opts.ada_policy, regs["ada"]["p"], key, x, shard)


# --- D's loss ---------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class DInputs:
    """What D's regularisers see in one D update (one discriminator).

    Attributes:
      d_real, d_fake: D's logits ``[n]`` of D inputs ``[n, *d_input_shape]`` (the parameters being
        differentiated) for inputs made from the real (generated) batch: the same function for an
        unconditional D; a conditional one sees each batch's labels.
      real, fake: this device's examples ``[b, *example_shape]``, before D's view.
      real_logits, fake_logits: ``[b/pack]`` D's logits on their views.
      view_real, view_fake: examples → D inputs, with the draws of the real (generated) batch's view.
      regs: this discriminator's regulariser state and the step's extras (:func:`d_extras`).
      key: this D update's key for the regularisers' own draws.
      shard: this device's share of the batch.
    """

    d_real: Callable[[Array], Array]
    d_fake: Callable[[Array], Array]
    real: Array
    fake: Array
    real_logits: Array
    fake_logits: Array
    view_real: Callable[[Array], Array]
    view_fake: Callable[[Array], Array]
    regs: Mapping[str, Any]
    key: Array
    shard: Shard


def _mean_square(a: Array, b: Array) -> Array:
    return jnp.mean(jnp.square(a.astype(jnp.float32) - b.astype(jnp.float32)))


def _consistency(opts: Regularizers, weight: float, logits: Array, examples: Array, d: Callable, view: Callable,
                 i: DInputs, which: int):
    """``weight · mean((D(view(x)) − D(view(T(x))))²)``; T drawn from ``fold_in(key, which)``."""
    moved = augment_lib.augment(opts.cr_augment, jax.random.fold_in(i.key, which), examples, i.shard)
    return weight * _mean_square(logits, d(view(moved))), {}


def _cr_real(opts: Regularizers, i: DInputs):
    return _consistency(opts, opts.cr_real, i.real_logits, i.real, i.d_real, i.view_real, i, 0)


def _cr_fake(opts: Regularizers, i: DInputs):
    return _consistency(opts, opts.cr_fake, i.fake_logits, i.fake, i.d_fake, i.view_fake, i, 1)


def _zcr_d(opts: Regularizers, i: DInputs):
    return opts.zcr_dis * _mean_square(i.fake_logits, i.d_fake(i.view_fake(i.regs["zcr_fake"]))), {}


def lecam_anchors(anchors: Mapping[str, Array], real_logits: Array, fake_logits: Array, decay: float,
                  shard: Shard) -> dict[str, Array]:
    """α ← decay·α + (1 − decay)·mean(logits), over the global batch, without gradient."""
    sg = jax.lax.stop_gradient
    return {"real": decay * anchors["real"] + (1.0 - decay) * shard.mean(sg(real_logits).astype(jnp.float32)),
            "fake": decay * anchors["fake"] + (1.0 - decay) * shard.mean(sg(fake_logits).astype(jnp.float32))}


def _lecam(opts: Regularizers, i: DInputs):
    a = lecam_anchors(i.regs["lecam"], i.real_logits, i.fake_logits, opts.lecam_decay, i.shard)
    term = _mean_square(i.real_logits, a["fake"]) + _mean_square(i.fake_logits, a["real"])
    return opts.lecam * term, {"lecam": a}


# D terms: metric name → (whether on, term(opts, inputs) -> (value, new per-D state)).
D_TERMS: dict[str, tuple[Callable[[Regularizers], bool], Callable]] = {
    "cr_real": (lambda o: o.cr_real > 0, _cr_real),
    "cr_fake": (lambda o: o.cr_fake > 0, _cr_fake),
    "zcr_d": (lambda o: o.zcr_dis > 0, _zcr_d),
    "lecam": (lambda o: o.lecam > 0, _lecam),
}


def _active(terms: Mapping[str, tuple[Callable, Callable]], opts: Regularizers) -> dict[str, Callable]:
    return {name: term for name, (on, term) in terms.items() if on(opts)}


def d_extras(opts: Regularizers, regs: Mapping[str, Any], perturbed_fake: Callable[[Array], Array], key: Array,
             shard: Shard, z_dim: int) -> dict[str, Any]:
    """The global (not per-discriminator) inputs of one D update's regularisers.

    ``perturbed_fake(dz [b, z_dim])``: the update's generated batch from its
    noise plus ``dz`` (zCR). ``{}`` when no regulariser needs any.
    """
    extras: dict[str, Any] = {name: value for name, value in regs.items() if name not in PER_D}
    if opts.zcr_dis > 0:
        extras["zcr_fake"] = perturbed_fake(latent_offset(opts, jax.random.fold_in(key, 2), shard, z_dim))
    return extras


def latent_offset(opts: Regularizers, key: Array, shard: Shard, z_dim: int) -> Array:
    """zCR's Δz ~ N(0, σ²I), ``[b, z_dim]``: this device's rows of a draw for the global batch."""
    return shard.take(opts.zcr_sigma * jax.random.normal(key, (shard.global_batch, z_dim), jnp.float32))


def d_terms(opts: Regularizers, inputs: DInputs) -> tuple[Array | float, dict[str, Any]]:
    """The sum of D's regulariser terms and ``{"metrics": {name: value}, "state": new per-D state, "ada_r": r}``.

    Nothing on: ``(0.0, {})`` (and the step's numbers are the plain step's).
    """
    total, metrics, state = 0.0, {}, {}
    for name, term in _active(D_TERMS, opts).items():
        value, new_state = term(opts, inputs)
        total, metrics[name] = total + value, value
        state.update(new_state)
    aux: dict[str, Any] = {"metrics": metrics, "state": state} if metrics else {}
    if opts.ada:
        aux["ada_r"] = inputs.shard.mean(jnp.sign(jax.lax.stop_gradient(inputs.real_logits)).astype(jnp.float32))
    return total, aux


# --- G's loss ---------------------------------------------------------------------------------------------

def topk_schedule(opts: Regularizers, batch: int) -> tuple[int, ...]:
    """k after ``e = 0, 1, …, E`` completed epochs: ``⌈max(γ^e, ν) · batch⌉``; constant from epoch E on."""
    ks, e = [], 0
    while True:
        fraction = max(opts.topk_gamma ** e, opts.topk_min)
        ks.append(min(batch, max(1, math.ceil(fraction * batch - 1e-9))))
        if fraction <= opts.topk_min or opts.topk_gamma >= 1.0:
            return tuple(ks)
        e += 1


def topk_k(opts: Regularizers, step: Array, batch: int) -> Array:
    """k at ``step`` (``[]`` int32) for G's batch of ``batch`` D inputs."""
    ks = jnp.asarray(topk_schedule(opts, batch), jnp.int32)
    return ks[jnp.minimum(step // opts.topk_epoch_steps, len(ks) - 1)]


def _gather(x: Array, shard: Shard) -> Array:
    """The global batch ``[B]`` of per-device ``x [b]`` (``x`` itself without data parallelism)."""
    return x if shard.axis_name is None else jax.lax.all_gather(x, shard.axis_name, tiled=True)


def g_loss_fn(opts: Regularizers, g_loss: Callable[..., Array], step: Array, shard: Shard) -> Callable[..., Array]:
    """G's loss of the logits: ``g_loss`` itself, or with top-k its value on the top-k generated examples.

    The top-k loss takes the global batch (gathered over devices); its k
    follows :func:`topk_schedule`, one ``lax.switch`` branch per distinct k.
    """
    if not opts.topk:
        return g_loss

    def topk_loss(*logits: Array) -> Array:  # (fake,) or (real, fake)
        logits = tuple(_gather(x, shard) for x in logits)
        ks = topk_schedule(opts, logits[-1].shape[0])
        distinct = sorted(set(ks), reverse=True)

        def branch(k: int) -> Callable:
            def loss(*xs: Array) -> Array:
                _, idx = jax.lax.top_k(xs[-1], k)
                return g_loss(*(jnp.take(x, idx, axis=0) for x in xs))
            return loss

        epoch = jnp.minimum(step // opts.topk_epoch_steps, len(ks) - 1)
        which = jnp.asarray([distinct.index(k) for k in ks], jnp.int32)[epoch]
        return jax.lax.switch(which, [branch(k) for k in distinct], *logits)

    return topk_loss


def g_terms(opts: Regularizers, fake: Array, generate: Callable[[Array], Array], key: Array, shard: Shard,
            z_dim: int) -> tuple[Array | float, dict[str, Array]]:
    """G's regulariser terms (zCR's): ``(sum, {name: value})``; ``(0.0, {})`` when none is on.

    ``fake [b, *example_shape]``: G's batch; ``generate(dz)``: G's batch from the same noise plus ``dz``.
    """
    if not opts.zcr_gen > 0:
        return 0.0, {}
    value = -opts.zcr_gen * _mean_square(fake, generate(latent_offset(opts, key, shard, z_dim)))
    return value, {"zcr_g": value}


# --- after the step ---------------------------------------------------------------------------------------

def after_step(opts: Regularizers, regs: Mapping[str, Any], d_aux: Mapping[str, Any], g_metrics: Mapping[str, Array],
               step: Array, global_batch: int, g_batch: int, k: int) -> tuple[dict[str, Any], dict[str, Array]]:
    """The state after step ``step`` (ADA's p) and the regularisers' metrics (means over the K discriminators).

    ``d_aux``: :func:`d_terms`' aux of the step's last D update (``[K]`` leaves
    for K > 1); ``g_batch``: D inputs in G's batch (top-k's B).
    """
    metrics = {name: ensemble.mean(v, k) for name, v in d_aux.get("metrics", {}).items()}
    metrics.update(g_metrics)
    regs = dict(regs)
    if opts.topk:
        metrics["topk_k"] = topk_k(opts, step, g_batch).astype(jnp.float32)
    if opts.ada:
        metrics["ada_r"] = ensemble.mean(d_aux["ada_r"], k)
        regs["ada"] = ada_update(opts, regs["ada"], metrics["ada_r"], step, global_batch)
        metrics["ada_p"] = regs["ada"]["p"]
    return regs, metrics


def ada_update(opts: Regularizers, ada: Mapping[str, Array], r: Array, step: Array, global_batch: int
               ) -> dict[str, Array]:
    """ADA's state after step ``step`` with this step's mean sign(D(x)) ``r``: p moves every ``ada_interval`` steps."""
    r_sum = ada["r_sum"] + r
    adjust = (step + 1) % opts.ada_interval == 0
    r_t = r_sum / opts.ada_interval
    speed = opts.ada_interval * global_batch / (1000.0 * opts.ada_kimg)
    p = jnp.clip(ada["p"] + jnp.sign(r_t - opts.ada_target) * speed, 0.0, 1.0)
    return {"p": jnp.where(adjust, p, ada["p"]).astype(jnp.float32),
            "r_sum": jnp.where(adjust, 0.0, r_sum).astype(jnp.float32)}
