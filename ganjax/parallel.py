"""Data-parallel wrappers of the one per-device train step.

``parallel='none'``: ``jax.jit`` of :func:`ganjax.train.train_step` on one
device. ``'pmap'``: ``jax.pmap`` over all local devices, state replicated with
a leading device axis. ``'shard_map'``: ``jax.jit(jax.shard_map(...))`` over a
1-D ``Mesh`` of all devices, state replicated (``P()``) and the batch split on
its batch axis. In both parallel modes the global batch is split evenly
across devices and gradients, BatchNorm statistics and metrics are averaged
with ``lax.pmean`` over the axis ``'data'``. Noise, toy data and penalty draws
are made for the global batch and sliced per device; dropout uses per-device
keys (see :mod:`ganjax.shard`).

Every wrapper exposes the same interface: ``put(state)`` places a host state,
``get(state)`` returns it as a single-device pytree (for checkpoints and
sampling), and ``step(state, batch) -> (state, metrics)`` with ``batch``
``[n_disc, B_global, ...]`` or None (a conditional GAN's batch is the pair
``(images, labels [n_disc, B_global])``, both split alike).

Batches placed ahead (the input pipeline, :mod:`ganjax.data.pipeline`):
``put_batch(rows, k)`` places a call's host rows (``[n_disc, B_rows, ...]``,
or ``[k, n_disc, B_rows, ...]`` for ``k > 1``) with the sharding ``step`` /
``steps`` expect (pmap: device axis first, on the mesh of its devices), and
``step`` / ``steps`` take such placed arrays as they are. ``put_data``
places a host pytree replicated on the runner's devices (a dataset gathered
on the device).

Several processes (``jax.distributed``, see :mod:`ganjax.distributed`): only
``shard_map`` runs; its mesh holds all global devices grouped by process, and
each process passes ``step`` only its own rows ``Runner.rows`` of the global
batch, ``[n_disc, B_global / num_processes, ...]``; ``get`` then returns the
replicated global state (Orbax saves it collectively).

Steps in flight. JAX dispatches asynchronously: ``step`` returns before the
step has run. On XLA:CPU with several devices the parallel ``step`` waits
until at most :data:`CPU_MAX_IN_FLIGHT` earlier steps are unfinished
(:func:`max_in_flight`, :func:`bounded`); elsewhere nothing waits.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from ganjax import distributed
from ganjax.errors import ConfigError
from ganjax.shard import AXIS
from ganjax.train import GAN, GANState, train_step

# Why XLA:CPU needs a bound (issue 16): every call of a multi-device program
# enqueues one launch per device on the CPU client's thread pool; a launch
# takes a slot of its device's in-flight semaphore and the launches are
# gang-ordered so that one collective at a time starts. A loop that never
# waits (the toy step takes no host input) queues hundreds of steps; the pool
# does not run those launches in order, so a later step's launches on a
# device hold its slots or block pool threads on the launch order, while an
# earlier step's launch on that device waits for a slot — and that step's
# other devices wait in their all-reduce rendezvous until XLA aborts the
# process ("Expected 4 threads to join the rendezvous, but only 3 of them
# arrived"). On a CPU the "devices" are the host's own cores, so a queue
# deeper than the step running and the next one buys nothing: two unfinished
# steps keep every device busy and the queue far from those limits.
CPU_MAX_IN_FLIGHT = 2


def max_in_flight(devices: list) -> int | None:
    """How many dispatched steps may be unfinished on ``devices``: CPU_MAX_IN_FLIGHT on XLA:CPU with several
    devices (collectives; see the comment above), None (no bound) on one device or on GPU/TPU."""
    if len(devices) > 1 and devices[0].platform == "cpu":
        return CPU_MAX_IN_FLIGHT
    return None


def bounded(fn: Callable[..., tuple], limit: int | None) -> Callable[..., tuple]:
    """``fn`` (a compiled step returning a tuple) that, after dispatching a call, waits until at most
    ``limit`` of its calls are unfinished; ``limit=None`` returns ``fn`` itself.

    A call counts as finished when its last output (the metrics, which the
    next call does not donate) is ready on every device.
    """
    if limit is None:
        return fn
    unfinished: collections.deque = collections.deque()

    def call(*args):
        out = fn(*args)
        unfinished.append(out[-1])
        while len(unfinished) > limit:
            jax.block_until_ready(unfinished.popleft())
        return out

    return call


def first_replica(x: Any) -> Any:
    """Replica 0 of a pmap output ``[n, ...]`` → ``[...]``: the buffer already on the first device, reshaped there.

    ``x[0]`` on an array sharded over n devices would compile and launch a program on all n devices for each
    leaf (hundreds per state), beside the steps still in flight; on XLA:CPU every multi-device launch competes
    for the devices' launch slots that the steps' collectives need (see the comment on CPU_MAX_IN_FLIGHT).
    This reads one device only. A host array takes ``x[0]``.
    """
    if not isinstance(x, jax.Array) or len(x.sharding.device_set) == 1:
        return x[0]
    shard = next(s for s in x.addressable_shards if (s.index[0].start or 0) == 0)
    return shard.data.reshape(shard.data.shape[1:])


@dataclasses.dataclass(frozen=True)
class Runner:
    """A compiled train step and how to place/fetch the state for it."""

    step: Callable[[GANState, Any], tuple[GANState, dict]]
    put: Callable[[GANState], GANState]
    get: Callable[[GANState], GANState]
    num_devices: int
    # The rows of each global batch this process feeds to ``step`` (all of them with one process).
    rows: slice = dataclasses.field(default_factory=lambda: slice(None))
    state_sharding: Any = None  # where ``put`` places the state (None: one device / pmap's own layout)
    # ``steps(state, batches, k)``: k train steps in one compiled call (see :func:`scanned`); batches
    # ``[k, n_disc, B_rows, ...]`` or None; metrics stacked ``[k]``. Compiled once per k.
    steps: Callable[[GANState, Any, int], tuple[GANState, dict]] | None = None
    # ``put_batch(rows, k)``: a call's host rows placed as ``step`` (k = 1) / ``steps`` take them.
    put_batch: Callable[[Any, int], Any] | None = None
    # ``put_data(tree)``: a host pytree replicated on the runner's devices.
    put_data: Callable[[Any], Any] | None = None


def scanned(step: Callable[[GANState, Any], tuple[GANState, dict]], k: int | None) -> Callable:
    """``step`` itself (``k=None``), or ``k`` steps as one ``lax.scan``: ``(state, batches [k, ...] | None)
    → (state, metrics stacked [k])``; a None batch (toy data) is passed to every step."""
    if k is None:
        return step
    return lambda state, batches: jax.lax.scan(step, state, batches, length=k)


def _per_k(compile_for: Callable[[int | None], Callable]) -> Callable:
    """``steps(state, batches, k)`` from ``compile_for(k)``, compiling each ``k`` on first use."""
    compiled: dict[int, Callable] = {}

    def steps(state, batches, k: int):
        if k not in compiled:
            compiled[k] = compile_for(k)
        return compiled[k](state, batches)

    return steps


def is_placed(batch: Any) -> bool:
    """True if ``batch`` (None, an array or a pair) is already on the devices (made by ``Runner.put_batch``)."""
    return batch is not None and all(isinstance(leaf, jax.Array) for leaf in jax.tree.leaves(batch))


def _split_batch(batch: Any, n: int, axis: int = 1) -> Any:
    """Batch axis ``axis`` of size B split over ``n`` devices, the device axis first:
    ``[n_disc, B, ...]`` → ``[n, n_disc, B/n, ...]`` (``axis=1``; ``axis=2`` for ``[k, n_disc, B, ...]``);
    every leaf of an ``(images, labels)`` pair alike."""
    def split(leaf):
        leaf = np.asarray(leaf)
        lead, b = leaf.shape[:axis], leaf.shape[axis]
        return np.moveaxis(leaf.reshape(lead + (n, b // n) + leaf.shape[axis + 1:]), axis, 0)

    return jax.tree.map(split, batch)


def _batch_spec(k: int | None) -> P:
    """shard_map's spec of a batch: ``[n_disc, B, ...]`` (``k=None``) or ``[k, n_disc, B, ...]``, split on B."""
    return P(None, AXIS) if k is None else P(None, None, AXIS)


