"""The commands a person can type (listed in the manifest so Teams suggests them).

Commands work with or without a leading slash and after an @mention; they never reach the model
and are never stored as chat.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

CONFIRM_FORGET = "memorybot.forget.confirm"
CANCEL_FORGET = "memorybot.forget.cancel"


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


PERSONAL_HELP = """\
I'm MemoryBot. I remember what you tell me in this chat across conversations, so you don't \
have to repeat your context.

What I keep: our messages (the recent ones word for word, older ones as a short summary and in \
a searchable archive), stored in your organisation's own Azure tenant. What you tell me here \
never appears in group chats or channels.

Commands:
- **memory**: what I remember about you
- **export**: everything I keep about you, as JSON
- **forget**: delete everything I remember about you (I ask first)
- **help**: this message"""

GROUP_HELP = """\
I'm MemoryBot. In this chat I answer when you @mention me, and I keep a memory of this \
conversation only, never anyone's private chat with me.

Commands (after @MemoryBot):
- **memory**: what I remember from this conversation
- **export**: this conversation's memory, as JSON
- **forget**: how to clear this conversation's memory
- **help**: this message"""

GROUP_FORGET = """\
In this chat I keep a memory of the conversation, not of any one person, and your private \
chat with me is never used here. Any member of this chat may clear it, since everyone here has \
seen what it holds: I'll ask for confirmation first. To clear what I remember about you \
personally, say **forget** in a 1:1 chat with me."""
