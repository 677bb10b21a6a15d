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
* **Devices: a** ``(trials, data)`` **mesh.** The sweep key ``data_parallel``
  (``d``, devices per trial, default 1) picks the layout over the ``D``
  devices (``d`` must divide ``D`` and the batch size: checked by
  :func:`ganjax.sweep.spec.check_data_parallel` and
  :func:`~ganjax.sweep.spec.check_vmap_layout` when the sweep is expanded,
  before anything runs, and again by :class:`GroupRun`).

  - ``d = 1`` (no data axis): with ``T`` a multiple of ``D`` the trial axis is
    sharded over a 1-D mesh (``NamedSharding(mesh, P('trials'))``) and ``jit``
    partitions the vmapped program, each device training its share of the
    trials; otherwise everything runs on the first device.
  - ``d > 1``: a 2-D mesh of ``t × d`` devices, ``t`` the largest divisor of
    ``T`` with ``t · d ≤ D`` (:func:`group_mesh`). The stacked state is
    sharded over ``trials`` and replicated over ``data``
    (``P('trials')``); image batches ``[K, T, n_disc, B, ...]`` are split
    over both (``P(None, 'trials', None, 'data')``). The program is
    ``jit(shard_map(scan(vmap(train_step))))``: ``shard_map`` over both axes
    hands each device its ``T/t`` trials and its ``B/d`` rows, and inside it
    ``vmap`` over the local trials of ``train_step(axis_name='data',
    num_shards=d)`` — the step ``parallel='shard_map'`` runs, so gradients,
    BatchNorm statistics (``sync_batch_norm``) and metrics are averaged over
    ``data`` only, never across trials. With the key arrangement of
    :mod:`ganjax.shard` (noise, toy data and penalty draws made for the
    global batch and sliced by the ``data`` index), a trial's numbers equal
    those of the same trial alone with ``parallel='none'`` for nets without
    dropout. ``vmap`` inside ``shard_map`` (rather than ``shard_map`` inside
    ``vmap``) keeps the one ``pmean`` per quantity a collective over ``d``
    devices that carries all local trials at once.

  The trial configs' own ``parallel`` key must stay ``'none'`` (it is the
  single-run layout); ``pmap`` is not supported in a group — ``data_parallel``
  is the way to split a trial's batch.
* **Outputs** in ``<sweep_dir>/groups/<group>/``: ``group.json`` (trial ids in
  stacking order, their configs, the example shape), ``metrics.jsonl`` (one row
  per trial per log step, with ``trial``; evaluation rows as in a single run,
  plus ``trial``) and Orbax checkpoints of the stacked state every
  ``checkpoint_every`` steps, every ``checkpoint_every_secs`` seconds if set (at a call boundary), at the end and when SIGTERM/SIGINT arrives (then it raises
  :class:`ganjax.trainer.Interrupted`; host layout, so a group resumes under any
  ``data_parallel``), so a killed sweep resumes the group where it stopped.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import os
import signal
import time
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from ganjax import config as config_lib
from ganjax import storage
from ganjax.checkpoint import Checkpointer, SaveTimer
from ganjax.data import Dataset
from ganjax.data.batches import stack_batches
from ganjax.errors import ConfigError
from ganjax.parallel import bounded, max_in_flight
from ganjax.pretrain import enabled as pretrain_enabled
from ganjax.sweep import results as results_lib
from ganjax.shard import AXIS
from ganjax.sweep.spec import VMAP_KEYS, Trial, check_data_parallel, check_vmap_layout
from ganjax.train import GAN, GANState, init_state, train_step
from ganjax import distributed
from ganjax.trainer import Interrupted, StopFlag, finite_mean, with_config_hyperparams
from ganjax.writers import append_jsonl, drop_rows_after, read_jsonl

log = logging.getLogger("ganjax")

TRIAL_AXIS = "trials"
BATCH_SPEC = P(None, TRIAL_AXIS, None, AXIS)  # image batches [K, T, n_disc, B, ...] on a 2-D mesh


def stack(trees: Sequence[Any]) -> Any:
    """Pytrees with equal structure → one pytree with a leading axis ``[T, ...]``.

    Stacked on the host and put on the default device: ``jnp.stack`` would
    compile one program per leaf shape and trial count.
    """
    return jax.device_put(jax.tree.map(lambda *xs: np.stack([np.asarray(x) for x in xs]), *trees))


