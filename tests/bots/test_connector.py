"""Replies through `bots.connector`: botbuilder's real ConnectorClient, sending over aiohttp to a
local HTTP server that answers the way a connector or a gateway in front of it can."""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import pytest
from aiohttp import web
from botbuilder.schema import Activity
from botframework.connector.aio import ConnectorClient
from botframework.connector.auth import MicrosoftAppCredentials
from botframework.connector.models import ErrorResponseException

from bots.connector import send_through
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
