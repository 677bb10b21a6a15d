"""Experiment configs: defaults, validation, and building a GAN from a config.

Every config file in ``configs/`` defines ``get_config(arg=None)`` that starts
from :func:`base_config` and overrides fields. ``arg`` is a comma-separated
list of variants (``--config=configs/NAME.py:quick``); every config accepts
``quick``, which shrinks the run to a CPU smoke test.

Keys (see docs/training.md, "Config keys", for the full table):

``seed``, ``num_steps``, ``batch_size`` (global), ``dataset``, ``data_dir``,
``data`` (toy-dataset options; for image datasets ``image_size`` and ``crop``), ``loss``, ``penalty``, ``penalty_weight``,
``n_disc``, ``update_rule`` (``alternating`` | ``simultaneous``), ``model.generator``,
``model.discriminator``, ``model.z_dim``, ``model.noise``, ``model.g``,
``model.d`` (module options), ``optimizer_g.*`` / ``optimizer_d.*`` (``name``,
``learning_rate``, ``b1``, ``b2``, ``eps``, ``clip_value``), ``ema_decay``,
``log_every``, ``checkpoint_every``, ``eval_every``, ``sample_every``,
``keep_checkpoints``, ``parallel`` (``none`` | ``pmap`` | ``shard_map``),
``steps_per_call`` (train steps per compiled call, 0 = automatic; :mod:`ganjax.calls`),
``distributed`` (``none`` | ``auto``: start ``jax.distributed``; see :mod:`ganjax.distributed`),
``sync_batch_norm``, ``compute_dtype`` (``float32`` | ``bfloat16``),
``on_nonfinite`` (``stop`` | ``skip_step``), ``eval.*``
(``metrics``, ``num_samples``, ``features``, ``split``, ``batch_size``,
``inception_weights``, ``cache_dir``, ``ema``; see :mod:`ganjax.metrics.evaluator`),
training options ``augment`` (DiffAugment policies), ``num_discriminators``,
``unroll_steps``, ``pack``, ``acgan_weight``, ``ortho_reg`` (see :data:`TRAIN_OPTIONS`),
``model.num_classes`` and ``model.class_distribution`` (class-conditional
GANs; see :func:`validate_conditioning`), ``regularizers.*`` (CR, bCR, zCR,
LeCam, top-k, ADA; see :mod:`ganjax.regularizers`),
``pretrain.*`` (seed 004's autoencoder phase; see :mod:`ganjax.pretrain`),
``imports`` (the researcher's own modules, imported before validation: see
:mod:`ganjax.user_modules`).
"""

from __future__ import annotations

import json
from typing import Any, Callable, Iterable

import ml_collections

from ganjax import augment as augment_lib
from ganjax.calls import check_steps_per_call
from ganjax import losses as losses_lib
from ganjax import optim
from ganjax import penalties as penalties_lib
from ganjax import regularizers as regularizers_lib
from ganjax.data import Dataset, check_dataset_name, image_options_of, make_dataset
from ganjax.data.pipeline import DEFAULT_PREFETCH, check_pipeline_options
from ganjax.distributed import requested_mode as requested_distributed_mode
from ganjax.errors import ConfigError, unknown_name
from ganjax.metrics.evaluator import default_eval_config, validate_eval_config
from ganjax.models import (build_discriminator, build_generator, check_conditioning, check_generator_options,
                           check_input_shape, is_conditional)
from ganjax.pretrain import default_pretrain_config, validate_pretrain_config
from ganjax.train import GAN, NOISE_DISTRIBUTIONS
from ganjax.user_modules import import_modules

PARALLEL_MODES = ("none", "pmap", "shard_map")
COMPUTE_DTYPES = {"float32": "float32", "bfloat16": "bfloat16"}
UPDATE_RULES = ("alternating", "simultaneous")
ON_NONFINITE = ("stop", "skip_step")
# Training options and their "off" values (the plain GAN step). Configs saved
# before these keys existed are read with these defaults.
TRAIN_OPTIONS = {
    "augment": "",  # DiffAugment: comma list of translation, cutout, color, noise[:std] (ganjax.augment)
    "num_discriminators": 1,  # K discriminators, G minimises their mean loss (ganjax.ensemble)
    "unroll_steps": 0,  # k unrolled D updates in G's loss (Metz et al. 2016)
    "pack": 1,  # PacGAN: D sees m samples concatenated on the last axis (ganjax.pack)
    "acgan_weight": 0.0,  # ACGAN: weight of the auxiliary class loss, D with a class head (ganjax.acgan)
    "ortho_reg": 0.0,  # β of BigGAN's orthogonal regularisation in G's loss (ganjax.ortho)
}
# Class-conditional keys of the model block and their "off" values (configs
# saved before they existed are read with these).
MODEL_OPTIONS = {
    "num_classes": 0,  # C > 0: class-conditional GAN with C classes
    "class_distribution": (),  # weights of the generated labels' classes; () = uniform
}


