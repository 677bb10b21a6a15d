"""Phase 1 of seed 004: pretrain a convolutional autoencoder, hand its decoder to the generator.

Turned on by ``pretrain.autoencoder_steps > 0`` together with
``model.generator = 'ae_decoder'`` (:class:`~ganjax.models.autoencoder.AEDecoderGenerator`).
A fresh run (no GAN checkpoint in the workdir) first trains
:class:`~ganjax.models.autoencoder.ConvAutoencoder` on the training images
for ``pretrain.autoencoder_steps`` steps of ``pretrain.batch_size`` images
(Adam, reconstruction loss ``pretrain.loss``), then copies its
``params['decoder']`` into the generator's ``g_params['decoder']`` (and the
EMA copy) of the freshly initialised GAN state; the mapping z → code stays
freshly initialised. Phase 2 is the ordinary GAN loop of :mod:`ganjax.trainer`.

Files (``<workdir>/pretrain/``): ``checkpoints/<step>/`` (Orbax, via
:class:`~ganjax.checkpoint.Checkpointer`: the :class:`AEState` and the data
position), ``metrics.jsonl`` (rows ``{"step", "kind": "pretrain",
"recon_loss", "mse", "steps_per_sec"}``), TensorBoard events and, when phase 1
finishes, ``reconstructions.png`` (32 training images, then their
reconstructions).

Resume: phase 1 restores its newest checkpoint and continues (bitwise the same
decoder as an uninterrupted phase 1: the step is a pure function of the state
and the batch, and batches are a pure function of ``(seed, position)``). A
finished phase 1 is not retrained; once the GAN has a checkpoint, phase 1 is
not even read. SIGTERM/SIGINT save a phase-1 checkpoint and stop, as in the
main loop.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import Any, Callable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from flax import struct

from ganjax import storage
from ganjax.checkpoint import Checkpointer
from ganjax.data import Dataset
from ganjax.data.batches import BatchStream, batches_per_epoch
from ganjax.data.toy import TOY_DATASETS
from ganjax.errors import ConfigError, unknown_name
from ganjax.models.autoencoder import ConvAutoencoder
from ganjax.train import images_to_float

log = logging.getLogger("ganjax")

Array = jax.Array

PRETRAIN_DIR = "pretrain"      # phase 1's outputs, inside the workdir
AE_GENERATOR = "ae_decoder"    # the generator that holds the pretrained decoder
_INIT_SALT = 4004              # the autoencoder's init key is fold_in(key(seed), _INIT_SALT)


def default_pretrain_config() -> ml_collections.ConfigDict:
    """``config.pretrain``: off (``autoencoder_steps = 0``) unless a config turns it on."""
    p = ml_collections.ConfigDict()
    p.autoencoder_steps = 0        # > 0: phase 1 with this many autoencoder steps
    p.batch_size = 256
    p.learning_rate = 1e-3         # Adam, Keras' defaults (the seed's compile(optimizer='adam'))
    p.b1 = 0.9
    p.b2 = 0.999
    p.eps = 1e-7
    p.loss = "mse"                 # or "bce" (the seed's binary_crossentropy on [0, 1] pixels)
    p.encoder_widths = (32, 64)    # stride-2 convs before the code conv (model.g.code_channels)
    p.log_every = 100
    p.checkpoint_every = 1000
    return p


def _mse(pre: Array, x: Array) -> Array:
    return jnp.mean(jnp.square(jnp.tanh(pre) - x))


def _bce(pre: Array, x: Array) -> Array:
    # tanh(a) = 2·sigmoid(2a) − 1: BCE of the [0, 1] image (x + 1)/2 against sigmoid(2a),
    # in logit form softplus(l) − t·l, finite for any logit.
    logits, target = 2.0 * pre, (x + 1.0) / 2.0
    return jnp.mean(jax.nn.softplus(logits) - target * logits)


# Reconstruction losses of the decoder's pre-tanh output ``pre`` and the image ``x`` in [−1, 1].
RECON_LOSSES: dict[str, Callable[[Array, Array], Array]] = {"mse": _mse, "bce": _bce}


def enabled(c: ml_collections.ConfigDict) -> bool:
    """Whether ``c`` asks for autoencoder pretraining."""
    p = c.get("pretrain")
    return p is not None and p.autoencoder_steps > 0


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def validate_pretrain_config(c: ml_collections.ConfigDict) -> None:
    """Checks ``c.pretrain`` and its fit with ``model.generator`` and ``dataset`` (``ConfigError``)."""
    if c.model.generator == AE_GENERATOR and c.dataset in TOY_DATASETS:
        raise ConfigError(f"model.generator={AE_GENERATOR!r} generates images, but dataset {c.dataset!r} is a "
                          f"toy distribution; use model.generator='mlp' or an image dataset")
    p = c.get("pretrain")
    if p is None:  # configs written before pretraining existed
        return
    for key in ("autoencoder_steps", "batch_size", "log_every", "checkpoint_every"):
        if not _is_int(p[key]) or p[key] < 0:
            raise ConfigError(f"pretrain.{key} must be an integer >= 0, got {p[key]!r}")
    if p.batch_size == 0:
        raise ConfigError("pretrain.batch_size must be > 0, got 0")
    if not float(p.learning_rate) > 0 or not float(p.eps) > 0:
        raise ConfigError(f"pretrain.learning_rate and pretrain.eps must be > 0, got {p.learning_rate!r}, {p.eps!r}")
    for key in ("b1", "b2"):
        if not 0.0 <= float(p[key]) < 1.0:
            raise ConfigError(f"pretrain.{key} must be in [0, 1), got {p[key]!r}")
    if p.loss not in RECON_LOSSES:
        raise unknown_name("pretrain.loss", p.loss, RECON_LOSSES)
    widths = tuple(p.encoder_widths)
    if not widths or not all(_is_int(w) and w > 0 for w in widths):
        raise ConfigError(f"pretrain.encoder_widths = {widths!r} is invalid; it must be a non-empty list of "
                          f"positive integers")
    if p.autoencoder_steps == 0:
        return
    if c.model.generator != AE_GENERATOR:
        raise ConfigError(f"pretrain.autoencoder_steps = {p.autoencoder_steps} pretrains the decoder of "
                          f"model.generator={AE_GENERATOR!r}, but model.generator is {c.model.generator!r}; set "
                          f"--config.model.generator={AE_GENERATOR} or pretrain.autoencoder_steps=0")
    decoder_widths = tuple(c.model.g.get("widths", ConvAutoencoder.widths))
    if len(widths) != len(decoder_widths):
        raise ConfigError(f"pretrain.encoder_widths {widths} and model.g.widths {decoder_widths} must have the same "
                          f"length: each encoder entry halves the image size, each decoder entry doubles it")


class AEState(struct.PyTreeNode):
    """Phase 1's training state: ``step`` ``[]`` int32, autoencoder ``params``, Adam state ``opt``."""

    step: Array
    params: Any
    opt: Any


