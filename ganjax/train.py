"""The training state and the pure GAN train step.

The whole training state is one pytree, :class:`GANState`. One call of
:func:`train_step` performs ``n_disc`` discriminator updates followed by one
generator update (``update='alternating'``, compare_gan/seed 002 style), or a
single simultaneous update of both from one forward pass
(``update='simultaneous'``, seed 000's Keras ``train_step``, PacGAN'18's
``compute_losses``): G's loss then takes the logits of D's own update (the
same noise, views and dropout draws), both gradients at the old parameters.

PRNG keys. The state holds one key. A step derives everything from
``k = fold_in(key, step)``, then one key per purpose:
``fold_in(k, PURPOSE * 1000 + j)`` for D iteration ``j``; dropout keys are
further folded with the device index (``fold_in(…, axis_index)``) inside a
data-parallel wrapper, while noise, toy data and penalty draws are made for
the global batch and sliced per device (:mod:`ganjax.shard`). The same seed
and config therefore give the same numbers on every run, across resumes and —
for nets without dropout — on any number of devices.

Training options (each off by default, and then the step is exactly the
plain one): what D sees is ``pack(augment(x))`` for real and generated
examples alike (:mod:`ganjax.augment`, :mod:`ganjax.pack`); with
``num_discriminators = K > 1`` the D arguments are stacked ``[K, ...]`` and
the D functions below are ``vmap``-ed over them (:mod:`ganjax.ensemble`);
with ``unroll_steps = k > 0`` G's loss is taken against D after ``k``
differentiable D updates (:func:`unrolled_discriminator`). The regularisers
(CR, bCR, zCR, LeCam, top-k, ADA; :mod:`ganjax.regularizers`) hook into D's
and G's losses and D's view; their state is ``GANState.regs``.

Class-conditional GANs (``num_classes = C > 0``). Real examples come with
their labels (host batches ``(images, labels)``, toy mixtures sampled with
their mode index); generated examples are conditioned on labels drawn for
the global batch from the step key (purposes ``_LABELS``/``_G_LABELS``),
uniformly or from ``class_distribution``, and sliced per device like the
noise. G always receives its labels; D receives the labels of the examples
it judges when it is conditional (``d_conditional``); penalties judge their
inputs with the real batch's labels. With ``acgan_weight > 0`` D's class head
adds ACGAN's cross-entropy to both players' losses (:mod:`ganjax.acgan`).
With ``C = 0`` no label is drawn or passed: the step is the unconditional one.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable, Mapping, NamedTuple

import flax
import jax
import jax.numpy as jnp
import optax
from flax import linen as nn

from ganjax import acgan
from ganjax import augment as augment_lib
from ganjax import ensemble
from ganjax import losses as losses_lib
from ganjax import ortho as ortho_lib
from ganjax import pack as pack_lib
from ganjax import penalties as penalties_lib
from ganjax import regularizers as regularizers_lib
from ganjax.data.toy import ToyDistribution
from ganjax.models import unsynchronised
from ganjax.shard import Shard

Array = jax.Array
Variables = Mapping[str, Any]

# Purposes of the per-step keys (see module docstring). _UNROLL keys step i of
# the unrolled D; every purpose of that D update is then derived from it.
# _G_AUG_REAL and _G_DROPOUT_D_REAL key D's view of the real batch in G's
# update, drawn only for losses whose G loss takes the real logits. _LABELS and
# _G_LABELS draw the generated labels of conditional GANs (appended last, so
# every earlier purpose keeps its key); _REG_D and _REG_G key the regularisers'
# own draws (ganjax.regularizers).
(_NOISE, _DROPOUT_REAL, _DROPOUT_FAKE, _PENALTY, _DATA, _G_NOISE, _G_DROPOUT, _G_DROPOUT_D,
 _AUG_REAL, _AUG_FAKE, _G_AUG, _UNROLL, _G_AUG_REAL, _G_DROPOUT_D_REAL, _LABELS, _G_LABELS,
 _REG_D, _REG_G) = range(18)

NOISE_DISTRIBUTIONS: dict[str, Callable[[Array, tuple[int, ...]], Array]] = {
    "normal": lambda key, shape: jax.random.normal(key, shape, jnp.float32),
    "uniform": lambda key, shape: jax.random.uniform(key, shape, jnp.float32),
    "uniform_signed": lambda key, shape: jax.random.uniform(key, shape, jnp.float32, -1.0, 1.0),
}


@dataclasses.dataclass(frozen=True)
class GANState:
    """Everything that changes during training, as one pytree.

    Attributes:
      step: ``[]`` int32, number of completed train steps.
      key: ``[2]`` uint32, raw PRNG key data (``jax.random.key_data``).
      g_params, d_params: parameter trees.
      g_state, d_state: mutable collections (``{'batch_stats': ...}`` or ``{}``).
      g_opt, d_opt: Optax states; hyperparameters are arrays inside them.
        With ``num_discriminators = K > 1`` every D leaf (``d_params``,
        ``d_state``, ``d_opt``) has a leading ``[K]`` axis.
      ema_params: exponential moving average of ``g_params``.
      penalty_weight: ``[]`` float32, the penalty's weight (an array so sweeps
        can vmap over it).
      regs: the regularisers' state (:func:`ganjax.regularizers.init_state`):
        ``{}`` when none has any, and then it is no node of the pytree, so
        the state's leaves and checkpoint layout are those of a run without it.
    """

    step: Array
    key: Array
    g_params: Any
    d_params: Any
    g_state: Any
    d_state: Any
    g_opt: Any
    d_opt: Any
    ema_params: Any
    penalty_weight: Array
    regs: Any = dataclasses.field(default_factory=dict)

    def replace(self, **updates: Any) -> "GANState":
        """A copy with ``updates`` (field name → value)."""
        return dataclasses.replace(self, **updates)


_STATE_FIELDS = tuple(f.name for f in dataclasses.fields(GANState))


def _flatten_state(state: GANState) -> tuple[list, int]:
    """The fields as keyed children; ``regs`` only when it is not empty."""
    names = _STATE_FIELDS if state.regs else _STATE_FIELDS[:-1]
    return [(jax.tree_util.GetAttrKey(name), getattr(state, name)) for name in names], len(names)


jax.tree_util.register_pytree_with_keys(GANState, _flatten_state, lambda _, children: GANState(*children))


@dataclasses.dataclass(frozen=True)
class GAN:
    """The static (non-array) definition of a GAN experiment."""

    generator: nn.Module
    discriminator: nn.Module
    loss: losses_lib.GANLoss
    penalty: penalties_lib.Penalty
    g_tx: optax.GradientTransformation
    d_tx: optax.GradientTransformation
    example_shape: tuple[int, ...]
    z_dim: int
    noise: str = "normal"
    n_disc: int = 1
    ema_decay: float = 0.999
    update: str = "alternating"
    toy: ToyDistribution | None = None
    on_nonfinite: str = "stop"
    augment: tuple[str, ...] = ()  # DiffAugment policy names (ganjax.augment)
    num_discriminators: int = 1  # K (ganjax.ensemble)
    unroll_steps: int = 0  # k unrolled D updates for G's loss
    pack: int = 1  # PacGAN m (ganjax.pack)
    d_tx_unrolled: optax.GradientTransformation | None = None  # d_tx, differentiable (unroll_steps > 0)
    num_classes: int = 0  # C: class-conditional with C classes (model.num_classes); 0 = unconditional
    class_distribution: tuple[float, ...] = ()  # generated labels' class weights (() = uniform)
    d_conditional: bool = False  # D takes labels (its __call__ has a ``labels`` parameter)
    acgan_weight: float = 0.0  # λ of ACGAN's class loss; > 0: D has a class head (ganjax.acgan)
    ortho_reg: float = 0.0  # β of BigGAN's orthogonal regularisation of G (ganjax.ortho)
    regularizers: regularizers_lib.Regularizers = regularizers_lib.OFF  # CR, bCR, zCR, LeCam, top-k, ADA

    @property
    def d_input_shape(self) -> tuple[int, ...]:
        """The shape of one D input: ``example_shape`` with the last axis times ``pack``."""
        return pack_lib.packed_shape(self.example_shape, self.pack)

    def check_batch(self, local_batch: int) -> None:
        """Refuses (``ConfigError``) a per-device batch that the step cannot take."""
        pack_lib.check_batch(local_batch, self.pack)

    def sample_noise(self, key: Array, n: int) -> Array:
        """``[n, z_dim]`` noise from the configured distribution."""
        return NOISE_DISTRIBUTIONS[self.noise](key, (n, self.z_dim))

    def sample_labels(self, key: Array, n: int) -> Array | None:
        """int32 ``[n]`` class labels for generated examples: uniform over the ``num_classes`` classes, or
        drawn from ``class_distribution`` (weights, normalised); None for an unconditional GAN."""
        if not self.num_classes:
            return None
        if not self.class_distribution:
            return jax.random.randint(key, (n,), 0, self.num_classes, jnp.int32)
        return jax.random.categorical(key, jnp.log(jnp.asarray(self.class_distribution, jnp.float32)),
                                      shape=(n,)).astype(jnp.int32)

    def d_labels(self, labels: Array | None) -> Array | None:
        """The labels D is given with examples of ``labels``: those for a conditional D, else None."""
        return labels if self.d_conditional else None


def apply_model(module: nn.Module, params: Any, mstate: Variables, x: Array, *, train: bool,
                dropout_key: Array | None = None, labels: Array | None = None) -> tuple[Array, Variables]:
    """Runs ``module`` and returns ``(output, new_mutable_state)``.

    ``mstate`` holds the mutable collections (e.g. ``batch_stats``); in train
    mode they are updated and returned, in eval mode returned unchanged.
    ``labels`` (int32 ``[B]``) is passed as ``labels=`` only when not None, so
    unconditional modules are called exactly as without it.
    """
    variables = {"params": params, **mstate}
    rngs = {"dropout": dropout_key} if dropout_key is not None else {}
    kwargs = {} if labels is None else {"labels": labels}
    if train and mstate:
        out, new_state = module.apply(variables, x, train=True, rngs=rngs, mutable=list(mstate.keys()), **kwargs)
        return out, flax.core.unfreeze(new_state) if isinstance(new_state, flax.core.FrozenDict) else new_state
    return module.apply(variables, x, train=train, rngs=rngs, **kwargs), mstate


def _split_variables(variables: Variables) -> tuple[Any, dict]:
    variables = dict(variables)
    params = variables.pop("params")
    return params, variables


@functools.lru_cache(maxsize=32)
def compiled_init(module: nn.Module) -> Callable[[Any, Array], Variables]:
    """``module.init(rngs, example, train=False)`` jitted, one per architecture for the whole process.

    Jitted because eager init compiles every op of a conv net separately (tens
    of seconds); cached because a fresh ``jax.jit`` per call compiles again
    (a sweep group of 64 trials compiled its two nets 128 times). Modules are
    frozen dataclasses: equal architectures share the entry.
    """
    return jax.jit(functools.partial(unsynchronised(module).init, train=False))


def _labels_kwarg(labels: Array | None) -> dict[str, Array]:
    return {} if labels is None else {"labels": labels}


@functools.lru_cache(maxsize=32)
def _compiled_ensemble_init(module: nn.Module, k: int) -> Callable[..., Variables]:
    """``k > 1`` stacked discriminators' variables ``[k, ...]`` from one key, jitted (see :func:`compiled_init`)."""
    init = compiled_init(module)
    return jax.jit(lambda key, x, labels=None: ensemble.init(
        lambda kk: init({"params": kk, "dropout": kk}, x, **_labels_kwarg(labels)), key, k))