def make_runner(gan: GAN, mode: str, global_batch: int, devices: list | None = None) -> Runner:
    """Builds the train step for ``mode`` in ``none | pmap | shard_map``.

    ``devices`` defaults to all devices of all processes (grouped by process)
    for ``shard_map`` and to the local devices otherwise. Raises
    ``ConfigError`` (before compiling) if ``global_batch`` is not divisible by
    the number of devices, or the per-device batch not by ``gan.pack``, or if
    a multi-process job asks for another mode than ``shard_map``.
    """
    if jax.process_count() > 1 and mode != "shard_map":
        raise ConfigError(f"parallel={mode!r} runs on one process's devices only, but this job has "
                          f"{jax.process_count()} processes (jax.distributed); use --config.parallel=shard_map")
    if devices is None:
        devices = distributed.process_sorted(jax.devices()) if mode == "shard_map" else jax.local_devices()
    devices = list(devices)
    if mode == "none":
        gan.check_batch(global_batch)
        one = functools.partial(train_step, gan, batch_size=global_batch)
        compile_for = lambda k: jax.jit(scanned(one, k), donate_argnums=0)  # noqa: E731
        on_device = lambda tree, k=None: jax.device_put(tree, devices[0])  # noqa: E731
        return Runner(step=compile_for(None), put=on_device, get=lambda s: s,
                      num_devices=1, steps=_per_k(compile_for), put_batch=on_device, put_data=on_device)
    n = len(devices)
    if global_batch % n:
        raise ConfigError(f"batch_size={global_batch} is not divisible by the {n} devices of parallel={mode!r}; "
                          f"use a multiple of {n}")
    local = global_batch // n
    gan.check_batch(local)
    per_device = functools.partial(train_step, gan, batch_size=local, axis_name=AXIS, num_shards=n)
    limit = max_in_flight(devices)
    mesh = Mesh(np.asarray(devices), (AXIS,))
    replicated = NamedSharding(mesh, P())
    if mode == "pmap":
        device_axis = NamedSharding(mesh, P(AXIS))  # the layout of pmap's own outputs

        def put_batch(batch, k: int = 1):
            return jax.device_put(_split_batch(batch, n, 1 if k == 1 else 2), device_axis)

        def compile_for(k: int | None) -> Callable:
            pstep = bounded(jax.pmap(scanned(per_device, k), axis_name=AXIS, devices=devices, donate_argnums=0),
                            limit)
            axis = 1 if k is None else 2  # the batch axis of [n_disc, B, ...] or [k, n_disc, B, ...]

            def step(state, batch):
                new, metrics = pstep(state, batch if is_placed(batch) else _split_batch(batch, n, axis))
                return new, jax.tree.map(lambda m: m[0], metrics)

            return step

        def put(state):
            # A host array with a leading device axis; pmap shards it on the
            # first call (jax.device_put_replicated no longer exists).
            return jax.tree.map(lambda x: np.broadcast_to(np.asarray(x), (n,) + np.shape(x)), state)

        return Runner(step=compile_for(None), put=put, get=lambda s: jax.tree.map(first_replica, s),
                      num_devices=n, steps=_per_k(compile_for), put_batch=put_batch,
                      put_data=lambda tree: jax.device_put(tree, replicated))
    if mode == "shard_map":
        # check_vma=False: the step has pmap semantics (it averages per-device
        # gradients itself with lax.pmean). With varying-axis checking on,
        # shard_map's autodiff would already psum the cotangents of the
        # replicated parameters, and the pmean would double-count them.
        shard_map = functools.partial(jax.shard_map, mesh=mesh, check_vma=False, out_specs=(P(), P()))

        def compile_for(k: int | None) -> Callable:
            fn = scanned(per_device, k)
            if gan.toy is not None:  # toy data is sampled inside the step: no batch argument
                jstep = bounded(jax.jit(shard_map(lambda s: fn(s, None), in_specs=(P(),)), donate_argnums=0),
                                limit)
                return lambda state, batch: jstep(state)
            jstep = bounded(jax.jit(shard_map(fn, in_specs=(P(), _batch_spec(k))), donate_argnums=0), limit)

            def step(state, rows):  # an array, or an (images, labels) pair of them, host rows or placed
                return jstep(state, rows if is_placed(rows) else global_batch_of(rows, k))

            return step

        def global_batch_of(rows, k: int | None):  # rows: this process's [(k,) n_disc, B_global / processes, ...]
            spec = _batch_spec(k)
            sharding, axis = NamedSharding(mesh, spec), len(spec) - 1

            def global_array(leaf):
                leaf = np.asarray(leaf)
                shape = leaf.shape[:axis] + (global_batch,) + leaf.shape[axis + 1:]
                return jax.make_array_from_process_local_data(sharding, leaf, shape)

            return jax.tree.map(global_array, rows)

        def put_batch(rows, k: int = 1):
            return global_batch_of(rows, None if k == 1 else k)

        put_replicated = lambda tree: distributed.replicate(tree, replicated)  # noqa: E731
        return Runner(step=compile_for(None), put=put_replicated, get=lambda s: s,
                      num_devices=n, rows=distributed.local_rows(devices, global_batch), state_sharding=replicated,
                      steps=_per_k(compile_for), put_batch=put_batch, put_data=put_replicated)
    raise ConfigError(f"unknown parallel mode {mode!r}; valid choices: none, pmap, shard_map")
