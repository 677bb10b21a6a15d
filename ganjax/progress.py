"""Progress lines of long loops (training, the one-time classifier training): ETA and step counts."""

from __future__ import annotations

import dataclasses


def format_eta(seconds: float) -> str:
    """``'1h02m03s'`` or ``'2m03s'``."""
    seconds = int(max(0, seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s"


@dataclasses.dataclass
class EtaClock:
    """The ETA of a run, timed from the end of its first (compiling) step in this process.

    Timing from the start would count compilation as training: a 7-second run
    of 20 steps, 5 of them spent compiling, would first say "ETA 0m50s".
    """

    num_steps: int
    t0: float | None = None  # when the first step of this process had finished
    step0: int = 0

    def start(self, step: int, now: float) -> None:
        """Marks the end of the first step (``step``) at time ``now``."""
        self.t0, self.step0 = now, step

    def eta(self, step: int, now: float) -> str:
        """``'1m05s'``, or ``'after the first step'`` while no step after compilation was timed."""
        if self.t0 is None or step <= self.step0 or now <= self.t0:
            return "after the first step"
        rate = (step - self.step0) / (now - self.t0)
        return format_eta((self.num_steps - step) / rate)


def describe_done(first_step: int, step: int) -> str:
    """``'20 steps'``, or after a resume ``'10 steps (21-30; resumed at step 20)'``: only the steps run now."""
    ran = f"{step - first_step} step{'s' if step - first_step != 1 else ''}"
    return f"{ran} ({first_step + 1}-{step}; resumed at step {first_step})" if first_step and step > first_step else ran