def _init_variables(module: nn.Module, key: Array, example: Array, k: int = 1,
                    labels: Array | None = None) -> tuple[Any, dict]:
    """``(params, mutable collections)`` of ``module`` (stacked ``[k, ...]`` for ``k > 1``) from ``key``;
    a conditional module is initialised with ``labels`` (int32 ``[B]``)."""
    if k == 1:
        return _split_variables(compiled_init(module)({"params": key, "dropout": key}, example,
                                                      **_labels_kwarg(labels)))
    return _split_variables(_compiled_ensemble_init(module, k)(key, example, **_labels_kwarg(labels)))


def init_state(gan: GAN, seed: int, penalty_weight: float = 0.0) -> GANState:
    """Initialises parameters, optimizer states and the PRNG key from ``seed``.

    The nets' init is compiled once per architecture (:func:`compiled_init`),
    so further calls (sweep trials, tests) only run it.
    """
    root = jax.random.key(seed)
    k_g, k_d, k_train = jax.random.split(root, 3)
    z = jnp.zeros((2, gan.z_dim), jnp.float32)
    x = jnp.zeros((2, *gan.d_input_shape), jnp.float32)
    labels = jnp.zeros((2,), jnp.int32) if gan.num_classes else None
    g_params, g_state = _init_variables(gan.generator, k_g, z, labels=labels)
    d_params, d_state = _init_variables(gan.discriminator, k_d, x, gan.num_discriminators, gan.d_labels(labels))
    return GANState(
        step=jnp.zeros((), jnp.int32),
        key=jax.random.key_data(k_train),
        g_params=g_params,
        d_params=d_params,
        g_state=g_state,
        d_state=d_state,
        g_opt=gan.g_tx.init(g_params),
        d_opt=ensemble.over_discriminators(gan.d_tx.init, gan.num_discriminators)(d_params),
        ema_params=jax.tree.map(jnp.copy, g_params),
        penalty_weight=jnp.asarray(penalty_weight, jnp.float32),
        regs=regularizers_lib.init_state(gan.regularizers, gan.num_discriminators),
    )


