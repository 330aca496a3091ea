"""A chat turn end to end: the real app on a real port, Emulator- and Teams-shaped activities,
replies captured at serviceUrl, and the real openai client talking to a local model server."""

import pytest

from tests.e2e.conftest import AppFactory
from tests.support.activities import emulator_message, teams_message
from tests.support.app_server import AppServer
from tests.support.fake_connector import FakeConnector
from tests.support.fake_openai import FakeOpenAI

pytestmark = pytest.mark.integration


def contents(messages: list[dict[str, str]]) -> list[str]:
    return [m["content"] for m in messages]


async def test_a_quick_answer_is_the_only_activity_sent(
    bot: AppServer, connector: FakeConnector, model_server: FakeOpenAI
) -> None:
    status, _ = await bot.post(emulator_message("hello there", service_url=connector.url))
    assert status in (200, 201)
    assert [a["type"] for a in connector.activities] == ["message"]
    assert connector.texts() == ["echo: hello there"]
    sent = model_server.last_messages()
    assert sent[0]["role"] == "system"
    assert sent[-1] == {"role": "user", "content": "hello there"}


async def test_replies_share_one_kept_alive_connection_to_the_connector(
    bot: AppServer, connector: FakeConnector
) -> None:
    for n in range(4):
        await bot.post(emulator_message(f"message {n}", service_url=connector.url))
    assert connector.texts() == [f"echo: message {n}" for n in range(4)]
    assert len({a["_peer"] for a in connector.activities}) == 1


async def test_a_slow_answer_comes_after_a_typing_indicator(
    bot: AppServer, connector: FakeConnector, model_server: FakeOpenAI
) -> None:
    model_server.latency = 1.2  # past the 0.5 s the bot waits before showing that it types
    await bot.post(emulator_message("hello there", service_url=connector.url))
    kinds = [a["type"] for a in connector.activities]
    assert kinds[0] == "typing"
    assert kinds[-1] == "message"
    assert connector.texts()[-1] == "echo: hello there"


async def test_fact_told_before_a_restart_reaches_the_prompt_in_a_later_conversation(
    bot: AppServer, connector: FakeConnector, model_server: FakeOpenAI
) -> None:
    await bot.post(
        teams_message(
            "My manager is Grace Hopper.", service_url=connector.url, conversation_id="a:first-chat"
        )
    )
    await bot.restart()
    await bot.post(
        teams_message(
            "Who is my manager?", service_url=connector.url, conversation_id="a:second-chat"
        )
    )
    prompt = contents(model_server.last_messages())
    assert "My manager is Grace Hopper." in prompt
    assert "echo: My manager is Grace Hopper." in prompt
    assert prompt[-1] == "Who is my manager?"


async def test_two_users_never_see_each_others_memory(
    bot: AppServer, connector: FakeConnector, model_server: FakeOpenAI
) -> None:
    await bot.post(
        emulator_message("alice's secret is tangerine", user_id="alice", service_url=connector.url)
    )
    await bot.post(
        teams_message("my badge number is 4471", aad_object_id=BOB_AAD, service_url=connector.url)
    )
    await bot.post(emulator_message("what do you know?", user_id="bob", service_url=connector.url))
    seen_by_bob = " ".join(contents(model_server.last_messages()))
    assert "tangerine" not in seen_by_bob
    assert "4471" not in seen_by_bob

    await bot.post(emulator_message("and me?", user_id="alice", service_url=connector.url))
    seen_by_alice = " ".join(contents(model_server.last_messages()))
    assert "tangerine" in seen_by_alice
    assert "4471" not in seen_by_alice


BOB_AAD = "0b0b0b0b-0b0b-4b0b-8b0b-0b0b0b0b0b0b"


async def test_the_working_record_keeps_the_last_messages_in_whole_turns(
    make_app: AppFactory, connector: FakeConnector, model_server: FakeOpenAI
) -> None:
    bot = await make_app(MEMORY_MAX_MESSAGES="4", MEMORY_SUMMARY_EVERY="100")
    for n in range(4):
        await bot.post(emulator_message(f"message {n}", service_url=connector.url))
    await bot.post(emulator_message("latest", service_url=connector.url))

    assert bot.store is not None
    record = await bot.store.load("channel/emulator/emulator-user-1")
    assert [m.content for m in record.messages] == [
        "message 3",
        "echo: message 3",
        "latest",
        "echo: latest",
    ]
    # Older turns wait, whole, for the running summary; nothing was split or dropped.
    assert [m.content for m in record.pending] == [
        "message 0",
        "echo: message 0",
        "message 1",
        "echo: message 1",
        "message 2",
        "echo: message 2",
    ]
    prompt = model_server.last_messages()
    assert contents(prompt[-5:]) == [
        "message 2",
        "echo: message 2",
        "message 3",
        "echo: message 3",
        "latest",
    ]
    assert [m["role"] for m in prompt[-5:]] == ["user", "assistant", "user", "assistant", "user"]


async def test_healthz_answers_while_serving(bot: AppServer) -> None:
    import aiohttp

    async with aiohttp.ClientSession() as session, session.get(f"{bot.url}/healthz") as response:
        assert response.status == 200
        assert (await response.json())["status"] == "ok"


async def test_with_an_embeddings_model_turns_are_embedded_and_survive_its_failure(
    make_app: AppFactory, connector: FakeConnector, model_server: FakeOpenAI
) -> None:
    from tests.support.fake_openai import ServerError

    bot = await make_app(OPENAI_EMBEDDINGS_MODEL="embedder")
    await bot.post(emulator_message("Grace Hopper is my manager", service_url=connector.url))
    embedded = [r for r in model_server.requests if r["kind"] == "embeddings"]
    assert {r["body"]["model"] for r in embedded} == {"embedder"}
    assert ["Grace Hopper is my manager", "echo: Grace Hopper is my manager"] in [
        r["body"]["input"] for r in embedded
    ]

    model_server.script_embeddings(ServerError(500), ServerError(500))
    await bot.post(emulator_message("who is my manager?", service_url=connector.url))
    assert connector.texts()[-1] == "echo: who is my manager?"
    assert "Grace Hopper is my manager" in contents(model_server.last_messages())


async def test_each_turn_logs_its_figures_and_no_content(
    bot: AppServer,
    connector: FakeConnector,
    model_server: FakeOpenAI,
    caplog: pytest.LogCaptureFixture,
) -> None:
    import logging

    with caplog.at_level(logging.INFO):
        await bot.post(emulator_message("my secret plan is tangerine", service_url=connector.url))
    [record] = [r for r in caplog.records if r.name == "memorybot.turns"]
    figures = vars(record)
    assert record.getMessage().startswith("turn answered: ")
    words_sent = sum(len(m["content"].split()) for m in model_server.last_messages())
    assert figures["model_prompt_tokens"] == words_sent  # the model server counts words
    assert figures["model_completion_tokens"] == len("echo: my secret plan is tangerine".split())
    # The message taken in the ledger and the sender's last minute counted (the rate limit),
    # the load with its archive search, the embeddings to compare with, then one write.
    assert figures["store_requests"] == 5
    assert "tangerine" not in caplog.text
