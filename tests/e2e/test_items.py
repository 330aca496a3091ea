"""Memory items through HTTP, on both stores: the local model server answers the extraction
calls; items appear, are shown with a button each, recalled, corrected, forgotten one by one
and by words, and dictated with `remember`."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any, ClassVar

import pytest
from botbuilder.schema import Activity

from bots.commands import ITEMS_PER_PAGE
from bots.replies import payload_bytes
from bots.wording import (
    ITEM_FORGOTTEN,
    MATCHES_FORGOTTEN,
    NEWER_ITEMS_BUTTON,
    NO_MESSAGES_KEPT,
    OLDER_ITEMS_BUTTON,
    REMEMBERED_ITEM,
)
from memory.items import EXTRACTION_INSTRUCTIONS
from tests.e2e.conftest import AppFactory
from tests.support.activities import emulator_message
from tests.support.app_server import AppServer
from tests.support.fake_connector import FakeConnector
from tests.support.fake_openai import FakeOpenAI, echo_reply, message_text

pytestmark = pytest.mark.integration

KEY = "channel/emulator/emulator-user-1"


class ItemModel:
    """Answers chat with an echo and extraction prompts with items, as a model would: an item
    for each new message that names one of the facts below, replacing a kept item it changes."""

    FACTS: ClassVar[dict[str, tuple[str, str]]] = {
        "Maya": ("fact", "Their daughter Maya starts school in Lyon in September."),
        "black": ("preference", "Takes their coffee black."),
        "milk": ("preference", "Takes their coffee with milk."),
    }

    def __call__(self, messages: list[Any]) -> str:
        if not message_text(messages[0]).startswith(EXTRACTION_INSTRUCTIONS[:60]):
            return echo_reply(messages)
        prompt = message_text(messages[-1])
        kept, _, new = prompt.partition("New messages:")
        items = []
        for number, line in re.findall(r"^\[(\d+)\] (.*)$", new, re.MULTILINE):
            for word, (kind, text) in self.FACTS.items():
                if word in line and "Person:" in line:
                    coffee = re.search(r"^- id (\w+) .*coffee", kept, re.MULTILINE)
                    replaces = [coffee.group(1)] if coffee and "coffee" in text else []
                    items.append(
                        {"kind": kind, "text": text, "sources": [int(number)], "replaces": replaces}
                    )
        return json.dumps({"items": items})


@pytest.fixture(params=["sqlite", "cosmos"])
def store_env(request: pytest.FixtureRequest) -> dict[str, str]:
    if request.param == "cosmos":
        env: dict[str, str] = request.getfixturevalue("cosmos_env")
        return env
    return {}


@pytest.fixture
async def items_bot(
    store_env: dict[str, str], make_app: AppFactory, model_server: FakeOpenAI
) -> AppServer:
    model_server.reply = ItemModel()
    return await make_app(MEMORY_EXTRACT_EVERY="4", **store_env)


async def say(bot: AppServer, connector: FakeConnector, text: str) -> dict[str, Any]:
    await bot.post(emulator_message(text, service_url=connector.url))
    return connector.messages()[-1]


async def press(bot: AppServer, connector: FakeConnector, data: dict[str, Any]) -> str:
    await bot.post(emulator_message("", service_url=connector.url) | {"value": data})
    return connector.texts()[-1]


async def shown_items(
    bot: AppServer, connector: FakeConnector, *texts: str
) -> list[dict[str, Any]]:
    """The `memory` card's items, once they are `texts` (extraction runs in the background)."""
    for _ in range(50):
        card = (await say(bot, connector, "memory"))["attachments"][0]["content"]
        rows = [element for element in card["body"] if element["type"] == "ColumnSet"]
        if [text_of(row) for row in rows] == list(texts):
            return rows
        await asyncio.sleep(0.1)
    raise AssertionError(f"the memory card never showed {texts}: {card}")


def text_of(row: dict[str, Any]) -> str:
    return str(row["columns"][0]["items"][0]["text"])


def button_of(row: dict[str, Any]) -> dict[str, Any]:
    action: dict[str, Any] = row["columns"][1]["items"][0]["actions"][0]["data"]
    return action


async def test_items_appear_are_recalled_corrected_and_forgotten_one_by_one(
    items_bot: AppServer, connector: FakeConnector, model_server: FakeOpenAI
) -> None:
    bot = items_bot
    await say(bot, connector, "My daughter Maya starts school in Lyon in September")
    await say(bot, connector, "I take my coffee black")
    await shown_items(  # newest first
        bot,
        connector,
        "Takes their coffee black.",
        "Their daughter Maya starts school in Lyon in September.",
    )

    await say(bot, connector, "When does Maya start school?")
    quoted = " ".join(message_text(m) for m in model_server.last_messages())
    assert "fact) Their daughter Maya starts school in Lyon in September." in quoted

    await say(bot, connector, "These days I take my coffee with milk")
    rows = await shown_items(  # the black coffee is superseded: kept, not shown
        bot,
        connector,
        "Takes their coffee with milk.",
        "Their daughter Maya starts school in Lyon in September.",
    )
    [black] = [i for i in await exported_items(bot, connector) if "black" in i["text"]]
    assert black["superseded_by"]

    maya = next(row for row in rows if "Maya" in text_of(row))
    assert await press(bot, connector, button_of(maya)) == ITEM_FORGOTTEN.format(text=text_of(maya))
    await shown_items(bot, connector, "Takes their coffee with milk.")


