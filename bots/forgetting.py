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
from collections.abc import Mapping, Sequence
from typing import Any

from botbuilder.core import TurnContext

from bots.replies import forget_confirmation
from bots.wording import (
    FORGET_BUTTON_EXPIRED,
    FORGET_CANCELLED,
    GROUP_FORGET,
    MATCHES_FORGOTTEN,
    wording_for,
)
from memory import ConversationMemory, Ledger
from memory.ledger import Question

log = logging.getLogger(__name__)

FORGET_CONFIRMATION_SECONDS = 300
_TOPIC = "forget"


class Forgetting:
    def __init__(self, memory: ConversationMemory, ledger: Ledger) -> None:
        self.memory = memory
        self.ledger = ledger

    async def ask(
        self,
        turn_context: TurnContext,
        key: str,
        group: bool,
        *,
        question: str = "",
        listing: Sequence[str] = (),
        detail: Mapping[str, str] | None = None,
    ) -> None:
        """Asks, in one message, whether to forget everything, or (with `detail`: the words,
        and `listing`, what mentions them) only what mentions those words; in a group, the
        question first says whose memory it is."""
        asked = await self.ledger.ask(
            key, _TOPIC, sender_of(turn_context), FORGET_CONFIRMATION_SECONDS, detail
        )
        text = question or wording_for(group).forget_question
        if group and not detail:
            text = f"{GROUP_FORGET}\n\n{text}"
        await turn_context.send_activity(forget_confirmation(text, asked.id, listing))

    async def pending(self, key: str, asker: str, sender_key: str) -> Question | None:
        """`key`'s question, if `asker` asked it recently enough for a typed **yes** and has
        said nothing since but this message (`sender_key`: whose deliveries the ledger counts)."""
        return await self._standing_question(key, asker, sender_key, typed=True)

    async def answered_question(
        self, key: str, asker: str, sender_key: str, card_value: Any
    ) -> Question | None:
        """`key`'s standing question, if a card button's press answers it, by who asked it."""
        question_id = card_value.get("question") if isinstance(card_value, dict) else None
        standing = await self._standing_question(key, asker, sender_key, typed=False)
        if (
            standing is None
            or not isinstance(question_id, str)
            or not secrets.compare_digest(question_id, standing.id)
        ):
            return None
        return standing

    async def _standing_question(
        self, key: str, asker: str, sender_key: str, *, typed: bool
    ) -> Question | None:
        question = await self.ledger.question(key, _TOPIC)
        if question is None or question.asker != asker:
            return None
        # Anything typed since the question means they moved on; a typed yes is itself one
        # such message. Button presses are not counted: pressing twice must not void it.
        if await self.ledger.said_since(sender_key, question.asked_at) > (1 if typed else 0):
            return None
        return question

    async def answer(
        self,
        turn_context: TurnContext,
        key: str,
        group: bool,
        confirmed: bool,
        question: Question | None = None,
    ) -> None:
        """Forgets what `question` asked about (everything, unless it names items and messages),
        or says nothing was forgotten. Raises StoreError if the store fails."""
        if not await self.ledger.drop_question(key, _TOPIC):  # answered meanwhile, elsewhere
            await turn_context.send_activity(FORGET_BUTTON_EXPIRED)
            return
        if not confirmed:
            await turn_context.send_activity(FORGET_CANCELLED)
            return
        words = question.detail.get("words") if question is not None else None
        if isinstance(words, str) and words:
            items, messages = await self.memory.forget_matching(key, words)
            log.info("memory partly forgotten at the person's request")
            await turn_context.send_activity(
                MATCHES_FORGOTTEN.format(items=items, messages=messages)
            )
            return
        await self.memory.forget(key)
        log.info("memory forgotten at the person's request")
        await turn_context.send_activity(wording_for(group).forgotten)


def sender_of(turn_context: TurnContext) -> str:
    sender = turn_context.activity.from_property
    return str(sender.id) if sender is not None and sender.id else ""
