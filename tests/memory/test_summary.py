"""The running summary keeps durable facts with their dates, through the real openai client and
the local model server: what the model is asked, and what becomes of its answer."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from config import settings_from
from memory.context import MEMORY_HEADING, SUMMARY_HEADING
from memory.sqlite_store import SQLiteStore
from model_client import create_chat_model
from tests.support.fake_openai import FakeOpenAI, Message
from wiring import create_memory

pytestmark = pytest.mark.integration

SUMMARY = "2026-03-07: the person adopted a greyhound called Pixie."


def summarise_or_echo(messages: list[Message]) -> str:
    return SUMMARY if messages[0]["content"].startswith("You keep a running summary") else "ok"


async def test_a_summary_is_asked_for_dated_durable_facts_and_reaches_later_prompts(
    tmp_path: Path,
) -> None:
    async with FakeOpenAI(reply=summarise_or_echo) as server:
        settings = settings_from(
            {
                "OPENAI_BASE_URL": server.base_url,
                "OPENAI_MODEL": "m",
                "MEMORY_MAX_MESSAGES": "4",
                "MEMORY_SUMMARY_EVERY": "4",
            }
        )
        store = SQLiteStore(tmp_path / "memory.db")
        await store.open()
        model = create_chat_model(settings)
        memory = create_memory(settings, store, model)
        try:
            monday = datetime(2026, 3, 9, 9, tzinfo=UTC)
            said = [
                "We adopted a rescue greyhound last Saturday, she's called Pixie",
                "My sister Ana is moving to Porto next month",
                "We decided to go with the blue kitchen after all, not the green one",
                "Coffee with no sugar, always",
            ]
            for n, text in enumerate([*said, "thanks", "see you"]):
                await memory.remember("k", text, "ok", at=monday + timedelta(minutes=n))
            await memory.drain()
            [request] = [
                r["body"]["messages"]
                for r in server.chat_requests()
                if r["body"]["messages"][0]["content"].startswith("You keep a running summary")
            ]
            prompt = await memory.prompt_for("k", "What's my dog's name?")
        finally:
            await memory.close()
            await model.close()
            await store.close()
    instructions, batch = request[0]["content"], request[1]["content"]
    for asked in ("names", "date", "decisions", "preferences", "relative times", "changes"):
        assert asked in instructions, asked
    assert "[2026-03-09] Person: We adopted a rescue greyhound last Saturday" in batch
    assert prompt[1]["role"] == "user"
    assert prompt[1]["content"].startswith(MEMORY_HEADING + SUMMARY_HEADING + SUMMARY)
