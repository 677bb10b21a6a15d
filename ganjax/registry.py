"""Named registries: one mechanism for built-in and user-registered components.

Every name a config picks — ``loss``, ``penalty``, ``model.generator``,
``model.discriminator``, ``eval.metrics`` entries, toy ``dataset`` — is looked
up in a :class:`Registry`. ganjax registers its built-ins with the same
:meth:`Registry.register` a researcher calls from their own module (through
:func:`ganjax.register_loss` and friends), so both get the same checks:

* the entry is validated when it is registered (e.g. a function's signature,
  with :func:`accepts`), and a bad one is refused with the expected signature
  in the message;
* a name already taken is refused unless ``override=True``; registering the
  same definition again (the same function or class from the same file, as
  when a config file that registers is imported a second time) is allowed;
* an unknown name is one ``ConfigError`` listing the built-in names and, when
  there are any, the registered ones.

A registry is a read-only ``Mapping`` from name to entry, so ``name in
LOSSES``, ``LOSSES[name]`` and ``sorted(LOSSES)`` work as on a dict.
"""

from __future__ import annotations

import inspect
import os
from typing import Any, Callable, Generic, Iterator, Mapping, TypeVar

from ganjax.errors import ConfigError

T = TypeVar("T")


class RegistrationError(ConfigError):
    """A component cannot be registered: a taken name or a definition of the wrong form."""


def origin(obj: Any) -> tuple[str, str, int] | None:
    """Where ``obj`` (a function or class) is defined: ``(absolute file, qualified name, first line)``.

    None for objects without a source file (builtins, instances). For a
    class, the file and first line of its first own method.
    """
    obj = inspect.unwrap(obj) if inspect.isfunction(obj) else obj
    name = getattr(obj, "__qualname__", None)
    code = getattr(obj, "__code__", None)
    if code is not None:
        return (os.path.realpath(code.co_filename), name, code.co_firstlineno) if name else None
    if isinstance(obj, type):  # a class: the file of its own methods (its module may not be in sys.modules)
        for member in vars(obj).values():
            member = getattr(member, "__func__", member)
            member = inspect.unwrap(member) if inspect.isfunction(member) else member  # e.g. Flax's wrappers
            code = getattr(member, "__code__", None)
            if code is not None and not code.co_filename.startswith("<"):  # not dataclass-generated methods
                return os.path.realpath(code.co_filename), name, code.co_firstlineno
    return None


def same_definition(a: Any, b: Any) -> bool:
    """Whether ``a`` and ``b`` are one definition: the same object, or defined at the same place of one file
    (a module imported twice, e.g. a config file that registers and is also listed in ``imports``)."""
    return a is b or (origin(a) is not None and origin(a) == origin(b))


def accepts(fn: Callable, n: int) -> bool:
    """Whether ``fn`` can be called with ``n`` positional arguments (``inspect.signature``)."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):  # some builtins have no signature; let them through
        return True
    try:
        sig.bind(*range(n))
    except TypeError:
        return False
    return True


def describe(fn: Any) -> str:
    """``name(params)`` of a function or class, for error messages."""
    name = getattr(fn, "__qualname__", None) or type(fn).__name__
    try:
        return f"{name}{inspect.signature(fn)}"
    except (TypeError, ValueError):
        return name


class Registry(Mapping[str, T], Generic[T]):
    """Names → entries of one kind (``'loss'``, ``'penalty'``, ...).

    Args:
      kind: the noun used in messages (``unknown loss 'x'``).
      check: ``check(name, entry)`` raises :class:`RegistrationError` for an
        entry of the wrong form; it may return a normalised entry (e.g. a
        :class:`ganjax.losses.GANLoss` built from a class), else None.
      same: ``same(old, new)``: whether two entries are one definition
        registered twice (default: equal :func:`origin`).
    """

    def __init__(self, kind: str, check: Callable[[str, Any], T | None] | None = None,
                 same: Callable[[T, T], bool] | None = None):
        self.kind = kind
        self._check = check
        self._same = same or same_definition
        self._entries: dict[str, T] = {}
        self._builtin: set[str] = set()

    # Mapping interface -------------------------------------------------------
    def __getitem__(self, name: str) -> T:
        return self._entries[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, built-in: {sorted(self.builtin_names)}, registered: {sorted(self.user_names)})"

    # Registration ------------------------------------------------------------
    def register(self, name: str, entry: Any = None, *, override: bool = False) -> Any:
        """Registers ``entry`` under ``name``; without ``entry``, a decorator that does.

        Returns ``entry`` itself (so a decorated function or class stays usable).

        Raises:
          RegistrationError: ``name`` is not a non-empty string, is taken by
            another definition (and ``override`` is false), or ``entry`` is
            of the wrong form.
        """
        if entry is None:
            return lambda e: self.register(name, e, override=override)
        if not isinstance(name, str) or not name or name != name.strip() or "," in name:
            raise RegistrationError(f"a {self.kind} name must be a non-empty string without commas or surrounding "
                                    f"spaces, got {name!r}")
        checked = self._check(name, entry) if self._check else None
        value = entry if checked is None else checked
        if name in self._entries and not override and not self._same(self._entries[name], value):
            where = "built-in" if name in self._builtin else "already registered"
            raise RegistrationError(f"{self.kind} {name!r} is {where}; pass override=True to replace it, or "
                                    f"choose another name")
        self._entries[name] = value
        if name in self._builtin and override:
            self._builtin.discard(name)
        return entry

    def mark_builtin(self) -> None:
        """Records every name registered so far as a built-in (called once by the defining ganjax module)."""
        self._builtin = set(self._entries)

    def unregister(self, name: str) -> None:
        """Removes a registered name (tests; built-ins cannot be removed)."""
        if name in self._builtin:
            raise RegistrationError(f"{self.kind} {name!r} is built-in and cannot be removed")
        self._entries.pop(name, None)

    # Lookup ------------------------------------------------------------------
    @property
    def builtin_names(self) -> list[str]:
        return sorted(n for n in self._entries if n in self._builtin)

    @property
    def user_names(self) -> list[str]:
        return sorted(n for n in self._entries if n not in self._builtin)

    def choices(self) -> str:
        """``'a, b, c'``, then ``'; registered: x, y'`` when user entries exist."""
        listed = ", ".join(self.builtin_names)
        if self.user_names:
            listed += f"; registered: {', '.join(self.user_names)}"
        return listed

    def unknown(self, value: object, kind: str | None = None) -> ConfigError:
        """The 'unknown name' error for ``value`` (``kind`` replaces the noun, e.g. ``'model.noise'``)."""
        return ConfigError(f"unknown {kind or self.kind} {value!r}; valid choices: {self.choices()}")

    def lookup(self, name: str) -> T:
        """The entry of ``name``; an unknown name raises ``ConfigError`` listing the valid ones."""
        if not isinstance(name, str) or name not in self._entries:
            raise self.unknown(name)
        return self._entries[name]
