"""The ledger: short-lived facts that every instance on one store agrees on, kept as its marks.

- **Deliveries.** A channel delivers a message again when the bot is slow to answer or fails.
  `take` claims a delivery once for every instance sharing the store, so a delivery taken
  already (on this instance or another) is refused: one model call, one answer, one stored turn.
  Taken deliveries also say how many messages someone sent lately (`taken_within`), the measure
  of a rate limit that holds across instances.
- **Questions.** A question put to someone that they answer in a later message, which may reach
  another instance (whether to forget everything): who asked, which question, and when.

Clock: seconds since the epoch. Instances' clocks agree to well under a second in Azure; the
windows here are a minute or more.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from memory.store import MemoryStore

DELIVERY_SECONDS = 600
"""How long a delivery is remembered: channels deliver again within a minute or two (Teams
waits about 15 s for each attempt). It also bounds the marks a key holds: at 20 messages a
minute, 200."""
_DELIVERY = "delivery:"  # every delivery's name starts so: the rate limit counts them all
_SAID = _DELIVERY + "said:"
_PRESSED = _DELIVERY + "pressed:"
_QUESTION = "question:"


@dataclass(frozen=True, slots=True)
class Question:
    asker: str
    id: str
    asked_at: float
    detail: Mapping[str, Any] = field(default_factory=dict)
    """What the question is about, as the asker's handler put it (JSON-ready)."""


class Ledger:
    def __init__(self, store: MemoryStore, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.clock = clock

    async def take(self, key: str, delivery: str, *, said: bool = True) -> bool:
        """Claims `delivery` (a channel's id for one message) for `key`: False when it was
        taken already, by this instance or another. `said`: typed, not a button pressed."""
        return await self.store.mark(
            key,
            _name(delivery, said),
            "",
            now=self.clock(),
            seconds=DELIVERY_SECONDS,
            replace=False,
        )

    async def taken(self, key: str, delivery: str, *, said: bool = True) -> bool:
        """Whether `delivery` was taken already (and stands)."""
        return await self.store.marked(key, _name(delivery, said), now=self.clock()) is not None

    async def give_back(self, key: str, delivery: str, *, said: bool = True) -> None:
        """Releases a delivery whose handling failed, so the channel's next attempt is taken."""
        await self.store.unmark(key, _name(delivery, said))  # whether it stood: no matter

    async def taken_within(self, key: str, seconds: float) -> int:
        """How many deliveries `key` took in the last `seconds`."""
        now = self.clock()
        return await self.store.count_marks(key, _DELIVERY, since=now - seconds, now=now)

    async def said_since(self, key: str, since: float) -> int:
        """How many typed messages (not button presses) `key` sent at or after `since`."""
        return await self.store.count_marks(key, _SAID, since=since, now=self.clock())

    async def ask(
        self,
        key: str,
        topic: str,
        asker: str,
        seconds: float,
        detail: Mapping[str, Any] | None = None,
    ) -> Question:
        """Records that `asker` was asked `key`'s question on `topic`, standing for `seconds`;
        it replaces any earlier one on that topic."""
        question = Question(asker, secrets.token_hex(8), self.clock(), dict(detail or {}))
        value = json.dumps(
            {
                "asker": question.asker,
                "id": question.id,
                "at": question.asked_at,
                "detail": question.detail,
            }
        )
        await self.store.mark(
            key, _QUESTION + topic, value, now=question.asked_at, seconds=seconds, replace=True
        )
        return question

    async def question(self, key: str, topic: str) -> Question | None:
        """`key`'s standing question on `topic`, if any."""
        value = await self.store.marked(key, _QUESTION + topic, now=self.clock())
        if value is None:
            return None
        try:
            fields = json.loads(value)
            detail = fields.get("detail") or {}
            if not isinstance(detail, dict):
                return None
            return Question(str(fields["asker"]), str(fields["id"]), float(fields["at"]), detail)
        except (ValueError, KeyError, TypeError):
            return None  # not one this code wrote: no question stands

    async def drop_question(self, key: str, topic: str) -> bool:
        """Drops `key`'s question on `topic`: True for the one caller that dropped it, so that
        of two answers at once (two instances, a double press) one is acted on."""
        return await self.store.unmark(key, _QUESTION + topic)


def _name(delivery: str, said: bool) -> str:
    return (_SAID if said else _PRESSED) + delivery