def step_key(state: GANState) -> Array:
    """The key of the current step: ``fold_in(key, step)``, the same on every device."""
    return jax.random.fold_in(jax.random.wrap_key_data(state.key), state.step)


def _purpose(key: Array, purpose: int, j: int = 0) -> Array:
    return jax.random.fold_in(key, purpose * 1000 + j)


def images_to_float(batch: Array) -> Array:
    """uint8 images in [0, 255] → float32 in [-1, 1]; float input passes through."""
    if batch.dtype == jnp.uint8:
        return batch.astype(jnp.float32) / 127.5 - 1.0
    return batch.astype(jnp.float32)


def _global_norm(tree: Any) -> Array:
    return optax.tree.norm(tree).astype(jnp.float32)


Examples = tuple  # (x [b, ...], labels int32 [b] or None): examples and their classes


def _generated_labels(gan: GAN, key: Array, shard: Shard) -> Array | None:
    """This device's rows ``[b]`` of the global batch's generated labels (None when unconditional)."""
    labels = gan.sample_labels(key, shard.global_batch)
    return None if labels is None else shard.take(labels)


def _fake(gan: GAN, g_params: Any, g_state: Variables, key: Array, j: int, shard: Shard,
          dz: Array | None = None) -> Examples:
    """Generated examples ``[b, ...]`` for D iteration ``j`` (this device's rows of the global noise, plus
    ``dz``) and the labels they were conditioned on."""
    z = shard.take(gan.sample_noise(_purpose(key, _NOISE, j), shard.global_batch))
    z = z if dz is None else z + dz
    labels = _generated_labels(gan, _purpose(key, _LABELS, j), shard)
    return apply_model(gan.generator, g_params, g_state, z, train=True,
                       dropout_key=shard.device_key(_purpose(key, _G_DROPOUT, j)), labels=labels)[0], labels


