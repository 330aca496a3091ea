"""When a dependency fails mid-run, the person gets one clear sentence (never a 500 or a stack
trace), memory stays consistent, nothing already stored is lost, and the next turn works without
a restart. The connector (the bot's serviceUrl) and the store are failed here; model faults are
in test_failures_and_bad_input.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bots.wording import REPLY_NOT_SAVED, STORE_DOWN_WHILE_FORGETTING, TURN_FAILED
from bots.wording import STORE_DOWN_WHILE_ANSWERING as STORE_DOWN
from tests.e2e.conftest import AppFactory
from tests.support.activities import (
    TENANT_ID,
    USER_AAD_OBJECT_ID,
    ConversationType,
    conversation_update,
    emulator_message,
    teams_message,
)
from tests.support.app_server import AppServer, free_port
from tests.support.cosmos_server import CosmosServer
from tests.support.fake_connector import FakeConnector
from tests.support.fake_openai import FakeOpenAI

pytestmark = pytest.mark.integration

EMULATOR_KEY = "channel/emulator/emulator-user-1"
PERSONAL_KEY = f"user/{TENANT_ID}/{USER_AAD_OBJECT_ID}"


def forget_button(connector: FakeConnector) -> dict[str, Any]:
    """What pressing "Yes, forget" on the last card the bot sent posts back."""
    card = next(m for m in reversed(connector.messages()) if m.get("attachments"))
    data: dict[str, Any] = card["attachments"][0]["content"]["actions"][0]["data"]
    return data


def said(channel: str, text: str, url: str) -> dict[str, Any]:
    if channel == "teams":
        return teams_message(text, service_url=url)  # personal chat: the answer is streamed
    return emulator_message(text, service_url=url)


def key_of(channel: str) -> str:
    return PERSONAL_KEY if channel == "teams" else EMULATOR_KEY


async def stored(bot: AppServer, key: str) -> list[str]:
    assert bot.store is not None
    return [m.content for m in (await bot.store.load(key)).messages]


def prompt_of(model: FakeOpenAI) -> list[str]:
    return [str(m["content"]) for m in model.last_messages()]


def problems(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [f"{r.name}: {r.getMessage()}" for r in caplog.records if r.levelno >= logging.ERROR]


# --------------------------------------------------------------------------- the connector


@pytest.mark.parametrize(
    ("channel", "failure"),
    [
        ("emulator", "answers 500"),
        ("teams", "answers 500"),
        # botbuilder retries a refused connection for about 5 s per activity: one case is enough.
        ("emulator", "is unreachable"),
    ],
)
async def test_when_the_reply_cannot_be_delivered_the_message_is_kept_without_it(
    bot: AppServer,
    connector: FakeConnector,
    model_server: FakeOpenAI,
    caplog: pytest.LogCaptureFixture,
    channel: str,
    failure: str,
) -> None:
    await bot.post(said(channel, "the office moves to Pier 4", connector.url))
    url = connector.url
    if failure == "answers 500":
        connector.fail_next(500, when=lambda a: a["type"] == "message")
    else:
        url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    text = "my flight is BA 283 on Friday"

    with caplog.at_level(logging.INFO):
        status, _ = await bot.post(said(channel, text, url))

    assert status in (200, 201)
    assert f"echo: {text}" not in connector.texts()
    assert "sending the reply failed" in caplog.text
    assert "Traceback" not in caplog.text  # any caller's serviceUrl can cause it: one line
    assert "BA 283" not in caplog.text, "chat text was logged"
    # The person's message is kept; the answer they never saw is not.
    assert await stored(bot, key_of(channel)) == [
        "the office moves to Pier 4",
        "echo: the office moves to Pier 4",
        text,
    ]

    await bot.post(said(channel, "when is my flight?", connector.url))
    assert connector.texts()[-1] == "echo: when is my flight?"
    assert text in prompt_of(model_server)
    assert f"echo: {text}" not in prompt_of(model_server)
    assert "the office moves to Pier 4" in prompt_of(model_server)


@pytest.mark.parametrize("scope", ["personal", "groupChat", "channel"])
async def test_a_person_joining_a_chat_is_not_looked_up_nor_answered_with_an_apology(
    bot: AppServer,
    connector: FakeConnector,
    caplog: pytest.LogCaptureFixture,
    scope: ConversationType,
) -> None:
    """The connector here cannot say who joined (as Teams answers for someone who already
    left, or when throttling): the bot has no use for the answer, so it must not ask, and
    must not post "something went wrong" into a group chat because of it."""
    with caplog.at_level(logging.INFO):
        status, _ = await bot.post(
            conversation_update(
                ["29:1new-member", "29:1another"],
                conversation_type=scope,
                service_url=connector.url,
            )
        )
    assert status in (200, 201)
    assert TURN_FAILED not in connector.texts(), "an apology was posted into the chat"
    assert problems(caplog) == []
    assert connector.activities == []
    assert [(r["method"], r["path"]) for r in connector.unhandled] == [], (
        "the bot looked up each new member, for nothing"
    )


# --------------------------------------------------------------------------- SQLite


@contextlib.contextmanager
def locked_for_writing(path: Path) -> Iterator[sqlite3.Connection]:
    """Another process (a backup, a migration, a second bot) holds SQLite's write lock.

    Taking it waits out the bot's own brief writes (its start-up purge of expired rows)."""
    other = sqlite3.connect(path, isolation_level=None, timeout=5)
    try:
        other.execute("BEGIN IMMEDIATE")
        other.execute("PRAGMA busy_timeout = 0")  # held now: nothing else to wait for
        yield other
        if other.in_transaction:
            other.execute("ROLLBACK")
    finally:
        other.close()


