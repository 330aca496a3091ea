"""Forgetting: the question `forget` asks, and the answer to it.

A person confirms with the card's button or by typing **yes** within five minutes of the
question; anything else they say in between drops the question. The questions asked are kept
in this process only: after a restart, or on another instance, the person asks again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from botbuilder.core import TurnContext

from bots.replies import forget_confirmation
from bots.wording import FORGET_CANCELLED, GROUP_FORGET, wording_for
from memory import ConversationMemory

log = logging.getLogger(__name__)

FORGET_CONFIRMATION_SECONDS = 300


class Forgetting:
    def __init__(
        self, memory: ConversationMemory, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.memory = memory
        self.clock = clock
        self._asked: dict[str, float] = {}  # memory key -> when the question was asked

    async def ask(self, turn_context: TurnContext, key: str, group: bool) -> None:
        """Asks whether to forget; in a group, first says whose memory that is."""
        self._asked[key] = self.clock()
        if group:
            await turn_context.send_activity(GROUP_FORGET)
        await turn_context.send_activity(forget_confirmation(wording_for(group).forget_question))

    def pending(self, key: str) -> bool:
        """Whether `key` was asked recently enough for a typed **yes** to confirm."""
        asked = self._asked.get(key)
        return asked is not None and self.clock() - asked < FORGET_CONFIRMATION_SECONDS

    def drop_question(self, key: str) -> None:
        """The person moved on: a later **yes** is an ordinary message."""
        self._asked.pop(key, None)

    async def answer(
        self, turn_context: TurnContext, key: str, group: bool, confirmed: bool
    ) -> None:
        """Forgets, or says nothing was forgotten. Raises StoreError if the store fails."""
        self.drop_question(key)
        if not confirmed:
            await turn_context.send_activity(FORGET_CANCELLED)
            return
        await self.memory.forget(key)
        log.info("memory forgotten at the person's request")
        await turn_context.send_activity(wording_for(group).forgotten)
