"""Orbax checkpoints of the whole training state.

A checkpoint at step N is ``<workdir>/checkpoints/N/`` with two items:
``state`` (the :class:`~ganjax.train.GANState` pytree: params, BatchNorm
state, Optax states, EMA, step, PRNG key) and ``meta`` (JSON: the data
position and the step). Saving is asynchronous; Orbax writes into a temporary
folder and marks it complete, so a kill mid-write leaves the previous
checkpoints intact.

Restoring compares the stored array shapes with the ones the current config
builds *before* reading any data, so a config that changes shapes fails with
a clear error naming the differing config keys. A checkpoint that cannot be
read is skipped with a warning and the next older one is tried; if none can
be read, :class:`~ganjax.errors.CheckpointError` — never a silent fresh start.

Multi-process (``jax.distributed``): Orbax saves and restores collectively, so
every process calls :meth:`Checkpointer.save`/:meth:`~Checkpointer.restore` at
the same steps, on a workdir that all of them see (a shared file system);
Orbax's primary process (0) writes the metadata and the replicated arrays.

``workdir`` may be a URL (``gs://``): Orbax writes the arrays through
TensorStore's own GCS driver, and on object stores it marks a finished step
with ``commit_success.txt`` instead of a rename.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Callable

import jax
import orbax.checkpoint as ocp

from ganjax import distributed, storage
from ganjax.errors import CheckpointError, WriteError, describe_os_error

log = logging.getLogger("ganjax")


def _key_name(entry: Any) -> str:
    for attr in ("key", "name", "idx"):
        if hasattr(entry, attr):
            return str(getattr(entry, attr))
    return str(entry)


def _shapes(tree: Any) -> dict[str, tuple]:
    """``{'g_params/Dense_0/kernel': shape}``; dicts, attributes and tuples alike."""
    flat, _ = jax.tree_util.tree_flatten_with_path(tree)
    return {"/".join(_key_name(e) for e in path): tuple(leaf.shape) for path, leaf in flat}


def _placed(abstract_state: Any) -> Any:
    """``abstract_state`` with a sharding on every leaf: leaves without one go to this process's first device.

    Orbax refuses to guess a layout for a checkpoint written by a different
    topology (e.g. a multi-process job), so the target always names one.
    """
    device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
    return jax.tree.map(lambda a: a if getattr(a, "sharding", None) is not None
                        else jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=device), abstract_state)


def _now() -> float:
    """Seconds of a monotonic clock (a function of its own, so tests can replace it)."""
    return time.monotonic()


class SaveTimer:
    """``checkpoint_every_secs``: a checkpoint whenever that many seconds passed since the last save.

    Step-based checkpoints (``checkpoint_every``) land on fixed steps; this
    bounds the *work* a hard kill (an out-of-memory kill, a lost machine, a
    preemption without notice) can take, whatever a step costs. The loop asks
    :meth:`due` at each call boundary and calls :meth:`saved` after every save
    of any kind. In a multi-process job the processes' clocks differ, so it is
    asked only at log rows (steps every process shares) and process 0's answer
    is broadcast (:func:`ganjax.distributed.agree`): there a time-based save
    needs ``log_every`` > 0.
    """

    def __init__(self, every_secs: float, clock: Callable[[], float] | None = None):
        self.every_secs = float(every_secs)
        self.clock = clock or _now
        self.last = self.clock()

    def due(self, at_log_row: bool) -> bool:
        """True when a save is due at this call boundary (the same on every process)."""
        if self.every_secs <= 0:
            return False
        if jax.process_count() > 1:
            return at_log_row and distributed.agree(self.clock() - self.last >= self.every_secs)
        return self.clock() - self.last >= self.every_secs

    def saved(self) -> None:
        """Restarts the count: a checkpoint was just written."""
        self.last = self.clock()


class IncompleteCheckpoint(Exception):
    """A checkpoint folder whose write did not finish."""


class Checkpointer:
    """A thin wrapper of ``ocp.CheckpointManager`` for GAN states."""

    def __init__(self, workdir: str, keep: int = 3, async_save: bool = True):
        self.directory = storage.join(storage.absolute(workdir), "checkpoints")
        options = ocp.CheckpointManagerOptions(max_to_keep=keep, create=True,
                                               enable_async_checkpointing=async_save)
        handlers = {"state": ocp.StandardCheckpointHandler(), "meta": ocp.JsonCheckpointHandler()}
        self.manager = ocp.CheckpointManager(self.directory, options=options, item_handlers=handlers)

    @staticmethod
    def existing_steps(workdir: str) -> list[int]:
        """Complete checkpoint steps in ``workdir``, read from the folder names only (no Orbax)."""
        folder = storage.join(workdir, "checkpoints")
        try:
            return sorted(int(n) for n in storage.listdir(folder) if n.isdigit())
        except OSError:
            return []

    def steps(self) -> list[int]:
        """Steps with a complete checkpoint, ascending."""
        return sorted(self.manager.all_steps())

    def latest_step(self) -> int | None:
        steps = self.steps()
        return steps[-1] if steps else None

    def _write_failed(self, e: Exception) -> WriteError:
        steps = self.existing_steps(storage.dirname(self.directory))
        kept = f"the checkpoints at steps {steps} are intact" if steps else "no earlier checkpoint exists"
        return WriteError(f"could not write a checkpoint to {self.directory}: {describe_os_error(e)}; {kept}; "
                          f"free disk space or fix permissions, then rerun the same command to resume")

    def save(self, step: int, state: Any, meta: dict) -> None:
        """Starts an asynchronous save of ``state`` and ``meta`` at ``step``.

        Raises ``WriteError`` if this or the previous (asynchronous) save failed.
        """
        if step in self.manager.all_steps():
            return
        args = ocp.args.Composite(state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta))
        try:
            self.manager.save(step, args=args, force=True)
        except Exception as e:  # noqa: BLE001 - Orbax/TensorStore raise many types for I/O errors
            raise self._write_failed(e) from e

    def wait(self) -> None:
        """Blocks until pending saves are on disk (``WriteError`` if one failed)."""
        try:
            self.manager.wait_until_finished()
        except Exception as e:  # noqa: BLE001
            raise self._write_failed(e) from e

    def close(self) -> None:
        """Waits for pending saves, then releases the manager (even if a save failed)."""
        try:
            self.wait()
        finally:
            self.manager.close()

    @property
    def damaged_directory(self) -> str:
        return storage.join(storage.dirname(self.directory), "damaged_checkpoints")

    def _set_aside(self, steps: list[int]) -> None:
        """Moves unreadable checkpoints out of the manager's way (never deletes them); process 0 moves."""
        if distributed.is_main():
            storage.makedirs(self.damaged_directory)
            for step in steps:
                target = storage.join(self.damaged_directory, f"{step}-{int(time.time())}")
                storage.move(storage.join(self.directory, str(step)), target)
        distributed.barrier("ganjax_checkpoints_set_aside")
        self.manager.reload()

    def _marker(self, step: int) -> str:
        return storage.join(self.directory, str(step), "commit_success.txt")

    def _check_committed(self, step: int) -> None:
        """Orbax writes ``commit_success.txt`` last; a step folder without it is partial.

        Only applied when other steps carry the marker, so an Orbax version
        or file system that does not write it never invalidates everything.
        """
        if not storage.exists(self._marker(step)) and any(
                storage.exists(self._marker(other)) for other in self.steps() if other != step):
            raise IncompleteCheckpoint(f"{self._marker(step)} is missing (the write never finished)")

    def check_compatible(self, step: int, abstract_state: Any, explain: Callable[[], str]) -> None:
        """Raises ``CheckpointError`` if stored shapes differ from ``abstract_state``'s.

        ``explain()`` returns the human explanation (e.g. differing config keys).
        """
        stored = self.manager.item_metadata(step)["state"]
        stored_tree = getattr(stored, "tree", stored)
        want, have = _shapes(abstract_state), _shapes(stored_tree)
        diff = sorted(k for k in set(want) | set(have) if want.get(k) != have.get(k))
        if diff:
            example = diff[0]
            raise CheckpointError(
                f"the checkpoint at step {step} in {self.directory} does not fit this config "
                f"({len(diff)} arrays differ, e.g. {example}: stored {have.get(example)}, "
                f"config builds {want.get(example)}); {explain()}")

    def restore(self, abstract_state: Any, explain: Callable[[], str], step: int | None = None
                ) -> tuple[Any, dict, int]:
        """Restores the newest readable checkpoint (or exactly ``step``).

        Returns ``(state, meta, step)``.
        """
        candidates = [step] if step is not None else list(reversed(self.steps()))
        if not candidates or (step is not None and step not in self.steps()):
            raise CheckpointError(f"no checkpoint at step {step} in {self.directory}; "
                                  f"available steps: {self.steps() or 'none'}")
        skipped = []
        for s in candidates:
            try:
                self._check_committed(s)
                self.check_compatible(s, abstract_state, explain)
                args = ocp.args.Composite(state=ocp.args.StandardRestore(_placed(abstract_state)),
                                          meta=ocp.args.JsonRestore())
                restored = self.manager.restore(s, args=args)
            except CheckpointError:
                raise
            except Exception as e:  # a damaged checkpoint: try an older one
                log.warning("skipping unreadable checkpoint at step %d (%s: %s)", s, type(e).__name__,
                            str(e).splitlines()[0][:200])
                skipped.append(s)
                continue
            if skipped:
                self._set_aside(skipped)
                log.warning("restored step %d after skipping damaged checkpoints %s (moved to %s)", s, skipped,
                            self.damaged_directory)
            return restored["state"], dict(restored["meta"]), s
        raise CheckpointError(f"none of the checkpoints {skipped} in {self.directory} could be read; "
                              f"move the folder away to start afresh")