def base_config() -> ml_collections.ConfigDict:
    """Defaults shared by all configs (seed 002's MLP GAN on Fashion-MNIST)."""
    c = ml_collections.ConfigDict()
    # Modules or .py files that register losses, penalties, models, metrics or
    # datasets (ganjax.register_*); imported before validation, recorded resolved.
    c.imports = ()
    c.seed = 0
    c.num_steps = 10_000
    c.batch_size = 128
    c.dataset = "fashion_mnist"
    c.data_dir = ""  # "" = TFDS's default (~/tensorflow_datasets or $TFDS_DATA_DIR)
    c.data = ml_collections.ConfigDict()
    # How batches are served (ganjax.data.pipeline), bitwise the same batches either way:
    c.data.prefetch = DEFAULT_PREFETCH  # calls whose batches a thread prepares ahead; 0 = off
    c.data.on_device = False  # image datasets: keep the images on the device(s), gather batches there
    c.loss = "non_saturating"
    c.penalty = "none"
    c.penalty_weight = 0.0
    c.n_disc = 1
    c.update_rule = "alternating"
    for key, value in TRAIN_OPTIONS.items():
        c[key] = value
    c.regularizers = regularizers_lib.default_config()  # CR, bCR, zCR, LeCam, top-k, ADA: all off

    c.model = ml_collections.ConfigDict()
    c.model.generator = "mlp"
    c.model.discriminator = "mlp"
    c.model.z_dim = 100
    c.model.noise = "normal"
    c.model.g = ml_collections.ConfigDict()
    c.model.d = ml_collections.ConfigDict()
    for key, value in MODEL_OPTIONS.items():
        c.model[key] = value

    for name in ("optimizer_g", "optimizer_d"):
        o = ml_collections.ConfigDict()
        o.name = "adam"
        o.learning_rate = 2e-4
        o.b1 = 0.5
        o.b2 = 0.999
        o.eps = 1e-8
        o.clip_value = 0.0
        c[name] = o

    c.ema_decay = 0.999
    c.log_every = 100
    c.checkpoint_every = 1000
    # Also a checkpoint whenever this many seconds passed since the last one (0 = off): bounds the work a
    # hard kill can take (ganjax.checkpoint.SaveTimer).
    c.checkpoint_every_secs = 0.0
    c.eval_every = 0
    c.sample_every = 1000
    c.keep_checkpoints = 3
    c.parallel = "none"
    c.steps_per_call = 0  # train steps per compiled call; 0 = automatic per backend and nets (ganjax.calls)
    # 'auto': jax.distributed.initialize() for multi-host runs ($GANJAX_DISTRIBUTED overrides).
    c.distributed = "none"
    # With parallel != 'none': BatchNorm statistics over the global batch
    # (True, so a config is the same model on 1 or N devices) or per device.
    c.sync_batch_norm = True
    c.compute_dtype = "float32"  # or "bfloat16": params, optimizer state and losses stay float32
    # A NaN/Inf loss, gradient or parameter: 'stop' (keep the last good
    # checkpoint, exit with the step and quantity) or 'skip_step' (drop that update).
    c.on_nonfinite = "stop"
    c.eval = default_eval_config()  # scoring every eval_every steps (docs/evaluation.md)
    c.pretrain = default_pretrain_config()  # seed 004's autoencoder phase, off unless autoencoder_steps > 0
    return c


def parse_variants(arg: str | None, valid: Iterable[str]) -> set[str]:
    """Splits ``'quick,mnist'`` into variants and rejects unknown ones."""
    valid = set(valid) | {"quick"}
    chosen = {v.strip() for v in (arg or "").split(",") if v.strip()}
    bad = sorted(chosen - valid)
    if bad:
        raise ConfigError(f"unknown config variant(s) {bad}; valid variants: {', '.join(sorted(valid))}")
    return chosen


