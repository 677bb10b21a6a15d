"""User-facing errors.

Every refusal of bad input raises a subclass of :class:`GanjaxError` whose
message is one line naming the bad value and the valid choices. The command
line entry points print that line (no traceback unless ``--verbose``) and exit
with the error's ``exit_status``: 2 for bad input, 3 for a diverged run
(:class:`TrainingDiverged`), so a caller such as the process
sweep tells them apart by status alone.
"""

from __future__ import annotations

from typing import Iterable


class GanjaxError(Exception):
    """Base class for errors caused by the user's input or environment."""

    exit_status = 2  # the command-line exit status of this kind of error


class ConfigError(GanjaxError, ValueError):
    """A config value is unknown, has the wrong type, or is out of range."""


class DataError(GanjaxError):
    """A dataset cannot be found, prepared or read."""


class CheckpointError(GanjaxError):
    """A checkpoint cannot be restored (incompatible or corrupt)."""


def unknown_name(kind: str, value: object, choices: Iterable[str]) -> ConfigError:
    """Builds the standard 'unknown name' error: names the value and the choices.

    A :class:`ganjax.registry.Registry` lists its built-in names, then its
    user-registered ones.
    """
    listed = choices.choices() if callable(getattr(choices, "choices", None)) else ", ".join(sorted(choices))
    return ConfigError(f"unknown {kind} {value!r}; valid choices: {listed}")


class TrainingDiverged(GanjaxError):
    """A loss, gradient or parameter became NaN/Inf during training."""

    exit_status = 3  # distinct from bad input (2): the process sweep marks such a trial 'diverged'


class WriteError(GanjaxError):
    """The workdir cannot be written (disk full, read-only, permissions)."""


def describe_os_error(e: BaseException) -> str:
    """A short reason for a failed write, also for errors raised by Orbax/TensorStore.

    TensorStore reports ``[os_error_code='28']`` inside long messages; that
    code is turned into its ``strerror`` ("No space left on device").
    """
    import os
    import re

    if isinstance(e, OSError) and e.errno:
        where = f" ({e.filename})" if getattr(e, "filename", None) else ""
        return f"{e.strerror}{where}"
    match = re.search(r"os_error_code='?(\d+)", str(e))
    if match:
        return os.strerror(int(match.group(1)))
    first = str(e).splitlines()[0] if str(e) else type(e).__name__
    return first[:200]