@dataclasses.dataclass(frozen=True)
class Autoencoder:
    """The static definition of phase 1: module, Adam hyperparameters, reconstruction loss name.

    Hashable by value, so the jitted step is compiled once per process for
    equal configs (tests, reruns in one process).
    """

    module: ConvAutoencoder
    learning_rate: float
    b1: float
    b2: float
    eps: float
    loss: str

    @property
    def example_shape(self) -> tuple[int, ...]:
        return tuple(self.module.out_shape)

    @property
    def tx(self) -> optax.GradientTransformation:
        return optax.adam(self.learning_rate, b1=self.b1, b2=self.b2, eps=self.eps)


def build_autoencoder(c: ml_collections.ConfigDict, example_shape: tuple[int, ...]) -> Autoencoder:
    """The autoencoder whose decoder has the shapes of ``c``'s ``ae_decoder`` generator."""
    g = c.model.g.to_dict()
    decoder = {k: tuple(v) if isinstance(v, list) else v for k, v in g.items()
               if k in ("code_channels", "widths", "weight_init")}
    p = c.pretrain
    module = ConvAutoencoder(tuple(example_shape), tuple(p.encoder_widths), dtype=jnp.dtype(c.compute_dtype),
                             **decoder)
    return Autoencoder(module, float(p.learning_rate), float(p.b1), float(p.b2), float(p.eps), p.loss)


