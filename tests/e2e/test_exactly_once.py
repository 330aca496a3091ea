"""Two instances of the bot (App Service scale-out) as their own processes on one store.

A channel delivers a message again when the bot is slow or fails, to whichever instance: each
message gets one model call, one answer and one stored turn. The rate limit and a typed "yes"
to forget hold across instances.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from bots.wording import PERSONAL_CHAT, RATE_LIMITED
from config import settings_from
from memory import MemoryStore
from tests.support.activities import emulator_message
from tests.support.app_server import free_port
from tests.support.bot_process import BotProcess
from tests.support.fake_connector import FakeConnector
from tests.support.fake_openai import FakeOpenAI
from wiring import create_store

pytestmark = pytest.mark.integration

Instances = Callable[..., Awaitable[tuple[BotProcess, BotProcess]]]


@pytest.fixture(params=["sqlite", "cosmos"])
def shared_store_env(
    request: pytest.FixtureRequest, base_env: dict[str, str], tmp_path: Path
) -> dict[str, str]:
    """Settings both instances share: one SQLite file, or one Cosmos DB container."""
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), **base_env}
    if request.param == "cosmos":
        env |= request.getfixturevalue("cosmos_env")
    return env


@pytest.fixture
async def instances(shared_store_env: dict[str, str], tmp_path: Path) -> AsyncIterator[Instances]:
    started: list[BotProcess] = []

    async def start(**overrides: str) -> tuple[BotProcess, BotProcess]:
        pair = []
        for _ in range(2):
            env = {**shared_store_env, **overrides, "PORT": str(free_port())}
            process = BotProcess(tmp_path, env)
            started.append(process)
            await process.start()
            pair.append(process)
        return pair[0], pair[1]

    yield start
    for process in started:
        if process.process is not None and process.process.returncode is None:
            assert await process.terminate() == 0
        assert "Traceback" not in process.log


async def stored_messages(env: dict[str, str], key: str) -> list[tuple[str, str]]:
    """What the store holds for `key`, read as a third instance would."""
    store: MemoryStore = create_store(settings_from(env))
    await store.open()
    try:
        record = await store.load(key)
    finally:
        await store.close()
    return [(m.role, m.content) for m in record.messages]


async def test_a_message_delivered_to_both_instances_at_once_is_answered_and_stored_once(
    instances: Instances,
    shared_store_env: dict[str, str],
    model_server: FakeOpenAI,
    connector: FakeConnector,
) -> None:
    first, second = await instances()
    message = emulator_message("My daughter Maya starts school in Lyon", service_url=connector.url)
    statuses = await asyncio.gather(*(bot.post(message) for bot in (first, second) * 3))
    assert set(statuses) <= {200, 201}
    await connector.wait_for(lambda a: a.get("type") == "message")
    await asyncio.sleep(0.5)  # room for a second answer, were one coming
    assert len([a for a in connector.activities if a.get("type") == "message"]) == 1
    assert len(model_server.chat_requests()) == 1
    key = "channel/emulator/emulator-user-1"
    assert await stored_messages(shared_store_env, key) == [
        ("user", "My daughter Maya starts school in Lyon"),
        ("assistant", connector.texts()[0]),
    ]


async def test_an_answer_slower_than_the_channel_waits_is_sent_once(
    instances: Instances,
    shared_store_env: dict[str, str],
    model_server: FakeOpenAI,
    connector: FakeConnector,
) -> None:
    """Teams gives up on a delivery after about 15 s and delivers it again; scaled down here to
    a model that takes 2 s and a channel that waits 0.5 s."""
    first, second = await instances()
    model_server.latency = 2.0
    message = emulator_message("What did we decide about the launch?", service_url=connector.url)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(first.post(message), 0.5)  # the channel stops waiting
    assert await second.post(message) in (200, 201)  # ... and delivers it again, elsewhere
    assert await first.post(message) in (200, 201)
    answers = await connector.wait_for(lambda a: a.get("type") == "message", timeout=10)
    await asyncio.sleep(0.5)
    assert len([a for a in connector.activities if a.get("type") == "message"]) == 1
    assert len(model_server.chat_requests()) == 1
    stored = await stored_messages(shared_store_env, "channel/emulator/emulator-user-1")
    assert stored == [
        ("user", "What did we decide about the launch?"),
        ("assistant", answers[0]["text"]),
    ]


async def test_the_limit_and_a_typed_yes_hold_across_instances(
    instances: Instances, connector: FakeConnector
) -> None:
    first, second = await instances(RATE_LIMIT_PER_MINUTE="3")
    await first.say("forget", connector)
    assert await second.say("yes", connector) == PERSONAL_CHAT.forgotten
    assert await first.say("hello", connector) != RATE_LIMITED.format(limit=3)
    assert await second.say("hello again", connector) == RATE_LIMITED.format(limit=3)
