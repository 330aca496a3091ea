"""Forgetting: the question `forget` asks, and the answer to it.

A person confirms with the card's button or by typing **yes** within five minutes of the
question; anything else they say in between drops the question. Only the person who asked can
confirm (in a group too), and only that question, while it stands: an old card's button, or
one of another question, forgets nothing. The questions asked are kept in this process only
(at most MAX_QUESTIONS, the oldest dropped first): after a restart, or on another instance, the
person asks again.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botbuilder.core import TurnContext

from bots.replies import forget_confirmation
from bots.wording import FORGET_CANCELLED, GROUP_FORGET, wording_for
from memory import ConversationMemory

log = logging.getLogger(__name__)

FORGET_CONFIRMATION_SECONDS = 300
MAX_QUESTIONS = 10_000


@dataclass(frozen=True, slots=True)
class _Question:
    asked_at: float
    asker: str
    question_id: str


class Forgetting:
    def __init__(
        self, memory: ConversationMemory, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.memory = memory
        self.clock = clock
        self._asked: OrderedDict[str, _Question] = OrderedDict()  # by memory key

    async def ask(self, turn_context: TurnContext, key: str, group: bool) -> None:
        """Asks whether to forget; in a group, first says whose memory that is."""
        question = _Question(self.clock(), sender_of(turn_context), secrets.token_hex(8))
        self._asked[key] = question
        self._asked.move_to_end(key)
        while len(self._asked) > MAX_QUESTIONS:
            self._asked.popitem(last=False)
        if group:
            await turn_context.send_activity(GROUP_FORGET)
        await turn_context.send_activity(
            forget_confirmation(wording_for(group).forget_question, question.question_id)
        )

    def pending(self, key: str, asker: str) -> bool:
        """Whether `asker` asked `key`'s question recently enough for a typed **yes**."""
        question = self._asked.get(key)
        return (
            question is not None
            and question.asker == asker
            and self.clock() - question.asked_at < FORGET_CONFIRMATION_SECONDS
        )

    def answers_the_question(self, key: str, asker: str, card_value: Any) -> bool:
        """Whether a card button's press answers `key`'s standing question, by who asked it."""
        question_id = card_value.get("question") if isinstance(card_value, dict) else None
        question = self._asked.get(key)
        return (
            self.pending(key, asker)
            and question is not None
            and isinstance(question_id, str)
            and secrets.compare_digest(question_id, question.question_id)
        )

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


def sender_of(turn_context: TurnContext) -> str:
    sender = turn_context.activity.from_property
    return str(sender.id) if sender is not None and sender.id else ""
