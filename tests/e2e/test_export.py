"""`export` through /api/messages, on both stores: in a Teams personal chat a file consent card,
then on Allow the whole export uploaded to a stand-in for the person's OneDrive and a card that
opens it; elsewhere parts, each small enough for Teams, that join into everything. Every export
is checked against docs/export.schema.json, and holds more than 1,000 archived messages."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from botbuilder.schema import Activity

import bots.exporting
from bots.exporting import EXPORT_PART_BYTES, FILE_CONSENT, FILE_INFO
from bots.identity import memory_key_for
from bots.wording import (
    EXPORT_FILE_DECLINED,
    EXPORT_FILE_EXPIRED,
    EXPORT_FILE_FAILED,
    EXPORT_FILE_SAVED,
    EXPORT_INTRO,
    EXPORT_PART,
    EXPORT_TOO_MANY_PARTS,
)
from memory import MemoryStore
from tests.e2e.conftest import AppFactory
from tests.memory.test_store_behaviour import archive
from tests.support.activities import (
    TENANT_ID,
    USER_AAD_OBJECT_ID,
    emulator_message,
    file_consent_invoke,
    teams_message,
)
from tests.support.app_server import AppServer
from tests.support.export_format import check, join_parts, part_in
from tests.support.fake_connector import FakeConnector
from tests.support.fake_onedrive import FakeOneDrive

pytestmark = pytest.mark.integration

PERSONAL_KEY = f"user/{TENANT_ID}/{USER_AAD_OBJECT_ID}"
ARCHIVED = 1100  # past the 1,000 an export used to stop at
SOMEONE_ELSE = "0b3c8e6a-7d2f-4c1e-9a5b-6f4e3d2c1b0a"


@pytest.fixture(params=["sqlite", "cosmos"])
def store_env(request: pytest.FixtureRequest) -> dict[str, str]:
    """Settings for each store; asked for here, so that SQLite-only runs need no Node.js."""
    if request.param == "cosmos":
        return dict(request.getfixturevalue("cosmos_env"))
    return {}


@pytest.fixture
async def bot(store_env: dict[str, str], make_app: AppFactory) -> AppServer:
    return await make_app(RATE_LIMIT_PER_MINUTE="0", MEMORY_MAX_MESSAGES="4", **store_env)


@pytest.fixture
async def sqlite_bot(make_app: AppFactory) -> AppServer:
    return await make_app(RATE_LIMIT_PER_MINUTE="0", MEMORY_MAX_MESSAGES="4")


@pytest.fixture
async def drive() -> AsyncIterator[FakeOneDrive]:
    async with FakeOneDrive() as server:
        yield server


def store_of(bot: AppServer) -> MemoryStore:
    assert bot.store is not None
    return bot.store


def as_posted(activity: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in activity.items() if not k.startswith("_")}


async def offer(bot: AppServer, connector: FakeConnector) -> dict[str, Any]:
    """Says `export` in the personal chat; the file consent card the bot answers with."""
    await bot.post(teams_message("export", service_url=connector.url))
    sent = connector.messages()[-1]
    (card,) = sent["attachments"]
    assert card["contentType"] == FILE_CONSENT, sent
    assert "**Allow**" in sent["text"]
    return dict(card)


async def answer(
    bot: AppServer, connector: FakeConnector, invoke: dict[str, Any]
) -> tuple[int, str | None]:
    """Posts a file consent answer; the invoke's status and what the person read after it."""
    seen = len(connector.messages())
    status, _ = await bot.post(invoke)
    said = connector.messages()[seen:]
    return status, (said[-1].get("text") if said else None)


