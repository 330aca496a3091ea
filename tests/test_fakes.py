"""Checks that the test-support fakes behave like the services they stand in for.

The real ``openai`` client talks to ``FakeOpenAI``; a plain aiohttp client plays the bot
talking to ``FakeConnector``.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import aiohttp
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from tests.support.activities import BOT_ID, teams_message
from tests.support.fake_connector import FakeConnector
from tests.support.fake_openai import (
    ContentFilterError,
    ContentFilterFinish,
    FakeOpenAI,
    Hang,
    RateLimited,
    ServerError,
)

pytestmark = pytest.mark.integration

USER: list[ChatCompletionMessageParam] = [{"role": "user", "content": "remember my cat Tom"}]


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI() as server:
        yield server


@pytest.fixture
async def client(fake: FakeOpenAI) -> AsyncIterator[openai.AsyncOpenAI]:
    """No retries, short timeout; closed after the test so no socket outlives its loop."""
    async with openai.AsyncOpenAI(
        base_url=fake.base_url, api_key="sk-test", max_retries=0, timeout=5.0
    ) as api:
        yield api


async def test_plain_completion_is_recorded(fake: FakeOpenAI, client: openai.AsyncOpenAI) -> None:
    completion = await client.chat.completions.create(model="gpt-4o", messages=USER)

    assert completion.choices[0].message.content == "echo: remember my cat Tom"
    assert completion.usage is not None
    assert completion.usage.prompt_tokens == 4
    assert fake.last_messages() == USER
    assert fake.requests[-1]["headers"]["authorization"] == "Bearer sk-test"


async def test_streaming_arrives_in_several_chunks(
    fake: FakeOpenAI, client: openai.AsyncOpenAI
) -> None:
    stream = await client.chat.completions.create(model="gpt-4o", messages=USER, stream=True)
    pieces = [chunk.choices[0].delta.content or "" async for chunk in stream if chunk.choices]

    assert len(pieces) > 3
    assert "".join(pieces) == "echo: remember my cat Tom"


async def test_rate_limit_then_success_with_one_retry(
    fake: FakeOpenAI, client: openai.AsyncOpenAI
) -> None:
    fake.script(RateLimited(retry_after=0.05))

    retrying = client.with_options(max_retries=1)
    completion = await retrying.chat.completions.create(model="gpt-4o", messages=USER)

    assert completion.choices[0].message.content == "echo: remember my cat Tom"
    assert len(fake.requests) == 2
    assert fake.pending_faults == 0


@pytest.mark.parametrize("status", [500, 503])
async def test_server_errors_raise_internal_server_error(
    fake: FakeOpenAI, client: openai.AsyncOpenAI, status: int
) -> None:
    fake.script(ServerError(status))
    with pytest.raises(openai.InternalServerError) as raised:
        await client.chat.completions.create(model="gpt-4o", messages=USER)
    assert raised.value.status_code == status


async def test_hang_times_out_the_client(fake: FakeOpenAI, client: openai.AsyncOpenAI) -> None:
    fake.script(Hang(30))
    started = time.monotonic()
    with pytest.raises(openai.APITimeoutError):
        await client.with_options(timeout=0.2).chat.completions.create(
            model="gpt-4o", messages=USER
        )
    assert time.monotonic() - started < 2


async def test_azure_content_filter_raises_bad_request(fake: FakeOpenAI) -> None:
    fake.script(ContentFilterError())
    async with openai.AsyncAzureOpenAI(
        azure_endpoint=fake.azure_endpoint,
        azure_deployment="chat",
        api_version="2024-10-21",
        api_key="azure-key",
        max_retries=0,
    ) as azure:
        with pytest.raises(openai.BadRequestError) as raised:
            await azure.chat.completions.create(model="gpt-4o", messages=USER)

    assert raised.value.code == "content_filter"
    body = raised.value.body
    assert isinstance(body, dict)
    assert body["innererror"]["content_filter_result"]["violence"]["filtered"] is True
    request = fake.requests[-1]
    assert request["path"] == "/openai/deployments/chat/chat/completions"
    assert request["query"] == {"api-version": "2024-10-21"}
    assert request["headers"]["api-key"] == "azure-key"


async def test_content_filter_finish_reason_returns_empty_content(
    fake: FakeOpenAI, client: openai.AsyncOpenAI
) -> None:
    fake.script(ContentFilterFinish())
    completion = await client.chat.completions.create(model="gpt-4o", messages=USER)

    assert completion.choices[0].finish_reason == "content_filter"
    assert completion.choices[0].message.content is None


async def test_embeddings_are_deterministic(fake: FakeOpenAI, client: openai.AsyncOpenAI) -> None:
    api = client.embeddings
    first = await api.create(model="text-embedding-3-small", input=["my cat Tom", "weather"])
    again = await api.create(model="text-embedding-3-small", input="my cat Tom")

    assert len(first.data[0].embedding) == 64
    assert first.data[0].embedding == pytest.approx(again.data[0].embedding)
    assert first.data[0].embedding != pytest.approx(first.data[1].embedding)


async def test_connector_records_a_reply_and_can_fail() -> None:
    incoming = teams_message("hello", mention_bot=True, conversation_type="channel")
    conversation = incoming["conversation"]["id"]
    async with FakeConnector() as connector, aiohttp.ClientSession() as http:
        url = f"{connector.url}/v3/conversations/{conversation}/activities/{incoming['id']}"
        reply = {"type": "message", "text": "hi!", "from": {"id": BOT_ID}}

        connector.fail_next(500, when=lambda a: a["type"] == "message")
        async with http.post(url, json={"type": "typing"}) as typing:
            assert typing.status == 200
        async with http.post(url, json=reply) as failed:
            assert failed.status == 500
        async with http.post(url, json=reply) as response:
            assert response.status == 200
            answered = await response.json()

        [received] = await connector.wait_for(lambda a: a["type"] == "message", timeout=1)
        assert received["_op"] == "reply"
        assert received["_conversation_id"] == conversation
        assert received["_activity_id"] == incoming["id"]
        assert received["_id"] == answered["id"]
        assert connector.texts() == ["hi!"]
        assert len(connector.typing()) == 1
        assert len(connector.failed) == 1
