"""Importing a researcher's own modules: the config key ``imports``.

``imports`` is a tuple of entries, each a Python module name
(``"my_project.gan_parts"``, importable from ``sys.path`` or the current
directory) or a path to a file (``"path/to/my_loss.py"``, relative to the
current directory or absolute). ganjax imports them before it validates a
config — in ``ganjax.main``, ``ganjax.sample``, ``ganjax.evaluate``, every
trial of ``ganjax.sweep`` and the experiment scripts — so the losses,
penalties, models, metrics and datasets they register (``ganjax.register_*``)
are valid names.

Files are recorded by absolute path (:func:`resolve`): ``config.json`` then
names the same file whatever directory ``ganjax.sample``, ``ganjax.evaluate``
or a resumed run is started from. Module names are recorded as given.

Each entry is imported once per process; a missing module or one that raises
is a :class:`ImportFailed` (a ``ConfigError``) naming the entry and the reason,
which the command lines print as one ``ganjax: error:`` line.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import sys
import traceback
from typing import Any

from ganjax.errors import ConfigError, GanjaxError

# Absolute file path or module name → the imported module, for this process.
_IMPORTED: dict[str, Any] = {}


class ImportFailed(ConfigError):
    """An ``imports`` entry cannot be found or raised while being imported."""


def is_file_entry(entry: str) -> bool:
    """A path to a ``.py`` file (rather than a dotted module name)."""
    return entry.endswith(".py") or os.sep in entry or (os.altsep is not None and os.altsep in entry)


def check_entries(entries: Any) -> tuple[str, ...]:
    """``imports`` as a tuple of non-empty strings (a list or tuple; ``ConfigError`` otherwise)."""
    if isinstance(entries, str) or not isinstance(entries, (list, tuple)) or not all(
            isinstance(e, str) and e.strip() for e in entries):
        raise ConfigError(f"imports must be a tuple of module names or paths to .py files, got {entries!r}; "
                          f"e.g. imports=('my_losses.py',)")
    return tuple(e.strip() for e in entries)


def resolve(entries: Any) -> tuple[str, ...]:
    """``entries`` with file paths made absolute (module names unchanged), as ``config.json`` records them."""
    return tuple(os.path.abspath(e) if is_file_entry(e) else e for e in check_entries(entries))


def _where(e: BaseException, path: str | None) -> str:
    """``' (file.py, line N)'`` for the innermost frame of the user's file, else ``''``."""
    frames = [f for f in traceback.extract_tb(e.__traceback__)
              if path is None or os.path.realpath(f.filename) == os.path.realpath(path)]
    return f" ({os.path.basename(frames[-1].filename)}, line {frames[-1].lineno})" if frames else ""


def _load_file(path: str, label: str) -> Any:
    if not os.path.isfile(path):
        raise ImportFailed(f"imports entry {label}: no such file")
    stem = os.path.splitext(os.path.basename(path))[0]
    name = f"ganjax_user_{stem}_{hashlib.sha1(path.encode()).hexdigest()[:8]}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # so dataclasses and pickling inside the module can find it
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def _load_module(name: str) -> Any:
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.append(os.getcwd())  # `python -m ganjax.main` finds modules next to the config, as python does
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as e:
        if e.name and (name == e.name or name.startswith(e.name + ".")):
            raise ImportFailed(f"imports entry {name!r}: no module named {e.name!r} (not on sys.path; give a path "
                               f"to a .py file instead, e.g. 'path/to/{name.split('.')[-1]}.py')") from None
        raise


def import_modules(entries: Any) -> tuple[str, ...]:
    """Imports every entry of ``imports`` (once per process); returns the resolved entries.

    Raises:
      ImportFailed: an entry is not found, or its module raised while importing
        (the message names the entry, the exception and the line).
      ConfigError: ``entries`` is not a tuple of strings.
    """
    given = check_entries(entries)
    resolved = resolve(given)
    for as_given, entry in zip(given, resolved):
        if entry in _IMPORTED:
            continue
        path = entry if is_file_entry(entry) else None
        label = repr(as_given) if as_given == entry else f"{as_given!r} ({entry})"
        try:
            _IMPORTED[entry] = _load_file(entry, label) if path else _load_module(entry)
        except ImportFailed:
            raise
        except GanjaxError as e:  # e.g. a registration refused: keep ganjax's message, name the module
            raise ImportFailed(f"imports entry {label}{_where(e, path)}: {e}") from e
        except BaseException as e:  # noqa: BLE001 - any error in the user's module becomes one line
            if isinstance(e, (KeyboardInterrupt, SystemExit)):
                raise
            raise ImportFailed(f"imports entry {label} raised {type(e).__name__}{_where(e, path)}: {e}") from e
    return resolved