def judge(gan: GAN, d_params: Any, d_state: Variables, x: Array, labels: Array | None,
          dropout_key: Array | None) -> tuple[Array, Array | None, Variables]:
    """One D (train mode) on ``x`` of classes ``labels``: ``(logits [B], class logits [B, C] or None, new state)``.

    D gets the labels only if it is conditional; the class logits are those
    of ACGAN's class head (``acgan_weight > 0``), None otherwise.
    """
    out, new_state = apply_model(gan.discriminator, d_params, d_state, x, train=True, dropout_key=dropout_key,
                                 labels=gan.d_labels(labels))
    return (*acgan.split(out, gan.acgan_weight > 0), new_state)


def _class_loss(gan: GAN, class_logits: Array | None, labels: Array | None) -> Array:
    """ACGAN's weighted class cross-entropy (0.0 without a class head)."""
    if class_logits is None:
        return jnp.zeros((), jnp.float32)
    return gan.acgan_weight * acgan.class_loss(class_logits, labels)


def d_view(gan: GAN, x: Array, key: Array, shard: Shard, regs: Any = None) -> Array:
    """What D sees of examples ``x [b, *example_shape]``: ``pack(augment(ada(x)))``, ``[b/pack, *d_input_shape]``.

    ``key`` draws the augmentation for the global batch (``shard`` picks this
    device's rows); ADA's probability is in ``regs`` (the regularisers'
    state); without augmentation and packing this is ``x`` itself.
    """
    x = regularizers_lib.ada_augment(gan.regularizers, regs, key, x, shard)
    return pack_lib.pack(augment_lib.augment(gan.augment, key, x, shard), gan.pack)


def _concat_labels(a: Array | None, b: Array | None) -> Array | None:
    return None if a is None else jnp.concatenate([a, b])


def _views(gan: GAN, key: Array, j: int, shard: Shard, regs: Any = None) -> tuple[Callable, Callable]:
    """D's view (:func:`d_view`) of update ``j``'s real and of its generated examples: two functions
    ``[b, *example_shape]`` → ``[b/pack, *d_input_shape]`` with independent augmentation draws."""
    return tuple(functools.partial(d_view, gan, key=_purpose(key, purpose, j), shard=shard, regs=regs)
                 for purpose in (_AUG_REAL, _AUG_FAKE))


def judge_pair(gan: GAN, d_params: Any, d_state: Variables, real: Examples, fake: Examples, key: Array, j: int,
               shard: Shard) -> tuple[Array, Array, Array | None, Array | None, Variables]:
    """One D (train mode) on update ``j``'s viewed real and generated batches ``(D inputs [n, ...], labels)``.

    Returns ``(real_logits [n], fake_logits [n], real class logits, fake class logits, new state)`` (class
    logits ``[n, C]`` with ACGAN's head, else None). A stateless D judges ``[real; fake]`` in one call
    (the same function of the parameters, one larger and faster matmul chain); a stateful D (BatchNorm)
    judges them as two batches, real first, as in the seeds' two D calls, so each gets its own batch
    statistics.
    """
    (real, real_labels), (fake, fake_labels) = real, fake
    dropout_real = shard.device_key(_purpose(key, _DROPOUT_REAL, j))
    if d_state:
        real_logits, real_classes, new_state = judge(gan, d_params, d_state, real, real_labels, dropout_real)
        fake_logits, fake_classes, new_state = judge(gan, d_params, new_state, fake, fake_labels,
                                                     shard.device_key(_purpose(key, _DROPOUT_FAKE, j)))
        return real_logits, fake_logits, real_classes, fake_classes, new_state
    batch = real.shape[0]
    logits, classes, new_state = judge(gan, d_params, d_state, jnp.concatenate([real, fake.astype(real.dtype)]),
                                       _concat_labels(real_labels, fake_labels), dropout_real)
    real_classes, fake_classes = (None, None) if classes is None else (classes[:batch], classes[batch:])
    return logits[:batch], logits[batch:], real_classes, fake_classes, new_state


def _d_grads(gan: GAN, d_params: Any, d_state: Variables, real: Examples, fake: Examples, key: Array, j: int,
             shard: Shard, penalty_weight: Array, regs: Any = None):
    """One D's loss gradients on this device's real and generated examples ``([b, ...], labels)``.

    Both are augmented (independent draws) and packed first (:func:`_views`) and judged by
    :func:`judge_pair`; the penalty sees exactly these augmented, packed inputs (judged with the real
    labels). ``regs``: this D's regulariser state and the update's extras
    (:func:`ganjax.regularizers.d_extras`).
    """
    (real, real_labels), (fake, fake_labels) = real, fake
    view_real, view_fake = _views(gan, key, j, shard, regs)
    examples = real, fake
    real, fake = view_real(real), view_fake(fake)
    packed = pack_lib.packed_shard(shard, gan.pack)
    dropout_real = shard.device_key(_purpose(key, _DROPOUT_REAL, j))

    def loss_fn(d_params):
        real_logits, fake_logits, real_classes, fake_classes, new_state = judge_pair(
            gan, d_params, d_state, (real, real_labels), (fake, fake_labels), key, j, shard)
        adv = gan.loss.d_loss(real_logits, fake_logits)

        def d_fn(x, labels=real_labels):
            return judge(gan, d_params, new_state, x, labels, dropout_real)[0]

        pen = gan.penalty(d_fn, real, fake, _purpose(key, _PENALTY, j), packed)
        reg, reg_aux = regularizers_lib.d_terms(gan.regularizers, regularizers_lib.DInputs(
            d_fn, functools.partial(d_fn, labels=fake_labels), *examples, real_logits, fake_logits, view_real,
            view_fake, regs, _purpose(key, _REG_D, j), shard))
        total = adv + penalty_weight * pen + reg
        aux = {"d_state": new_state, "d_loss": adv, "penalty": pen,
               "d_real": jnp.mean(jax.nn.sigmoid(real_logits.astype(jnp.float32))),
               "d_fake": jnp.mean(jax.nn.sigmoid(fake_logits.astype(jnp.float32))), "regs": reg_aux}
        if gan.acgan_weight > 0:
            aux["class_loss_d"] = (_class_loss(gan, real_classes, real_labels)
                                   + _class_loss(gan, fake_classes, fake_labels))
            total = total + aux["class_loss_d"]
        return total, aux

    grads, aux = jax.grad(loss_fn, has_aux=True)(d_params)
    return shard.pmean(grads), aux


