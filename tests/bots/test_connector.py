"""Replies through `bots.connector`: botbuilder's real ConnectorClient, sending over aiohttp to a
local HTTP server that answers the way a connector or a gateway in front of it can; and the
msrest internals `bots.connector` relies on, as the pinned botbuilder and msrest have them."""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import cast

import aiohttp
import msrest.serialization
import pytest
from aiohttp import web
from botbuilder.schema import Activity
from botframework.connector.aio import ConnectorClient
from botframework.connector.auth import MicrosoftAppCredentials
from botframework.connector.models import ErrorResponseException
from msrest.pipeline.async_abc import AsyncPipeline
from msrest.universal_http import ClientRequest
from msrest.universal_http.aiohttp import AioHttpClientResponse

import bots.connector
from bots.connector import _Answer, send_through
from tests.support.app_server import free_port

pytestmark = pytest.mark.integration

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Connector:
    """A connector stand-in on a fixed port; `answer` decides each reply's response."""

    def __init__(self, port: int, answer: Handler) -> None:
        self.port = port
        self.answer = answer
        self.received: list[dict[str, object]] = []
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/v3/conversations/{conversation}/activities/{activity}", self._reply)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _reply(self, request: web.Request) -> web.StreamResponse:
        self.received.append(await request.json())
        return await self.answer(request)


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as shared:
        yield shared


def client_for(port: int, session: aiohttp.ClientSession) -> ConnectorClient:
    credentials = MicrosoftAppCredentials("", "")  # Emulator mode: no token
    return send_through(ConnectorClient(credentials, base_url=f"http://127.0.0.1:{port}"), session)


async def reply(client: ConnectorClient, text: str) -> object:
    activity = Activity(type="message", text=text)
    return await client.conversations.reply_to_activity("conv", "act-1", activity)


async def test_a_success_with_an_empty_body_is_a_delivered_reply(
    session: aiohttp.ClientSession,
) -> None:
    async def empty(_: web.Request) -> web.StreamResponse:
        return web.Response(status=200)

    connector = Connector(free_port(), empty)
    await connector.start()
    try:
        await reply(client_for(connector.port, session), "hello")
    finally:
        await connector.stop()
    assert [a["text"] for a in connector.received] == ["hello"]


async def test_a_gateway_error_without_a_body_is_botbuilders_error_response(
    session: aiohttp.ClientSession,
) -> None:
    async def bad_gateway(_: web.Request) -> web.StreamResponse:
        return web.Response(status=502)

    connector = Connector(free_port(), bad_gateway)
    await connector.start()
    try:
        with pytest.raises(ErrorResponseException):
            await reply(client_for(connector.port, session), "hello")
    finally:
        await connector.stop()
    assert len(connector.received) == 1  # an answered request is not sent again


async def test_a_reply_that_could_not_connect_is_tried_again(
    session: aiohttp.ClientSession,
) -> None:
    async def ok(_: web.Request) -> web.StreamResponse:
        return web.json_response({"id": "reply-1"})

    connector = Connector(free_port(), ok)  # nothing listens there yet
    sending = asyncio.create_task(reply(client_for(connector.port, session), "hello"))
    await asyncio.sleep(0.2)  # the first attempt is refused; the next comes 0.5 s later
    await connector.start()
    try:
        answer = await asyncio.wait_for(sending, timeout=10)
    finally:
        await connector.stop()
    assert getattr(answer, "id", None) == "reply-1"
    assert [a["text"] for a in connector.received] == ["hello"]


async def test_a_reply_the_connector_received_is_never_sent_twice(
    session: aiohttp.ClientSession,
) -> None:
    async def hang_up(request: web.Request) -> web.StreamResponse:
        assert request.transport is not None
        request.transport.close()  # received, then the connection drops with no answer
        return web.Response(status=200)

    connector = Connector(free_port(), hang_up)
    await connector.start()
    try:
        with pytest.raises(aiohttp.ClientError):
            await reply(client_for(connector.port, session), "hello")
    finally:
        await connector.stop()
    assert [a["text"] for a in connector.received] == ["hello"]


