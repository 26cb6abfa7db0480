"""Wall time per phase of a training step (rollout, reward, training, weight sync, sleep/wake)."""
from __future__ import annotations

import time
from contextlib import contextmanager

PHASES = ("rollout", "reward", "training", "weight_sync", "sleep_wake", "eval")


class PhaseTimer:
    def __init__(self):
        self.totals = {p: 0.0 for p in PHASES}
        self.step = {p: 0.0 for p in PHASES}

    @contextmanager
    def phase(self, name: str, sync=None):
        """Times the block; `sync` (e.g. torch.cuda.synchronize) runs before the clock stops."""
        if name not in self.totals:
            raise KeyError(f"unknown phase {name!r}; phases: {', '.join(PHASES)}")
        t0 = time.perf_counter()
        try:
            yield
        finally:
            if sync is not None:
                sync()
            dt = time.perf_counter() - t0
            self.totals[name] += dt
            self.step[name] += dt

    def take_step(self) -> dict:
        """This step's times, and a fresh count for the next one."""
        out, self.step = self.step, {p: 0.0 for p in PHASES}
        return out
