"""Shared command-line plumbing: logging setup and clean error exits."""

from __future__ import annotations

import logging
import sys
import traceback
from typing import Callable

from absl import app, flags

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
        # Library errors (e.g. Orbax's background writer) are reported by
        # ganjax as one line; their own tracebacks appear with --verbose.
        absl_logging.set_stderrthreshold("fatal")
        for name in ("absl", "orbax", "jax", "tensorflow", "asyncio"):
            logging.getLogger(name).setLevel(logging.CRITICAL)


def run_cli(body: Callable[[], int | None]) -> int:
    """Runs ``body``; user errors become one line on stderr and their ``exit_status`` (2, or 3 for divergence).

    A ``GanjaxError`` with a ``signum`` (interruption) exits with 128 + signum,
    as a process killed by that signal would.
    """
    verbose = flags.FLAGS.verbose
    setup_logging(verbose)
    if not verbose:
        # When a save fails, Orbax/TensorStore's background I/O callbacks die
        # against a closed event loop; their "Exception ignored" tracebacks
        # would bury the one-line error (--verbose shows them).
        sys.unraisablehook = lambda _: None
    try:
        return body() or 0
    except GanjaxError as e:
        if verbose:
            traceback.print_exc()
        print(f"ganjax: error: {e}", file=sys.stderr)
        signum = getattr(e, "signum", None)
        return 128 + signum if signum else e.exit_status
    except KeyboardInterrupt:
        print("ganjax: interrupted", file=sys.stderr)
        return 130


def _clean(e: BaseException) -> str:
    text = str(e.args[0]) if e.args else str(e)
    text = text.replace("\\n", "\n").replace("\\'", "'")
    return "; ".join(part.strip().strip("'\"") for part in text.splitlines() if part.strip())


def _flag_error_message(e: BaseException) -> str:
    """One line for an absl flag error (config-file errors arrive wrapped, with a traceback)."""
    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    # A GanjaxError raised by get_config() arrives formatted into absl's message.
    ours = [line.split(": ", 1)[1] for line in lines if line.startswith("ganjax.errors.") and ": " in line]
    if ours:
        return ours[-1]
    return lines[0] if len(lines) == 1 else f"{lines[0]} {lines[-1]}"


def parse_flags(argv: list[str]) -> list[str]:
    """absl flag parsing with bad flags and ``--config.KEY`` overrides as one ``ganjax: error:`` line."""
    hint = "see --helpfull"
    try:
        return flags.FLAGS(argv)
    except flags.Error as e:  # a bad value for a typed flag, an unknown or missing flag, a bad config file
        if "--verbose" in argv:
            raise
        message = _flag_error_message(e)
    except (AttributeError, KeyError, TypeError, ValueError) as e:  # ml_collections --config.KEY overrides
        if "--verbose" in argv:
            raise
        unknown_key = isinstance(e, (AttributeError, KeyError))
        what = "no such config key" if unknown_key else "bad value"
        message = f"bad --config override: {what} {_clean(e)}"
        if unknown_key and "print_config" in flags.FLAGS:  # only ganjax.main has it
            hint = "list every key and its value with --print_config"
    print(f"ganjax: error: {message} ({hint})", file=sys.stderr)
    sys.exit(2)


def run(main: Callable[[list[str]], int]) -> None:
    """``app.run(main)`` with :func:`parse_flags`: every entry point's ``__main__``."""
    app.run(main, flags_parser=parse_flags)
