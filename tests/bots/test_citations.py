"""Teams citations from an answer's [n] markers: which sources, in what shape, within limits."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import jsonschema
import pytest

from bots.citations import MAX_CITATIONS, citations, cited, without_markers
from bots.replies import answer_activity
from memory import Message, Source
from memory.records import Role

pytestmark = pytest.mark.unit

MAY_3 = datetime(2026, 5, 3, 9, 30, tzinfo=UTC)

# The citation claim Teams renders, as Microsoft documents it ("Bot messages with AI-generated
# content"; the Agents SDK's ClientCitation): a Claim at a position, shown as a DigitalDocument
# whose name is at most 80 characters and whose abstract at most 160.
TEAMS_CITATION = {
    "type": "object",
    "required": ["@type", "position", "appearance"],
    "properties": {
        "@type": {"const": "Claim"},
        "position": {"type": "integer", "minimum": 1},
        "appearance": {
            "type": "object",
            "required": ["@type", "name", "abstract"],
            "properties": {
                "@type": {"const": "DigitalDocument"},
                "name": {"type": "string", "minLength": 1, "maxLength": 80},
                "abstract": {"type": "string", "minLength": 1, "maxLength": 160},
            },
        },
    },
}
TEAMS_AI_MESSAGE = {
    "type": "object",
    "required": ["type", "@type", "@context", "additionalType", "citation"],
    "properties": {
        "type": {"const": "https://schema.org/Message"},
        "@type": {"const": "Message"},
        "@context": {"const": "https://schema.org"},
        "additionalType": {"const": ["AIGeneratedContent"]},
        "citation": {"type": "array", "maxItems": 20, "items": TEAMS_CITATION},
    },
}


def sources(*texts: str, role: Role = "user", author: str = "") -> list[Source]:
    return [Source(n, Message(role, text, MAY_3, author=author)) for n, text in enumerate(texts, 1)]


def test_only_the_sources_an_answer_cites_become_citations_in_the_order_cited() -> None:
    found = sources("My manager is Grace Hopper", "I like tea", "Falcon ships in June")
    answer = "Grace Hopper is your manager [1], and Falcon ships in June [3][1]. See [9]."
    assert [s.number for s in cited(answer, found)] == [1, 3]
    [first, third] = citations(answer, found, group=False)
    assert first == {
        "@type": "Claim",
        "position": 1,
        "appearance": {
            "@type": "DigitalDocument",
            "name": "Our chat on 3 May 2026",
            "abstract": "You said: My manager is Grace Hopper",
        },
    }
    assert third["position"] == 3
    assert citations("No markers here.", found, group=False) == []


def test_a_group_citation_names_the_chat_and_who_said_it() -> None:
    [claim] = citations("Ada said so [1].", sources("Deploy on Friday", author="Ada"), group=True)
    assert claim["appearance"]["name"] == "This chat on 3 May 2026"
    assert claim["appearance"]["abstract"] == "Ada said: Deploy on Friday"
    [answer] = citations("[1]", sources("Use the blue form", role="assistant"), group=True)
    assert answer["appearance"]["abstract"] == "I answered: Use the blue form"


def test_citations_keep_within_teams_limits_and_shape() -> None:
    many = sources(*[f"fact {n} " + "word " * 100 + "\nline two" for n in range(30)])
    answer = " ".join(f"[{n}]" for n in range(1, 31))
    claims = citations(answer, many, group=False)
    assert len(claims) == MAX_CITATIONS
    activity = answer_activity(answer, citations=claims).serialize()
    [label] = [e for e in activity["entities"] if e["type"] == "https://schema.org/Message"]
    jsonschema.validate(label, TEAMS_AI_MESSAGE)
    abstract = claims[0]["appearance"]["abstract"]
    assert abstract.endswith("…")
    assert "\n" not in abstract


def test_an_answer_without_citations_carries_none() -> None:
    activity: dict[str, Any] = answer_activity("hello").serialize()
    [label] = [e for e in activity["entities"] if e["type"] == "https://schema.org/Message"]
    assert "citation" not in label


def test_what_is_remembered_has_no_markers_of_this_prompt() -> None:
    found = sources("a", "b")
    assert without_markers("It is a [1]. And b [2][1]; not [7].", found) == (
        "It is a. And b; not [7]."
    )


@pytest.mark.parametrize(
    "answer",
    [
        "Use `matrix[1][2]` here.",
        "```\nvalue = items[1]\n```",
        "See https://example.com/a[1] and arr[1] and m[1][2].",
        "Zero-padded [01] and full-width [\uff11] are not markers.",
        "A markdown link [1](https://example.com) is a link.",
    ],
)
def test_brackets_in_code_urls_and_links_are_not_citations(answer: str) -> None:
    found = sources("a")
    assert cited(answer, found) == []
    assert without_markers(answer, found) == answer


def test_a_marker_after_a_word_and_punctuation_is_a_citation() -> None:
    found = sources("a", "b")
    answer = "It is a [1]. And (see [2]), also [1]:"
    assert [s.number for s in cited(answer, found)] == [1, 2]
    assert without_markers(answer, found) == "It is a. And (see), also:"
