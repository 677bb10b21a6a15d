"""User-facing errors.

Every refusal of bad input raises a subclass of :class:`GanjaxError` whose
message is one line naming the bad value and the valid choices. The command
line entry points print that line (no traceback unless ``--verbose``) and exit
with status 2.
"""

from __future__ import annotations

from typing import Iterable


class GanjaxError(Exception):
    """Base class for errors caused by the user's input or environment."""


class ConfigError(GanjaxError, ValueError):
    """A config value is unknown, has the wrong type, or is out of range."""


class DataError(GanjaxError):
    """A dataset cannot be found, prepared or read."""


class CheckpointError(GanjaxError):
    """A checkpoint cannot be restored (incompatible or corrupt)."""


def unknown_name(kind: str, value: object, choices: Iterable[str]) -> ConfigError:
    """Builds the standard 'unknown name' error: names the value and the choices."""
    listed = ", ".join(sorted(choices))
    return ConfigError(f"unknown {kind} {value!r}; valid choices: {listed}")