def unstack(tree: Any, i: int) -> Any:
    """Entry ``i`` of a stacked pytree."""
    return jax.tree.map(lambda x: x[i], tree)


def init_group(gan: GAN, configs: Sequence[ml_collections.ConfigDict]) -> GANState:
    """The stacked initial state: trial ``i`` = ``init_state(gan, seed_i)`` with its hyperparameters.

    The nets' init is compiled once per architecture
    (:func:`ganjax.train.compiled_init`) and run once per trial: the group
    starts with the same few compilations for 2 trials or 64, and each trial's
    initial state is bitwise the one its single run starts from (a vmapped
    init would batch the init arithmetic, which need not round the same).
    """
    return stack([with_config_hyperparams(init_state(gan, c.seed, c.penalty_weight), c) for c in configs])


def abstract_group(gan: GAN, configs: Sequence[ml_collections.ConfigDict]) -> dict[str, Any]:
    """Shapes and dtypes of a checkpoint of the group (``{'state': [T, ...], 'alive': [T]}``), traced for one trial."""
    one = jax.eval_shape(lambda: with_config_hyperparams(init_state(gan, configs[0].seed, 0.0), configs[0]))
    stacked = jax.tree.map(lambda a: jax.ShapeDtypeStruct((len(configs),) + a.shape, a.dtype), one)
    return {"state": stacked, "alive": jax.ShapeDtypeStruct((len(configs),), jnp.bool_)}


def make_group_step(gan: GAN, batch_size: int, images: bool, steps_per_call: int, mesh: Mesh | None = None
                    ) -> Callable[[GANState, jax.Array, Any], tuple[GANState, jax.Array, dict]]:
    """A jitted ``(states [T], alive [T], batches) → (states, alive, metrics [K, T])``.

    ``batches``: uint8 ``[K, T, n_disc, B, *example_shape]`` for image data (a
    conditional GAN's: the pair of those and labels ``[K, T, n_disc, B]``)
    (``K = steps_per_call``, ``B = batch_size`` the global batch), None for
    toy data (sampled inside the step). ``mesh``: a 2-D ``(trials, data)``
    mesh (:func:`group_mesh`) runs the scan under ``shard_map`` with each
    trial's batch split over ``data``; None or a 1-D mesh: plain ``jit`` (the
    caller places the states).
    """
    data = mesh.shape[AXIS] if mesh is not None and AXIS in mesh.axis_names else 1
    step = functools.partial(train_step, gan, batch_size=batch_size // data,
                             axis_name=AXIS if data > 1 else None, num_shards=data)

    def one_trial(state: GANState, alive: jax.Array, batch):
        new, metrics = step(state, batch)
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
        if steps_per_call == 1:  # no loop: XLA:CPU runs a loop body of conv nets ~4x slower than the same step
            (states, alive), metrics = body((states, alive), jax.tree.map(lambda x: x[0], xs))
            return states, alive, jax.tree.map(lambda m: m[None], metrics)
        (states, alive), metrics = jax.lax.scan(body, (states, alive), xs, length=steps_per_call)
        return states, alive, metrics

    if data == 1:
        return jax.jit(run, donate_argnums=(0,))
    trials, out_specs = P(TRIAL_AXIS), (P(TRIAL_AXIS), P(TRIAL_AXIS), P(None, TRIAL_AXIS))
    # check_vma=False: pmap semantics, as in ganjax.parallel (train_step
    # averages the per-device gradients itself with lax.pmean over 'data').
    shard_map = functools.partial(jax.shard_map, mesh=mesh, out_specs=out_specs, check_vma=False)
    # Collectives over 'data': on XLA:CPU at most a few calls in flight (see ganjax.parallel.max_in_flight).
    limit = max_in_flight(list(mesh.devices.flat))
    if images:
        mapped = shard_map(run, in_specs=(trials, trials, BATCH_SPEC))
        return bounded(jax.jit(mapped, donate_argnums=(0,)), limit)
    mapped = bounded(jax.jit(shard_map(lambda s, a: run(s, a, None), in_specs=(trials, trials)),
                             donate_argnums=(0,)), limit)
    return lambda states, alive, batches: mapped(states, alive)