def init_ae_state(ae: Autoencoder, seed: int) -> AEState:
    """Phase 1's initial state, a pure function of ``seed``."""
    key = jax.random.fold_in(jax.random.key(seed), _INIT_SALT)
    params = ae.module.init(key, jnp.zeros((2, *ae.example_shape), jnp.float32))["params"]
    return AEState(step=jnp.zeros((), jnp.int32), params=params, opt=ae.tx.init(params))


def ae_train_step(ae: Autoencoder, state: AEState, batch: Array) -> tuple[AEState, dict[str, Array]]:
    """One Adam step on the reconstruction loss of ``batch`` ``[B, H, W, C]`` (uint8 or float in [−1, 1]).

    Pure (no randomness). Returns the new state and ``{'recon_loss', 'mse'}``
    (``mse``: mean squared error of the [−1, 1] reconstruction, whatever the loss).
    """
    x = images_to_float(batch)
    recon_loss = RECON_LOSSES[ae.loss]

    def loss_fn(params):
        pre = ae.module.apply({"params": params}, x, method=ConvAutoencoder.preactivation)
        return recon_loss(pre, x), _mse(pre, x)

    (loss, mse), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    updates, opt = ae.tx.update(grads, state.opt, state.params)
    new = AEState(step=state.step + 1, params=optax.apply_updates(state.params, updates), opt=opt)
    return new, {"recon_loss": loss, "mse": mse}


# The compiled step, shared by all runs with an equal Autoencoder; the state's buffers are donated.
jit_ae_train_step = jax.jit(ae_train_step, static_argnums=0, donate_argnums=1)


def reconstruct(ae: Autoencoder, params: Any, images: np.ndarray | Array) -> Array:
    """Reconstructions ``[N, H, W, C]`` in [−1, 1] of ``images`` (uint8, or float in [−1, 1])."""
    return ae.module.apply({"params": params}, images_to_float(jnp.asarray(images)), train=False)


def reconstruction_mse(ae: Autoencoder, params: Any, images: np.ndarray, batch_size: int = 500) -> float:
    """Mean squared error of the [−1, 1] reconstructions of ``images`` ``[N, H, W, C]``."""
    total = 0.0
    for i in range(0, len(images), batch_size):
        x = images[i:i + batch_size]
        total += float(jnp.sum(jnp.square(reconstruct(ae, params, x) - images_to_float(jnp.asarray(x)))))
    return total / images.size


def with_pretrained_decoder(state: Any, decoder: Any) -> Any:
    """``state`` (a :class:`~ganjax.train.GANState`) with ``decoder`` as G's (and the EMA's) decoder.

    Optimizer moments start at zero whatever the values, so ``g_opt`` stays valid.
    """
    if jax.tree.structure(decoder) != jax.tree.structure(state.g_params["decoder"]):
        raise ConfigError("the pretrained decoder does not fit the generator's decoder; model.g changed since "
                          "phase 1 was trained")
    copy = lambda tree: jax.tree.map(lambda x: jnp.array(x, copy=True), tree)  # noqa: E731 - no shared buffers
    return state.replace(g_params={**state.g_params, "decoder": copy(decoder)},
                         ema_params={**state.ema_params, "decoder": copy(decoder)})


def pretrain_dir(workdir: str) -> str:
    """``<workdir>/pretrain``: phase 1's checkpoints, metrics and pictures."""
    return storage.join(workdir, PRETRAIN_DIR)


