"""Per-person rate limit, so one person cannot run up the model bill.

A sliding window per memory key, in this process: with several instances each allows the limit,
so the effective limit is the per-instance figure times the instance count.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable


class RateLimiter:
    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self.clock = clock
        self._recent: dict[str, deque[float]] = {}

    def allow(self, key: str) -> bool:
        """Whether `key` may send another message now; counts it if so. 0 means no limit."""
        if self.per_minute <= 0:
            return True
        now = self.clock()
        recent = self._recent.setdefault(key, deque())
        while recent and now - recent[0] >= 60:
            recent.popleft()
        if len(recent) >= self.per_minute:
            return False
        recent.append(now)
        if len(self._recent) > 10_000:
            self._prune(now)
        return True

    def _prune(self, now: float) -> None:
        for key in [k for k, times in self._recent.items() if not times or now - times[-1] >= 60]:
            del self._recent[key]
