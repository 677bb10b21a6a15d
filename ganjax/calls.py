"""How many train steps one compiled call runs: the ``steps_per_call`` config key.

``steps_per_call = K > 0`` runs K train steps per compiled call
(:attr:`ganjax.parallel.Runner.steps`, one ``lax.scan``), which saves the
per-step dispatch and host round trip; ``1`` is the plain jitted step, no loop.
``0`` (the default) picks K from :data:`AUTO_STEPS_PER_CALL` by backend and
by whether the nets convolve: XLA:CPU runs the body of a loop of conv nets
about 3× slower than the same step outside a loop, and full-size MLPs gain
nothing from one (``experiments/bench_steps_per_call.py``), so a CPU runs the
plain step; on an accelerator fewer, longer calls save dispatch time.

Calls never cross a logging, checkpoint, sample or evaluation step, nor the
last step: :func:`call_length` shortens the call before one, so those land on
exactly the steps they would with K = 1, and a stop signal takes effect at
the next call boundary.
"""

from __future__ import annotations

from typing import Iterator

import jax
import ml_collections

from ganjax.errors import ConfigError
from ganjax.train import GAN, compiled_init

# (platform, nets convolve) → steps per call for steps_per_call = 0. CPU, measured quietly with
# experiments/bench_steps_per_call.py (docs/benchmarks.md): conv nets run 3.2x slower inside a loop at
# every K; the full ring MLPs within 2% of K = 1 at K = 5, 10, 25; only ring_2d:quick's tiny nets gain
# (1.47x at K = 25), in runs of about a second. So a CPU runs the plain step, which also keeps every
# CPU run bitwise the step of earlier versions. GPU/TPU values amortise a dispatch of tens of
# microseconds per call; they are to be confirmed with the same benchmark there.
AUTO_STEPS_PER_CALL: dict[tuple[str, bool], int] = {
    ("cpu", False): 1,
    ("cpu", True): 1,
    ("gpu", False): 20,
    ("gpu", True): 10,
    ("tpu", False): 20,
    ("tpu", True): 10,
}


def has_convolutions(gan: GAN) -> bool:
    """True if G or D applies a convolution (their init traced once, nothing compiled)."""
    key = jax.random.key(0)
    examples = ((gan.generator, jax.ShapeDtypeStruct((1, gan.z_dim), "float32")),
                (gan.discriminator, jax.ShapeDtypeStruct((1, *gan.d_input_shape), "float32")))
    return any("conv_general_dilated" in str(jax.make_jaxpr(compiled_init(module))({"params": key, "dropout": key}, x))
               for module, x in examples)


def check_steps_per_call(value) -> None:
    """Refuses anything but an integer >= 0 (``ConfigError`` naming the value)."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ConfigError(f"steps_per_call must be an integer >= 0 (0 = automatic per backend), got {value!r}")


def resolve(config: ml_collections.ConfigDict, gan: GAN, platform: str | None = None) -> int:
    """The run's K: ``config.steps_per_call`` if > 0, else the automatic value for ``platform``
    (default: JAX's backend) and these nets (1 for a backend missing from the table)."""
    k = config.get("steps_per_call", 0)
    check_steps_per_call(k)
    if k:
        return k
    platform = platform or jax.default_backend()
    choices = {AUTO_STEPS_PER_CALL.get((platform, conv), 1) for conv in (False, True)}
    if len(choices) == 1:  # the nets need not be traced
        return choices.pop()
    return AUTO_STEPS_PER_CALL.get((platform, has_convolutions(gan)), 1)


def boundary_periods(config: ml_collections.ConfigDict) -> tuple[int, ...]:
    """The periods whose multiples a call must end on: logging, checkpoints, samples and evaluation.

    ``eval_every`` counts even in processes that do not evaluate, so every
    process of a multi-process job runs the same calls.
    """
    return tuple(p for p in (config.log_every, config.checkpoint_every, config.sample_every, config.eval_every) if p)


def call_length(step: int, k: int, num_steps: int, periods: tuple[int, ...]) -> int:
    """Steps of the call that starts after ``step`` completed steps: ``k``, shortened to end on the next
    multiple of any period or on ``num_steps``."""
    nxt = min([num_steps] + [(step // p + 1) * p for p in periods])
    return max(1, min(k, nxt - step))


def call_plan(step: int, k: int, num_steps: int, periods: tuple[int, ...]) -> Iterator[int]:
    """The lengths of the calls from ``step`` completed steps to ``num_steps``, in order (:func:`call_length`)."""
    while step < num_steps:
        n = call_length(step, k, num_steps, periods)
        yield n
        step += n
