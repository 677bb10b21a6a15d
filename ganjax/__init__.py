"""ganjax: a functional JAX/Flax GAN research codebase (see README.md)."""

from __future__ import annotations


def _version() -> str:
    """The installed package's version, else the one in the source tree's ``pyproject.toml``."""
    import importlib.metadata
    import os

    try:
        return importlib.metadata.version("ganjax")
    except importlib.metadata.PackageNotFoundError:  # run from a source checkout without pip install
        import tomllib

        pyproject = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "pyproject.toml")
        with open(pyproject, "rb") as f:
            return tomllib.load(f)["project"]["version"]


__version__ = _version()
