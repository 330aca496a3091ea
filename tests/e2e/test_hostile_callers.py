"""With an app id, only callers holding a valid Bot Framework token get a turn.

Tokens are minted by a local identity server (tests/support/identity_server.py) that botbuilder
is pointed at, so the whole auth path runs offline: the channel's OpenID metadata and keys, the
Emulator's, and the bot's own outbound token for its reply. A guard refuses, and records, every
name lookup that would leave this machine. A valid token is shown to work first; otherwise every
401 below would prove nothing.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from bots import signing_keys
from config import settings_from
from model_client import create_chat_model
from tests.e2e.conftest import AppFactory
from tests.support.activities import (
    BOT_APP_ID,
    TENANT_ID,
    USER_AAD_OBJECT_ID,
    emulator_message,
    teams_message,
)
from tests.support.app_server import AppServer
from tests.support.fake_connector import FakeConnector
from tests.support.fake_openai import FakeOpenAI
from tests.support.identity_server import OUTBOUND_SCOPE, IdentityServer
from wiring import create_store

pytestmark = pytest.mark.integration

APP_ID = BOT_APP_ID
APP_PASSWORD = "test-app-password"
OTHER_APP_ID = "11111111-2222-4333-8444-555555555555"
PERSONAL_KEY = f"user/{TENANT_ID}/{USER_AAD_OBJECT_ID}"
LOCAL_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
REFUSED = "The request's Bot Framework token is missing or not valid."


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Names anything tried to look up beyond this machine; every such lookup fails."""
    attempted: list[str] = []
    real_getaddrinfo = socket.getaddrinfo

    def local_only(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else str(host)
        if name not in LOCAL_HOSTS:
            attempted.append(name)
            raise socket.gaierror(socket.EAI_NONAME, f"offline test: {name} is not this machine")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", local_only)
    return attempted


def test_the_offline_guard_refuses_and_records_lookups_beyond_this_machine(
    offline: list[str],
) -> None:
    with pytest.raises(socket.gaierror):
        socket.getaddrinfo("login.botframework.com", 443)
    assert socket.getaddrinfo("127.0.0.1", 443)
    assert offline == ["login.botframework.com"]


@pytest.fixture
async def identity(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[IdentityServer]:
    async with IdentityServer() as server:
        for name, value in server.trust_env().items():
            monkeypatch.setenv(name, value)
        server.register_app(APP_ID, APP_PASSWORD)
        yield server


@pytest.fixture
async def secured_bot(
    base_env: dict[str, str], identity: IdentityServer, offline: list[str]
) -> AsyncIterator[AppServer]:
    """The app with an app id, checking tokens against (and fetching its own from) `identity`."""
    settings = settings_from(
        {**base_env, "MicrosoftAppId": APP_ID, "MicrosoftAppPassword": APP_PASSWORD}
    )
    server = AppServer(
        settings, create_store, create_chat_model, auth_overrides=identity.auth_overrides()
    )
    await server.start()
    yield server
    await server.stop()


async def stored(bot: AppServer, key: str) -> list[str]:
    assert bot.store is not None
    return [m.content for m in (await bot.store.load(key)).messages]


async def test_a_valid_channel_token_gets_a_turn_and_the_reply_carries_the_bots_own_token(
    secured_bot: AppServer,
    identity: IdentityServer,
    connector: FakeConnector,
    model_server: FakeOpenAI,
    offline: list[str],
) -> None:
    token = identity.token(audience=APP_ID, service_url=connector.url)
    status, _ = await secured_bot.post(
        teams_message("my badge is 4471", service_url=connector.url),
        headers=identity.bearer(token),
    )

    assert status in (200, 201)
    assert connector.texts()[-1] == "echo: my badge is 4471"
    assert model_server.last_messages()[-1]["content"] == "my badge is 4471"
    assert await stored(secured_bot, PERSONAL_KEY) == ["my badge is 4471", "echo: my badge is 4471"]
    # Every call to the connector carries the token the bot got for itself, not the caller's.
    outbound = {a["_headers"].get("authorization") for a in connector.activities}
    assert outbound == {f"Bearer {identity.issued_tokens[-1]}"}
    [grant] = [r.form for r in identity.requests if r.path == "/adfs/oauth2/token"]
    assert grant["grant_type"] == "client_credentials"
    assert grant["client_id"] == APP_ID
    assert grant["scope"].split() == [f"{OUTBOUND_SCOPE}/.default"]
    assert "/botframework/keys" in identity.paths()
    assert offline == [], f"tried to reach {offline} from an offline test"


async def test_the_bots_own_token_is_fetched_once_and_reused_across_turns(
    secured_bot: AppServer,
    identity: IdentityServer,
    connector: FakeConnector,
    offline: list[str],
) -> None:
    for n in range(3):
        token = identity.token(audience=APP_ID, service_url=connector.url)
        status, _ = await secured_bot.post(
            teams_message(f"turn {n}", service_url=connector.url), headers=identity.bearer(token)
        )
        assert status in (200, 201)
    assert connector.texts()[-1] == "echo: turn 2"
    grants = [r for r in identity.requests if r.path == "/adfs/oauth2/token"]
    assert len(grants) == 1
    assert offline == []


@pytest.mark.parametrize(
    "expires_in",
    [pytest.param(3600, id="fresh"), pytest.param(-60, id="expired-within-5-min-clock-skew")],
)
async def test_a_valid_emulator_token_gets_a_turn(
    secured_bot: AppServer,
    identity: IdentityServer,
    connector: FakeConnector,
    offline: list[str],
    expires_in: int,
) -> None:
    token = identity.emulator_token(app_id=APP_ID, expires_in=expires_in)
    status, _ = await secured_bot.post(
        emulator_message("hello from the Emulator", service_url=connector.url),
        headers=identity.bearer(token),
    )
    assert status in (200, 201)
    assert connector.texts() == ["echo: hello from the Emulator"]
    assert "/emulator/keys" in identity.paths()
    assert offline == []


Credentials = Callable[[IdentityServer, str], dict[str, str]]
"""The Authorization header a caller sends, given the identity server and the serviceUrl."""

REFUSED_CALLERS: list[Any] = [
    pytest.param(lambda ids, url: {}, id="no-token"),
    pytest.param(lambda ids, url: {"Authorization": "Bearer not-a-jwt"}, id="not-a-jwt"),
    pytest.param(lambda ids, url: {"Authorization": "Basic dXNlcjpwYXNz"}, id="basic-auth"),
    pytest.param(
        lambda ids, url: ids.bearer(ids.token(audience=APP_ID, service_url=url, expires_in=-600)),
        id="expired-beyond-clock-skew",
    ),
    pytest.param(
        lambda ids, url: ids.bearer(
            ids.token(audience=APP_ID, service_url=url, issued_at=time.time() + 3600)
        ),
        id="not-valid-yet",
    ),
    pytest.param(
        lambda ids, url: ids.bearer(ids.token(audience=APP_ID, service_url=url, key="unknown")),
        id="signed-by-an-unknown-key",
    ),
    pytest.param(
        lambda ids, url: ids.bearer(ids.token(audience=APP_ID, service_url=url, key="impostor")),
        id="trusted-key-id-forged-signature",
    ),
    pytest.param(
        lambda ids, url: ids.bearer(ids.token(audience=APP_ID, service_url=url, key="unsigned")),
        id="unsigned-alg-none",
    ),
    pytest.param(
        lambda ids, url: ids.bearer(ids.token(audience=OTHER_APP_ID, service_url=url)),
        id="for-another-app-id",
    ),
    pytest.param(
        lambda ids, url: ids.bearer(
            ids.token(audience=APP_ID, service_url="https://smba.trafficmanager.net/emea/")
        ),
        id="for-another-service-url",
    ),
    pytest.param(
        lambda ids, url: ids.bearer(
            ids.token(audience=APP_ID, service_url=url, issuer="https://issuer.example/")
        ),
        id="from-an-untrusted-issuer",
    ),
    pytest.param(
        lambda ids, url: ids.bearer(ids.emulator_token(app_id=OTHER_APP_ID)),
        id="emulator-token-for-another-app-id",
    ),
]


@pytest.mark.parametrize("credentials", REFUSED_CALLERS)
async def test_a_caller_without_a_valid_token_gets_401_and_nothing_is_stored_or_sent(
    secured_bot: AppServer,
    identity: IdentityServer,
    connector: FakeConnector,
    model_server: FakeOpenAI,
    offline: list[str],
    credentials: Credentials,
) -> None:
    headers = credentials(identity, connector.url)
    status, answer = await secured_bot.post(
        teams_message("store this for me", service_url=connector.url), headers=headers
    )

    assert status == 401, f"expected 401, got {status}: {answer!r}"
    assert answer == {"error": REFUSED}
    assert connector.activities == []
    assert model_server.chat_requests() == []
    assert await stored(secured_bot, PERSONAL_KEY) == []
    assert identity.issued_tokens == [], "the bot asked for a token to answer a refused caller"
    assert offline == [], f"tried to reach {offline} from an offline test"


async def test_a_token_whose_key_is_not_endorsed_for_the_channel_gets_401(
    base_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    connector: FakeConnector,
    model_server: FakeOpenAI,
    offline: list[str],
) -> None:
    """A key the Bot Framework endorses for Teams only cannot speak for another channel."""
    async with IdentityServer(endorsements=["msteams"]) as identity:
        for name, value in identity.trust_env().items():
            monkeypatch.setenv(name, value)
        identity.register_app(APP_ID, APP_PASSWORD)
        settings = settings_from(
            {**base_env, "MicrosoftAppId": APP_ID, "MicrosoftAppPassword": APP_PASSWORD}
        )
        bot = AppServer(
            settings, create_store, create_chat_model, auth_overrides=identity.auth_overrides()
        )
        await bot.start()
        try:
            token = identity.token(audience=APP_ID, service_url=connector.url)
            teams = teams_message("from Teams", service_url=connector.url)
            status, _ = await bot.post(teams, headers=identity.bearer(token))
            assert status in (200, 201)

            elsewhere = {**teams, "channelId": "webchat", "text": "from another channel"}
            status, answer = await bot.post(elsewhere, headers=identity.bearer(token))
            assert status == 401, f"expected 401, got {status}: {answer!r}"
            assert connector.texts() == ["echo: from Teams"]
            assert len(model_server.chat_requests()) == 1
            assert await stored(bot, PERSONAL_KEY) == ["from Teams", "echo: from Teams"]
        finally:
            await bot.stop()
    assert offline == []


@pytest.mark.parametrize(
    "authorization",
    [
        pytest.param("Bearer not-a-jwt", id="not-a-jwt"),
        pytest.param("Bearer a.b.c", id="three-garbage-segments"),
        pytest.param(
            "Bearer eyJhbGciOiJub25lIn0.eyJpc3MiOiJodHRwczovL2lzc3Vlci5leGFtcGxlLyJ9.",
            id="unsigned-from-an-untrusted-issuer",
        ),
    ],
)
async def test_with_the_production_identity_settings_a_bad_token_gets_401_offline(
    make_app: AppFactory,
    connector: FakeConnector,
    model_server: FakeOpenAI,
    offline: list[str],
    authorization: str,
) -> None:
    """No overrides: the identity botbuilder uses in Azure; these fail before any download."""
    bot = await make_app(MicrosoftAppId=APP_ID, MicrosoftAppPassword=APP_PASSWORD)
    status, answer = await bot.post(
        teams_message("hi", service_url=connector.url), headers={"Authorization": authorization}
    )
    assert status == 401, f"expected 401, got {status}: {answer!r}"
    assert connector.activities == []
    assert model_server.chat_requests() == []
    assert await stored(bot, PERSONAL_KEY) == []
    assert offline == [], f"tried to reach {offline} from an offline test"


async def test_when_the_signing_keys_cannot_be_fetched_callers_get_a_503_not_a_500_or_401(
    base_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    connector: FakeConnector,
    model_server: FakeOpenAI,
    offline: list[str],
) -> None:
    """An identity outage is the bot's trouble, not the caller's: say so, and let them retry."""
    identity = IdentityServer()
    await asyncio.to_thread(identity.start)
    overrides = identity.auth_overrides()
    token = identity.token(audience=APP_ID, service_url=connector.url)
    await asyncio.to_thread(identity.stop)  # its metadata URL now refuses connections

    settings = settings_from(
        {**base_env, "MicrosoftAppId": APP_ID, "MicrosoftAppPassword": APP_PASSWORD}
    )
    bot = AppServer(settings, create_store, create_chat_model, auth_overrides=overrides)
    await bot.start()
    try:
        status, answer = await bot.post(
            teams_message("hello", service_url=connector.url), headers=identity.bearer(token)
        )
        assert status == 503, f"expected 503, got {status}: {answer!r}"
        assert isinstance(answer, dict)
        assert "error" in answer
        assert connector.activities == []
        assert model_server.chat_requests() == []
        assert await stored(bot, PERSONAL_KEY) == []
    finally:
        await bot.stop()
    assert offline == []


async def test_when_the_bots_own_credentials_are_refused_the_message_is_kept_and_no_500(
    base_env: dict[str, str],
    identity: IdentityServer,
    connector: FakeConnector,
    model_server: FakeOpenAI,
    offline: list[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A rotated password: the caller is genuine, but the bot cannot get a token to answer."""
    settings = settings_from(
        {**base_env, "MicrosoftAppId": APP_ID, "MicrosoftAppPassword": "rotated-away"}
    )
    bot = AppServer(
        settings, create_store, create_chat_model, auth_overrides=identity.auth_overrides()
    )
    await bot.start()
    try:
        token = identity.token(audience=APP_ID, service_url=connector.url)
        with caplog.at_level(logging.INFO):
            status, _ = await bot.post(
                teams_message("note: the invoice is due Friday", service_url=connector.url),
                headers=identity.bearer(token),
            )
        assert status in (200, 201)
        assert connector.activities == []
        assert identity.issued_tokens == []
        assert await stored(bot, PERSONAL_KEY) == ["note: the invoice is due Friday"]
        assert "sending the reply failed" in caplog.text
        assert APP_PASSWORD not in caplog.text
        assert "rotated-away" not in caplog.text
    finally:
        await bot.stop()
    assert offline == []


async def test_a_request_without_a_token_is_refused_before_its_body_is_read(
    secured_bot: AppServer, offline: list[str]
) -> None:
    # Headers announcing half a MiB, and no body sent at all: a server that read the body before
    # checking for a token would wait for it; this one answers from the headers.
    reader, writer = await asyncio.open_connection("127.0.0.1", secured_bot.port)
    try:
        writer.write(
            b"POST /api/messages HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nContent-Length: 524288\r\n\r\n"
        )
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), timeout=10)
    finally:
        writer.close()
        await writer.wait_closed()
    assert status_line.startswith(b"HTTP/1.1 401")
    assert offline == []


async def test_a_hanging_signing_key_endpoint_never_holds_the_event_loop(
    base_env: dict[str, str],
    identity: IdentityServer,
    connector: FakeConnector,
    monkeypatch: pytest.MonkeyPatch,
    offline: list[str],
) -> None:
    hung, released = asyncio.Event(), asyncio.Event()

    async def never_answers(request: web.Request) -> web.Response:
        hung.set()
        await released.wait()  # until the test is over
        return web.Response(status=504)

    metadata = web.Application()
    metadata.router.add_get("/{tail:.*}", never_answers)
    runner = web.AppRunner(metadata)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    monkeypatch.setattr(signing_keys, "TIMEOUT_SECONDS", 2.0)
    overrides = {
        **identity.auth_overrides(),
        "TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL": f"http://127.0.0.1:{port}/metadata",
    }
    settings = settings_from(
        {**base_env, "MicrosoftAppId": APP_ID, "MicrosoftAppPassword": APP_PASSWORD}
    )
    bot = AppServer(settings, create_store, create_chat_model, auth_overrides=overrides)
    await bot.start()
    try:
        token = identity.token(audience=APP_ID, service_url=connector.url)
        turn = asyncio.create_task(
            bot.post(
                teams_message("hello", service_url=connector.url), headers=identity.bearer(token)
            )
        )
        await asyncio.wait_for(hung.wait(), timeout=10)
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"{bot.url}/healthz", timeout=aiohttp.ClientTimeout(1)) as health,
        ):
            assert health.status == 200  # answered while the key fetch hangs
        status, _ = await turn
        assert status == 503  # the fetch gave up after its timeout
    finally:
        released.set()
        await bot.stop()
        await runner.cleanup()
    assert offline == []
