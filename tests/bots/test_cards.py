"""Every Adaptive Card the bot sends is valid for the Adaptive Card schema version Teams renders
(1.5), as Microsoft's own renderer, npm `adaptivecards` (pinned in package.json), reads it:
tests/support/adaptive_card_check.js runs its parser and validation at 1.5 and checks every
property name against its object model. Teams drops what it cannot read without a word, so a
card that is wrong here shows a person less than the bot meant.

The cards are built by `bots.replies` with the sentences a person reads and awkward content,
and captured end to end: sent through /api/messages to the fake connector."""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bots.replies import (
    ADAPTIVE_CARD_VERSION,
    ItemLine,
    as_written,
    forget_confirmation,
    items_card,
)
from bots.wording import (
    GROUP_CHAT,
    GROUP_FORGET,
    ITEM_KINDS,
    ITEM_LINE,
    ITEMS_PAGE_OF,
    MENTIONS,
    NO_ITEMS,
    PERSONAL_CHAT,
    SUMMARY,
)
from config import settings_from
from model_client import create_chat_model
from tests.support.activities import teams_message
from tests.support.app_server import AppServer
from tests.support.fake_connector import FakeConnector
from wiring import create_store

REPO = Path(__file__).resolve().parents[2]
CHECKER = REPO / "tests" / "support" / "adaptive_card_check.js"
ADAPTIVE = "application/vnd.microsoft.card.adaptive"
DAY = datetime(2026, 3, 7, tzinfo=UTC)