DParts = tuple  # (d_params, d_opt, d_state, per-D regulariser state) of one D, or of the K stacked Ds


def _d_parts(state: GANState) -> DParts:
    return state.d_params, state.d_opt, state.d_state, regularizers_lib.per_discriminator(state.regs)


def _with_d(state: GANState, d: DParts) -> GANState:
    return state.replace(d_params=d[0], d_opt=d[1], d_state=d[2],
                         regs=regularizers_lib.with_per_discriminator(state.regs, d[3]))


def _d_updates(gan: GAN, d: DParts, real: Examples, fake: Examples, key: Array, j: int, shard: Shard,
               penalty_weight: Array, tx: optax.GradientTransformation | None = None,
               extras: Any = None) -> tuple[DParts, Any, dict]:
    """One optimizer update of every D on the same real and fake ``([b, ...], labels)``.

    Returns the new D parts, the (device-averaged) gradients and the loss
    aux, all with a leading ``[K]`` axis when ``num_discriminators > 1``.
    ``tx`` replaces ``gan.d_tx`` (the unrolled D uses its differentiable twin);
    ``extras``: the regularisers' inputs shared by all Ds (:func:`_d_extras`).
    """
    tx = tx or gan.d_tx

    def update(d):
        d_params, d_opt, d_state, d_regs = d
        grads, aux = _d_grads(gan, d_params, d_state, real, fake, key, j, shard, penalty_weight,
                              {**(extras or {}), **d_regs})
        updates, d_opt = tx.update(grads, d_opt, d_params)
        # Running statistics are averaged so every replica holds the same state.
        return (optax.apply_updates(d_params, updates), d_opt, shard.pmean(aux["d_state"]),
                {**d_regs, **aux["regs"].get("state", {})}), grads, aux

    return ensemble.over_discriminators(update, gan.num_discriminators)(d)


def _extras(gan: GAN, g_params: Any, g_state: Variables, regs: Any, key: Array, j: int, shard: Shard) -> dict:
    """The regularisers' inputs of D update ``j`` shared by all Ds (ADA's p, zCR's perturbed generated batch)."""
    return regularizers_lib.d_extras(gan.regularizers, regs,
                                     lambda dz: _fake(gan, g_params, g_state, key, j, shard, dz)[0],
                                     _purpose(key, _REG_D, j), shard, gan.z_dim)


def _toy_sample(gan: GAN, key: Array, shard: Shard) -> Examples:
    """This device's rows of a global toy batch, with the mixture's mode labels when conditional."""
    if not gan.num_classes:
        return shard.take(gan.toy.sample(key, shard.global_batch)), None
    x, labels = gan.toy.sample_labelled(key, shard.global_batch)
    return shard.take(x), shard.take(labels)


def _nth(reals: Examples, i: int) -> Examples:
    """Update ``i``'s real examples ``([b, ...], labels)`` of the step's ``([n_disc, b, ...], [n_disc, b])``."""
    return jax.tree.map(lambda a: a[i], reals)


def unrolled_discriminator(gan: GAN, g_params: Any, state: GANState, reals: Array, key: Array,
                           shard: Shard) -> tuple[Any, Variables]:
    """D's parameters and mutable state after ``gan.unroll_steps`` updates (Metz et al. 2016).

    Each unrolled step is an ordinary D update — the same loss, penalty,
    augmentation and packing, from the current D and its optimizer state —
    on generated examples of ``g_params``, so the result is a differentiable
    function of ``g_params``. Its optimizer is ``gan.d_tx_unrolled``: ``d_tx``
    with finite derivatives everywhere (see
    :data:`ganjax.optim.DIFFERENTIABLE_EPS_ROOT`). Step ``i`` uses fresh noise
    and keys derived from ``fold_in(key, UNROLL·1000 + i)``. Real data: toy
    data is sampled afresh; host image batches are reused cyclically, step
    ``i`` taking ``reals[i mod n_disc]`` (``reals``: this step's real data,
    ``([n_disc, b, *example_shape], labels [n_disc, b] or None)``).

    Returns ``(d_params, d_state)``, stacked ``[K, ...]`` for K discriminators.
    """
    d = _d_parts(state)
    for i in range(gan.unroll_steps):
        k = _purpose(key, _UNROLL, i)
        real = _nth(reals, i % gan.n_disc) if gan.toy is None else _toy_sample(gan, _purpose(k, _DATA), shard)
        fake = _fake(gan, g_params, state.g_state, k, 0, shard)
        d, _, _ = _d_updates(gan, d, real, fake, k, 0, shard, state.penalty_weight, gan.d_tx_unrolled,
                             _extras(gan, g_params, state.g_state, state.regs, k, 0, shard))
    return d[0], d[2]


