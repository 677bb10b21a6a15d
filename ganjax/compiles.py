"""Counting XLA compilations, for tests and benchmarks that must not regress into recompiling.

    with CompileCounter() as compiles:
        run()
    print(compiles.count, compiles.seconds, compiles.names)
"""

from __future__ import annotations

import jax

BACKEND_COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"  # recorded once per XLA compilation


class CompileCounter:
    """Counts the XLA compilations (and their seconds) of the ``with`` block, via ``jax.monitoring``."""

    def __init__(self):
        self.count, self.seconds, self.names = 0, 0.0, []

    def _listener(self, event: str, duration_secs: float, **kwargs) -> None:
        if event == BACKEND_COMPILE_EVENT:
            self.count += 1
            self.seconds += duration_secs
            self.names.append(str(kwargs.get("fun_name", "?")))

    def __enter__(self) -> "CompileCounter":
        jax.monitoring.register_event_duration_secs_listener(self._listener)
        return self

    def __exit__(self, *exc) -> None:
        jax.monitoring.unregister_event_duration_listener(self._listener)
