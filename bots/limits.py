"""Per-person rate limit, so one person cannot run up the model bill or the store's.

A sliding window per person (`bots.identity.sender_key_for`: across all their chats, and each
member of a group on their own), counting every message that reaches a handler, commands
included. This is the first check, in this process and at no cost: a flood from one person is
refused without a store request. The limit that holds across instances is the second check,
`MemoryBot`'s count of the person's messages taken in the store's ledger (`memory.Ledger`). At
most MAX_PEOPLE windows are kept here, the least recently seen dropped first, so each call is
O(1) however many people there are.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable

MAX_PEOPLE = 10_000


class RateLimiter:
    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self.clock = clock
        self._recent: OrderedDict[str, deque[float]] = OrderedDict()
        self._told: OrderedDict[str, float] = OrderedDict()  # when each was last told

    def allow(self, key: str) -> bool:
        """Whether `key` may send another message now; counts it if so. 0 means no limit."""
        if self.per_minute <= 0:
            return True
        now = self.clock()
        recent = self._recent.get(key)
        if recent is None:
            recent = self._recent[key] = deque()
            if len(self._recent) > MAX_PEOPLE:
                self._recent.popitem(last=False)  # the least recently seen person
        self._recent.move_to_end(key)
        while recent and now - recent[0] >= 60:
            recent.popleft()
        if len(recent) >= self.per_minute:
            return False
        recent.append(now)
        return True

    def first_refusal(self, key: str) -> bool:
        """Whether a refused message from `key` is the first in a minute, so that a burst over
        the limit is told once, not once a message."""
        now = self.clock()
        told = self._told.get(key)
        if told is not None and now - told < 60:
            return False
        self._told[key] = now
        self._told.move_to_end(key)
        if len(self._told) > MAX_PEOPLE:
            self._told.popitem(last=False)
        return True

    def __len__(self) -> int:
        return len(self._recent)