def trial_sharding(num_trials: int, devices: Sequence[Any] | None = None) -> NamedSharding | None:
    """Shards the trial axis over all devices when ``num_trials`` is a multiple of their number."""
    devices = list(devices if devices is not None else jax.devices())
    if len(devices) < 2 or num_trials % len(devices):
        return None
    return NamedSharding(Mesh(np.array(devices), (TRIAL_AXIS,)), P(TRIAL_AXIS))


def group_mesh(num_trials: int, data_parallel: int = 1, devices: Sequence[Any] | None = None) -> Mesh | None:
    """The group's mesh: 1-D ``('trials',)`` for ``data_parallel = 1`` (see :func:`trial_sharding`; None =
    one device), else 2-D ``('trials', 'data')`` of shape ``(t, data_parallel)``, ``t`` the largest divisor of
    ``num_trials`` with ``t · data_parallel ≤`` the device count.

    Raises ``ConfigError`` if ``data_parallel`` does not divide the device count.
    """
    devices = list(devices if devices is not None else jax.devices())
    check_data_parallel(data_parallel, len(devices))
    if data_parallel == 1:
        sharding = trial_sharding(num_trials, devices)
        return None if sharding is None else sharding.mesh
    rows = max(t for t in range(1, len(devices) // data_parallel + 1) if num_trials % t == 0)
    grid = np.array(devices[:rows * data_parallel]).reshape(rows, data_parallel)
    return Mesh(grid, (TRIAL_AXIS, AXIS))


def describe_mesh(mesh: Mesh | None) -> str:
    """``'one device'`` or e.g. ``'a 2 x 4 (trials x data) mesh'``."""
    if mesh is None:
        return "one device"
    return f"a {' x '.join(map(str, mesh.shape.values()))} ({' x '.join(mesh.axis_names)}) mesh"


def steps_per_call(config: ml_collections.ConfigDict, limit: int = 100) -> int:
    """Steps per compiled call: divides ``num_steps`` and every logging/eval/checkpoint period."""
    periods = [p for p in (config.log_every, config.eval_every, config.checkpoint_every) if p]
    k = math.gcd(config.num_steps, *periods) if periods else config.num_steps
    return max(d for d in range(1, min(k, limit) + 1) if k % d == 0)


def _image_batches(streams, n_disc: int, k: int) -> Any:
    """``[k, T, n_disc, b, ...]`` from each trial's own stream (with labels: ``(images, labels)`` so stacked)."""
    return stack_batches([stack_batches([stack_batches([s.next() for _ in range(n_disc)]) for s in streams])
                          for _ in range(k)])


class GroupRun:
    """Trains one group of trials stacked; see the module docstring."""

    def __init__(self, trials: Sequence[Trial], configs: Sequence[ml_collections.ConfigDict], group_dir: str,
                 dataset: Dataset | None = None, devices: Sequence[Any] | None = None, data_parallel: int = 1):
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
        self.mesh = group_mesh(len(trials), data_parallel, devices)  # checks data_parallel first
        check_vmap_layout(c0, data_parallel)
        self.data_parallel = data_parallel
        # BatchNorm over the data axis follows sync_batch_norm, as under parallel='shard_map'.
        built = c0.copy_and_resolve_references()
        built.parallel = "none" if data_parallel == 1 else "shard_map"
        self.dataset, self.gan = config_lib.build(built, dataset)
        self.config = c0
        self.k = steps_per_call(c0)
        self.sharding = None if self.mesh is None else NamedSharding(self.mesh, P(TRIAL_AXIS))
        self.name = os.path.basename(group_dir.rstrip("/"))  # the folder name, as logged and on disk
        log.info("group %s: %d trials on %s", self.name, len(trials), describe_mesh(self.mesh))

    def _batches(self, streams) -> Any:
        """The next ``[K, T, n_disc, B, ...]`` image batches, placed on the 2-D mesh; None for toy data."""
        if streams is None:
            return None
        batches = _image_batches(streams, self.config.n_disc, self.k)
        if self.data_parallel > 1:
            return jax.device_put(batches, NamedSharding(self.mesh, BATCH_SPEC))
        return batches

    def _evaluators(self):
        if not self.config.eval_every:
            return None
        from ganjax.metrics.evaluator import Evaluator

        c = self.config  # eval settings are shared by the group; only the seed (its noise) differs
        first = Evaluator(c.eval, self.dataset, c.dataset, c.data_dir or None, c.seed, num_classes=self.gan.num_classes)
        first.prepare()  # extractor and real features once for the whole group
        return [first.for_seed(cfg.seed) for cfg in self.configs]

    def run(self) -> list[dict[str, Any]]:
        """Trains (or resumes) the group; returns one results row per trial (not yet written)."""
        c, gan, T = self.config, self.gan, len(self.trials)
        storage.makedirs(self.dir)
        write_group_file(self.dir, [t.id for t in self.trials], self.configs, self.dataset.example_shape)
        metrics_path = storage.join(self.dir, "metrics.jsonl")
        ckpt = Checkpointer(self.dir, keep=2)
        abstract = abstract_group(gan, self.configs)
        meta: dict[str, Any] = {"data_positions": [0] * T}
        if ckpt.latest_step() is not None:
            restored, meta, start = ckpt.restore(abstract, lambda: "the sweep's group changed")
            states, alive = restored["state"], restored["alive"]
            states = _with_hyperparams(states, self.configs)
            log.info("group %s: resuming %d trials from step %d", self.name, T, start)
        else:
            states, alive, start = init_group(gan, self.configs), jnp.ones(T, bool), 0
        drop_rows_after(metrics_path, start)
        if self.sharding is not None:
            states, alive = jax.device_put((states, alive), self.sharding)
        streams = None
        if self.dataset.images is not None:
            from ganjax.data.batches import BatchStream

            labels = self.dataset.labels if gan.num_classes else None
            streams = [BatchStream(self.dataset.images, cfg.seed, c.batch_size, position=int(p), labels=labels)
                       for cfg, p in zip(self.configs, meta["data_positions"])]
        step_fn = make_group_step(gan, c.batch_size, streams is not None, self.k, self.mesh)
        evaluators = self._evaluators()
        pending: list[dict] = []
        t0, step, saved = time.time(), start, start
        stop = StopFlag(preemption_sync=distributed.is_initialized())
        previous = stop.install()  # SIGTERM/SIGINT: save the group at the next step, then stop

        save_timer = SaveTimer(c.get("checkpoint_every_secs", 0))

        def save() -> None:
            nonlocal saved
            positions = [s.position for s in streams] if streams else [0] * T
            ckpt.save(step, {"state": jax.device_get(states), "alive": jax.device_get(alive)},
                      {"data_positions": positions, "step": step})
            saved = step
            save_timer.saved()

        try:
            while step < c.num_steps and not stop.requested(step):
                batches = self._batches(streams)
                states, alive, metrics = step_fn(states, alive, batches)
                pending.append(metrics)
                step += self.k
                last = step >= c.num_steps
                every = lambda n: bool(n and step % n == 0) or last  # noqa: E731
                log_row = every(c.log_every)
                if log_row:
                    self._log(metrics_path, step, pending, jax.device_get(alive))
                    pending = []
                if evaluators is not None and every(c.eval_every):
                    self._evaluate(metrics_path, step, states, jax.device_get(alive), evaluators)
                # The final state too: `--trial` samples and scores it, and a finished group can be
                # continued to more steps (experiments' --resume).
                if every(c.checkpoint_every) or save_timer.due(at_log_row=log_row):
                    save()
            if stop.signum is not None:
                if saved != step:
                    save()
                ckpt.wait()
                raise Interrupted(f"stopped by signal {stop.signum} at step {step} of group {self.name}; "
                                  f"checkpoint saved in {ckpt.directory}; run the same command again to resume",
                                  stop.signum)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
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


GROUP_FILE = "group.json"


def write_group_file(group_dir: str, trial_ids: Sequence[str], configs: Sequence[ml_collections.ConfigDict],
                     example_shape: Sequence[int]) -> None:
    """``<group_dir>/group.json``: the trial ids in stacking order, their configs and the example shape —
    what ``ganjax.sample``/``ganjax.evaluate --trial=ID`` need to rebuild one trial."""
    text = json.dumps({"trials": list(trial_ids), "configs": [config_lib.to_plain(c) for c in configs],
                       "example_shape": list(example_shape)}, indent=1, default=list)
    storage.write_text_atomic(storage.join(group_dir, GROUP_FILE), text)


def _with_hyperparams(states: GANState, configs: Sequence[ml_collections.ConfigDict]) -> GANState:
    """Each trial's config hyperparameters in the restored stacked state."""
    return stack([with_config_hyperparams(unstack(states, i), c) for i, c in enumerate(configs)])
