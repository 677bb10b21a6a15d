"""Shared command-line plumbing: logging setup and clean error exits."""

from __future__ import annotations

import logging
import sys
import traceback
from typing import Callable

from absl import flags

from ganjax.errors import GanjaxError

flags.DEFINE_bool("verbose", False, "Show full tracebacks and library logs.")


def setup_logging(verbose: bool) -> None:
    """Console progress from the ``ganjax`` logger; libraries only warn."""
    from absl import logging as absl_logging

    logger = logging.getLogger("ganjax")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname).1s %(message)s", "%H:%M:%S"))
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    absl_logging.set_verbosity(absl_logging.INFO if verbose else absl_logging.WARNING)
    if not verbose:
        import os

        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TensorFlow (used by TFDS) start-up chatter
        absl_logging.set_stderrthreshold("error")
        for name in ("absl", "orbax", "jax", "tensorflow"):
            logging.getLogger(name).setLevel(logging.ERROR)


def run_cli(body: Callable[[], int | None]) -> int:
    """Runs ``body``; user errors become one line on stderr and exit status 2.

    A ``GanjaxError`` with a ``signum`` (interruption) exits with 128 + signum,
    as a process killed by that signal would.
    """
    verbose = flags.FLAGS.verbose
    setup_logging(verbose)
    try:
        return body() or 0
    except GanjaxError as e:
        if verbose:
            traceback.print_exc()
        print(f"ganjax: error: {e}", file=sys.stderr)
        signum = getattr(e, "signum", None)
        return 128 + signum if signum else 2
    except KeyboardInterrupt:
        print("ganjax: interrupted", file=sys.stderr)
        return 130
