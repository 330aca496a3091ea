"""The real app on Azure Cosmos DB (the local Cosmos DB API server), end to end through HTTP."""

import asyncio
import logging

import pytest

from tests.e2e.conftest import AppFactory
from tests.support.activities import emulator_message
from tests.support.app_server import AppServer
from tests.support.cosmos_server import CosmosServer
from tests.support.fake_connector import FakeConnector
from tests.support.fake_openai import FakeOpenAI

pytestmark = pytest.mark.integration

USER_KEY = "channel/emulator/emulator-user-1"


@pytest.fixture
async def cosmos_bot(make_app: AppFactory, cosmos: CosmosServer, cosmos_database: str) -> AppServer:
    return await make_app(
        MEMORY_STORE="cosmos",
        COSMOS_ENDPOINT=cosmos.endpoint,
        COSMOS_KEY=cosmos.key,
        COSMOS_VERIFY_TLS="false",
        COSMOS_CREATE_IF_MISSING="true",
        COSMOS_DATABASE=cosmos_database,
        MEMORY_MAX_MESSAGES="100",
        RATE_LIMIT_PER_MINUTE="0",
    )


async def test_on_cosmos_a_fact_survives_a_restart(
    cosmos_bot: AppServer, connector: FakeConnector, model_server: FakeOpenAI
) -> None:
    await cosmos_bot.post(
        emulator_message("My manager is Grace Hopper.", service_url=connector.url)
    )
    await cosmos_bot.restart()
    assert cosmos_bot.store is not None
    assert "cosmos" in cosmos_bot.store.describe()
    await cosmos_bot.post(emulator_message("Who is my manager?", service_url=connector.url))
    prompt = [m["content"] for m in model_server.last_messages()]
    assert "My manager is Grace Hopper." in prompt
    assert prompt[-1] == "Who is my manager?"


async def test_twenty_concurrent_turns_of_one_person_leave_all_forty_messages(
    cosmos_bot: AppServer, connector: FakeConnector, model_server: FakeOpenAI
) -> None:
    model_server.latency = 0.05  # the turns overlap while the model answers
    results = await asyncio.gather(
        *(
            cosmos_bot.post(emulator_message(f"message {n}", service_url=connector.url))
            for n in range(20)
        )
    )
    assert all(status in (200, 201) for status, _ in results)
    assert cosmos_bot.store is not None
    stored = [m.content for m in (await cosmos_bot.store.load(USER_KEY)).unsummarised]
    assert len(stored) == 40
    for n in range(20):
        assert stored.index(f"echo: message {n}") == stored.index(f"message {n}") + 1


async def test_a_turn_succeeds_through_throttling(
    cosmos_bot: AppServer,
    cosmos: CosmosServer,
    connector: FakeConnector,
    model_server: FakeOpenAI,
) -> None:
    await cosmos_bot.post(emulator_message("first", service_url=connector.url))
    cosmos.clear_requests()
    cosmos.inject(status=429, count=4, retry_after_ms=30)
    status, _ = await cosmos_bot.post(emulator_message("second", service_url=connector.url))
    assert status in (200, 201)
    assert connector.texts()[-1] == "echo: second"
    assert [r["status"] for r in cosmos.requests()].count(429) == 4
    assert cosmos_bot.store is not None
    stored = [m.content for m in (await cosmos_bot.store.load(USER_KEY)).unsummarised]
    assert stored == ["first", "echo: first", "second", "echo: second"]


async def test_a_turn_logs_the_request_charge_cosmos_db_reported(
    cosmos_bot: AppServer,
    cosmos: CosmosServer,
    connector: FakeConnector,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await cosmos_bot.post(emulator_message("first", service_url=connector.url))
    cosmos.clear_requests()
    with caplog.at_level(logging.INFO):
        await cosmos_bot.post(emulator_message("second", service_url=connector.url))
    [record] = [r for r in caplog.records if r.name == "memorybot.turns"]
    figures = vars(record)
    # The local server charges 1 RU for each request it answers, in x-ms-request-charge: the
    # message taken in the ledger (no rate limit here, so nothing counted), the load with its
    # archive search, then the write (no embeddings are configured).
    served = len(cosmos.requests())
    assert figures["store_requests"] == served == 3
    assert figures["store_request_charge"] == pytest.approx(served)
    assert f"store {served} requests / {served:.1f} RU" in record.getMessage()