class Generation(NamedTuple):
    """G's batch for its loss and how to differentiate through it (:func:`g_generation`).

    Attributes:
      x: the generated examples ``[b, *example_shape]``.
      labels: the labels they were conditioned on (int32 ``[b]``), or None.
      pull_back: ``ct [b, *example_shape]`` → ``(G parameter cotangents,)``: ``jax.vjp``'s pullback.
      g_state: G's mutable state after the forward pass (BatchNorm statistics).
      generate: ``(g_params, dz)`` → ``(x, g_state)``: G on the same noise plus ``dz``, same keys.
    """

    x: Array
    labels: Array | None
    pull_back: Callable
    g_state: Variables
    generate: Callable


def g_generation(gan: GAN, state: GANState, key: Array, shard: Shard) -> Generation:
    """The generated batch G's loss is taken on, computed once with its ``jax.vjp``.

    The alternating rule draws it afresh (purposes ``_G_NOISE``/``_G_LABELS``); the simultaneous rule
    uses D's update's batch (``_NOISE``/``_LABELS``, update 0), so :func:`train_step` hands the same
    forward pass to D's update and to G's gradient.
    """
    shared = gan.update == "simultaneous"
    z = shard.take(gan.sample_noise(_purpose(key, _NOISE if shared else _G_NOISE), shard.global_batch))
    labels = _generated_labels(gan, _purpose(key, _LABELS if shared else _G_LABELS), shard)

    def generate(g_params, dz=None):
        return apply_model(gan.generator, g_params, state.g_state, z if dz is None else z + dz, train=True,
                           dropout_key=shard.device_key(_purpose(key, _G_DROPOUT)), labels=labels)

    x, pull_back, g_state = jax.vjp(generate, state.g_params, has_aux=True)
    return Generation(x, labels, pull_back, g_state, generate)


def _g_grads(gan: GAN, state: GANState, reals: Array, key: Array, shard: Shard,
             generation: Generation | None = None):
    """Generator loss gradients; D is used in train mode but its state is not updated.

    G's loss is the mean over the K discriminators, each judging the same
    (augmented, packed) generated batch; with ``unroll_steps > 0`` the Ds are
    the unrolled ones. How the Ds judge it, and which real batch a loss that
    takes the real logits too (``gan.loss.g_uses_real``) sees, depends on the
    update rule: :func:`_g_judged_afresh` (alternating) or
    :func:`_g_judged_in_d_pass` (simultaneous). With ACGAN's class head each D's
    weighted class cross-entropy on the generated batch is added to its G loss.
    The regularisers may replace G's loss (top-k) and add terms (zCR); the
    returned ``g_loss`` is without those terms.

    The loss is a function of G's parameters and of the generated batch
    ``generation.x`` (:func:`g_generation` unless given); the gradient is the
    direct part plus the batch's cotangent pulled back through G, so G's
    forward pass is not recomputed.
    """
    k = gan.num_discriminators
    gen = generation or g_generation(gan, state, key, shard)
    judged = _g_judged_in_d_pass if gan.update == "simultaneous" else _g_judged_afresh
    g_loss = regularizers_lib.g_loss_fn(gan.regularizers, gan.loss.g_loss, state.step, shard)

    def loss_fn(g_params, generated):
        d_params, d_state = (unrolled_discriminator(gan, g_params, state, reals, key, shard) if gan.unroll_steps
                             else (state.d_params, state.d_state))
        losses, class_losses = judged(gan, d_params, d_state, generated, gen.labels, reals, key, shard, state.regs,
                                      g_loss)
        if gan.acgan_weight > 0:
            losses = losses + class_losses
        adv = ensemble.mean(losses, k)
        reg, reg_metrics = regularizers_lib.g_terms(gan.regularizers, generated,
                                                    lambda dz: gen.generate(g_params, dz)[0],
                                                    _purpose(key, _REG_G), shard, gan.z_dim)
        return adv + reg, {"g_state": gen.g_state, "g_loss": adv, "regs": reg_metrics}

    (_, aux), (direct, through_batch) = jax.value_and_grad(_ortho_regularized(gan, loss_fn), argnums=(0, 1),
                                                           has_aux=True)(state.g_params, gen.x)
    grads = jax.tree.map(jnp.add, direct, gen.pull_back(through_batch)[0])
    return shard.pmean(grads), aux["g_loss"], aux


