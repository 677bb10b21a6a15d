r"""Vmapped sweeps: a group of trials trained as one compiled program.

Trials of one group (:attr:`ganjax.sweep.spec.Trial.group`) share the
architecture, loss, penalty, batch shape and every other static setting; they
differ only in seeds and the hyperparameters that live as arrays in the state
(learning rates, betas, eps, clip values, penalty weight). Their states are
stacked along a leading *trial* axis ``[T, ...]`` and one ``jax.vmap`` of the
same per-device :func:`ganjax.train.train_step` that single runs use trains
them all at once; ``steps_per_call`` steps run inside one ``lax.scan``.

* **Same numbers as alone.** Trial ``i`` starts from
  ``init_state(gan, seed_i)`` with its own hyperparameters and sees the batches
  its own seed gives (``BatchStream(images, seed_i, ...)``), exactly as
  ``ganjax.main`` would run it; vmapping only batches the arithmetic, so the
  results agree to float32 rounding.
* **Divergence.** Each trial carries an ``alive`` flag. A step whose loss,
  gradient or parameter norm is non-finite leaves that trial's state as it
  was and clears its flag: it is frozen, reported ``diverged`` at the step it
  reached, and — vmapped lanes being independent — its neighbours' numbers
  do not change.
* **Devices.** With several devices and ``T`` a multiple of their number, the
  trial axis is sharded over a 1-D mesh (``NamedSharding(mesh, P('trials'))``):
  each device trains its share of the trials (``jit`` partitions the vmapped
  program); otherwise everything runs on the first device.
* **Outputs** in ``<sweep_dir>/groups/<group>/``: ``metrics.jsonl`` (one row
  per trial per log step, with ``trial``; evaluation rows as in a single run,
  plus ``trial``) and Orbax checkpoints of the stacked state every
  ``checkpoint_every`` steps, so a killed sweep resumes the group where it
  stopped.
"""

from __future__ import annotations

import logging
import math
import os
import time
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from ganjax import config as config_lib
from ganjax.checkpoint import Checkpointer
from ganjax.data import Dataset
from ganjax.errors import ConfigError
from ganjax.pretrain import enabled as pretrain_enabled
from ganjax.sweep import results as results_lib
from ganjax.sweep.spec import VMAP_KEYS, Trial
from ganjax.train import GAN, GANState, init_state, train_step
from ganjax.trainer import finite_mean, with_config_hyperparams
from ganjax.writers import append_jsonl, drop_rows_after, read_jsonl

log = logging.getLogger("ganjax")

TRIAL_AXIS = "trials"


def stack(trees: Sequence[Any]) -> Any:
    """Pytrees with equal structure → one pytree with a leading axis ``[T, ...]``."""
    return jax.tree.map(lambda *xs: jnp.stack(xs), *trees)


def unstack(tree: Any, i: int) -> Any:
    """Entry ``i`` of a stacked pytree."""
    return jax.tree.map(lambda x: x[i], tree)


def init_group(gan: GAN, configs: Sequence[ml_collections.ConfigDict]) -> GANState:
    """The stacked initial state: trial ``i`` = ``init_state(gan, seed_i)`` with its hyperparameters."""
    return stack([with_config_hyperparams(init_state(gan, c.seed, c.penalty_weight), c) for c in configs])


def make_group_step(gan: GAN, batch_size: int, images: bool, steps_per_call: int
                    ) -> Callable[[GANState, jax.Array, Any], tuple[GANState, jax.Array, dict]]:
    """A jitted ``(states [T], alive [T], batches) → (states, alive, metrics [K, T])``.

    ``batches``: uint8 ``[K, T, n_disc, b, *example_shape]`` for image data
    (``K = steps_per_call``), None for toy data (sampled inside the step).
    """

    def one_trial(state: GANState, alive: jax.Array, batch):
        new, metrics = train_step(gan, state, batch, batch_size)
        # skip_step: train_step already dropped the bad update; the trial lives on.
        ok = alive if gan.on_nonfinite == "skip_step" else alive & (metrics["nonfinite"] == 0)
        new = jax.tree.map(lambda n, o: jnp.where(ok, n, o), new, state)
        return new, ok, metrics

    trials_step = jax.vmap(one_trial, in_axes=(0, 0, 0 if images else None))

    def body(carry, batch):
        states, alive = carry
        states, alive, metrics = trials_step(states, alive, batch)
        return (states, alive), metrics

    def run(states, alive, batches):
        xs = batches if images else None
        (states, alive), metrics = jax.lax.scan(body, (states, alive), xs, length=steps_per_call)
        return states, alive, metrics

    return jax.jit(run, donate_argnums=(0,))