async def exported_items(bot: AppServer, connector: FakeConnector) -> list[dict[str, Any]]:
    exported = await say(bot, connector, "export")
    items: list[dict[str, Any]] = exported["attachments"][0]["content"]["items"]
    return items


async def test_remember_and_forget_by_words_with_one_confirmation(
    items_bot: AppServer, connector: FakeConnector
) -> None:
    bot = items_bot
    assert "I'll remember that" in (await say(bot, connector, "remember I prefer tea"))["text"]
    await say(bot, connector, "The tea house on Rue Cler is lovely")
    await say(bot, connector, "Project Falcon ships in June")
    question = await say(bot, connector, "forget tea")
    assert "text" not in question  # the card alone: Teams would show a text beside it twice
    assert "mentions “tea”" in question["summary"]  # for clients that show no cards
    assert "I prefer tea" in question["summary"]
    assert "The tea house on Rue Cler is lovely" in question["summary"]
    confirm = question["attachments"][0]["content"]["actions"][0]["data"]
    before = len(connector.messages())
    done = await press(bot, connector, confirm)
    assert done == MATCHES_FORGOTTEN.format(items=1, messages=2)  # what was said, and the echo
    assert len(connector.messages()) == before + 1  # one answer
    assert bot.store is not None
    assert await bot.store.search(KEY, ["tea"], 10) == []
    record = await bot.store.load(KEY)
    assert all("tea" not in m.content for m in record.unsummarised)
    assert [i.text for i in record.current_items] == []
    assert sorted(m.content for m in await bot.store.search(KEY, ["Falcon"], 10)) == [
        "Project Falcon ships in June",
        "echo: Project Falcon ships in June",
    ]


async def test_a_link_someone_wrote_never_becomes_a_link_in_the_bots_own_messages(
    items_bot: AppServer, connector: FakeConnector
) -> None:
    bot = items_bot
    phishing = "[Your Teams session expired - sign in again](https://evil.example/login)"
    shown = "[Your Teams session expired - sign in again] (https://evil.example/login)"
    assert (await say(bot, connector, f"remember {phishing}"))["text"] == (
        REMEMBERED_ITEM.format(text=shown)
    )
    question = await say(bot, connector, "forget session")
    card = json.dumps(question["attachments"][0]["content"])
    assert "](" not in card
    assert "](" not in question["summary"]
    assert "sign in again] (https" in card
    nothing = await say(bot, connector, "forget [zebra](mailto:quagga)")  # nothing matches
    assert "](" not in nothing["text"]
    card = (await say(bot, connector, "memory"))["attachments"][0]["content"]
    [row] = [element for element in card["body"] if element["type"] == "ColumnSet"]
    assert text_of(row) == shown
    assert await press(bot, connector, button_of(row)) == ITEM_FORGOTTEN.format(text=shown)
    html = '<a href="https://evil.example/login">Your session expired</a>'
    echoed = (await say(bot, connector, f"remember {html}"))["text"]
    assert "<a" not in echoed  # Teams renders some HTML in a text message
    assert "‹a href=" in echoed


async def test_commands_read_as_people_mean_them_and_answer_within_teams_limits(
    make_app: AppFactory, connector: FakeConnector
) -> None:
    bot = await make_app()
    said = await say(bot, connector, "remember that my badge number is 4471")
    assert said["text"] == REMEMBERED_ITEM.format(text="my badge number is 4471")
    card = await say(bot, connector, "memory")
    assert "text" not in card
    assert NO_MESSAGES_KEPT in card["summary"]  # only what was dictated: no messages kept yet
    for n in range(8):  # emoji take 12 bytes each as sent
        await say(bot, connector, f"remember {n} " + "🎉" * 290)
    card = await say(bot, connector, "memory")
    assert payload_bytes(Activity().deserialize(card)) < 28_000
    rows = [e for e in card["attachments"][0]["content"]["body"] if e["type"] == "ColumnSet"]
    assert rows  # as many as fit
    answer = await say(bot, connector, "forget " + "marigold " * 1500)
    assert len(answer["text"]) < 300  # the words are not echoed back whole
    assert "marigold" in answer["text"]
    status, _ = await bot.post(
        emulator_message("", service_url=connector.url)
        | {"type": "messageUpdate", "channelData": {"eventType": ["not", "a", "string"]}}
    )
    assert status in (200, 201)
    assert "Sorry" not in connector.texts()[-1]


async def test_the_memory_card_pages_older_and_back_to_newer(
    make_app: AppFactory, connector: FakeConnector
) -> None:
    bot = await make_app(RATE_LIMIT_PER_MINUTE="0")
    for n in range(ITEMS_PER_PAGE + 2):
        await say(bot, connector, f"remember note number {n}")

    def buttons(message: dict[str, Any]) -> dict[str, Any]:
        card = message["attachments"][0]["content"]
        return {action["title"]: action["data"] for action in card.get("actions", [])}

    first = buttons(await say(bot, connector, "memory"))
    assert list(first) == [OLDER_ITEMS_BUTTON]
    await press(bot, connector, first[OLDER_ITEMS_BUTTON])
    second = buttons(connector.messages()[-1])
    assert list(second) == [NEWER_ITEMS_BUTTON]  # the last page: only back
    await press(bot, connector, second[NEWER_ITEMS_BUTTON])
    assert buttons(connector.messages()[-1]) == first