def shrink_for_quick(c: ml_collections.ConfigDict, num_steps: int = 20) -> None:
    """The ``quick`` variant: a few steps, frequent logging/checkpoints."""
    c.num_steps = num_steps
    c.log_every = max(1, num_steps // 4)
    c.checkpoint_every = max(1, num_steps // 2)
    c.sample_every = num_steps
    c.eval_every = num_steps if c.eval_every else 0
    c.keep_checkpoints = 2


def _check(cond: bool, message: str) -> None:
    if not cond:
        raise ConfigError(message)


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def validate(c: ml_collections.ConfigDict) -> None:
    """Imports ``c.imports``, then checks names, types and ranges; raises ``ConfigError`` naming the bad value."""
    import_user_modules(c)
    for key in ("seed", "num_steps", "batch_size", "n_disc", "log_every", "checkpoint_every",
                "eval_every", "sample_every", "keep_checkpoints"):
        _check(_is_int(c[key]), f"{key} must be an integer, got {c[key]!r}")
    _check(c.batch_size > 0, f"batch_size must be > 0, got {c.batch_size}")
    _check(c.num_steps >= 0, f"num_steps must be >= 0, got {c.num_steps}")
    _check(c.n_disc >= 1, f"n_disc must be >= 1, got {c.n_disc}")
    _check(c.keep_checkpoints >= 1, f"keep_checkpoints must be >= 1, got {c.keep_checkpoints}")
    for key in ("log_every", "checkpoint_every", "eval_every", "sample_every"):
        _check(c[key] >= 0, f"{key} must be >= 0 (0 = never), got {c[key]}")
    secs = c.get("checkpoint_every_secs", 0)
    _check(isinstance(secs, (int, float)) and not isinstance(secs, bool) and secs >= 0,
           f"checkpoint_every_secs must be a number of seconds >= 0 (0 = off), got {secs!r}")
    _check(0.0 <= float(c.ema_decay) < 1.0, f"ema_decay must be in [0, 1), got {c.ema_decay!r}")
    _check(float(c.penalty_weight) >= 0.0, f"penalty_weight must be >= 0, got {c.penalty_weight!r}")
    _check(_is_int(c.model.z_dim) and c.model.z_dim > 0, f"model.z_dim must be a positive integer, got {c.model.z_dim!r}")
    if c.parallel not in PARALLEL_MODES:
        raise unknown_name("parallel mode", c.parallel, PARALLEL_MODES)
    check_steps_per_call(c.get("steps_per_call", 0))
    requested_distributed_mode(c.get("distributed", "none"))  # also checks $GANJAX_DISTRIBUTED
    if c.compute_dtype not in COMPUTE_DTYPES:
        raise unknown_name("compute_dtype", c.compute_dtype, COMPUTE_DTYPES)
    _check(isinstance(c.sync_batch_norm, bool), f"sync_batch_norm must be true or false, got {c.sync_batch_norm!r}")
    if c.update_rule not in UPDATE_RULES:
        raise unknown_name("update_rule", c.update_rule, UPDATE_RULES)
    _check(c.update_rule == "alternating" or c.n_disc == 1,
           f"update_rule='simultaneous' needs n_disc=1, got n_disc={c.n_disc}")
    if c.on_nonfinite not in ON_NONFINITE:
        raise unknown_name("on_nonfinite", c.on_nonfinite, ON_NONFINITE)
    if c.model.noise not in NOISE_DISTRIBUTIONS:
        raise unknown_name("model.noise", c.model.noise, NOISE_DISTRIBUTIONS)
    losses_lib.get_loss(c.loss)
    penalties_lib.get_penalty(c.penalty)
    validate_conditioning(c)
    validate_eval_config(c.eval, data_kind_of(c.dataset), model_option(c, "num_classes") > 0)
    if data_kind_of(c.dataset) == "image":
        check_dataset_name(c.dataset)  # a typo is "unknown dataset", not a complaint about its options
        image_options_of(c.dataset, c.data.to_dict())  # image_size / crop, before any data is loaded
    check_pipeline_options(c.data, c.dataset)
    validate_train_options(c)
    validate_pretrain_config(c)


def import_user_modules(c: ml_collections.ConfigDict) -> None:
    """Imports the config's ``imports`` and records them resolved (files by absolute path) in ``c``.

    Configs saved before the key existed have no ``imports``: nothing to do.
    A locked config (``--config``) may still change this existing key.
    """
    if "imports" not in c:
        return
    resolved = import_modules(c.imports)
    if tuple(c.imports) != resolved:
        c.imports = resolved


def train_option(c: ml_collections.ConfigDict, key: str) -> Any:
    """A training option's value (its "off" default for configs saved before it existed)."""
    return c.get(key, TRAIN_OPTIONS[key])


def validate_train_options(c: ml_collections.ConfigDict) -> None:
    """Checks ``augment``, ``num_discriminators``, ``unroll_steps``, ``pack``, ``ortho_reg`` and ``regularizers.*``."""
    policy = augment_lib.parse_policy(train_option(c, "augment"))
    if augment_lib.image_only(policy) and data_kind_of(c.dataset) != "image":
        raise augment_lib.non_image_error(policy, c.dataset, "is a toy distribution of vectors")
    for key, low in (("num_discriminators", 1), ("unroll_steps", 0), ("pack", 1)):
        value = train_option(c, key)
        _check(_is_int(value) and value >= low, f"{key} must be an integer >= {low}, got {value!r}")
    ortho = train_option(c, "ortho_reg")
    _check(isinstance(ortho, (int, float)) and not isinstance(ortho, bool) and ortho >= 0,
           f"ortho_reg must be a number >= 0 (0 = off), got {ortho!r}")
    pack = train_option(c, "pack")
    _check(c.batch_size % pack == 0,
           f"pack={pack} needs a batch_size divisible by {pack}, got batch_size={c.batch_size}")
    groups = c.model.g.get("bn_groups", 1)
    if _is_int(groups) and groups > 1:  # other values: refused by the model option checks
        _check(c.model.g.get("batch_norm", False),
               f"model.g.bn_groups={groups} sets BatchNorm's groups, but model.g.batch_norm is off; "
               f"set model.g.batch_norm=True or drop bn_groups")
        _check(c.batch_size % groups == 0,
               f"model.g.bn_groups={groups} needs a batch_size divisible by {groups}, got batch_size={c.batch_size}")
    regularizers_lib.from_config(c, image_data=data_kind_of(c.dataset) == "image")


def model_option(c: ml_collections.ConfigDict, key: str) -> Any:
    """``model.num_classes`` / ``model.class_distribution`` (their "off" default for configs saved before them)."""
    return c.model.get(key, MODEL_OPTIONS[key])


def validate_conditioning(c: ml_collections.ConfigDict) -> None:
    """Checks ``model.num_classes``, ``model.class_distribution`` and ``acgan_weight``, and that they fit the
    other options (the modules and the dataset are checked in :func:`build`)."""
    n = model_option(c, "num_classes")
    _check(_is_int(n) and n >= 0, f"model.num_classes must be an integer >= 0 (0 = unconditional), got {n!r}")
    weights = model_option(c, "class_distribution")
    if len(weights):
        _check(n > 0, f"model.class_distribution = {list(weights)} needs model.num_classes > 0 (a conditional GAN)")
        _check(len(weights) == n and all(isinstance(w, (int, float)) and not isinstance(w, bool) and w >= 0
                                          for w in weights) and sum(weights) > 0,
               f"model.class_distribution must be {n} non-negative weights (one per class of model.num_classes) "
               f"with a positive sum, or () for uniform; got {list(weights)}")
    weight = train_option(c, "acgan_weight")
    _check(isinstance(weight, (int, float)) and not isinstance(weight, bool) and weight >= 0,
           f"acgan_weight must be a number >= 0 (0 = off), got {weight!r}")
    _check(weight == 0 or n > 0, f"acgan_weight = {weight} needs model.num_classes > 0 (ACGAN is class-conditional)")
    _check(n == 0 or train_option(c, "pack") == 1,
           f"pack = {train_option(c, 'pack')} with model.num_classes = {n}: a pack of m examples has m labels, "
           f"which D's label input cannot take; use pack=1 for a conditional GAN")


def check_dataset_classes(c: ml_collections.ConfigDict, dataset: Dataset) -> None:
    """Refuses ``model.num_classes > 0`` on a dataset without labels or with another number of classes."""
    n = model_option(c, "num_classes")
    if not n or dataset.num_classes is None:
        return
    _check(dataset.num_classes > 0, f"model.num_classes = {n}, but dataset {c.dataset!r} has no class labels; "
                                    f"use a labelled dataset (TFDS with a label, folder:PATH with class "
                                    f"subfolders, idx:PATH, ring_2d, grid_2d) or model.num_classes = 0")
    _check(dataset.num_classes == n, f"model.num_classes = {n}, but dataset {c.dataset!r} has "
                                     f"{dataset.num_classes} classes (labels 0..{dataset.num_classes - 1}); "
                                     f"set model.num_classes = {dataset.num_classes}")


def data_kind_of(dataset: str) -> str:
    """The evaluation data kind of a dataset name (without loading it): a toy dataset's registered kind, else image."""
    from ganjax.data.toy import TOY_DATASETS

    return TOY_DATASETS[dataset].kind if dataset in TOY_DATASETS else "image"


def build(c: ml_collections.ConfigDict, dataset: Dataset | None = None) -> tuple[Dataset, GAN]:
    """Validates ``c`` and builds the dataset and the :class:`GAN`.

    Names are checked before any data is loaded, so a typo fails in
    milliseconds. Pass ``dataset`` to reuse one already loaded.
    """
    validate(c)
    loss = losses_lib.get_loss(c.loss)
    penalty = penalties_lib.get_penalty(c.penalty)
    g_tx = optim.make_optimizer(c.optimizer_g, "optimizer_g")
    d_tx = optim.make_optimizer(c.optimizer_d, "optimizer_d")
    import jax.numpy as jnp

    from ganjax.shard import AXIS

    num_classes, acgan_weight = model_option(c, "num_classes"), float(train_option(c, "acgan_weight"))
    runtime = {"dtype": jnp.dtype(COMPUTE_DTYPES[c.compute_dtype]),
               "bn_axis_name": AXIS if c.parallel != "none" and c.sync_batch_norm else None,
               "num_classes": num_classes}
    # Building the modules checks their names and options before data loading.
    check_generator_options(c.model.generator, c.model.g.to_dict())
    discriminator = build_discriminator(c.model.discriminator, c.model.d.to_dict(),
                                        class_head=num_classes if acgan_weight > 0 else 0, **runtime)
    check_conditioning(c.model.generator, c.model.discriminator, num_classes, acgan_weight > 0)
    if dataset is None:
        dataset = make_dataset(c.dataset, c.data.to_dict(), data_dir=c.data_dir or None)
    if dataset.images is not None:
        n = dataset.images.shape[0]
        _check(c.batch_size * c.n_disc <= n,
               f"batch_size * n_disc = {c.batch_size * c.n_disc} exceeds the {n} examples of {c.dataset!r}")
    check_input_shape(c.model.discriminator, dataset.example_shape, c.dataset)
    check_dataset_classes(c, dataset)
    policy = augment_lib.parse_policy(train_option(c, "augment"))
    augment_lib.check_images(policy, dataset.example_shape, c.dataset)
    generator = build_generator(c.model.generator, dataset.example_shape, c.model.g.to_dict(), **runtime)
    gan = GAN(
        generator=generator,
        discriminator=discriminator,
        loss=loss,
        penalty=penalty,
        g_tx=g_tx,
        d_tx=d_tx,
        example_shape=dataset.example_shape,
        z_dim=c.model.z_dim,
        noise=c.model.noise,
        n_disc=c.n_disc,
        ema_decay=float(c.ema_decay),
        update=c.update_rule,
        toy=dataset.toy,
        on_nonfinite=c.on_nonfinite,
        augment=policy,
        num_discriminators=train_option(c, "num_discriminators"),
        unroll_steps=train_option(c, "unroll_steps"),
        pack=train_option(c, "pack"),
        ortho_reg=float(train_option(c, "ortho_reg")),
        d_tx_unrolled=optim.make_optimizer(c.optimizer_d, "optimizer_d", differentiable=True),
        regularizers=regularizers_lib.from_config(
            c, image_data=len(dataset.example_shape) == 3 and data_kind_of(c.dataset) == "image",
            num_examples=None if dataset.images is None else dataset.images.shape[0]),
        num_classes=num_classes,
        class_distribution=tuple(float(w) for w in model_option(c, "class_distribution")),
        d_conditional=bool(num_classes) and is_conditional(type(discriminator)),
        acgan_weight=acgan_weight,
    )
    return dataset, gan


# PacGAN'18's synthetic-data protocol (Lin et al., public code: synthetic_data_experiments/2D*_GAN&PacGAN,
# config.py and pacgan_task.py). Each differs from the ganjax default setting of mixture_config.
PACGAN_PACKS_PER_BATCH = 100  # a batch is 100 packed examples, i.e. 100·m samples for PacGAN m
PACGAN_NUM_EXAMPLES = 100_000  # the fixed training sample
PACGAN_EPOCH_STEPS = PACGAN_NUM_EXAMPLES // PACGAN_PACKS_PER_BATCH  # 1,000 steps per epoch
PACGAN_EPOCHS = 400
PACGAN_DATA = {"ring_2d": {"radius": 1.0, "std": 0.01}, "grid_2d": {"spacing": 2.0, "std": 0.05}}


def pacgan_protocol(c: ml_collections.ConfigDict, pack: int = 1) -> None:
    """Sets PacGAN'18's 2-D protocol on a :func:`mixture_config` (in place), for PacGAN ``pack``.

    * data: a fixed sample of 100,000 points (``data.num_examples``); the ring
      has radius 1 and std 0.01 (the grid: spacing 2, std 0.05, as before);
    * G: z ~ N(0, I₂); 4 × 400 hidden units, each Dense (no bias) → BatchNorm
      (momentum 0.95, ε 1e-4) → ReLU; linear output with a bias. Their code
      calls G once per pack slot, so BatchNorm's statistics are per slot:
      ``model.g.bn_groups = pack`` (rows ``n`` with the same ``n mod pack``);
    * D: 3 LinearMaxout layers of 200 units × 5 pieces, then a linear logit;
    * init: every kernel N(0, 0.02²), every bias 0 (BatchNorm: scale 1, shift 0);
    * Adam(1e-4, β1 0.2, β2 0.999, ε 1e-8) for both players, updated
      simultaneously (both losses from one forward pass, both gradients at
      the same parameters: their ``compute_losses``), NS loss. The
      authors' config says ``beta1: 0.8`` for Blocks' Adam, whose ``beta1`` and
      ``beta2`` are the weights of the *new* gradient (1 − β in Kingma & Ba's
      and Optax's notation; its defaults 0.1 and 0.001 are the usual 0.9 and
      0.999): their 0.8 is Optax's ``b1 = 0.2``, and the default ``beta2`` is
      ``b2 = 0.999``;
    * batch: 100 packs (``100 · pack`` samples); 400 epochs of 1,000 steps.
    """
    c.data = ml_collections.ConfigDict({**PACGAN_DATA[c.dataset], "num_examples": PACGAN_NUM_EXAMPLES,
                                        "sample_seed": 0})
    c.loss = "non_saturating"
    c.update_rule = "simultaneous"
    c.model.z_dim = 2
    c.model.noise = "normal"
    c.model.g = ml_collections.ConfigDict({
        "hidden": (400, 400, 400, 400), "activation": "relu", "output": "linear", "batch_norm": True,
        "norm_position": "before_activation", "bn_momentum": 0.95, "bn_epsilon": 1e-4, "use_bias": False,
        "weight_init": "normal_0.02", "bn_groups": pack})
    c.model.d = ml_collections.ConfigDict({
        "hidden": (200, 200, 200), "activation": "linear", "maxout_pieces": 5, "dropout": 0.0,
        "weight_init": "normal_0.02"})
    for o in (c.optimizer_g, c.optimizer_d):
        o.learning_rate = 1e-4
        o.b1 = 0.2  # the authors' Blocks beta1 0.8 weighs the new gradient: Optax's b1 = 1 - 0.8
        o.b2 = 0.999  # Blocks' default beta2 = 0.001
        o.eps = 1e-8
    c.pack = pack
    c.batch_size = PACGAN_PACKS_PER_BATCH * pack
    c.num_steps = PACGAN_EPOCHS * PACGAN_EPOCH_STEPS


def mixture_config(dataset: str, arg: str | None) -> ml_collections.ConfigDict:
    """The 2-D mixture setup shared by ``configs/ring_2d.py`` and ``configs/grid_2d.py``.

    Default: G 4 hidden ReLU layers of 400 units, linear output, z ~ N(0, I_256);
    D 4 × 200 ReLU; Adam(1e-4, β1=0.5), batch 500, 20,000 steps (ganjax's own
    setting of the VEEGAN'17 / PacGAN'18 toy nets). Variants: ``pacgan``
    (PacGAN'18's published protocol, :func:`pacgan_protocol`; combine with
    ``pack2``, ``pack3`` or ``pack4`` for PacGAN m, which also sets the batch to
    100·m samples) and ``quick``.
    """
    packs = {f"pack{m}": m for m in (2, 3, 4)}
    variants = parse_variants(arg, {"pacgan", *packs})
    chosen_packs = [packs[v] for v in sorted(variants & set(packs))]
    if len(chosen_packs) > 1:
        raise ConfigError(f"choose at most one of the variants {', '.join(packs)}, got {sorted(variants & set(packs))}")
    if chosen_packs and "pacgan" not in variants:
        raise ConfigError(f"variant pack{chosen_packs[0]} belongs to the pacgan protocol: use "
                          f"':pacgan,pack{chosen_packs[0]}' (or --config.pack={chosen_packs[0]} on the default setting)")
    c = base_config()
    c.dataset = dataset
    c.batch_size = 500
    c.num_steps = 20_000
    c.loss = "non_saturating"
    c.model.z_dim = 256
    c.model.g.hidden = (400, 400, 400, 400)
    c.model.g.activation = "relu"
    c.model.g.output = "linear"
    c.model.g.weight_init = "glorot_uniform"
    c.model.d.hidden = (200, 200, 200, 200)
    c.model.d.activation = "relu"
    c.model.d.dropout = 0.0
    c.model.d.weight_init = "glorot_uniform"
    for o in (c.optimizer_g, c.optimizer_d):
        o.learning_rate = 1e-4
        o.b1 = 0.5
    if "pacgan" in variants:
        pacgan_protocol(c, chosen_packs[0] if chosen_packs else 1)
    c.log_every = 500
    c.sample_every = 2000
    c.eval_every = 2000  # mode coverage of raw and EMA samples (2,500 points)
    c.checkpoint_every = 5000
    if "quick" in variants:
        shrink_for_quick(c, num_steps=20)
        c.batch_size = 64 * train_option(c, "pack")
        c.model.g.hidden = (32, 32)
        c.model.d.hidden = (32, 32)
        if "pacgan" in variants:
            c.data.num_examples = 1000
    return c


def load_config_file(path: str, arg: str | None = None) -> ml_collections.ConfigDict:
    """Loads ``get_config(arg)`` from a config file, as ``--config=path:arg`` does, and imports its ``imports``.

    ``path`` may be a file path or a name in ``configs/`` (``"gaussian_1d"``).
    """
    import importlib.util
    import os

    if not path.endswith(".py"):
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        path = os.path.join(root, "configs", f"{path}.py")
    if not os.path.exists(path):
        raise ConfigError(f"config file {path!r} does not exist")
    import sys

    spec = importlib.util.spec_from_file_location(f"ganjax_config_{os.path.basename(path)[:-3]}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # a config file that defines dataclasses (e.g. a registered model) needs it
    spec.loader.exec_module(module)
    c = module.get_config(arg)
    if isinstance(c, ml_collections.ConfigDict):
        import_user_modules(c)  # sweeps and experiment scripts can name the user's components at once
    return c


def to_plain(c: ml_collections.ConfigDict) -> dict[str, Any]:
    """``c`` as plain dicts, lists and scalars, ready for JSON.

    Unlike ``ConfigDict.to_dict``, ConfigDicts inside lists and tuples (a
    sweep's ``axes``) become dicts too; JSON would write them as their key names.
    """
    def plain(v: Any) -> Any:
        if isinstance(v, ml_collections.ConfigDict):
            v = v.to_dict()
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        return v

    return plain(c)


def to_json(c: ml_collections.ConfigDict) -> str:
    """The resolved config as pretty JSON (what ``config.json`` holds)."""
    return json.dumps(to_plain(c), indent=2, sort_keys=True, default=list)


def from_json(text: str) -> ml_collections.ConfigDict:
    """Inverse of :func:`to_json` (lists stay lists)."""
    return ml_collections.ConfigDict(json.loads(text))


def flatten(d: dict, prefix: str = "") -> dict[str, Any]:
    """``{'a': {'b': 1}}`` → ``{'a.b': 1}``."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


def config_diff(old: dict, new: dict) -> list[str]:
    """Dotted keys whose values differ between two config dicts (tuples == lists)."""
    norm: Callable[[Any], Any] = lambda v: list(v) if isinstance(v, tuple) else v
    a, b = flatten(old), flatten(new)
    return sorted(k for k in set(a) | set(b) if norm(a.get(k)) != norm(b.get(k)))