def _g_judged_afresh(gan: GAN, d_params: Any, d_state: Variables, generated: Array, labels: Array | None,
                     reals: Examples, key: Array, shard: Shard, regs: Any, g_loss: Callable) -> tuple[Array, Array]:
    """G's adversarial losses and ACGAN class losses (each ``[K]`` or scalar) with the Ds judging G's own
    batch ``generated [b, ...]`` in a forward pass of G's loss (the alternating rule): fresh view and dropout
    draws, and the step's last real batch for a loss that takes real logits too."""
    k = gan.num_discriminators
    fake = d_view(gan, generated, _purpose(key, _G_AUG), shard, regs)

    def logits_of(params, mstate):
        logits, classes, _ = judge(gan, params, mstate, fake, labels, shard.device_key(_purpose(key, _G_DROPOUT_D)))
        return logits, _class_loss(gan, classes, labels)

    if not gan.loss.g_uses_real:
        logits, class_losses = ensemble.over_discriminators(logits_of, k)(d_params, d_state)
        return ensemble.over_discriminators(g_loss, k)(logits), class_losses
    real, real_labels = _nth(reals, -1)
    real = d_view(gan, real, _purpose(key, _G_AUG_REAL), shard, regs)

    def both_logits(params, mstate):
        real_logits = judge(gan, params, mstate, real, real_labels,
                            shard.device_key(_purpose(key, _G_DROPOUT_D_REAL)))[0]
        return real_logits, logits_of(params, mstate)

    real_logits, (logits, class_losses) = ensemble.over_discriminators(both_logits, k)(d_params, d_state)
    return ensemble.over_discriminators(g_loss, k)(real_logits, logits), class_losses


def _g_judged_in_d_pass(gan: GAN, d_params: Any, d_state: Variables, generated: Array, labels: Array | None,
                        reals: Examples, key: Array, shard: Shard, regs: Any, g_loss: Callable) -> tuple[Array, Array]:
    """As :func:`_g_judged_afresh`, for the simultaneous rule: the logits are those of D's own update,
    one forward pass for both players (seed 000's Keras ``train_step``, PacGAN's ``compute_losses``).

    ``generated`` is then that update's batch, the same forward pass of G (:func:`train_step` hands
    it to both), seen with that update's view draws and judged with its real batch by
    :func:`judge_pair` with its dropout keys, so every logit equals the one in D's loss. (D's
    judgement is evaluated a second time for G's gradient; XLA does not merge the two.)
    """
    k = gan.num_discriminators
    (real, real_labels), (view_real, view_fake) = _nth(reals, 0), _views(gan, key, 0, shard, regs)
    viewed_real, fake = (view_real(real), real_labels), (view_fake(generated), labels)

    def pair_logits(params, mstate):
        real_logits, logits, _, classes, _ = judge_pair(gan, params, mstate, viewed_real, fake, key, 0, shard)
        return real_logits, (logits, _class_loss(gan, classes, labels))

    real_logits, (logits, class_losses) = ensemble.over_discriminators(pair_logits, k)(d_params, d_state)
    losses = (ensemble.over_discriminators(g_loss, k)(real_logits, logits) if gan.loss.g_uses_real
              else ensemble.over_discriminators(g_loss, k)(logits))
    return losses, class_losses


def _ortho_regularized(gan: GAN, loss_fn: Callable) -> Callable:
    """G's ``loss_fn`` plus ``ortho_reg · R(g_params)`` (:mod:`ganjax.ortho`); ``loss_fn`` itself when off.

    The aux then also carries ``g_ortho`` (``R``); its ``g_loss`` stays the adversarial loss.
    """
    if not gan.ortho_reg:
        return loss_fn

    def regularized(g_params, *args):
        loss, aux = loss_fn(g_params, *args)
        ortho = ortho_lib.orthogonal_penalty(g_params)
        return loss + gan.ortho_reg * ortho, {**aux, "g_ortho": ortho}

    return regularized


def _apply_g(gan: GAN, state: GANState, grads, aux, shard: Shard) -> GANState:
    updates, g_opt = gan.g_tx.update(grads, state.g_opt, state.g_params)
    g_params = optax.apply_updates(state.g_params, updates)
    ema = jax.tree.map(lambda e, p: gan.ema_decay * e + (1.0 - gan.ema_decay) * p, state.ema_params, g_params)
    return state.replace(g_params=g_params, g_opt=g_opt, ema_params=ema, g_state=shard.pmean(aux["g_state"]))


def real_batches(gan: GAN, batch: Any, key: Array, shard: Shard) -> Examples:
    """Real data for the ``n_disc`` D updates: ``([n_disc, b, *example_shape], labels int32 [n_disc, b] | None)``.

    Image data arrives from the host as ``batch`` (uint8 or float, already
    this device's ``[n_disc, b, ...]``; for a conditional GAN the pair
    ``(images, labels [n_disc, b])``); toy data is sampled here for the
    global batch and sliced (see :mod:`ganjax.shard`).
    """
    if batch is not None:
        images, labels = batch if gan.num_classes else (batch, None)
        return images_to_float(images), None if labels is None else jnp.asarray(labels, jnp.int32)
    keys = jnp.stack([_purpose(key, _DATA, j) for j in range(gan.n_disc)])
    return jax.vmap(lambda k: _toy_sample(gan, k, shard))(keys)


def _d_fake(gan: GAN, state: GANState, key: Array, j: int, shard: Shard) -> Examples:
    """The generated batch of D update ``j`` and its labels (no gradient flows back to G)."""
    fake, labels = _fake(gan, state.g_params, state.g_state, key, j, shard)
    return jax.lax.stop_gradient(fake), labels


def _d_extras(gan: GAN, state: GANState, key: Array, j: int, shard: Shard) -> dict:
    """:func:`_extras` of D update ``j`` at ``state`` (no gradient flows back to G)."""
    return jax.lax.stop_gradient(_extras(gan, state.g_params, state.g_state, state.regs, key, j, shard))


