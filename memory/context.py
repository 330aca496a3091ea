"""Prompt assembly under a token budget: what the model is shown for one new message.

Order: system prompt, running summary, relevant older messages (with their dates), then as many
recent messages as fit, newest kept first, then the new message. The whole prompt, as counted by
`memory.tokens`, never exceeds the budget. No single message may take more than a quarter of it:
a longer one is cut with a visible marker instead of pushing everything else out.
"""

from __future__ import annotations

from collections.abc import Sequence

from memory.records import ChatMessage, ConversationRecord, Message
from memory.tokens import TOKENS_PER_MESSAGE, TOKENS_PER_PROMPT, count_tokens, fit_to_tokens

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
    """The messages for the model, at most `budget` tokens in all.

    Each part is encoded once and its count kept: the parts are separate messages, so their
    counts add up to exactly what `memory.tokens.prompt_tokens` says of the whole prompt.
    """
    part_cap = max(budget // _SHARE_OF_BUDGET_PER_PART - TOKENS_PER_MESSAGE, 1)
    system, system_tokens = _message("system", system_prompt, part_cap)
    new, new_tokens = _message("user", text, part_cap)
    left = budget - TOKENS_PER_PROMPT - system_tokens - new_tokens

    extras: list[tuple[ChatMessage, int]] = []
    if record.summary:
        summary = _message("system", SUMMARY_HEADING + record.summary, part_cap)
        if summary[1] <= left:
            extras.append(summary)
            left -= summary[1]

    in_window = {m.id for m in record.unsummarised}
    lines = _recall_lines([m for m in recalled if m.id not in in_window], min(part_cap, left))
    if lines:
        content = RECALL_HEADING + "\n".join(lines)
        recall = (ChatMessage(role="system", content=content), _tokens(content))
        extras.append(recall)
        left -= recall[1]

    recent: list[tuple[ChatMessage, int]] = []
    for message in reversed(record.unsummarised):
        candidate = _message(message.role, message.content, part_cap)
        if candidate[1] > left:
            break
        recent.append(candidate)
        left -= candidate[1]
    recent.reverse()
    if recent and recent[0][0]["role"] == "assistant":
        left += recent.pop(0)[1]  # its question did not fit; a lone answer would mislead

    # Recall lines were counted one by one; joined, their tokens can merge: check the whole.
    while left < 0 and (recent or extras):
        left += (recent or extras).pop(0)[1]
    return [system, *(m for m, _ in extras), *(m for m, _ in recent), new]


def _message(role: str, content: str, cap: int) -> tuple[ChatMessage, int]:
    """A message cut to `cap` tokens, and what it costs in the prompt."""
    fitted, tokens = fit_to_tokens(content, cap, CUT_MARKER)
    return ChatMessage(role=role, content=fitted), tokens + TOKENS_PER_MESSAGE


def _tokens(content: str) -> int:
    return count_tokens(content) + TOKENS_PER_MESSAGE


def _recall_lines(recalled: Sequence[Message], room: int) -> list[str]:
    """One dated line per recalled message, best first, while they fit in `room` tokens."""
    room -= TOKENS_PER_MESSAGE + count_tokens(RECALL_HEADING)
    line_cap = max(room // 3, 16)
    lines: list[str] = []
    for message in recalled:
        who = "they said" if message.role == "user" else "you answered"
        line = f"- [{message.at.date().isoformat()}, {who}] " + message.content
        line, tokens = fit_to_tokens(line, line_cap, CUT_MARKER)
        cost = tokens + 1  # the newline joining it
        if cost > room:
            break
        lines.append(line)
        room -= cost
    return lines
