"""Prompt assembly under a token budget: what the model is shown for one new message.

Order: system prompt, running summary, relevant older messages (with their dates), then as many
recent messages as fit, newest kept first, then the new message. The whole prompt, as counted by
`memory.tokens`, never exceeds the budget. No single message may take more than a quarter of it:
a longer one is cut with a visible marker instead of pushing everything else out.
"""

from __future__ import annotations

from collections.abc import Sequence

from memory.records import ChatMessage, ConversationRecord, Message
from memory.tokens import (
    TOKENS_PER_MESSAGE,
    TOKENS_PER_PROMPT,
    count_tokens,
    prompt_tokens,
    truncate_to_tokens,
)

CUT_MARKER = " [… cut to fit the memory budget]"
SUMMARY_HEADING = "Summary of your earlier conversations with this person:\n"
RECALL_HEADING = "Older messages from your conversations that may be relevant (with dates):\n"
_SHARE_OF_BUDGET_PER_PART = 4  # summary, recalled memories and any one message: a quarter each


def build_context(
    system_prompt: str,
    record: ConversationRecord,
    text: str,
    *,
    budget: int,
    recalled: Sequence[Message] = (),
) -> list[ChatMessage]:
    """The messages for the model, at most `budget` tokens in all."""
    part_cap = max(budget // _SHARE_OF_BUDGET_PER_PART - TOKENS_PER_MESSAGE, 1)
    system = _message("system", system_prompt, part_cap)
    new = _message("user", text, part_cap)
    left = budget - TOKENS_PER_PROMPT - _tokens(system) - _tokens(new)

    extras: list[ChatMessage] = []
    if record.summary:
        summary = _message("system", SUMMARY_HEADING + record.summary, part_cap)
        if _tokens(summary) <= left:
            extras.append(summary)
            left -= _tokens(summary)

    in_window = {m.id for m in record.unsummarised}
    lines = _recall_lines([m for m in recalled if m.id not in in_window], min(part_cap, left))
    if lines:
        recall = ChatMessage(role="system", content=RECALL_HEADING + "\n".join(lines))
        extras.append(recall)
        left -= _tokens(recall)

    recent: list[ChatMessage] = []
    for message in reversed(record.unsummarised):
        candidate = _message(message.role, message.content, part_cap)
        if _tokens(candidate) > left:
            break
        recent.append(candidate)
        left -= _tokens(candidate)
    recent.reverse()
    if recent and recent[0]["role"] == "assistant":
        recent.pop(0)  # its question did not fit; a lone answer would mislead the model

    # Parts were counted one by one; tokens can merge where text is joined, so check the whole.
    while prompt_tokens([system, *extras, *recent, new]) > budget and (recent or extras):
        (recent or extras).pop(0)
    return [system, *extras, *recent, new]


def _message(role: str, content: str, cap: int) -> ChatMessage:
    return ChatMessage(role=role, content=truncate_to_tokens(content, cap, CUT_MARKER))


def _tokens(message: ChatMessage) -> int:
    return count_tokens(message["content"]) + TOKENS_PER_MESSAGE


def _recall_lines(recalled: Sequence[Message], room: int) -> list[str]:
    """One dated line per recalled message, best first, while they fit in `room` tokens."""
    room -= TOKENS_PER_MESSAGE + count_tokens(RECALL_HEADING)
    line_cap = max(room // 3, 16)
    lines: list[str] = []
    for message in recalled:
        who = "they said" if message.role == "user" else "you answered"
        line = f"- [{message.at.date().isoformat()}, {who}] " + message.content
        line = truncate_to_tokens(line, line_cap, CUT_MARKER)
        cost = count_tokens(line) + 1  # the newline joining it
        if cost > room:
            break
        lines.append(line)
        room -= cost
    return lines