class Pretrainer:
    """Phase 1 in a workdir: ``Pretrainer(...)`` restores or initialises; :meth:`run` trains.

    The constructor reads (never writes), so a config that does not fit the
    stored phase-1 checkpoint fails before the trainer writes ``config.json``.
    """

    def __init__(self, config: ml_collections.ConfigDict, workdir: str, dataset: Dataset,
                 explain: Callable[[], str]):
        if dataset.images is None:
            raise ConfigError(f"pretrain.autoencoder_steps needs an image dataset, got {config.dataset!r}")
        p = config.pretrain
        n = len(dataset.images)
        if p.batch_size > n:
            raise ConfigError(f"pretrain.batch_size = {p.batch_size} exceeds the {n} examples of {config.dataset!r}")
        batches_per_epoch(n, p.batch_size)
        self.config, self.dir, self.dataset = config, pretrain_dir(workdir), dataset
        self.ae = build_autoencoder(config, dataset.example_shape)
        self.state, self.position = init_ae_state(self.ae, config.seed), 0
        if Checkpointer.existing_steps(self.dir):
            ckpt = Checkpointer(self.dir, keep=config.keep_checkpoints, async_save=False)
            try:
                if ckpt.latest_step() is not None:
                    abstract = jax.eval_shape(lambda: init_ae_state(self.ae, config.seed))
                    self.state, meta, step = ckpt.restore(abstract, explain)
                    self.position = int(meta["data_position"])
                    log.info("resuming autoencoder pretraining from step %d", step)
            finally:
                ckpt.close()

    def run(self, fence: Callable[[], None] = lambda: None) -> Any:
        """Trains up to ``pretrain.autoencoder_steps`` and returns the decoder's parameters.

        Raises ``Interrupted`` (after saving) on SIGTERM/SIGINT and
        ``TrainingDiverged`` on a non-finite loss, as the main loop does;
        ``fence`` is the workdir lease check (:meth:`ganjax.workdir.WorkdirLock.check`),
        called before each step's writes and the signal checkpoint.
        """
        from ganjax.trainer import Interrupted, StopFlag, TrainingDiverged, finite_mean, release  # trainer imports us
        from ganjax.workdir import WorkdirLost
        from ganjax.writers import MetricWriter

        p, total = self.config.pretrain, self.config.pretrain.autoencoder_steps
        step = int(self.state.step)
        if step >= total:
            log.info("autoencoder pretraining is complete (step %d); using its decoder", step)
            return self.state.params["decoder"]
        storage.makedirs(self.dir)
        ckpt = Checkpointer(self.dir, keep=self.config.keep_checkpoints)
        writer = MetricWriter(self.dir)
        writer.drop_after(step)
        stream = BatchStream(self.dataset.images, self.config.seed, p.batch_size, position=self.position)
        state = self.state

        def save(at: int) -> None:
            ckpt.save(at, state, {"data_position": stream.position, "step": at})

        stop = StopFlag()
        previous = stop.install()
        pending: list[dict] = []
        t_last, step_last = time.time(), step
        log.info("autoencoder pretraining: steps %d..%d, batch %d", step + 1, total, p.batch_size)
        try:
            while step < total and stop.signum is None:
                state, metrics = jit_ae_train_step(self.ae, state, stream.next())
                fence()
                pending.append(metrics)
                step += 1
                last = step == total
                if (p.log_every and step % p.log_every == 0) or last:
                    values = jax.device_get(pending)
                    row = {k: finite_mean([v[k] for v in values]) for k in values[0]}
                    if not all(np.isfinite(float(v[k])) for v in values for k in v):
                        raise TrainingDiverged(f"non-finite reconstruction loss in autoencoder pretraining before "
                                               f"step {step}; lower pretrain.learning_rate")
                    now = time.time()
                    row["steps_per_sec"] = (step - step_last) / max(now - t_last, 1e-9)
                    t_last, step_last, pending = now, step, []
                    writer.write(step, {"kind": "pretrain", **row})
                    log.info("pretrain step %d/%d | recon_loss %.4f mse %.4f | %.1f steps/s", step, total,
                             row["recon_loss"], row["mse"], row["steps_per_sec"])
                if (p.checkpoint_every and step % p.checkpoint_every == 0) or last:
                    save(step)
            if stop.signum is not None:
                fence()
                save(step)
                ckpt.wait()
                raise Interrupted(f"stopped by signal {stop.signum} at autoencoder pretraining step {step}; "
                                  f"checkpoint saved in {ckpt.directory}; run the same command again to resume",
                                  stop.signum)
        except WorkdirLost:
            writer.abandon()
            raise
        finally:
            release(previous, ckpt, writer)
        fence()
        self.state = state  # the initial state's buffers were donated to the step
        self._save_reconstructions(state.params)
        return state.params["decoder"]

    def _save_reconstructions(self, params: Any) -> None:
        from ganjax import plots

        images = self.dataset.images[:32]
        recon = np.asarray(reconstruct(self.ae, params, images))
        real = np.asarray(images_to_float(jnp.asarray(images)))
        plots.save_samples(storage.join(self.dir, "reconstructions.png"), np.concatenate([real, recon]),
                           title="autoencoder reconstructions")
