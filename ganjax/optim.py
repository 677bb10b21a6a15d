"""Optimizers for G and D, with sweepable hyperparameters as state arrays.

Every optimizer is wrapped in ``optax.inject_hyperparams``, so the learning
rate, betas and the clip value live in the optimizer state as float32 arrays:
a sweep can stack trials with different values along a leading axis and
``vmap`` one compiled step over them.

Config (``optimizer_g`` / ``optimizer_d``): ``name`` (``adam`` | ``sgd`` |
``rmsprop``), ``learning_rate``, ``b1``, ``b2``, ``eps`` (Adam), and
``clip_value`` (> 0 clips every parameter to [-c, c] after each update: the
weight clipping of WGAN, Arjovsky et al. 2017; 0 disables it).
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp
import optax

from ganjax.errors import ConfigError, unknown_name


def clip_params(clip_value: jax.Array) -> optax.GradientTransformation:
    """Projects parameters onto [-c, c] after the update (c <= 0: no clipping).

    Emits ``updates' = clip(params + updates) - params``, so applying it yields
    clipped parameters.
    """

    def update(updates, state, params=None):
        if params is None:
            raise ValueError("clip_params needs params")
        c = jnp.asarray(clip_value, jnp.float32)

        def project(u, p):
            new = p + u
            return jnp.where(c > 0, jnp.clip(new, -c, c), new) - p

        return jax.tree.map(project, updates, params), state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update)


def _adam(learning_rate, b1, b2, eps, clip_value, eps_root=0.0):
    return optax.chain(optax.adam(learning_rate, b1=b1, b2=b2, eps=eps, eps_root=eps_root), clip_params(clip_value))


def _sgd(learning_rate, b1, b2, eps, clip_value, eps_root=0.0):
    del b2, eps, eps_root
    return optax.chain(optax.trace(decay=b1), optax.scale_by_learning_rate(learning_rate),
                       clip_params(clip_value))


def _rmsprop(learning_rate, b1, b2, eps, clip_value, eps_root=0.0):
    del b1, eps_root  # optax's rmsprop takes sqrt(v + eps): differentiable everywhere
    return optax.chain(optax.rmsprop(learning_rate, decay=b2, eps=eps), clip_params(clip_value))


OPTIMIZERS: dict[str, Callable[..., optax.GradientTransformation]] = {
    "adam": _adam,
    "sgd": _sgd,
    "rmsprop": _rmsprop,
}

HYPERPARAMS = ("learning_rate", "b1", "b2", "eps", "clip_value")
_DEFAULTS = dict(zip(HYPERPARAMS, (None, 0.5, 0.999, 1e-8, 0.0)))

# Adam divides by sqrt(v), whose derivative is infinite at v = 0 (a parameter
# whose gradient is exactly 0, e.g. behind a dead ReLU): differentiating
# through an update (the unrolled D) would give NaN. The differentiable
# variant takes sqrt(v + DIFFERENTIABLE_EPS_ROOT), which changes an update only
# for gradients below ~1e-7 in magnitude.
DIFFERENTIABLE_EPS_ROOT = 1e-16


def make_optimizer(cfg: Mapping[str, Any], which: str, differentiable: bool = False) -> optax.GradientTransformation:
    """Builds ``optimizer_g`` or ``optimizer_d`` from its config block.

    For ``sgd``, ``b1`` is the momentum; for ``rmsprop``, ``b2`` is the decay.
    ``differentiable=True`` gives the same optimizer (the same state
    structure) with finite derivatives of its update w.r.t. the gradients
    everywhere (see :data:`DIFFERENTIABLE_EPS_ROOT`), for unrolled updates.
    """
    name = cfg.get("name", "adam")
    if name not in OPTIMIZERS:
        raise unknown_name(f"{which}.name", name, OPTIMIZERS)
    values = {k: cfg.get(k, d) for k, d in _DEFAULTS.items()}
    if values["learning_rate"] is None or not float(values["learning_rate"]) > 0:
        raise ConfigError(f"{which}.learning_rate must be > 0, got {values['learning_rate']!r}")
    for k in ("b1", "b2"):
        if not 0.0 <= float(values[k]) < 1.0:
            raise ConfigError(f"{which}.{k} must be in [0, 1), got {values[k]!r}")
    if float(values["clip_value"]) < 0:
        raise ConfigError(f"{which}.clip_value must be >= 0 (0 disables clipping), got {values['clip_value']!r}")
    eps_root = DIFFERENTIABLE_EPS_ROOT if differentiable else 0.0
    # eps_root is static: the state (and so checkpoints) is the same for both variants.
    factory = optax.inject_hyperparams(functools.partial(OPTIMIZERS[name], eps_root=eps_root),
                                       static_args=("eps_root",))
    # Python floats, not arrays: init() then makes fresh arrays for every state,
    # so donating one state's buffers can never delete another state's values.
    return factory(**{k: float(v) for k, v in values.items()})


def set_hyperparams(opt_state: Any, cfg: Mapping[str, Any]) -> Any:
    """Returns ``opt_state`` with its injected hyperparameters set from ``cfg``.

    A resumed run restores the optimizer state, hyperparameters included; this
    makes the config's values (e.g. a learning rate changed for the resume)
    the ones that are used from then on.
    """
    # jnp.full keeps each array's shape: [K] for an ensemble of K discriminators.
    hyper = {k: jnp.full(jnp.shape(v), float(cfg.get(k, _DEFAULTS[k])), jnp.asarray(v).dtype)
             for k, v in opt_state.hyperparams.items()}
    return opt_state._replace(hyperparams=hyper)
