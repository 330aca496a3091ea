"""The trimming policy: which recent messages the working record keeps."""

from __future__ import annotations

from collections.abc import Sequence

from memory.records import Message


def recent_window(messages: Sequence[Message], limit: int) -> tuple[Message, ...]:
    """The newest `limit` messages, never starting on a reply whose question was cut off.

    A reply without its question would read as the bot talking to itself, so the cut moves
    forward to the next user message instead of splitting a user message from its reply.
    """
    kept = list(messages[-limit:]) if limit > 0 else []
    while kept and kept[0].role == "assistant":
        kept.pop(0)
    return tuple(kept)
