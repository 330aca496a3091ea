"""Prompt assembly under a token budget: what the model is shown for one new message.

Order: system prompt, running summary, remembered older messages (grouped under the day they
were said, oldest first), the current conversation's recent messages, then the new message. The
whole prompt, as counted by `memory.tokens`, never exceeds the budget.

How the budget is shared:
- the recent window takes what the current conversation needs: its messages back to the last
  pause of more than CONVERSATION_GAP (at least the last exchange), at most a quarter of the
  budget;
- recalled messages take the rest, best first, each with the message before and after it (often
  the question it answers, or the answer) where they fit; none of what the window shows;
- what recall leaves unused goes to older recent messages.
No single message, summary or line may take more than a quarter of the budget: a longer one is
cut with a visible marker instead of pushing everything else out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from memory.records import Around, ChatMessage, ConversationRecord, Message
from memory.tokens import TOKENS_PER_MESSAGE, TOKENS_PER_PROMPT, count_tokens, fit_to_tokens

CUT_MARKER = " [… cut to fit the memory budget]"
SUMMARY_HEADING = "Summary of your earlier conversations with this person:\n"
RECALL_HEADING = (
    "Older messages from your conversations that may be relevant, oldest first, "
    "under the day they were said:\n"
)
CONVERSATION_GAP = timedelta(minutes=30)  # a longer pause ends a conversation
_SHARE_OF_BUDGET_PER_PART = 4  # summary, recent window and any one message: a quarter each
_SPEAKERS = {"user": "they said", "assistant": "you answered"}


def build_context(
    system_prompt: str,
    record: ConversationRecord,
    text: str,
    *,
    budget: int,
    recalled: Sequence[Message] = (),
    neighbours: Mapping[str, Around] | None = None,
    now: datetime | None = None,
) -> list[ChatMessage]:
    """The messages for the model, at most `budget` tokens in all.

    `recalled` is best first; `neighbours` gives, by a recalled message's id, the messages said
    just before and just after it. `now` tells whether the recent messages are still the current
    conversation (without it they are).
    """
    part_cap = max(budget // _SHARE_OF_BUDGET_PER_PART - TOKENS_PER_MESSAGE, 1)
    system, system_tokens = _message("system", system_prompt, part_cap)
    new, new_tokens = _message("user", text, part_cap)
    left = budget - TOKENS_PER_PROMPT - system_tokens - new_tokens

    summary: list[tuple[ChatMessage, int]] = []
    if record.summary:
        candidate = _message("system", SUMMARY_HEADING + record.summary, part_cap)
        if candidate[1] <= left:
            summary.append(candidate)
            left -= candidate[1]

    history = record.unsummarised
    window = _current_conversation(history, now, min(part_cap, left), part_cap)
    left -= sum(tokens for _, tokens in window)
    shown = {message.id for message, _ in window}

    line_cap = max(min((left - count_tokens(RECALL_HEADING)) // 3, part_cap), 16)
    chosen, recall_tokens = _recall(recalled, neighbours or {}, shown, left, line_cap)
    if chosen:
        left -= recall_tokens
        shown |= {message.id for message in chosen}

    # What recall left unused goes to older recent messages, newest first, contiguous.
    for message in reversed(history[: len(history) - len(window)]):
        if message.id in shown:
            continue
        fitted = _message(message.role, message.content, part_cap)
        if fitted[1] > left:
            break
        window.insert(0, (message, fitted[1]))
        left -= fitted[1]
    while window and window[0][0].role == "assistant":
        left += window.pop(0)[1]  # its question did not fit; a lone answer would mislead

    recall = _recall_message(chosen, line_cap) if chosen else []
    recent = [_message(m.role, m.content, part_cap) for m, _ in window]
    extras = [*summary, *recall]
    # Lines were counted one by one; joined, their tokens can merge: check the whole.
    total = TOKENS_PER_PROMPT + system_tokens + new_tokens
    total += sum(tokens for _, tokens in (*extras, *recent))
    while total > budget and (recent or extras):
        total -= (recent or extras).pop(0)[1]
    return [system, *(m for m, _ in extras), *(m for m, _ in recent), new]


def _current_conversation(
    history: Sequence[Message], now: datetime | None, room: int, part_cap: int
) -> list[tuple[Message, int]]:
    """The messages of the conversation under way, newest first until `room` is used, returned
    oldest first with their costs: back to the last pause longer than CONVERSATION_GAP, or only
    the last exchange when the conversation has paused since."""
    window: list[tuple[Message, int]] = []
    over = bool(history) and now is not None and now - history[-1].at > CONVERSATION_GAP
    later = history[-1].at if history else None
    for message in reversed(history):
        paused = later is not None and later - message.at > CONVERSATION_GAP
        if (over or paused) and len(window) >= 2:
            break
        tokens = _message(message.role, message.content, part_cap)[1]
        if tokens > room:
            break
        window.insert(0, (message, tokens))
        room -= tokens
        later = message.at
    return window


def _recall(
    recalled: Sequence[Message],
    neighbours: Mapping[str, Around],
    shown: set[str],
    room: int,
    line_cap: int,
) -> tuple[list[Message], int]:
    """The recalled messages that fit in `room` tokens (each with its neighbours where they fit,
    none already shown) in the order they were said, and what their block costs."""
    room -= TOKENS_PER_MESSAGE + count_tokens(RECALL_HEADING)
    chosen: dict[str, tuple[Message, int]] = {}  # with its side of the hit: -1, 0 or 1
    days: set[str] = set()
    spent = TOKENS_PER_MESSAGE + count_tokens(RECALL_HEADING)

    def cost(message: Message) -> int:
        day = message.at.date().isoformat()
        heading = 0 if day in days else count_tokens(f"{day}:") + 1
        return heading + fit_to_tokens(_line(message), line_cap, CUT_MARKER)[1] + 1

    for hit in recalled:
        if hit.id in shown or hit.id in chosen:
            continue
        price = cost(hit)
        if price > room:
            continue  # a shorter one further down may still fit
        before, after = neighbours.get(hit.id, (None, None))
        for message, side in ((hit, 0), (before, -1), (after, 1)):
            if message is None or message.id in shown or message.id in chosen:
                continue
            price = cost(message)
            if price > room:
                continue
            chosen[message.id] = (message, side)
            days.add(message.at.date().isoformat())
            room -= price
            spent += price
    # A reply shares its question's time: the side keeps them in the order they were said.
    ordered = sorted(chosen.values(), key=lambda entry: (entry[0].at, entry[1]))
    return [message for message, _ in ordered], spent if chosen else 0


def _recall_message(chosen: Sequence[Message], line_cap: int) -> list[tuple[ChatMessage, int]]:
    """The recall block: lines grouped under their day, in the order they were said."""
    lines: list[str] = []
    day = ""
    for message in chosen:
        if message.at.date().isoformat() != day:
            day = message.at.date().isoformat()
            lines.append(f"{day}:")
        lines.append(fit_to_tokens(_line(message), line_cap, CUT_MARKER)[0])
    content = RECALL_HEADING + "\n".join(lines)
    tokens = count_tokens(content) + TOKENS_PER_MESSAGE
    return [(ChatMessage(role="system", content=content), tokens)]


def _line(message: Message) -> str:
    return f"- {_SPEAKERS[message.role]}: {message.content}"


def _message(role: str, content: str, cap: int) -> tuple[ChatMessage, int]:
    """A message cut to `cap` tokens, and what it costs in the prompt."""
    fitted, tokens = fit_to_tokens(content, cap, CUT_MARKER)
    return ChatMessage(role=role, content=fitted), tokens + TOKENS_PER_MESSAGE
