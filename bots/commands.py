"""The commands a person can type (listed in the manifest so Teams suggests them), and what each
one does.

Commands work with or without a leading slash and after an @mention; they never reach the model
and are never stored as chat.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Any

from botbuilder.core import TurnContext

from bots.exporting import Exporting
from bots.forgetting import Forgetting
from bots.replies import CARD_ACTIONS, ItemLine, as_written, in_message, items_card
from bots.wording import (
    ITEM_ALREADY_GONE,
    ITEM_ALREADY_KEPT,
    ITEM_FORGOTTEN,
    ITEM_KINDS,
    ITEM_LINE,
    ITEMS_PAGE_OF,
    MENTIONS,
    NO_ITEMS,
    NO_MESSAGES_KEPT,
    NO_SUMMARY,
    NOTHING_MENTIONS,
    REMEMBER_WHAT,
    REMEMBERED_ITEM,
    SUMMARY,
    SUMMARY_MENTIONS,
    wording_for,
)
from memory import ConversationMemory, ConversationRecord
from memory.items import dictated


class Command(StrEnum):
    HELP = "help"
    MEMORY = "memory"
    REMEMBER = "remember"
    EXPORT = "export"
    FORGET = "forget"


# Commands that take words after them; the others are a word alone ("help me with this" is chat).
_TAKES_WORDS = frozenset({Command.REMEMBER, Command.FORGET})
ITEMS_PER_PAGE = 8


def command_in(text: str) -> tuple[Command, str] | None:
    """The command `text` asks for, if it is one, and the words after it: `help`, `/help`,
    `Help ` all count; so do `remember …` and `forget …`, unless they end in a question mark
    ("remember when we met?" is chat)."""
    word, _, rest = text.strip().removeprefix("/").strip().partition(" ")
    try:
        command = Command(word.lower())
    except ValueError:
        return None
    rest = " ".join(rest.split())
    if rest and (command not in _TAKES_WORDS or rest.endswith("?")):
        return None
    if command is Command.FORGET and _NEVER_MIND.match(rest):
        return None  # "forget it, never mind" is said, not asked
    return command, rest


# What follows "forget" when a person means "never mind", not "forget what mentions these words".
_NEVER_MIND = re.compile(
    r"^(?:about\s+)?(?:it|that|this)\b[\s,.!]*never\s*mind[\s,.!]*$", re.IGNORECASE
)


def card_action_in(value: Any) -> str | None:
    """The action of a card button this bot sent (`Action.Submit` data), if any."""
    if isinstance(value, dict):
        action = value.get("action")
        if isinstance(action, str) and action in CARD_ACTIONS:
            return action
    return None


def is_yes(text: str) -> bool:
    return text.strip().lower().rstrip(".!") in {"yes", "y", "yes please", "confirm"}


class Commands:
    """Runs the commands; `forget` only asks (its answer is `Forgetting`'s), and `export` in a
    Teams personal chat only offers the file (the upload is `Exporting`'s)."""

    def __init__(
        self, memory: ConversationMemory, forgetting: Forgetting, exporting: Exporting
    ) -> None:
        self.memory = memory
        self.forgetting = forgetting
        self.exporting = exporting

    async def run(
        self, turn_context: TurnContext, key: str, command: Command, words: str, group: bool
    ) -> None:
        """Raises StoreError if the store fails."""
        if command is Command.HELP:
            await turn_context.send_activity(wording_for(group).help)
        elif command is Command.MEMORY:
            await self.show_memory(turn_context, key, group, page=1)
        elif command is Command.REMEMBER:
            await turn_context.send_activity(await self._remember(key, words))
        elif command is Command.EXPORT:
            await self.exporting.send(turn_context, key)
        elif command is Command.FORGET and words:
            await self._forget_matching(turn_context, key, words, group)
        elif command is Command.FORGET:
            await self.forgetting.ask(turn_context, key, group)

    async def show_memory(
        self, turn_context: TurnContext, key: str, group: bool, page: int
    ) -> None:
        """The kept things, newest first, a page at a time, and what else is kept."""
        record = await self.memory.recall(key)
        wording = wording_for(group)
        if record.message_count == 0 and not record.current_items:
            await turn_context.send_activity(wording.nothing_remembered)
            return
        newest_first = list(reversed(record.current_items))
        pages = max(1, -(-len(newest_first) // ITEMS_PER_PAGE))
        page = min(max(page, 1), pages)
        shown = newest_first[(page - 1) * ITEMS_PER_PAGE : page * ITEMS_PER_PAGE]
        lines = [
            ItemLine(
                item.id,
                item.text,
                ITEM_LINE.format(kind=ITEM_KINDS.get(item.kind, item.kind), day=item.at),
            )
            for item in shown
        ]
        also_kept = self._also_kept(record, group)
        if not shown:
            also_kept = f"{NO_ITEMS}\n\n{also_kept}"
        elif pages > 1:
            also_kept = f"{ITEMS_PAGE_OF.format(page=page, pages=pages)}\n\n{also_kept}"
        older = page + 1 if page < pages else None
        newer = page - 1 if page > 1 else None
        await turn_context.send_activity(
            items_card(wording.items_title, lines, also_kept, older, newer)
        )

    async def forget_item(self, turn_context: TurnContext, key: str, item_id: object) -> None:
        """A `memory` card's button: forgets that one kept thing."""
        record = await self.memory.recall(key)
        item = next((i for i in record.items if i.id == item_id), None)
        if item is None:
            await turn_context.send_activity(ITEM_ALREADY_GONE)
            return
        await self.memory.forget_items(key, [item.id])
        await turn_context.send_activity(ITEM_FORGOTTEN.format(text=in_message(item.text)))

    async def _remember(self, key: str, words: str) -> str:
        said = dictated(f"remember {words}", command=True)  # "remember that X" keeps X
        if said is None:
            return REMEMBER_WHAT
        item = await self.memory.remember_item(key, said)
        if item is None:
            return ITEM_ALREADY_KEPT
        return REMEMBERED_ITEM.format(text=in_message(item.text))

    async def _forget_matching(
        self, turn_context: TurnContext, key: str, words: str, group: bool
    ) -> None:
        words = words[:MAX_FORGET_WORDS]
        shown = _excerpt(words, 60)
        items, messages, in_summary = await self.memory.matching(key, words)
        if not items and not messages and not in_summary:
            await turn_context.send_activity(NOTHING_MENTIONS.format(words=in_message(shown)))
            return
        more = "+" if len(messages) >= FORGET_LISTED_MESSAGES else ""
        listing = [MENTIONS.format(items=len(items), messages=f"{len(messages)}{more}")]
        listing += [f"- {_excerpt(item.text)}" for item in items[:5]]
        listing += [f"- “{_excerpt(message.content)}”" for message in messages[:5]]
        if in_summary:
            listing.append(SUMMARY_MENTIONS)
        await self.forgetting.ask(
            turn_context,
            key,
            group,
            question=wording_for(group).forget_matching_question.format(words=shown),
            listing=listing,
            detail={"words": words},
        )

    def _also_kept(self, record: ConversationRecord, group: bool) -> str:
        wording = wording_for(group)
        if record.message_count == 0:
            return NO_MESSAGES_KEPT if record.items else wording.nothing_remembered
        figures = {"count": record.message_count, "recent": len(record.unsummarised)}
        remembered = (
            wording.remembered_since.format(since=record.since, **figures)
            if record.since
            else wording.remembered.format(**figures)
        )
        summary = (
            SUMMARY.format(summary=as_written(record.summary)) if record.summary else NO_SUMMARY
        )
        return f"{remembered}\n\n{summary}"


def _excerpt(text: str, limit: int = 80) -> str:
    """What someone wrote, on one line, as written (`as_written`), at most `limit` long."""
    text = " ".join(as_written(text).split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


MAX_FORGET_WORDS = 200  # of `forget <words>` read: a search reads at most 12 terms anyway
FORGET_LISTED_MESSAGES = 50
