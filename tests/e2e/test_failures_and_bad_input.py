"""Bad input gets a 4xx or a polite reply and changes nothing stored; a failing model gets the
person one clear sentence, keeps their message, and the next turn works."""

import asyncio
import json
import logging
from typing import Any

import pytest

from tests.e2e.conftest import AppFactory
from tests.support.activities import emulator_message
from tests.support.app_server import AppServer
from tests.support.fake_connector import FakeConnector
from tests.support.fake_openai import (
    ContentFilterError,
    ContentFilterFinish,
    Disconnect,
    FakeOpenAI,
    Fault,
    Hang,
    Malformed,
    RateLimited,
    ServerError,
)

pytestmark = pytest.mark.integration

USER_KEY = "channel/emulator/emulator-user-1"


async def stored_contents(bot: AppServer) -> list[str]:
    assert bot.store is not None
    return [m.content for m in (await bot.store.load(USER_KEY)).messages]


@pytest.mark.parametrize(
    ("fault", "says"),
    [
        (RateLimited(retry_after=0.01), "busy"),
        (ServerError(500), "unavailable"),
        (ServerError(503), "unavailable"),
        (Hang(seconds=30), "took too long"),
        (Disconnect(), "unavailable"),  # not a timeout, though the transport calls it one
        (ContentFilterError(), "content filter"),
        (ContentFilterFinish(), "content filter"),
        (Malformed(), "couldn't read"),
        (Malformed(body="<html>Bad gateway</html>", content_type="text/html"), "couldn't read"),
    ],
)
async def test_model_failure_gets_one_clear_sentence_and_keeps_the_message(
    make_app: AppFactory,
    connector: FakeConnector,
    model_server: FakeOpenAI,
    fault: Fault,
    says: str,
) -> None:
    bot = await make_app(MODEL_TIMEOUT_SECONDS="0.5")
    model_server.script(fault)
    status, _ = await bot.post(
        emulator_message("please remember Falcon", service_url=connector.url)
    )
    assert status in (200, 201)
    reply = connector.texts()[-1]
    assert says in reply
    assert "Your message was kept" in reply
    assert "Traceback" not in reply
    assert await stored_contents(bot) == ["please remember Falcon"]

    await bot.post(emulator_message("next turn", service_url=connector.url))
    assert connector.texts()[-1] == "echo: next turn"
    assert "please remember Falcon" in [m["content"] for m in model_server.last_messages()]


async def test_a_429_is_retried_with_back_off_before_giving_up(
    make_app: AppFactory, connector: FakeConnector, model_server: FakeOpenAI
) -> None:
    bot = await make_app(MODEL_MAX_RETRIES="2")
    model_server.script(RateLimited(retry_after=0.01), RateLimited(retry_after=0.01))
    await bot.post(emulator_message("hello", service_url=connector.url))
    assert connector.texts()[-1] == "echo: hello"
    assert len(model_server.chat_requests()) == 3


BAD_BODIES: list[tuple[bytes, int]] = [
    (b"{not json", 400),
    (b"[1, 2, 3]", 400),
    (b'"a string"', 400),
    (b'{"text": "no type"}', 400),
    (b'{"type": "message", "text": "no service url"}', 400),
    (b'{"type": 42}', 400),
    (b"[" * 100_000 + b"]" * 100_000, 400),
]


@pytest.mark.parametrize(("body", "status"), BAD_BODIES)
async def test_malformed_requests_get_a_4xx_and_change_nothing(
    bot: AppServer, connector: FakeConnector, model_server: FakeOpenAI, body: bytes, status: int
) -> None:
    await bot.post(emulator_message("kept safe", service_url=connector.url))
    before = await stored_contents(bot)
    requests_before = len(model_server.chat_requests())

    got, answer = await bot.post(None, raw=body)
    assert got == status
    assert isinstance(answer, dict)
    assert "error" in answer
    assert await stored_contents(bot) == before
    assert len(model_server.chat_requests()) == requests_before


async def test_wrong_field_types_and_content_type_are_refused(
    bot: AppServer, connector: FakeConnector
) -> None:
    activity: dict[str, Any] = emulator_message("hi", service_url=connector.url)
    for field, value in [
        ("text", 123),
        ("from", "alice"),
        ("conversation", {"id": 7}),
        ("entities", {"not": "a list"}),
    ]:
        got, answer = await bot.post({**activity, field: value})
        assert got == 400, field
        assert field in answer["error"]
    got, _ = await bot.post(None, raw=b"type=message", headers={"Content-Type": "text/plain"})
    assert got == 415
    assert await stored_contents(bot) == []


