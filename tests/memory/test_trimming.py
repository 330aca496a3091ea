"""The trimming policy keeps the newest messages and never splits a question from its reply."""

import pytest

from memory.records import Message
from memory.trimming import recent_window

pytestmark = pytest.mark.unit


def turns(count: int) -> list[Message]:
    messages: list[Message] = []
    for n in range(count):
        messages += [Message("user", f"q{n}"), Message("assistant", f"a{n}")]
    return messages


def test_keeps_the_newest_messages_up_to_the_limit() -> None:
    kept = recent_window(turns(15), 20)
    assert len(kept) == 20
    assert [m.content for m in kept[:2]] == ["q5", "a5"]
    assert kept[-1].content == "a14"


def test_never_starts_on_a_reply_whose_question_was_cut() -> None:
    kept = recent_window(turns(15), 5)
    assert [m.content for m in kept] == ["q13", "a13", "q14", "a14"]


def test_a_question_without_reply_is_kept() -> None:
    messages = [*turns(2), Message("user", "unanswered")]
    kept = recent_window(messages, 3)
    assert [m.content for m in kept] == ["q1", "a1", "unanswered"]


def test_short_history_is_untouched() -> None:
    messages = turns(2)
    assert recent_window(messages, 20) == tuple(messages)