async def test_a_connector_that_never_answers_is_given_up_on_within_the_reply_timeout(
    session: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    """msrest would wait 100 s; the turn (and the channel's request) waits for the reply."""
    monkeypatch.setattr(bots.connector, "REPLY_TIMEOUT_SECONDS", 0.5)
    never = asyncio.Event()

    async def hang(request: web.Request) -> web.StreamResponse:
        await never.wait()
        return web.Response(status=200)

    connector = Connector(free_port(), hang)
    await connector.start()
    try:
        started = asyncio.get_running_loop().time()
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(reply(client_for(connector.port, session), "hello"), 10)
        assert asyncio.get_running_loop().time() - started < 5
    finally:
        never.set()
        await connector.stop()
    assert [a["text"] for a in connector.received] == ["hello"]  # sent once, not again


# --------------------------------------------------------------------------- msrest internals


def test_botbuilders_client_sends_and_serializes_through_what_send_through_replaces() -> None:
    client = ConnectorClient(MicrosoftAppCredentials("", ""), base_url="http://127.0.0.1:1")
    # The generated operations send through `client._client`, whose configuration is the
    # client's, and serialize with the client's one serializer.
    assert client._client.config is client.config
    assert isinstance(client.config.pipeline, AsyncPipeline)
    for operations in (client.conversations, client.attachments):
        assert operations._client is client._client
        assert operations._serialize is client._serialize
    # An attribute msrest sets itself: turning it off is not inventing a new one.
    assert client._serialize.client_side_validation is True


async def test_after_send_through_replies_go_through_the_session_and_are_not_validated(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    walked: list[str] = []
    walk: Callable[[str, str, object], object] = msrest.serialization._recursive_validate

    def recording_walk(attr_name: str, attr_type: str, data: object) -> object:
        walked.append(attr_type)
        return walk(attr_name, attr_type, data)

    monkeypatch.setattr(msrest.serialization, "_recursive_validate", recording_walk)
    plain = ConnectorClient(MicrosoftAppCredentials("", ""), base_url="http://127.0.0.1:1")
    plain._serialize.body(Activity(type="message", text="hello"), "Activity")
    assert walked[:1] == ["Activity"], "msrest no longer walks a body where the flag says so"
    walked.clear()

    async def ok(_: web.Request) -> web.StreamResponse:
        return web.json_response({"id": "reply-1"})

    requested: list[str] = []

    async def on_request_start(
        _: aiohttp.ClientSession, __: object, request: aiohttp.TraceRequestStartParams
    ) -> None:
        requested.append(request.url.path)

    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(on_request_start)
    connector = Connector(free_port(), ok)
    await connector.start()
    try:
        async with aiohttp.ClientSession(trace_configs=[trace]) as session:
            client = client_for(connector.port, session)
            await reply(client, "hello")
    finally:
        await connector.stop()
    assert requested == ["/v3/conversations/conv/activities/act-1"]
    assert client._serialize.client_side_validation is False
    assert walked == []


def kept_body(response: AioHttpClientResponse) -> bytes | None:
    return cast(bytes | None, response._body)


async def test_msrests_aiohttp_response_keeps_the_loaded_body_in_body_attribute(
    session: aiohttp.ClientSession,
) -> None:
    bodies = {"/full": b'{"id": "reply-1"}', "/empty": b""}

    async def answer(request: web.Request) -> web.StreamResponse:
        return web.Response(status=200, body=bodies[request.path])

    app = web.Application()
    app.router.add_get("/{kind}", answer)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        for path, body in bodies.items():
            url = f"http://127.0.0.1:{port}{path}"
            async with session.get(url) as answered:
                response = AioHttpClientResponse(ClientRequest("GET", url), answered)
                assert kept_body(response) is None  # `_Answer.body` reads None as "not loaded"
                await response.load_body()
                assert kept_body(response) == body
                if not body:  # why `_Answer` exists: msrest's own refuses an empty body
                    with pytest.raises(ValueError, match="Body is not available"):
                        response.body()
            async with session.get(url) as answered:
                ours = _Answer(ClientRequest("GET", url), answered)
                await ours.load_body()
                assert ours.body() == body
    finally:
        await runner.cleanup()
