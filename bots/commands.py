"""The commands a person can type (listed in the manifest so Teams suggests them), and what each
one does.

Commands work with or without a leading slash and after an @mention; they never reach the model
and are never stored as chat.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from botbuilder.core import TurnContext

from bots.forgetting import Forgetting
from bots.replies import CANCEL_FORGET, CONFIRM_FORGET, export_activity, payload_bytes
from bots.wording import NO_SUMMARY, SUMMARY, wording_for
from memory import ConversationMemory

TEAMS_EXPORT_BYTES = 24_000  # Teams refuses messages much over ~28 KB


class Command(StrEnum):
    HELP = "help"
    MEMORY = "memory"
    EXPORT = "export"
    FORGET = "forget"


def command_in(text: str) -> Command | None:
    """The command `text` asks for, if it is one: `help`, `/help`, `Help ` all count."""
    word = text.strip().removeprefix("/").strip().lower()
    try:
        return Command(word)
    except ValueError:
        return None


def card_action_in(value: Any) -> str | None:
    """The action of a card button this bot sent (`Action.Submit` data), if any."""
    if isinstance(value, dict):
        action = value.get("action")
        if action in (CONFIRM_FORGET, CANCEL_FORGET):
            return str(action)
    return None


def is_yes(text: str) -> bool:
    return text.strip().lower().rstrip(".!") in {"yes", "y", "yes please", "confirm"}


class Commands:
    """Runs the commands; `forget` only asks (its answer is `Forgetting`'s)."""

    def __init__(self, memory: ConversationMemory, forgetting: Forgetting) -> None:
        self.memory = memory
        self.forgetting = forgetting

    async def run(self, turn_context: TurnContext, key: str, command: Command, group: bool) -> None:
        """Raises StoreError if the store fails."""
        if command is Command.HELP:
            await turn_context.send_activity(wording_for(group).help)
        elif command is Command.MEMORY:
            await turn_context.send_activity(await self._describe_memory(key, group))
        elif command is Command.EXPORT:
            teams = turn_context.activity.channel_id == "msteams"
            export = await self.memory.export(key)
            await turn_context.send_activity(export_activity(_fit(export, teams), teams))
        elif command is Command.FORGET:
            await self.forgetting.ask(turn_context, key, group)

    async def _describe_memory(self, key: str, group: bool) -> str:
        record = await self.memory.recall(key)
        wording = wording_for(group)
        if record.message_count == 0:
            return wording.nothing_remembered
        figures = {"count": record.message_count, "recent": len(record.unsummarised)}
        remembered = (
            wording.remembered_since.format(since=record.since, **figures)
            if record.since
            else wording.remembered.format(**figures)
        )
        summary = SUMMARY.format(summary=record.summary) if record.summary else NO_SUMMARY
        return f"{remembered}\n\n{summary}"


def _fit(export: dict[str, Any], teams: bool) -> dict[str, Any]:
    """In Teams, drop the oldest archived messages until the message that carries the export,
    as it is sent (an indented JSON in a card, escaped again inside the activity), fits."""
    if not teams:
        return export
    archive = list(export["archive"])
    fitted = export
    while archive and payload_bytes(export_activity(fitted, teams)) > TEAMS_EXPORT_BYTES:
        archive = archive[len(archive) // 4 or 1 :]
        fitted = {**export, "archive": archive, "archive_complete": False}
    return fitted