def trial_sharding(num_trials: int, devices: Sequence[Any] | None = None) -> NamedSharding | None:
    """Shards the trial axis over all devices when ``num_trials`` is a multiple of their number."""
    devices = list(devices if devices is not None else jax.devices())
    if len(devices) < 2 or num_trials % len(devices):
        return None
    return NamedSharding(Mesh(np.array(devices), (TRIAL_AXIS,)), P(TRIAL_AXIS))


def steps_per_call(config: ml_collections.ConfigDict, limit: int = 100) -> int:
    """Steps per compiled call: divides ``num_steps`` and every logging/eval/checkpoint period."""
    periods = [p for p in (config.log_every, config.eval_every, config.checkpoint_every) if p]
    k = math.gcd(config.num_steps, *periods) if periods else config.num_steps
    return max(d for d in range(1, min(k, limit) + 1) if k % d == 0)


def _image_batches(streams, n_disc: int, k: int) -> np.ndarray:
    """``[k, T, n_disc, b, ...]`` from each trial's own stream."""
    return np.stack([np.stack([np.stack([s.next() for _ in range(n_disc)]) for s in streams])
                     for _ in range(k)])


class GroupRun:
    """Trains one group of trials stacked; see the module docstring."""

    def __init__(self, trials: Sequence[Trial], configs: Sequence[ml_collections.ConfigDict], group_dir: str,
                 dataset: Dataset | None = None, devices: Sequence[Any] | None = None):
        if not trials or len(trials) != len(configs):
            raise ConfigError(f"a vmapped group needs trials and their configs, got {len(trials)} and {len(configs)}")
        self.trials, self.configs, self.dir = list(trials), list(configs), group_dir
        c0 = configs[0]
        for t, c in zip(trials[1:], configs[1:]):
            differ = [k for k in config_lib.config_diff(c0.to_dict(), c.to_dict())
                      if k not in VMAP_KEYS]
            if differ:
                raise ConfigError(f"trial {t.id} cannot share a vmapped group with {trials[0].id}: "
                                  f"they differ in {', '.join(differ)}")
        if pretrain_enabled(c0):
            raise ConfigError("pretrain.autoencoder_steps > 0 (seed 004's two-phase training) is not supported in "
                              "vmapped groups; use mode='process'")
        if c0.parallel != "none":
            raise ConfigError(f"vmapped sweeps shard trials over devices themselves; set parallel='none' "
                              f"(got {c0.parallel!r}) or use mode='process'")
        self.dataset, self.gan = config_lib.build(c0, dataset)
        self.config = c0
        self.k = steps_per_call(c0)
        self.sharding = trial_sharding(len(trials), devices)

    def _evaluators(self):
        if not self.config.eval_every:
            return None
        from ganjax.metrics.evaluator import Evaluator

        c = self.config  # eval settings are shared by the group; only the seed (its noise) differs
        first = Evaluator(c.eval, self.dataset, c.dataset, c.data_dir or None, c.seed)
        first.prepare()  # extractor and real features once for the whole group
        return [first.for_seed(cfg.seed) for cfg in self.configs]

    def run(self) -> list[dict[str, Any]]:
        """Trains (or resumes) the group; returns one results row per trial (not yet written)."""
        c, gan, T = self.config, self.gan, len(self.trials)
        os.makedirs(self.dir, exist_ok=True)
        metrics_path = os.path.join(self.dir, "metrics.jsonl")
        ckpt = Checkpointer(self.dir, keep=2)
        abstract = jax.eval_shape(lambda: {"state": init_group(gan, self.configs), "alive": jnp.ones(T, bool)})
        meta: dict[str, Any] = {"data_positions": [0] * T}
        if ckpt.latest_step() is not None:
            restored, meta, start = ckpt.restore(abstract, lambda: "the sweep's group changed")
            states, alive = restored["state"], restored["alive"]
            states = _with_hyperparams(states, self.configs)
            log.info("group %s: resuming %d trials from step %d", self.trials[0].group, T, start)
        else:
            states, alive, start = init_group(gan, self.configs), jnp.ones(T, bool), 0
        drop_rows_after(metrics_path, start)
        if self.sharding is not None:
            states, alive = jax.device_put((states, alive), self.sharding)
        streams = None
        if self.dataset.images is not None:
            from ganjax.data.batches import BatchStream

            streams = [BatchStream(self.dataset.images, cfg.seed, c.batch_size, position=int(p))
                       for cfg, p in zip(self.configs, meta["data_positions"])]
        step_fn = make_group_step(gan, c.batch_size, streams is not None, self.k)
        evaluators = self._evaluators()
        pending: list[dict] = []
        t0, step = time.time(), start
        try:
            while step < c.num_steps:
                batches = _image_batches(streams, c.n_disc, self.k) if streams is not None else None
                states, alive, metrics = step_fn(states, alive, batches)
                pending.append(metrics)
                step += self.k
                last = step >= c.num_steps
                every = lambda n: bool(n and step % n == 0) or last  # noqa: E731
                if every(c.log_every):
                    self._log(metrics_path, step, pending, jax.device_get(alive))
                    pending = []
                if evaluators is not None and every(c.eval_every):
                    self._evaluate(metrics_path, step, states, jax.device_get(alive), evaluators)
                if every(c.checkpoint_every) and not last:
                    positions = [s.position for s in streams] if streams else [0] * T
                    ckpt.save(step, {"state": jax.device_get(states), "alive": jax.device_get(alive)},
                              {"data_positions": positions, "step": step})
        finally:
            ckpt.close()
        wall = time.time() - t0
        self.states = jax.device_get(states)  # the stacked final states, for callers and tests
        host_states, host_alive = self.states.step, jax.device_get(alive)
        rows = read_jsonl(metrics_path)
        out = []
        for i, trial in enumerate(self.trials):
            final, best = results_lib.final_and_best([r for r in rows if r.get("trial") == trial.id],
                                                     ema=c.eval.ema)
            status = "ok" if host_alive[i] else "diverged"
            error = None if host_alive[i] else f"non-finite loss, gradient or parameter after step {int(host_states[i])}"
            out.append(results_lib.make_row(trial, "vmap", status, int(host_states[i]), wall / T, final, best,
                                            error))
        return out

    def _log(self, path: str, step: int, pending: list[dict], alive: np.ndarray) -> None:
        """One row per trial: metrics averaged over the steps since the last row (finite values only)."""
        values = jax.device_get(pending)  # list of {name: [K, T]}
        for i, trial in enumerate(self.trials):
            row: dict[str, Any] = {"step": step, "trial": trial.id, "alive": bool(alive[i])}
            for name in values[0]:
                if name == "nonfinite":
                    continue
                row[name] = finite_mean(np.concatenate([np.asarray(v[name])[:, i] for v in values]))
            append_jsonl(path, row)

    def _evaluate(self, path: str, step: int, states: GANState, alive: np.ndarray, evaluators) -> None:
        host = jax.device_get(states)
        for i, (trial, evaluator) in enumerate(zip(self.trials, evaluators)):
            if not alive[i]:
                continue
            for row in evaluator(self.gan, unstack(host, i)):
                append_jsonl(path, {"step": step, "kind": "eval", "trial": trial.id, **row})


def _with_hyperparams(states: GANState, configs: Sequence[ml_collections.ConfigDict]) -> GANState:
    """Each trial's config hyperparameters in the restored stacked state."""
    return stack([with_config_hyperparams(unstack(states, i), c) for i, c in enumerate(configs)])
