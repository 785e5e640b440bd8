"""Seconds spent per phase of a long operation (the import's per-phase split)."""

import time
from contextlib import contextmanager


class Phases:
    """Wall-clock seconds per named phase, accumulated over repeated entries.

    `with phases("items"): ...` adds the block's duration to "items"; so does `phases.lap("items")`
    for the time since the previous start() or lap(). Phases appear in the order first entered.
    Cheap enough to wrap every batch (two clock reads).
    """

    def __init__(self, names=()):
        self.seconds: dict[str, float] = dict.fromkeys(names, 0.0)  # the order to report them in
        self._mark = time.perf_counter()

    def start(self) -> None:
        """Start the clock of lap()."""
        self._mark = time.perf_counter()

    def lap(self, name: str) -> None:
        """Add the time since the last start() or lap() to `name`: for code that runs phase after phase."""
        now = time.perf_counter()
        self.add(name, now - self._mark)
        self._mark = now

    @contextmanager
    def __call__(self, name: str):
        started = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - started)

    def add(self, name: str, seconds: float) -> None:
        self.seconds[name] = self.seconds.get(name, 0.0) + seconds

    def total(self) -> float:
        return sum(self.seconds.values())

    def lines(self, total: float | None = None) -> list[str]:
        """One "name  seconds  share" line per phase, shares of `total` (default: the phases' sum)."""
        total = total or self.total() or 1.0
        width = max((len(name) for name in self.seconds), default=0)
        return [f"  {name:<{width}}  {seconds:7.2f}s  {seconds / total:6.1%}" for name, seconds in self.seconds.items()]
