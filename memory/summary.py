"""The running summary: how messages that left the recent window are folded into it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from memory.records import ChatMessage, Message
from memory.tokens import count_tokens, fit_oldest, truncate_to_tokens

CUT_MARKER = " [… cut to fit]"
LINE_TOKENS = 14  # what a line adds around a message's text: its date, who said it, a break
FRAMING_TOKENS = 24  # what a background prompt adds: its two messages and their headings

# The model call memory is given (the chat model's `complete`); memory never imports a client.
Complete = Callable[[Sequence[ChatMessage]], Awaitable[str]]

INSTRUCTIONS = (
    "You keep a running summary of one person's conversations with an assistant, so the "
    "assistant remembers them later. Update the current summary with the new messages, each "
    "of which starts with the date it was said. Keep every durable fact with its date "
    "(YYYY-MM-DD): names of people and how they relate to the person, places, work and "
    "projects, plans and decisions, preferences, and open tasks. Turn relative times such as "
    "'last Saturday' or 'next month' into dates, counting from the message's date. When the "
    "person changes their mind, keep the newest decision and say what it replaced. Drop small "
    "talk. Never add anything that is not in the current summary or the new messages. Write "
    "at most 250 words, one fact per short plain sentence. Reply with the summary only."
)


def summary_prompt(
    previous: str, messages: Sequence[Message], budget: int
) -> tuple[list[ChatMessage], int]:
    """The prompt that folds the oldest of `messages` into the `previous` summary, within about
    `budget` tokens, and how many of them it holds (the others wait for the next summary): the
    previous summary gets at most a quarter of the budget, the messages the rest, whole
    (`fit_oldest`)."""
    previous = truncate_to_tokens(previous, budget // 4, CUT_MARKER) if previous else ""
    room = budget - FRAMING_TOKENS - count_tokens(INSTRUCTIONS) - count_tokens(previous)
    texts = fit_oldest([m.content for m in messages], room, CUT_MARKER, LINE_TOKENS)
    lines = "\n".join(
        f"[{m.at.date().isoformat()}] {'Person' if m.role == 'user' else 'Assistant'}: {text}"
        for m, text in zip(messages, texts, strict=False)
    )
    return [
        ChatMessage(role="system", content=INSTRUCTIONS),
        ChatMessage(
            role="user",
            content=f"Current summary:\n{previous or '(none yet)'}\n\nNew messages:\n{lines}",
        ),
    ], len(texts)
