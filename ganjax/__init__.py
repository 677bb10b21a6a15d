"""ganjax: functional JAX/Flax GANs.

The public extension API — a researcher's own components, registered from
their own module and then named in a config like the built-ins::

    import ganjax

    @ganjax.register_penalty("my_penalty")
    def my_penalty(d_fn, real, fake, key, shard=None): ...

=============================  ==============================================  ==========================
function                       registers                                       config key
=============================  ==============================================  ==========================
``register_loss``              a (d_loss, g_loss) pair (:mod:`ganjax.losses`)  ``loss``
``register_penalty``           a D regulariser (:mod:`ganjax.penalties`)       ``penalty``
``register_generator``         a Linen module class (:mod:`ganjax.models`)     ``model.generator``
``register_discriminator``     a Linen module class (:mod:`ganjax.models`)     ``model.discriminator``
``register_metric``            an evaluation score (:mod:`ganjax.metrics.evaluator`)  ``eval.metrics``
``register_dataset``           a toy distribution (:mod:`ganjax.data.toy`)     ``dataset``
=============================  ==============================================  ==========================

Each works as a call or as a decorator, checks the signature of what it is
given, and refuses a taken name unless ``override=True``. List the module in
the config's ``imports`` (:mod:`ganjax.user_modules`) so the command lines and
sweeps import it. Attributes are imported lazily, so ``import ganjax`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any


def _version() -> str:
    """The installed package's version, else the one in the source tree's ``pyproject.toml``."""
    import importlib.metadata
    import os

    try:
        return importlib.metadata.version("ganjax")
    except importlib.metadata.PackageNotFoundError:  # run from a source checkout without pip install
        import tomllib

        pyproject = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "pyproject.toml")
        try:
            with open(pyproject, "rb") as f:
                return tomllib.load(f)["project"]["version"]
        except (OSError, KeyError, tomllib.TOMLDecodeError):  # the package copied without its pyproject.toml
            return "0+unknown"


__version__ = _version()

_PUBLIC = {
    "register_loss": "ganjax.losses",
    "register_penalty": "ganjax.penalties",
    "register_generator": "ganjax.models",
    "register_discriminator": "ganjax.models",
    "register_metric": "ganjax.metrics.evaluator",
    "register_dataset": "ganjax.data.toy",
    "GANLoss": "ganjax.losses",
    "ToyDistribution": "ganjax.data.toy",
    "EvalData": "ganjax.metrics.evaluator",
    "RegistrationError": "ganjax.registry",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'ganjax' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_PUBLIC))
