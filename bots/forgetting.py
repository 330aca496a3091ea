"""Forgetting: the question `forget` asks, and the answer to it.

A person confirms with the card's button or by typing **yes** within five minutes of the
question; anything else they say in between drops the question. Only the person who asked can
confirm (in a group too), and only that question, while it stands: an old card's button, or
one of another question, forgets nothing. The question is kept in the store's ledger
(`memory.Ledger`), so the answer counts whichever instance of the bot it reaches.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any

from botbuilder.core import TurnContext

from bots.replies import forget_confirmation
from bots.wording import FORGET_CANCELLED, GROUP_FORGET, wording_for
from memory import ConversationMemory, Ledger

log = logging.getLogger(__name__)

FORGET_CONFIRMATION_SECONDS = 300
_TOPIC = "forget"


class Forgetting:
    def __init__(self, memory: ConversationMemory, ledger: Ledger) -> None:
        self.memory = memory
        self.ledger = ledger

    async def ask(self, turn_context: TurnContext, key: str, group: bool) -> None:
        """Asks whether to forget; in a group, first says whose memory that is."""
        question = await self.ledger.ask(
            key, _TOPIC, sender_of(turn_context), FORGET_CONFIRMATION_SECONDS
        )
        if group:
            await turn_context.send_activity(GROUP_FORGET)
        await turn_context.send_activity(
            forget_confirmation(wording_for(group).forget_question, question.id)
        )

    async def pending(self, key: str, asker: str, sender_key: str) -> bool:
        """Whether `asker` asked `key`'s question recently enough for a typed **yes**, and has
        said nothing since but this message (`sender_key`: whose deliveries the ledger counts)."""
        return await self._standing_question_id(key, asker, sender_key) is not None

    async def answers_the_question(
        self, key: str, asker: str, sender_key: str, card_value: Any
    ) -> bool:
        """Whether a card button's press answers `key`'s standing question, by who asked it."""
        question_id = card_value.get("question") if isinstance(card_value, dict) else None
        standing = await self._standing_question_id(key, asker, sender_key)
        return (
            standing is not None
            and isinstance(question_id, str)
            and secrets.compare_digest(question_id, standing)
        )

    async def _standing_question_id(self, key: str, asker: str, sender_key: str) -> str | None:
        question = await self.ledger.question(key, _TOPIC)
        if question is None or question.asker != asker:
            return None
        # This message is one delivery since the question; any other means they moved on.
        if await self.ledger.taken_since(sender_key, question.asked_at) > 1:
            return None
        return question.id

    async def answer(
        self, turn_context: TurnContext, key: str, group: bool, confirmed: bool
    ) -> None:
        """Forgets, or says nothing was forgotten. Raises StoreError if the store fails."""
        await self.ledger.drop_question(key, _TOPIC)
        if not confirmed:
            await turn_context.send_activity(FORGET_CANCELLED)
            return
        await self.memory.forget(key)
        log.info("memory forgotten at the person's request")
        await turn_context.send_activity(wording_for(group).forgotten)


def sender_of(turn_context: TurnContext) -> str:
    sender = turn_context.activity.from_property
    return str(sender.id) if sender is not None and sender.id else ""