def problems_of(cards: list[dict[str, Any]]) -> list[list[str]]:
    """For each card, what the Adaptive Cards renderer finds wrong with it at 1.5."""
    node = shutil.which("node")
    assert node, "the card checks need Node.js (and `npm ci` for adaptivecards)"
    result = subprocess.run(  # noqa: S603 - fixed argv, no shell
        [node, str(CHECKER)],
        input=json.dumps(cards),
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    found: list[list[str]] = json.loads(result.stdout)
    return found


def assert_valid(cards: list[dict[str, Any]]) -> None:
    assert cards
    for card, problems in zip(cards, problems_of(cards), strict=True):
        assert problems == [], json.dumps(card, indent=1)[:2000]


def cards_in(activity: Any) -> list[dict[str, Any]]:
    sent = activity if isinstance(activity, dict) else activity.serialize()
    return [a["content"] for a in sent.get("attachments") or [] if a["contentType"] == ADAPTIVE]


def item_line(n: int, text: str, kind: str = "fact") -> ItemLine:
    return ItemLine(f"item-{n}", text, ITEM_LINE.format(kind=ITEM_KINDS[kind], day=DAY))


AWKWARD = [
    "Leads the **Falcon** budget review; reports to Grace <Hopper> & [co](https://example.com)",
    "Prefers answers in français, 日本語 or emoji 🧠",
    "x" * 2_000,
]


@pytest.mark.unit
def test_the_bots_cards_are_valid_at_the_version_teams_renders() -> None:
    assert ADAPTIVE_CARD_VERSION == "1.5"
    remembered = PERSONAL_CHAT.remembered_since.format(count=2412, recent=20, since=DAY)
    also_kept = f"{remembered}\n\n{SUMMARY.format(summary='They lead the budget review.')}"
    lines = [item_line(n, text) for n, text in enumerate(AWKWARD)]
    lines.append(item_line(9, "Ship in May", "decision"))
    activities = [
        forget_confirmation(PERSONAL_CHAT.forget_question, "3f9a0c1d2e4b5a69"),
        forget_confirmation(f"{GROUP_FORGET}\n\n{GROUP_CHAT.forget_question}", "3f9a0c1d2e4b5a69"),
        forget_confirmation(
            PERSONAL_CHAT.forget_matching_question.format(words="falcon budget"),
            "0123456789abcdef",
            [MENTIONS.format(items=2, messages=7), *(f"- {text}" for text in AWKWARD)],
        ),
        items_card(PERSONAL_CHAT.items_title, lines, also_kept, older_page=2),
        items_card(
            GROUP_CHAT.items_title,
            lines[:1],
            f"{ITEMS_PAGE_OF.format(page=3, pages=3)}\n\n{also_kept}",
            older_page=None,
            newer_page=2,
        ),
        items_card(PERSONAL_CHAT.items_title, lines[:2], also_kept, older_page=3, newer_page=1),
        items_card(PERSONAL_CHAT.items_title, [], f"{NO_ITEMS}\n\n{also_kept}", None),
    ]
    cards = [card for activity in activities for card in cards_in(activity)]
    assert len(cards) == len(activities)
    assert_valid(cards)


@pytest.mark.unit
@pytest.mark.parametrize(
    ("card", "problem"),
    [
        ({"type": "AdaptiveCard", "version": "1.6", "body": []}, "Teams renders 1.5"),
        (
            {"type": "AdaptiveCard", "version": "1.5", "body": [{"type": "CodeBlock"}]},
            'Unknown element type "CodeBlock"',
        ),
        (
            {"type": "AdaptiveCard", "version": "1.5", "body": [{"type": "Carousel"}]},
            'Unknown element type "Carousel"',  # Adaptive Cards 1.6
        ),
        (
            {
                "type": "AdaptiveCard",
                "version": "1.5",
                "body": [{"type": "TextBlock", "text": "x", "weight": "Heavy"}],
            },
            'Invalid value "Heavy"',
        ),
        (
            {
                "type": "AdaptiveCard",
                "version": "1.5",
                "body": [{"type": "TextBlock", "text": "x", "wrapp": True}],
            },
            "$.body[0].wrapp: not a property of TextBlock",
        ),
        (
            {
                "type": "AdaptiveCard",
                "version": "1.5",
                "body": [{"type": "Input.Text", "id": "a"}, {"type": "Input.Text", "id": "a"}],
            },
            'Duplicate Id "a"',
        ),
        (
            {
                "type": "AdaptiveCard",
                "version": "1.5",
                "actions": [{"type": "Action.Submit", "title": str(n)} for n in range(7)],
            },
            "Maximum number of actions exceeded",
        ),
    ],
)
def test_the_check_finds_what_teams_would_drop(card: dict[str, Any], problem: str) -> None:
    (found,) = problems_of([card])
    assert any(problem in line for line in found), found


@pytest.mark.integration
async def test_the_cards_sent_through_http_are_valid(tmp_path: Path) -> None:
    """The `memory` card and the forget questions, as the fake connector received them."""
    settings = settings_from({"SQLITE_PATH": str(tmp_path / "memory.db")})  # the offline model
    server = AppServer(settings, create_store, create_chat_model)
    await server.start()
    try:
        async with FakeConnector() as connector:
            personal = [
                "remember I lead the <Falcon> budget review & report to Grace",
                "remember my badge is 4471",
                "memory",
                "forget",
                "forget falcon",
            ]
            for text in personal:
                await server.post(teams_message(text, service_url=connector.url))
            group = ["remember the launch is in May", "memory", "forget"]
            for text in group:
                said = teams_message(
                    text, conversation_type="groupChat", mention_bot=True, service_url=connector.url
                )
                await server.post(said)
            cards = [card for sent in connector.messages() for card in cards_in(sent)]
    finally:
        await server.stop()
    assert len(cards) == 5  # two `memory` cards, three forget questions
    assert_valid(cards)


@pytest.mark.unit
def test_text_someone_wrote_loses_hidden_controls_but_keeps_the_joiners_words_need() -> None:
    # A right-to-left override and a zero-width space could disguise what is shown; ZWJ joins
    # an emoji family, ZWNJ is part of how Persian words are spelled.
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"
    persian = "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645"
    shown = as_written(f"pay\u202eevil\u200b {family} {persian}\x07 [x](https://e.example)")
    assert shown == f"payevil {family} {persian} [x] (https://e.example)"