async def test_bodies_that_cannot_be_decoded_or_replied_to_get_a_4xx(
    bot: AppServer, connector: FakeConnector, caplog: pytest.LogCaptureFixture
) -> None:
    activity = emulator_message("hi", service_url=connector.url)
    raw = json.dumps(activity).encode()
    got, answer = await bot.post(
        None, raw=raw, headers={"Content-Type": "application/json; charset=no-such-charset"}
    )
    assert (got, "UTF-8" in answer["error"]) == (415, True)
    got, answer = await bot.post(
        None,
        raw=raw,
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},  # it is not
    )
    assert (got, "headers describe" in answer["error"]) == (400, True)
    # A body cut off mid-way by a caller that goes away: nobody to answer, nothing logged loud.
    _, writer = await asyncio.open_connection("127.0.0.1", bot.port)
    writer.write(
        b"POST /api/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 1000\r\n\r\n" + raw[:10]
    )
    await writer.drain()
    writer.close()
    await asyncio.sleep(0.2)
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
    nul = {**activity, "conversation": {"id": "a\u0000b"}}
    got, answer = await bot.post(nul)
    assert (got, "conversation.id" in answer["error"]) == (400, True)
    assert await stored_contents(bot) == []
    assert connector.activities == []


async def test_a_message_without_text_gets_a_polite_reply_and_is_not_stored(
    bot: AppServer, connector: FakeConnector, model_server: FakeOpenAI
) -> None:
    activity = emulator_message("", service_url=connector.url)
    activity["attachments"] = [{"contentType": "image/png", "contentUrl": "https://x/y.png"}]
    status, _ = await bot.post(activity)
    assert status in (200, 201)
    assert "only read text" in connector.texts()[-1]
    assert model_server.chat_requests() == []
    assert await stored_contents(bot) == []


async def test_an_oversized_body_gets_413(make_app: AppFactory, connector: FakeConnector) -> None:
    bot = await make_app(MAX_REQUEST_BYTES="8192")
    status, _ = await bot.post(emulator_message("x" * 20_000, service_url=connector.url))
    assert status == 413
    assert await stored_contents(bot) == []


async def test_a_very_long_message_gets_a_polite_reply_and_is_not_stored(
    bot: AppServer, connector: FakeConnector, model_server: FakeOpenAI
) -> None:
    await bot.post(emulator_message("y" * 100_000, service_url=connector.url))
    assert "too long" in connector.texts()[-1]
    assert model_server.chat_requests() == []
    assert await stored_contents(bot) == []


async def test_unknown_activity_types_are_accepted_and_ignored(
    bot: AppServer, connector: FakeConnector, model_server: FakeOpenAI
) -> None:
    activity = emulator_message("hi", service_url=connector.url)
    status, _ = await bot.post({**activity, "type": "somethingNew"})
    assert status in (200, 201)
    assert connector.messages() == []
    assert model_server.chat_requests() == []


@pytest.mark.parametrize(
    "identity",
    [
        {"MicrosoftAppType": "MultiTenant", "MicrosoftAppPassword": "not-used-in-this-test"},
        {
            "MicrosoftAppType": "SingleTenant",
            "MicrosoftAppPassword": "not-used",
            "MicrosoftAppTenantId": "72f988bf-86f1-41af-91ab-2d7cd011db47",
        },
        {
            "MicrosoftAppType": "UserAssignedMSI",
            "MicrosoftAppTenantId": "72f988bf-86f1-41af-91ab-2d7cd011db47",
        },
    ],
)
async def test_with_an_app_id_a_request_without_a_token_gets_401(
    make_app: AppFactory,
    connector: FakeConnector,
    model_server: FakeOpenAI,
    identity: dict[str, str],
) -> None:
    bot = await make_app(MicrosoftAppId="00000000-0000-4000-8000-000000000001", **identity)
    status, answer = await bot.post(emulator_message("hi", service_url=connector.url))
    assert status == 401
    assert "token" in answer["error"]
    assert connector.activities == []
    assert model_server.chat_requests() == []
    assert await stored_contents(bot) == []


async def test_without_an_app_id_no_token_is_checked_even_if_one_is_sent(
    bot: AppServer, connector: FakeConnector
) -> None:
    """Local mode, as documented: a client that sends some token (an Emulator set up for
    another bot) is answered as one that sends none."""
    status, _ = await bot.post(
        emulator_message("hi", service_url=connector.url),
        headers={"Authorization": "Bearer x.y.z"},
    )
    assert status == 201
    assert await stored_contents(bot) == ["hi", connector.texts()[-1]]
