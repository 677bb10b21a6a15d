"""The training loop: ``train_and_evaluate(config, workdir)``.

Order of work, chosen so that bad input never touches the workdir:
validate the config → lock the workdir → load data → build the GAN → check a
resumed checkpoint against the config → only then write ``config.json`` and
start. The loop resumes from the newest checkpoint in ``workdir`` (state and
data position), so a restarted run continues exactly where the last complete
checkpoint left it. SIGTERM/SIGINT save a checkpoint and stop (at the end of
the compiled call in progress: ``steps_per_call`` steps at most, see
:mod:`ganjax.calls`).
The batches of the next calls are prepared by a thread (``data.prefetch``,
:mod:`ganjax.data.pipeline`); checkpoints store the batches consumed.

Multi-process jobs (``distributed='auto'``, :mod:`ganjax.distributed`): every
process trains and checkpoints; process 0 alone locks the workdir, writes the
run's files, samples and evaluates (on its own copy of the replicated state,
so no collective waits on it). SIGTERM goes to JAX's preemption notifier and
all processes stop and checkpoint at the same step.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import json
import logging
import os
import signal
import time
from typing import Any, Callable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from ganjax import config as config_lib
from ganjax import calls, distributed, optim, plots, storage
from ganjax import pretrain as pretrain_lib
from ganjax import resume as resume_lib
from ganjax.checkpoint import Checkpointer, SaveTimer
from ganjax.data import TOY_DATASETS, Dataset
from ganjax.data.batches import call_batches
from ganjax.data.pipeline import batch_source, check_data_fits
from ganjax.errors import ConfigError, GanjaxError, TrainingDiverged, WriteError, describe_os_error
from ganjax.parallel import make_runner
from ganjax.progress import EtaClock, describe_done
from ganjax.train import GAN, GANState, generate, init_state
from ganjax.workdir import WorkdirBusy, WorkdirLock, WorkdirLost, check_workdir_path, remove_if_empty
from ganjax.writers import MetricWriter, append_jsonl, read_jsonl, write_text_atomic

log = logging.getLogger("ganjax")

_WRITE_ERRNOS = {errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EPERM, errno.EFBIG, errno.EDQUOT,
                 errno.ENOTDIR, errno.EEXIST, errno.EISDIR}

SAMPLE_SEED_OFFSET = 10_007  # the fixed sample-grid noise comes from seed + this


class Interrupted(GanjaxError):
    """SIGTERM/SIGINT arrived; a checkpoint was written."""

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.signum = signum


@dataclasses.dataclass
class StopFlag:
    """The SIGTERM/SIGINT handler of a training loop: records the signal; the loop saves and stops."""

    signum: int | None = None
    preemption_sync: bool = False  # under jax.distributed: JAX's notifier catches SIGTERM

    def requested(self, step: int) -> bool:
        """True once a stop was asked for; with ``preemption_sync`` on every process at the same step."""
        if self.preemption_sync and self.signum is None and distributed.reached_preemption(step):
            self.signum = signal.SIGTERM
            log.warning("preemption (SIGTERM) seen by the job: every process saves a checkpoint at step %d, "
                        "then stops", step)
        return self.signum is not None

    def __call__(self, signum, frame):
        if self.signum is not None:  # a second Ctrl-C: give up waiting
            raise KeyboardInterrupt
        self.signum = signum
        log.warning("received signal %d: saving a checkpoint, then stopping", signum)

    def install(self) -> dict:
        """Makes this flag the SIGTERM and SIGINT handler; returns the previous handlers (for :func:`release`).

        Under jax.distributed (``preemption_sync``) a signal handled by one
        process alone would stop it at a step the others never reach: SIGTERM
        is left to JAX's preemption notifier (see :meth:`requested`) and Ctrl-C
        stops the job without a checkpoint, so no handler is installed.
        """
        handled = () if self.preemption_sync else (signal.SIGTERM, signal.SIGINT)
        return {sig: signal.signal(sig, self) for sig in handled}


def release(previous: dict, ckpt: Checkpointer, writer: MetricWriter) -> None:
    """Ends a training loop: restores the signal handlers ``previous``, closes ``ckpt`` (waiting for its
    saves), then ``writer`` (even if closing ``ckpt`` failed)."""
    for sig, handler in previous.items():
        signal.signal(sig, handler)
    try:
        ckpt.close()
    finally:
        writer.close()


def abstract_state(gan: GAN, config: ml_collections.ConfigDict) -> GANState:
    """Shapes and dtypes of the state ``config`` builds, without computing it."""
    return jax.eval_shape(lambda: init_state(gan, config.seed, config.penalty_weight))


def fixed_noise(gan: GAN, seed: int, n: int) -> jax.Array:
    """The noise behind every ``samples/step_<N>.png``: same for the whole run."""
    return gan.sample_noise(jax.random.key(seed + SAMPLE_SEED_OFFSET), n)


def with_config_hyperparams(state: GANState, config: ml_collections.ConfigDict) -> GANState:
    """The config's learning rates, betas, clip values and penalty weight, in ``state``.

    They live in the state (so sweeps can vmap over them); a resumed run uses
    the values of the command that resumed it.
    """
    return state.replace(g_opt=optim.set_hyperparams(state.g_opt, config.optimizer_g),
                         d_opt=optim.set_hyperparams(state.d_opt, config.optimizer_d),
                         penalty_weight=jnp.asarray(float(config.penalty_weight), jnp.float32))


def _saved_config(workdir: str) -> dict | None:
    path = storage.join(workdir, "config.json")
    if storage.exists(path):
        return json.loads(storage.read_text(path))
    return None


def _explain_difference(workdir: str, config: ml_collections.ConfigDict):
    def explain() -> str:
        saved = _saved_config(workdir)
        if saved is None:
            return "the workdir has no config.json to compare with; use a new --workdir"
        keys = config_lib.config_diff(saved, config.to_dict())
        return (f"config keys that differ from {workdir}/config.json: {', '.join(keys) or 'none'}; "
                f"use a new --workdir or the saved values")
    return explain


def _toy_summary(dataset: Dataset, samples: np.ndarray) -> dict[str, float]:
    """Cheap statistics of generated toy samples for the log."""
    if dataset.toy is not None and dataset.toy.mean is not None:
        return {"gen_mean": float(np.mean(samples)), "gen_std": float(np.std(samples))}
    return {}


def _format_scores(row: dict[str, Any]) -> str:
    from ganjax.metrics.evaluator import PROTOCOL_KEYS

    return " ".join(f"{k} {v:.4g}" for k, v in row.items()
                    if isinstance(v, (int, float)) and k not in PROTOCOL_KEYS)


def _nonfinite_steps(values: list[dict], step: int) -> list[tuple[int, list[str]]]:
    """``[(step, [offending quantities])]`` for the non-finite steps among the last ``len(values)``."""
    first = step - len(values) + 1
    return [(first + i, sorted(k for k, x in v.items() if k != "nonfinite" and not np.isfinite(x)))
            for i, v in enumerate(values) if v["nonfinite"] > 0]


def _check_finite(values: list[dict], step: int, policy: str) -> int:
    """Stops (``policy='stop'``) at the first non-finite step, naming it and the quantity.

    With ``'skip_step'`` the step function already dropped those updates; this
    logs them and returns how many were skipped.
    """
    bad = _nonfinite_steps(values, step)
    if bad and policy == "stop":
        at, names = bad[0]
        raise TrainingDiverged(
            f"non-finite {', '.join(names)} at step {at}; stopped without checkpointing it "
            f"(the last good checkpoint is kept); lower the learning rates, add a penalty, "
            f"or set --config.on_nonfinite=skip_step")
    for at, names in bad[:3]:
        log.warning("skipped the update of step %d: non-finite %s", at, ", ".join(names))
    return len(bad)


def finite_mean(xs) -> float:
    """Mean of the finite values of ``xs`` (NaN if none)."""
    finite = [float(x) for x in xs if np.isfinite(x)]
    return float(np.mean(finite)) if finite else float("nan")


def run_call(runner, state: GANState, batch: Any, k: int) -> tuple[GANState, dict]:
    """``k`` train steps from ``state``: the plain step on ``batch`` ``[n_disc, B, ...]`` for ``k = 1``, else one
    call of ``runner.steps`` on ``batch`` ``[k, n_disc, B, ...]`` (None for toy data; with labels,
    ``(images, labels)`` each so stacked; host rows or placed by ``runner.put_batch``); metrics ``[]`` or ``[k]``."""
    return runner.step(state, batch) if k == 1 else runner.steps(state, batch, k)


def run_steps(runner, state: GANState, stream, n_disc: int, k: int) -> tuple[GANState, dict]:
    """:func:`run_call` on the next host batches of ``stream`` (None for toy data)."""
    return run_call(runner, state, None if stream is None else call_batches(stream.next, n_disc, k), k)


def per_step(call_metrics: list[dict]) -> list[dict]:
    """Host metrics of calls (scalars, or ``[k]`` stacked by a k-step call) → one dict per step."""
    out = []
    for metrics in call_metrics:
        arrays = {name: np.atleast_1d(v) for name, v in metrics.items()}
        out.extend({name: a[i] for name, a in arrays.items()} for i in range(len(next(iter(arrays.values())))))
    return out


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str,
                       dataset: Dataset | None = None, allow_config_change: bool = False,
                       on_start: Callable[[], None] | None = None) -> GANState:
    """Trains (or resumes) the GAN described by ``config`` in ``workdir``.

    Args:
      config: a config from ``configs/`` (possibly overridden).
      workdir: output folder; created if missing (and removed again if the
        run fails before writing a file to it); resumed if it holds checkpoints.
      dataset: an already loaded dataset to reuse (tests, sweeps).
      allow_config_change: resume even if experiment-defining keys differ from
        the saved ``config.json`` (see :mod:`ganjax.resume`).
      on_start: called once the run is known to be valid (built, data loaded,
        a resume accepted), before anything is written: ``ganjax.main`` logs its
        start-up line there, so a refused run prints only its error.

    Returns:
      The final state (single-device layout).
    """
    config_lib.validate(config)
    distributed.initialize(config.get("distributed", "none"))
    check_workdir_path(workdir)
    created = not storage.exists(workdir)
    try:
        storage.makedirs(workdir)
        with _job_lock(workdir) as fence:
            return _train_locked(config, workdir, dataset, allow_config_change, on_start, fence)
    except OSError as e:  # disk full, read-only or unwritable workdir: say so, keep what is there
        if e.errno not in _WRITE_ERRNOS:
            raise
        steps = Checkpointer.existing_steps(workdir)
        kept = f"the checkpoints at steps {steps} are intact" if steps else "no checkpoint was written yet"
        raise WriteError(f"cannot write to workdir {workdir}: {describe_os_error(e)}; {kept}; free disk space "
                         f"or fix permissions, then rerun the same command to resume") from e
    finally:
        if created:  # a start that failed before writing a file leaves no empty workdir behind
            remove_if_empty(workdir)


@contextlib.contextmanager
def _job_lock(workdir: str):
    """Process 0 holds the workdir lock for the whole job; every process learns whether it got it.

    Yields the fence to call before writing: process 0's :meth:`WorkdirLock.check` (raises
    :class:`WorkdirLost` once another trainer took the lease over), a no-op on the other processes.
    """
    with contextlib.ExitStack() as stack:
        ok = False
        fence: Callable[[], None] = lambda: None  # noqa: E731
        try:
            if distributed.is_main():
                fence = stack.enter_context(WorkdirLock(workdir)).check
            ok = True
        finally:
            agreed = distributed.agree(ok)  # a collective: all processes get here, also when process 0 failed
        if not agreed:
            raise WorkdirBusy(f"process 0 of this job could not lock {workdir}; see its error")
        yield fence


def _train_locked(config, workdir, dataset, allow_config_change=False, on_start=None, fence=lambda: None):
    main = distributed.is_main()
    dataset, gan = config_lib.build(config, dataset)
    runner = make_runner(gan, config.parallel, config.batch_size)
    check_data_fits(config.data, dataset, jax.local_devices()[0])
    ckpt = Checkpointer(workdir, keep=config.keep_checkpoints)
    abstract = abstract_state(gan, config)
    if runner.state_sharding is not None:  # restore straight into the (possibly multi-process) layout
        abstract = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=runner.state_sharding),
                                abstract)
    meta: dict[str, Any] = {"data_position": 0}
    history = None  # this resume's config_history.jsonl row
    pretrainer = None  # seed 004's autoencoder phase, only before the GAN's first checkpoint
    if ckpt.latest_step() is not None:
        state, meta, start = ckpt.restore(abstract, _explain_difference(workdir, config))
        state = with_config_hyperparams(state, config)
        saved = _saved_config(workdir)
        changes = resume_lib.changed_values(saved, config.to_dict()) if saved else {}
        resume_lib.check_resume(changes, start, workdir, allow_config_change)
        history = resume_lib.history_row(start, changes, allow_config_change)
        if on_start is not None:
            on_start()
        log.info("resuming from step %d%s", start,
                 f" (changed config keys: {resume_lib.describe(changes)})" if changes else "")
    else:
        state = init_state(gan, config.seed, config.penalty_weight)
        if on_start is not None:
            on_start()
        if pretrain_lib.enabled(config):
            if jax.process_count() > 1:
                raise ConfigError("pretrain.autoencoder_steps > 0 (seed 004's autoencoder phase) runs in one "
                                  f"process, but this job has {jax.process_count()} processes; pretrain in a "
                                  "single-process run first, then resume it multi-host")
            pretrainer = pretrain_lib.Pretrainer(config, workdir, dataset, _explain_difference(workdir, config))
    fence()  # loading the data can take minutes
    if main:
        write_text_atomic(storage.join(workdir, "config.json"), config_lib.to_json(config))
        if history is not None:
            append_jsonl(resume_lib.history_path(workdir), history)
    if pretrainer is not None:
        try:
            state = pretrain_lib.with_pretrained_decoder(state, pretrainer.run(fence))
        except BaseException:  # interrupted or failed in phase 1: release the GAN's checkpointer too
            ckpt.close()
            raise
    if main:
        storage.makedirs(storage.join(workdir, "samples"))

    evaluator = None
    if config.eval_every and main:
        from ganjax.metrics.evaluator import Evaluator

        evaluator = Evaluator(config.eval, dataset, config.dataset, config.data_dir or None, config.seed,
                              num_classes=gan.num_classes)
        evaluator.prepare()  # extractor and real features now: their errors come before any training
    fence()  # so can preparing the evaluation
    writer = MetricWriter(workdir, enabled=main)
    step = int(state.step)
    writer.drop_after(step)
    stream = None
    if dataset.images is not None:
        from ganjax.data.batches import BatchStream

        stream = BatchStream(dataset.images, config.seed, config.batch_size,
                             position=int(meta.get("data_position", 0)), rows=runner.rows,
                             labels=dataset.labels if gan.num_classes else None)
    noise = fixed_noise(gan, config.seed, 64 if dataset.images is not None else 2000)
    sample_fn = jax.jit(lambda s, z: generate(gan, s, z))

    save_timer = SaveTimer(config.get("checkpoint_every_secs", 0))

    def save(s: GANState, at: int) -> None:
        host = runner.get(s)
        ckpt.save(at, host, {"data_position": batches.position,  # batches the steps consumed
                             "example_shape": list(dataset.example_shape), "step": at})
        save_timer.saved()

    def write_samples(s: GANState, at: int) -> dict[str, float]:
        samples = np.asarray(jax.device_get(sample_fn(distributed.local_copy(runner.get(s)), noise)))
        path = storage.join(workdir, "samples", f"step_{at}.png")
        toy = dataset.toy
        grid = plots.save_samples(path, samples, modes=toy.modes if toy else None,
                                  target=(toy.mean, toy.std) if toy and toy.mean is not None else None,
                                  title=plots.sample_title(config, at, ema=False))
        if grid is not None:
            writer.write_image(at, "samples", grid)
        return _toy_summary(dataset, samples)

    # Under jax.distributed a signal handled by one process alone would stop
    # it at a step the others never reach: SIGTERM is left to JAX's preemption
    # notifier (synchronised below), Ctrl-C stops the job without a checkpoint.
    stop = StopFlag(preemption_sync=distributed.is_initialized())
    previous = stop.install()
    state = runner.put(state)
    pending: list[dict] = []   # device metrics since the last log row
    checked = 0                # how many of them were checked for NaN/Inf
    skipped = 0                # updates dropped by on_nonfinite='skip_step' since the last log row

    def check_pending() -> list[dict]:
        """One host sync: also guarantees no non-finite state is checkpointed, sampled or scored."""
        nonlocal checked, skipped
        values = per_step(jax.device_get(pending))
        skipped += _check_finite(values[checked:], step, config.on_nonfinite)
        checked = len(values)
        return values

    k_max, periods = calls.resolve(config, gan), calls.boundary_periods(config)
    log.info("%d train step(s) per compiled call", k_max)
    t_last, step_last, t_start, first_step = time.time(), step, time.time(), step
    clock = EtaClock(config.num_steps)
    batches = None
    try:
        batches = batch_source(config.data, runner, stream, config.n_disc,
                               calls.call_plan(step, k_max, config.num_steps, periods))
        while step < config.num_steps and not stop.requested(step):
            k = calls.call_length(step, k_max, config.num_steps, periods)
            state, metrics = run_call(runner, state, batches.next(k), k)
            fence()  # a lease taken over while this process stalled: stop before writing anything more
            pending.append(metrics)
            step += k
            last = step == config.num_steps
            every = lambda n: bool(n and step % n == 0) or last  # noqa: E731
            do_log, do_sample = every(config.log_every), every(config.sample_every)
            do_ckpt = every(config.checkpoint_every) or save_timer.due(at_log_row=do_log)
            do_eval = evaluator is not None and every(config.eval_every)
            row: dict[str, Any] = {}
            if do_log or do_ckpt or do_sample or do_eval:
                values = check_pending()
            if do_log:
                row = {k: finite_mean([v[k] for v in values]) for k in values[0] if k != "nonfinite"}
                if config.on_nonfinite == "skip_step":
                    row["skipped_steps"] = skipped
                pending, checked, skipped = [], 0, 0
                now = time.time()
                row["steps_per_sec"] = (step - step_last) / max(now - t_last, 1e-9)
                t_last, step_last = now, step
            if do_sample and main:
                row.update(write_samples(state, step))
            if do_eval:
                eval_rows = evaluator(gan, distributed.local_copy(runner.get(state)))
                fence()  # an evaluation can take minutes
                for eval_row in eval_rows:
                    writer.write_eval(step, eval_row)
                    log.info("step %d eval (%s): %s", step, eval_row["generator"], _format_scores(eval_row))
            if row:
                writer.write(step, row)
                if "d_loss" in row:
                    extra = "".join(f" {k} {row[k]:.3f}" for k in ("gen_mean", "gen_std") if k in row)
                    log.info("step %d/%d | d_loss %.4f g_loss %.4f | %.1f steps/s | ETA %s%s", step,
                             config.num_steps, row["d_loss"], row["g_loss"], row["steps_per_sec"],
                             clock.eta(step, time.time()), extra)
            if do_ckpt:
                save(state, step)
            if clock.t0 is None:  # the first call compiled: rates and the ETA count from its end
                jax.block_until_ready(metrics)
                clock.start(step, time.time())
                t_last, step_last = clock.t0, step
        if stop.signum is not None:
            check_pending()
            fence()
            save(state, step)
            ckpt.wait()
            raise Interrupted(f"stopped by signal {stop.signum} at step {step}; checkpoint saved in "
                              f"{ckpt.directory}; run the same command again to resume", stop.signum)
    except WorkdirLost:
        writer.abandon()  # its TensorBoard events are not flushed into the workdir either
        raise
    finally:
        if batches is not None:
            batches.close()  # stops and joins the prefetch thread
        release(previous, ckpt, writer)
    rows = read_jsonl(writer.path) + read_jsonl(storage.join(workdir, "eval.jsonl")) if main else []
    fence()
    if rows:
        plots.save_loss_curves(storage.join(workdir, "loss_curve.png"), rows)
    log.info("done: %s in %.1fs; outputs in %s", describe_done(first_step, step), time.time() - t_start, workdir)
    return distributed.local_copy(runner.get(state))


def load_for_inference(workdir: str, step: int | None = None) -> tuple[ml_collections.ConfigDict, GAN, GANState, int]:
    """Rebuilds the GAN of a finished or running workdir and restores a checkpoint.

    Does not load the training data: the example shape comes from the
    checkpoint's metadata.
    """
    saved = _saved_config(workdir)
    if saved is None:
        raise GanjaxError(f"{workdir} has no config.json: not a ganjax workdir (or training never started); "
                          f"for a vmapped sweep group pass its sweep or group folder and --trial=ID")
    config = config_for_inference(saved)
    ckpt = Checkpointer(workdir, keep=config.keep_checkpoints, async_save=False)
    try:
        target = checkpoint_step(ckpt, workdir, step)
        meta = ckpt.manager.restore(target, args=_meta_only())["meta"]
        gan = gan_for_inference(config, meta["example_shape"])
        state, _, restored = ckpt.restore(abstract_state(gan, config), lambda: "config.json does not match",
                                          step=target)
    finally:
        ckpt.close()
    return config, gan, state, restored


def config_for_inference(saved: dict) -> ml_collections.ConfigDict:
    """A saved (JSON) training config as a ConfigDict, with the ``eval`` defaults older workdirs lack."""
    config = config_lib.from_json(json.dumps(saved))
    config_lib.import_user_modules(config)  # the run's own datasets, models and losses, before any lookup
    if "eval" not in config:  # workdirs written before evaluation existed
        from ganjax.metrics.evaluator import default_eval_config

        config.eval = default_eval_config()
    return config


def checkpoint_step(ckpt: Checkpointer, workdir: str, step: int | None) -> int:
    """``step`` (or the newest) if ``ckpt`` holds it; ``GanjaxError`` naming the available steps otherwise."""
    target = step if step is not None else ckpt.latest_step()
    if target is None:
        raise GanjaxError(f"{workdir}/checkpoints holds no checkpoint yet")
    if target not in ckpt.steps():
        raise GanjaxError(f"no checkpoint at step {target} in {ckpt.directory}; available steps: {ckpt.steps()}")
    return target


def gan_for_inference(config: ml_collections.ConfigDict, example_shape) -> GAN:
    """The :class:`GAN` of ``config`` for examples of ``example_shape``, without loading image data."""
    from ganjax.data import make_dataset

    toy_or_shape = Dataset(config.dataset, tuple(example_shape))
    if config.dataset in TOY_DATASETS:
        toy_or_shape = make_dataset(config.dataset, config.data.to_dict())
    return config_lib.build(config, toy_or_shape)[1]


def _meta_only():
    import orbax.checkpoint as ocp

    return ocp.args.Composite(meta=ocp.args.JsonRestore())