async def test_a_brief_sqlite_lock_by_another_process_is_waited_out(
    bot: AppServer, connector: FakeConnector
) -> None:
    with locked_for_writing(bot.settings.sqlite_path) as other:
        turn = asyncio.create_task(
            bot.post(emulator_message("pick up the parcel", service_url=connector.url))
        )
        # Taking the message in the ledger is a write: it waits on the lock (busy timeout: 5 s).
        await asyncio.sleep(1.0)
        assert not turn.done()
        assert connector.texts() == []
        other.execute("ROLLBACK")
        status, _ = await turn
    assert status in (200, 201)
    assert connector.texts() == ["echo: pick up the parcel"]
    assert await stored(bot, EMULATOR_KEY) == ["pick up the parcel", "echo: pick up the parcel"]


async def test_a_long_sqlite_lock_gets_an_apology_loses_nothing_and_the_bot_recovers(
    bot: AppServer,
    connector: FakeConnector,
    model_server: FakeOpenAI,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await bot.post(emulator_message("my locker code is 4471", service_url=connector.url))
    before = await stored(bot, EMULATOR_KEY)

    with locked_for_writing(bot.settings.sqlite_path), caplog.at_level(logging.INFO):
        status, _ = await bot.post(emulator_message("note this down", service_url=connector.url))
        assert status in (200, 201)
        assert connector.texts()[-2:] == ["echo: note this down", REPLY_NOT_SAVED]

        status, _ = await bot.post(emulator_message("forget", service_url=connector.url))
        assert status in (200, 201)
        assert connector.texts()[-1] == STORE_DOWN_WHILE_FORGETTING  # the question is a write

        await bot.post(emulator_message("memory", service_url=connector.url))  # reads carry on
        assert "I remember 2 messages about you" in connector.texts()[-1]
    assert not any("Traceback" in text for text in connector.texts())
    assert "locker" not in caplog.text, "chat text was logged"

    assert await stored(bot, EMULATOR_KEY) == before, "the outage changed what was stored"
    await bot.post(emulator_message("what is my locker code?", service_url=connector.url))
    assert connector.texts()[-1] == "echo: what is my locker code?"
    assert "my locker code is 4471" in prompt_of(model_server)
    assert await stored(bot, EMULATOR_KEY) == [
        *before,
        "what is my locker code?",
        "echo: what is my locker code?",
    ]


# --------------------------------------------------------------------------- Cosmos DB


@pytest.fixture
async def cosmos_bot(make_app: AppFactory, cosmos_env: dict[str, str]) -> AppServer:
    return await make_app(**cosmos_env)


@pytest.mark.parametrize(
    "outage",
    [
        pytest.param({"status": 503}, id="every-request-503"),
        pytest.param({"reset": True}, id="every-connection-reset"),
    ],
)
async def test_a_cosmos_outage_gets_an_apology_loses_nothing_and_the_bot_recovers(
    cosmos_bot: AppServer,
    cosmos: CosmosServer,
    connector: FakeConnector,
    model_server: FakeOpenAI,
    caplog: pytest.LogCaptureFixture,
    outage: dict[str, Any],
) -> None:
    await cosmos_bot.post(teams_message("my locker code is 4471", service_url=connector.url))
    before = await stored(cosmos_bot, PERSONAL_KEY)
    asked = len(model_server.chat_requests())
    await cosmos_bot.post(teams_message("forget", service_url=connector.url))
    button = teams_message("", service_url=connector.url) | {"value": forget_button(connector)}

    cosmos.inject(**outage)
    try:
        with caplog.at_level(logging.INFO):
            status, _ = await cosmos_bot.post(
                teams_message("note this down", service_url=connector.url)
            )
            assert status in (200, 201)
            assert connector.texts()[-1] == STORE_DOWN

            status, _ = await cosmos_bot.post(button)  # asked before the outage
            assert status in (200, 201)
            assert connector.texts()[-1] == STORE_DOWN_WHILE_FORGETTING

            status, _ = await cosmos_bot.post(teams_message("forget", service_url=connector.url))
            assert status in (200, 201)
            assert connector.texts()[-1] == STORE_DOWN_WHILE_FORGETTING  # the question is a write
    finally:
        cosmos.clear_faults()
    assert len(model_server.chat_requests()) == asked, "answered without its memory"
    assert not any("Traceback" in text for text in connector.texts())
    assert "locker" not in caplog.text, "chat text was logged"

    assert await stored(cosmos_bot, PERSONAL_KEY) == before, "the outage changed what was stored"
    await cosmos_bot.post(teams_message("what is my locker code?", service_url=connector.url))
    assert connector.texts()[-1] == "echo: what is my locker code?"
    assert "my locker code is 4471" in prompt_of(model_server)
    assert await stored(cosmos_bot, PERSONAL_KEY) == [
        *before,
        "what is my locker code?",
        "echo: what is my locker code?",
    ]


async def test_readiness_follows_the_store_while_liveness_stays_up(
    cosmos_bot: AppServer, cosmos: CosmosServer
) -> None:
    async def status_of(path: str) -> int:
        async with aiohttp.ClientSession() as session, session.get(cosmos_bot.url + path) as r:
            return r.status

    assert (await status_of("/readyz"), await status_of("/healthz")) == (200, 200)
    cosmos.inject(status=503)
    try:
        assert (await status_of("/readyz"), await status_of("/healthz")) == (503, 200)
    finally:
        cosmos.clear_faults()
    assert await status_of("/readyz") == 200