def _d_metrics(gan: GAN, aux: dict, grads: Any, d_params: Any) -> dict[str, Array]:
    """D's scalar metrics; with K discriminators, the means over them."""
    k = gan.num_discriminators
    norm = ensemble.over_discriminators(_global_norm, k)
    extra = {"class_loss_d": ensemble.mean(aux["class_loss_d"], k)} if "class_loss_d" in aux else {}
    return {"d_loss": ensemble.mean(aux["d_loss"], k), "penalty": ensemble.mean(aux["penalty"], k),
            "d_real": ensemble.mean(aux["d_real"], k), "d_fake": ensemble.mean(aux["d_fake"], k),
            "d_grad_norm": ensemble.mean(norm(grads), k), "d_param_norm": ensemble.mean(norm(d_params), k), **extra}


def train_step(gan: GAN, state: GANState, batch: Any, batch_size: int,
               axis_name: str | None = None, num_shards: int = 1) -> tuple[GANState, dict[str, Array]]:
    """One GAN iteration on one device (pure; jit/pmap/shard_map it).

    Args:
      gan: static definition.
      state: current state (replicated across devices).
      batch: ``[n_disc, b, *example_shape]`` real images (uint8 or float) of
        this device — for a conditional GAN ``(images, labels int [n_disc, b])``
        — or None for toy datasets, which are sampled in the step.
      batch_size: the per-device batch size ``b`` (a multiple of ``gan.pack``).
      axis_name: the data-parallel axis to average gradients over, or None.
      num_shards: devices along ``axis_name`` (global batch = ``b · num_shards``).

    Returns:
      The new state and scalar metrics, averaged over devices: ``d_loss``
      (adversarial part), ``penalty``, ``g_loss``, ``d_real``/``d_fake`` (mean
      D(x) as a probability), gradient and parameter norms (D's: means over
      the K discriminators), ``class_loss_d`` (ACGAN's weighted class term of
      D's loss, only with ``acgan_weight > 0``), and ``nonfinite``
      (1.0 if any loss, gradient or parameter is NaN/Inf). With
      ``gan.on_nonfinite == 'skip_step'`` such a step returns the old state
      with only ``step`` advanced (so the next step draws new keys).
    """
    shard = Shard(batch_size, num_shards, axis_name)
    key = step_key(state)
    reals = real_batches(gan, batch, key, shard)
    if gan.update == "simultaneous":
        gen = g_generation(gan, state, key, shard)  # one forward pass for both players
        d, d_grads, d_aux = _d_updates(gan, _d_parts(state), _nth(reals, 0),
                                       (jax.lax.stop_gradient(gen.x), gen.labels), key, 0, shard,
                                       state.penalty_weight, extras=_d_extras(gan, state, key, 0, shard))
        g_grads, g_loss, g_aux = _g_grads(gan, state, reals, key, shard, gen)
        new = _apply_g(gan, _with_d(state, d), g_grads, g_aux, shard)
    else:
        new = state
        for j in range(gan.n_disc):
            d, d_grads, d_aux = _d_updates(gan, _d_parts(new), _nth(reals, j), _d_fake(gan, new, key, j, shard),
                                           key, j, shard, new.penalty_weight, extras=_d_extras(gan, new, key, j, shard))
            new = _with_d(new, d)
        g_grads, g_loss, g_aux = _g_grads(gan, new, reals, key, shard)
        new = _apply_g(gan, new, g_grads, g_aux, shard)
    regs, reg_metrics = regularizers_lib.after_step(gan.regularizers, new.regs, d_aux["regs"], g_aux["regs"],
                                                    state.step, shard.global_batch, shard.global_batch // gan.pack,
                                                    gan.num_discriminators)
    new = new.replace(step=state.step + 1, regs=regs)
    metrics = {**_d_metrics(gan, d_aux, d_grads, new.d_params), "g_loss": g_loss,
               "g_grad_norm": _global_norm(g_grads), "g_param_norm": _global_norm(new.g_params), **reg_metrics}
    if "g_ortho" in g_aux:
        metrics["g_ortho"] = g_aux["g_ortho"]
    metrics = shard.pmean(metrics)
    finite = jnp.all(jnp.isfinite(jnp.stack(list(metrics.values()))))
    metrics["nonfinite"] = 1.0 - finite.astype(jnp.float32)
    if gan.on_nonfinite == "skip_step":
        new = jax.tree.map(lambda n, o: jnp.where(finite, n, o), new, state.replace(step=new.step))
    return new, metrics


def generate(gan: GAN, state: GANState, z: Array, ema: bool = False, labels: Array | None = None) -> Array:
    """Samples ``[N, *example_shape]`` from noise ``z [N, z_dim]`` in eval mode; a conditional GAN's samples
    are of classes ``labels`` (int32 ``[N]``; None: :func:`balanced_labels`)."""
    params = state.ema_params if ema else state.g_params
    if gan.num_classes and labels is None:
        labels = balanced_labels(z.shape[0], gan.num_classes)
    return apply_model(unsynchronised(gan.generator), params, state.g_state, z, train=False, labels=labels)[0]


def balanced_labels(n: int, num_classes: int) -> Array:
    """int32 ``[n]`` labels ``floor(i · C / n)``: the ``C`` classes in equal contiguous blocks (sizes differ by
    at most one) — what :func:`generate` conditions on when given no labels."""
    return (jnp.arange(n) * num_classes // n).astype(jnp.int32)
