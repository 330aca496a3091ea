"""The model client: each kind of server, through the real `openai` client over HTTP."""

import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
from azure.core.credentials import AccessToken

from config import settings_from
from memory.context import MEMORY_HEADING
from model_client import (
    ChatModel,
    ModelBadAnswer,
    ModelRefused,
    ModelUnavailable,
    OfflineModel,
    create_chat_model,
)
from tests.support.fake_openai import ContentFilterFinish, FakeOpenAI, Malformed

pytestmark = pytest.mark.integration

PROMPT = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi there"}]


@pytest.fixture
async def model_server() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI() as server:
        yield server


class StaticCredential:
    """An Entra ID credential that hands out a fixed token and records the scopes asked for."""

    def __init__(self) -> None:
        self.scopes: list[str] = []

    async def get_token(self, *scopes: str, **_: Any) -> AccessToken:
        self.scopes.extend(scopes)
        return AccessToken("entra-token", 4_102_444_800)

    async def close(self) -> None:
        return None

    async def __aenter__(self) -> "StaticCredential":
        return self

    async def __aexit__(self, *_: object) -> None:
        return None


async def complete_and_close(model: ChatModel) -> str:
    try:
        return await model.complete(PROMPT)
    finally:
        await model.close()


async def test_azure_openai_with_a_key_calls_the_deployment(model_server: FakeOpenAI) -> None:
    settings = settings_from(
        {
            "AZURE_OPENAI_ENDPOINT": model_server.azure_endpoint,
            "AZURE_OPENAI_DEPLOYMENT": "chat-deployment",
            "AZURE_OPENAI_API_KEY": "azure-key",
        }
    )
    assert await complete_and_close(create_chat_model(settings)) == "echo: hi there"
    [request] = model_server.chat_requests()
    assert request["path"] == "/openai/deployments/chat-deployment/chat/completions"
    assert request["query"]["api-version"] == "2024-10-21"
    assert request["headers"]["api-key"] == "azure-key"
    assert request["body"]["messages"] == PROMPT


async def test_azure_openai_without_a_key_uses_an_entra_id_token(model_server: FakeOpenAI) -> None:
    settings = settings_from(
        {"AZURE_OPENAI_ENDPOINT": model_server.azure_endpoint, "AZURE_OPENAI_DEPLOYMENT": "d"}
    )
    credential = StaticCredential()
    model = create_chat_model(settings, credential=credential)
    assert "Entra ID" in model.describe()
    await complete_and_close(model)
    [request] = model_server.chat_requests()
    assert request["headers"]["authorization"] == "Bearer entra-token"
    assert "api-key" not in request["headers"]
    assert credential.scopes == ["https://cognitiveservices.azure.com/.default"]


async def test_an_openai_compatible_server_gets_the_model_name_and_key(
    model_server: FakeOpenAI,
) -> None:
    settings = settings_from(
        {
            "OPENAI_BASE_URL": model_server.base_url,
            "OPENAI_MODEL": "llama3.1",
            "OPENAI_API_KEY": "k",
        }
    )
    await complete_and_close(create_chat_model(settings))
    [request] = model_server.chat_requests()
    assert request["path"] == "/v1/chat/completions"
    assert request["body"]["model"] == "llama3.1"
    assert request["headers"]["authorization"] == "Bearer k"


async def test_one_client_is_reused_across_calls(model_server: FakeOpenAI) -> None:
    settings = settings_from({"OPENAI_BASE_URL": model_server.base_url, "OPENAI_MODEL": "m"})
    model = create_chat_model(settings)
    try:
        for _ in range(3):
            await model.complete(PROMPT)
    finally:
        await model.close()
    peers = {tuple(r["peer"]) for r in model_server.chat_requests()}
    assert len(peers) == 1


async def test_streaming_yields_the_answer_in_pieces(model_server: FakeOpenAI) -> None:
    model = create_chat_model(
        settings_from({"OPENAI_BASE_URL": model_server.base_url, "OPENAI_MODEL": "m"})
    )
    try:
        pieces = [piece async for piece in model.stream(PROMPT)]
    finally:
        await model.close()
    assert len(pieces) > 1
    assert "".join(pieces) == "echo: hi there"