async def test_in_a_personal_chat_allow_uploads_the_whole_export_made_at_that_moment(
    bot: AppServer,
    connector: FakeConnector,
    drive: FakeOneDrive,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(bots.exporting, "UPLOAD_CHUNK_BYTES", 64 * 1024)  # several PUTs
    await archive(store_of(bot), PERSONAL_KEY, ARCHIVED)
    await bot.post(
        teams_message("remember I lead the Falcon budget review", service_url=connector.url)
    )
    card = await offer(bot, connector)
    assert re.fullmatch(r"memorybot-export-\d{4}-\d{2}-\d{2}\.json", card["name"])
    content = card["content"]
    assert set(content) == {"description", "sizeInBytes", "acceptContext", "declineContext"}
    assert content["sizeInBytes"] > ARCHIVED * 100
    (offer_id,) = content["acceptContext"].values()  # the offer's id: nothing of the memory
    assert len(json.dumps(content["acceptContext"])) < 64

    await bot.post(teams_message("also: we ship in May", service_url=connector.url))
    info = drive.upload_info(card["name"])
    invoke = file_consent_invoke(
        "accept", content["acceptContext"], info, service_url=connector.url
    )
    status, said = await answer(bot, connector, invoke)
    assert (status, said) == (200, EXPORT_FILE_SAVED)

    exported = json.loads(drive.files[info["uniqueId"]])
    check(exported, "export")
    stored = [m.id for m in await store_of(bot).archived(PERSONAL_KEY)]
    assert [m["id"] for m in exported["archive"]] == stored
    assert exported["archive_count"] == len(stored) == ARCHIVED + 2
    assert exported["archive"][-2]["content"] == "also: we ship in May"  # said after the offer
    assert [i["text"] for i in exported["items"]] == ["I lead the Falcon budget review"]
    puts = [r for r in drive.requests if r["session"] == info["uniqueId"]]
    assert len(puts) > 3
    assert all("Authorization" not in r["headers"] for r in puts)

    (file_card,) = connector.messages()[-1]["attachments"]
    assert file_card == {
        "contentType": FILE_INFO,
        "contentUrl": info["contentUrl"],
        "name": info["name"],
        "content": {"uniqueId": info["uniqueId"], "fileType": "json"},
    }

    # Delivered again (Teams retries a slow invoke): handled once. Pressed again: answered once.
    assert await answer(bot, connector, invoke) == (200, None)
    again = file_consent_invoke("accept", {"export": offer_id}, drive.upload_info("again.json"))
    again["serviceUrl"] = connector.url
    assert await answer(bot, connector, again) == (200, EXPORT_FILE_EXPIRED)
    assert len(drive.files) == 1


async def test_decline_saves_nothing_and_ends_the_offer(
    sqlite_bot: AppServer, connector: FakeConnector, drive: FakeOneDrive
) -> None:
    await sqlite_bot.post(teams_message("I work on Falcon", service_url=connector.url))
    context = (await offer(sqlite_bot, connector))["content"]["declineContext"]
    declined = file_consent_invoke("decline", context, service_url=connector.url)
    assert await answer(sqlite_bot, connector, declined) == (200, EXPORT_FILE_DECLINED)
    accepted = file_consent_invoke(
        "accept", context, drive.upload_info("x.json"), service_url=connector.url
    )
    assert await answer(sqlite_bot, connector, accepted) == (200, EXPORT_FILE_EXPIRED)
    assert drive.requests == []


async def test_a_flood_of_consent_answers_is_held_to_the_rate_limit(
    make_app: AppFactory, connector: FakeConnector
) -> None:
    bot = await make_app(RATE_LIMIT_PER_MINUTE="3")
    declined = [
        file_consent_invoke("decline", {"export": f"x{n}"}, service_url=connector.url)
        for n in range(12)
    ]
    answers = await asyncio.gather(*(bot.post(activity) for activity in declined))
    assert [status for status, _ in answers] == [200] * 12  # every invoke is answered
    told = [text for text in connector.texts() if "faster than I can take them" in text]
    assert len(told) == 1  # once, not once an invoke
    assert 1 <= len(connector.messages()) - len(told) <= 3  # the limit's worth are answered


@pytest.mark.parametrize(
    "how",
    ["forged", "not an object", "someone else's", "expired", "replaced by a newer offer"],
)
async def test_an_offer_uploads_only_for_who_asked_while_it_stands(
    sqlite_bot: AppServer,
    connector: FakeConnector,
    drive: FakeOneDrive,
    monkeypatch: pytest.MonkeyPatch,
    how: str,
) -> None:
    """The accept context comes back from the client: what it says is checked against the
    offer standing in the ledger for the memory of whoever pressed Allow."""
    if how == "expired":
        monkeypatch.setattr(bots.exporting, "EXPORT_CONSENT_SECONDS", 0.5)
    await sqlite_bot.post(teams_message("my badge is 4471", service_url=connector.url))
    context: Any = (await offer(sqlite_bot, connector))["content"]["acceptContext"]
    who = USER_AAD_OBJECT_ID
    if how == "forged":
        context = {"export": "0123456789abcdef"}
    elif how == "not an object":
        context = json.dumps(context)
    elif how == "someone else's":
        who = SOMEONE_ELSE
        await sqlite_bot.post(teams_message("hello", aad_object_id=who, service_url=connector.url))
    elif how == "expired":
        await asyncio.sleep(0.7)
    else:
        await offer(sqlite_bot, connector)
    invoke = file_consent_invoke(
        "accept",
        context,
        drive.upload_info("x.json"),
        aad_object_id=who,
        service_url=connector.url,
    )
    assert await answer(sqlite_bot, connector, invoke) == (200, EXPORT_FILE_EXPIRED)
    assert drive.requests == []


@pytest.mark.parametrize("where", ["a failing OneDrive", "a URL that is not https"])
async def test_a_failed_upload_says_so_and_loses_nothing(
    sqlite_bot: AppServer, connector: FakeConnector, drive: FakeOneDrive, where: str
) -> None:
    await sqlite_bot.post(teams_message("my badge is 4471", service_url=connector.url))
    kept = await store_of(sqlite_bot).load(PERSONAL_KEY)
    context = (await offer(sqlite_bot, connector))["content"]["acceptContext"]
    info = drive.upload_info("x.json")
    if where == "a failing OneDrive":
        drive.fail_with = 500
    else:
        info["uploadUrl"] = "http://onedrive.invalid/upload/1"  # refused before any request
    invoke = file_consent_invoke("accept", context, info, service_url=connector.url)
    assert await answer(sqlite_bot, connector, invoke) == (200, EXPORT_FILE_FAILED)
    assert drive.files == {}
    assert await store_of(sqlite_bot).load(PERSONAL_KEY) == kept

    drive.fail_with = None  # `export` again: a new offer, and this time it works
    context = (await offer(sqlite_bot, connector))["content"]["acceptContext"]
    info = drive.upload_info("x.json")
    invoke = file_consent_invoke("accept", context, info, service_url=connector.url)
    assert await answer(sqlite_bot, connector, invoke) == (200, EXPORT_FILE_SAVED)
    assert "my badge is 4471" in drive.files[info["uniqueId"]].decode()


async def test_in_a_group_chat_the_export_comes_in_parts_that_join_into_everything(
    bot: AppServer, connector: FakeConnector, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bots.exporting, "PART_PAUSE_SECONDS", 0.01)
    said = teams_message(
        "export", conversation_type="groupChat", mention_bot=True, service_url=connector.url
    )
    key = memory_key_for(Activity().deserialize(said))
    assert key is not None
    await archive(store_of(bot), key, ARCHIVED)
    await bot.post(said)
    sent = connector.messages()
    assert len(sent) > 3
    parts = []
    for n, message in enumerate(sent, start=1):
        assert len(json.dumps(as_posted(message)).encode()) <= EXPORT_PART_BYTES
        assert message["text"].startswith(EXPORT_PART.format(part=n, parts=len(sent)))
        part = part_in(message)
        check(part, "part")
        parts.append(part)
    whole = join_parts(parts)
    check(whole, "export")
    assert [m["id"] for m in whole["archive"]] == [m.id for m in await store_of(bot).archived(key)]
    assert whole["archive_count"] == ARCHIVED


async def test_an_export_too_large_to_post_is_refused_whole(
    sqlite_bot: AppServer, connector: FakeConnector, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bots.exporting, "EXPORT_MAX_PARTS", 2)
    said = teams_message(
        "export", conversation_type="channel", mention_bot=True, service_url=connector.url
    )
    key = memory_key_for(Activity().deserialize(said))
    assert key is not None
    await archive(store_of(sqlite_bot), key, ARCHIVED)
    await sqlite_bot.post(said)
    (refusal,) = connector.messages()
    assert refusal["text"].startswith(EXPORT_TOO_MANY_PARTS.split("{")[0])
    assert not refusal.get("attachments")


async def test_in_the_emulator_a_small_export_is_one_json_attachment(
    sqlite_bot: AppServer, connector: FakeConnector
) -> None:
    await sqlite_bot.post(emulator_message("I work on Falcon", service_url=connector.url))
    await sqlite_bot.post(emulator_message("export", service_url=connector.url))
    sent = connector.messages()[-1]
    assert sent["text"] == EXPORT_INTRO
    (attachment,) = sent["attachments"]
    assert attachment["contentType"] == "application/json"
    assert attachment["name"] == "memorybot-export.json"
    part = attachment["content"]
    check(part, "part")
    export = join_parts([part])
    check(export, "export")
    assert [m["content"] for m in export["archive"]] == [
        "I work on Falcon",
        "echo: I work on Falcon",
    ]