async def test_a_filtered_stream_is_a_refusal(model_server: FakeOpenAI) -> None:
    model = create_chat_model(
        settings_from({"OPENAI_BASE_URL": model_server.base_url, "OPENAI_MODEL": "m"})
    )
    model_server.script(ContentFilterFinish())
    try:
        with pytest.raises(ModelRefused):
            _ = [piece async for piece in model.stream(PROMPT)]
    finally:
        await model.close()


async def test_the_offline_model_says_what_it_is_and_quotes_the_latest_earlier_message() -> None:
    offline = OfflineModel()
    first = await offline.complete(
        [{"role": "system", "content": "s"}, {"role": "user", "content": "hello"}]
    )
    assert "first message" in first
    assert "Offline model" in first
    later = await offline.complete(
        [
            {"role": "system", "content": "s"},
            {"role": "user", "content": "I work on Falcon"},
            {"role": "assistant", "content": "ok"},
            {"role": "user", "content": "My manager is Grace"},
            {"role": "assistant", "content": "ok"},
            {"role": "user", "content": "what do you know?"},
        ]
    )
    assert "2 earlier messages" in later
    assert "My manager is Grace" in later
    assert "AZURE_OPENAI_ENDPOINT" in later
    assert "older things" not in later


async def test_the_offline_model_does_not_take_the_memory_quotation_for_a_message() -> None:
    quotation = {"role": "user", "content": MEMORY_HEADING + "- I work on Falcon\n</memory>"}
    question = {"role": "user", "content": "what do you know?"}
    alone = await OfflineModel().complete([{"role": "system", "content": "s"}, quotation, question])
    assert "earlier message" not in alone
    assert "<memory>" not in alone
    assert "I found older things you told me" in alone
    beside = await OfflineModel().complete(
        [{"role": "system", "content": "s"}, quotation, {"role": "user", "content": "hi"}, question]
    )
    assert "1 earlier message of yours; the most recent was: \u201chi\u201d" in beside
    assert "I also found older things" in beside


def openai_compatible(server: FakeOpenAI, **more: str) -> ChatModel:
    return create_chat_model(
        settings_from({"OPENAI_BASE_URL": server.base_url, "OPENAI_MODEL": "m", **more})
    )


async def test_every_request_bounds_the_answer_with_max_tokens(model_server: FakeOpenAI) -> None:
    model = openai_compatible(model_server, MODEL_MAX_TOKENS="321")
    try:
        await model.complete(PROMPT)
        _ = [piece async for piece in model.stream(PROMPT)]
    finally:
        await model.close()
    assert [r["body"]["max_tokens"] for r in model_server.chat_requests()] == [321, 321]


NOT_TEXT = (
    '{"id": "c", "object": "chat.completion", "created": 0, "model": "m", "choices": [{"index": 0,'
    ' "finish_reason": "stop", "message": {"role": "assistant", "content": [{"type": "text"}]}}]}'
)
NOT_TEXT_PIECE = (
    '{"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "m", "choices": '
    '[{"index": 0, "delta": {"content": {"text": "hi"}}}]}'
)


@pytest.mark.parametrize("answer", ["", "   \n "], ids=["empty", "blank"])
async def test_an_answer_without_text_is_a_bad_answer_whole_or_streamed(
    answer: str,
) -> None:
    async with FakeOpenAI(reply=lambda _: answer) as server:
        model = openai_compatible(server)
        try:
            with pytest.raises(ModelBadAnswer):
                await model.complete(PROMPT)
            with pytest.raises(ModelBadAnswer):
                _ = [piece async for piece in model.stream(PROMPT)]
        finally:
            await model.close()


async def test_an_answer_that_is_not_text_is_a_bad_answer(model_server: FakeOpenAI) -> None:
    model = openai_compatible(model_server)
    model_server.script(Malformed(body=NOT_TEXT), Malformed(body=NOT_TEXT_PIECE))
    try:
        with pytest.raises(ModelBadAnswer):
            await model.complete(PROMPT)
        with pytest.raises(ModelBadAnswer):
            _ = [piece async for piece in model.stream(PROMPT)]
    finally:
        await model.close()


async def test_a_refused_connection_is_unavailable_not_slow() -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = settings_from(
        {
            "OPENAI_BASE_URL": f"http://127.0.0.1:{port}/v1",
            "OPENAI_MODEL": "m",
            "MODEL_MAX_RETRIES": "0",
        }
    )
    with pytest.raises(ModelUnavailable):
        await complete_and_close(create_chat_model(settings))
