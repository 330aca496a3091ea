"""Teams behaviour through /api/messages: scopes, commands, streaming, labels, tenant control."""

import asyncio
import itertools
import json
import logging
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botbuilder.schema import Activity

from bots.identity import memory_key_for
from bots.wording import CUT_OFF, JUST_MENTIONED, NOT_TEXT, model_failed
from memory.conversation import STOPPED_MARK
from model_client import ModelBadAnswer
from tests.conftest import conversation_memory
from tests.e2e.conftest import AppFactory
from tests.support.activities import (
    TENANT_ID,
    USER_AAD_OBJECT_ID,
    USER_NAME,
    ConversationType,
    conversation_update,
    emulator_message,
    installation_update,
    teams_message,
)
from tests.support.app_server import AppServer
from tests.support.fake_connector import FakeConnector
from tests.support.fake_openai import ContentFilterFinish, FakeOpenAI

pytestmark = pytest.mark.integration

PERSONAL_KEY = f"user/{TENANT_ID}/{USER_AAD_OBJECT_ID}"
AI_LABEL_TYPE = "https://schema.org/Message"


def prompt_text(model: FakeOpenAI) -> str:
    return " ".join(m["content"] for m in model.last_messages())


def entity(activity: dict[str, Any], kind: str) -> dict[str, Any] | None:
    return next((e for e in activity.get("entities") or [] if e.get("type") == kind), None)


async def stored(bot: AppServer, key: str = PERSONAL_KEY) -> list[str]:
    assert bot.store is not None
    return [m.content for m in (await bot.store.load(key)).unsummarised]


async def test_personal_chat_streams_the_answer_then_sends_it_whole(
    bot: AppServer, connector: FakeConnector, model_server: FakeOpenAI
) -> None:
    model_server.reply = lambda _: "one two three four five six seven eight nine ten"
    model_server.chunk_delay = 0.25
    await bot.post(teams_message("tell me a story", service_url=connector.url))

    informative, *updates, final = connector.activities
    info = entity(informative, "streaminfo")
    assert informative["type"] == "typing"
    assert info == {"type": "streaminfo", "streamType": "informative", "streamSequence": 1}
    stream_id = informative["_id"]

    assert updates, "a 2.5 s answer should stream at least one update"
    sequences = []
    for update in updates:
        update_info = entity(update, "streaminfo")
        assert update["type"] == "typing"
        assert update_info is not None
        assert update_info["streamType"] == "streaming"
        assert update_info["streamId"] == stream_id
        assert "one two three four five six seven eight nine ten".startswith(update["text"])
        sequences.append(update_info["streamSequence"])
    assert sequences == list(range(2, 2 + len(updates)))
    times = [a["_time"] for a in [informative, *updates]]
    assert all(later - earlier >= 0.9 for earlier, later in itertools.pairwise(times))

    assert final["type"] == "message"
    assert final["text"] == "one two three four five six seven eight nine ten"
    assert entity(final, "streaminfo") == {
        "type": "streaminfo",
        "streamId": stream_id,
        "streamType": "final",
    }
    label = entity(final, AI_LABEL_TYPE)
    assert label is not None
    assert label["additionalType"] == ["AIGeneratedContent"]
    assert final["channelData"]["feedbackLoopEnabled"] is True
    assert await stored(bot) == ["tell me a story", final["text"]]


async def test_an_answer_the_model_breaks_off_says_so_after_what_it_wrote(
    bot: AppServer, connector: FakeConnector, model_server: FakeOpenAI
) -> None:
    model_server.script(ContentFilterFinish(partial="Your bike is called"))  # then it stops
    await bot.post(teams_message("what is my bike called?", service_url=connector.url))
    answer, note = connector.messages()[-2:]
    assert answer["text"] == "Your bike is called"  # the stream's final text: what was shown
    info = entity(answer, "streaminfo")
    assert info is not None
    assert info["streamType"] == "final"
    assert note["text"] == CUT_OFF  # the bot's own sentence, not labelled as the model's
    assert entity(note, AI_LABEL_TYPE) is None
    assert await stored(bot) == ["what is my bike called?", "Your bike is called"]


@pytest.mark.parametrize("where", ["personal", "groupChat"])
async def test_an_answer_with_no_text_ends_in_one_sentence_and_nothing_empty_is_kept(
    bot: AppServer, connector: FakeConnector, model_server: FakeOpenAI, where: ConversationType
) -> None:
    model_server.reply = lambda _: " "
    said = teams_message(
        "are you there?", conversation_type=where, mention_bot=True, service_url=connector.url
    )
    await bot.post(said)
    final = connector.messages()[-1]
    assert final["text"] == model_failed(ModelBadAnswer("no text"), kept=True)
    if where == "personal":  # the open stream is closed by that sentence
        stream_id = connector.activities[0]["_id"]
        assert entity(final, "streaminfo") == {
            "type": "streaminfo",
            "streamId": stream_id,
            "streamType": "final",
        }
        assert await stored(bot) == ["are you there?"]


async def test_an_answer_too_long_for_one_teams_message_arrives_in_parts(
    bot: AppServer, connector: FakeConnector, model_server: FakeOpenAI
) -> None:
    long_answer = " ".join(f"word{n}" for n in range(12_000))  # about 100 KB
    model_server.reply = lambda _: long_answer
    await bot.post(
        teams_message(
            "tell me everything",
            conversation_type="groupChat",
            mention_bot=True,
            service_url=connector.url,
        )
    )
    parts = [m["text"] for m in connector.messages()]
    assert len(parts) > 1
    assert all(len(part.encode()) <= 20_000 for part in parts)
    assert " ".join(parts) == long_answer


async def test_the_emulator_gets_the_whole_answer_in_one_labelled_message(
    bot: AppServer, connector: FakeConnector, model_server: FakeOpenAI
) -> None:
    model_server.chunk_delay = 0.05
    await bot.post(emulator_message("hello", service_url=connector.url))
    [message] = connector.messages()
    assert message["text"] == "echo: hello"
    assert entity(message, "streaminfo") is None
    assert entity(message, AI_LABEL_TYPE) is not None
    assert all(entity(t, "streaminfo") is None for t in connector.typing())


async def test_in_a_group_chat_the_bot_answers_only_when_mentioned(
    bot: AppServer, connector: FakeConnector, model_server: FakeOpenAI
) -> None:
    await bot.post(
        teams_message("lunch at noon?", conversation_type="groupChat", service_url=connector.url)
    )
    assert connector.activities == []
    assert model_server.chat_requests() == []

    await bot.post(
        teams_message(
            "what's our deadline?",
            conversation_type="groupChat",
            mention_bot=True,
            service_url=connector.url,
        )
    )
    assert connector.texts() == [f"echo: {USER_NAME}: what's our deadline?"]
    # In a group the model is told who is speaking; only the system prompt is a system message.
    sent = model_server.last_messages()
    assert sent[-1] == {"role": "user", "content": f"{USER_NAME}: what's our deadline?"}
    assert [m["role"] for m in sent].count("system") == 1


async def test_a_group_never_sees_a_persons_private_memory(
    bot: AppServer, connector: FakeConnector, model_server: FakeOpenAI
) -> None:
    await bot.post(teams_message("my salary is 123456", service_url=connector.url))
    for scope in ("groupChat", "channel"):
        await bot.post(
            teams_message(
                "what's my salary?",
                conversation_type=scope,
                mention_bot=True,
                service_url=connector.url,
            )
        )
        assert "123456" not in prompt_text(model_server)
    await bot.post(teams_message("remind me of my salary", service_url=connector.url))
    assert "123456" in prompt_text(model_server)
    assert "what's my salary?" not in prompt_text(model_server)


async def test_a_channel_keeps_one_memory_across_its_threads(
    bot: AppServer, connector: FakeConnector, model_server: FakeOpenAI
) -> None:
    await bot.post(
        teams_message(
            "the release train leaves Friday",
            conversation_type="channel",
            mention_bot=True,
            thread_id="1001",
            service_url=connector.url,
        )
    )
    await bot.post(
        teams_message(
            "when does the train leave?",
            conversation_type="channel",
            mention_bot=True,
            thread_id="2002",
            service_url=connector.url,
        )
    )
    assert "the release train leaves Friday" in prompt_text(model_server)


@pytest.mark.parametrize("typed", ["help", "/help", "Help "])
async def test_commands_work_with_or_without_a_slash_and_never_reach_the_model(
    bot: AppServer, connector: FakeConnector, model_server: FakeOpenAI, typed: str
) -> None:
    await bot.post(teams_message(typed, service_url=connector.url))
    await bot.post(
        teams_message(
            typed, conversation_type="groupChat", mention_bot=True, service_url=connector.url
        )
    )
    personal, group = connector.texts()
    assert "**forget**" in personal
    assert "never anyone's private chat" in group
    assert model_server.chat_requests() == []
    assert await stored(bot) == []


async def test_memory_command_says_what_is_remembered(
    bot: AppServer, connector: FakeConnector, model_server: FakeOpenAI
) -> None:
    await bot.post(teams_message("memory", service_url=connector.url))
    assert "don't remember anything about you" in connector.texts()[-1]
    await bot.post(teams_message("I work on Falcon", service_url=connector.url))
    await bot.post(teams_message("/memory", service_url=connector.url))
    answer = connector.texts()[-1]
    assert "I remember 2 messages about you since" in answer
    assert await stored(bot) == ["I work on Falcon", "echo: I work on Falcon"]


async def test_export_gives_the_stored_memory_as_json(
    bot: AppServer, connector: FakeConnector
) -> None:
    await bot.post(emulator_message("I work on Falcon", service_url=connector.url))
    await bot.post(emulator_message("export", service_url=connector.url))
    [attachment] = connector.messages()[-1]["attachments"]
    assert attachment["contentType"] == "application/json"
    export = attachment["content"]
    assert export["message_count"] == 2
    assert [m["content"] for m in export["archive"]] == [
        "I work on Falcon",
        "echo: I work on Falcon",
    ]

    await bot.post(teams_message("I work on Kestrel", service_url=connector.url))
    await bot.post(teams_message("export", service_url=connector.url))
    # In Teams personal chat, a file offered through the consent card (tests/e2e/test_export.py
    # follows it to the upload); the card itself holds nothing of the memory.
    [card] = connector.messages()[-1]["attachments"]
    assert card["contentType"] == "application/vnd.microsoft.teams.card.file.consent"
    assert "Kestrel" not in json.dumps(card)


async def test_forget_asks_first_then_deletes_everything_on_the_card_button(
    bot: AppServer, connector: FakeConnector, model_server: FakeOpenAI
) -> None:
    await bot.post(teams_message("my badge is 4471", service_url=connector.url))
    await bot.post(teams_message("forget", service_url=connector.url))
    question = connector.messages()[-1]
    assert question["attachments"][0]["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert await stored(bot) != []

    submit = teams_message("", service_url=connector.url)
    submit.pop("text")
    submit["value"] = question["attachments"][0]["content"]["actions"][0]["data"]
    await bot.post(submit)
    assert "forgotten everything I remembered about you" in connector.texts()[-1]
    assert await stored(bot) == []
    await bot.post(teams_message("what's my badge?", service_url=connector.url))
    assert "4471" not in prompt_text(model_server)


async def test_a_message_being_answered_when_everything_is_forgotten_is_not_kept(
    bot: AppServer, connector: FakeConnector, model_server: FakeOpenAI
) -> None:
    await bot.post(teams_message("my badge is 4471", service_url=connector.url))
    model_server.latency = 1.5  # the next answer takes a while: time to forget meanwhile
    answering = asyncio.create_task(
        bot.post(teams_message("and my PIN is 9090", service_url=connector.url))
    )
    await asyncio.sleep(0.3)
    model_server.latency = 0.0
    await bot.post(teams_message("forget", service_url=connector.url))
    submit = teams_message("", service_url=connector.url)
    submit.pop("text")
    question = next(m for m in reversed(connector.messages()) if m.get("attachments"))
    submit["value"] = question["attachments"][0]["content"]["actions"][0]["data"]
    await bot.post(submit)
    assert not answering.done()  # forgotten while the answer was still being written
    await answering
    assert await stored(bot) == []  # said before the forget: not kept after it
    await bot.post(teams_message("hello again", service_url=connector.url))
    assert await stored(bot) == ["hello again", "echo: hello again"]


async def test_forget_by_typing_yes_and_no_means_no(
    bot: AppServer, connector: FakeConnector
) -> None:
    await bot.post(emulator_message("keep this", service_url=connector.url))
    await bot.post(emulator_message("/forget", service_url=connector.url))
    cancel = emulator_message("", service_url=connector.url)
    cancel["value"] = {"action": "memorybot.forget.cancel"}
    await bot.post(cancel)
    assert "keep what I remember" in connector.texts()[-1]
    assert await stored(bot, "channel/emulator/emulator-user-1") == ["keep this", "echo: keep this"]

    await bot.post(emulator_message("forget", service_url=connector.url))
    await bot.post(emulator_message("yes", service_url=connector.url))
    assert await stored(bot, "channel/emulator/emulator-user-1") == []


async def test_forget_in_a_group_explains_and_clears_only_the_group(
    bot: AppServer, connector: FakeConnector
) -> None:
    await bot.post(teams_message("private note", service_url=connector.url))
    await bot.post(
        teams_message(
            "group note", conversation_type="groupChat", mention_bot=True, service_url=connector.url
        )
    )
    await bot.post(
        teams_message(
            "forget", conversation_type="groupChat", mention_bot=True, service_url=connector.url
        )
    )
    question = connector.messages()[-1]  # one message: whose memory it is, and the question
    assert "Any member of this chat may clear it" in question["summary"]
    assert "Forget everything I remember from this conversation?" in question["summary"]
    card = question["attachments"][0]["content"]
    assert "Any member of this chat may clear it" in card["body"][0]["text"]
    submit = teams_message("", conversation_type="groupChat", service_url=connector.url)
    submit.pop("text")
    submit["value"] = card["actions"][0]["data"]
    await bot.post(submit)
    assert "from this conversation" in connector.texts()[-1]
    assert await stored(bot) == ["private note", "echo: private note"]


async def test_welcome_once_on_install_and_in_the_emulator(
    bot: AppServer, connector: FakeConnector
) -> None:
    await bot.post(installation_update("add", service_url=connector.url))
    await bot.post(conversation_update(service_url=connector.url))
    assert len(connector.texts()) == 1
    assert "forget" in connector.texts()[0]
    await bot.post(
        installation_update("add", conversation_type="groupChat", service_url=connector.url)
    )
    assert "@mention me" in connector.texts()[-1]
    await bot.post(
        conversation_update(["emulator-user-1"], channel="emulator", service_url=connector.url)
    )
    assert "I remember what you tell me" in connector.texts()[-1]


async def test_feedback_is_acknowledged_and_logged_without_its_text(
    bot: AppServer, connector: FakeConnector, caplog: pytest.LogCaptureFixture
) -> None:
    invoke = teams_message("", service_url=connector.url)
    invoke.update(
        type="invoke",
        name="message/submitAction",
        replyToId="reply-42",
        value={
            "actionName": "feedback",
            "actionValue": {"reaction": "dislike", "feedback": '{"feedbackText": "secret words"}'},
        },
    )
    invoke.pop("text")
    with caplog.at_level(logging.INFO):
        status, answer = await bot.post(invoke)
    assert (status, answer) == (200, {})  # an object: the Agents Playground fails on null
    assert "reaction=dislike reply=reply-42" in caplog.text
    assert "secret words" not in caplog.text


async def test_other_tenants_are_refused_and_nothing_is_stored(
    make_app: AppFactory, connector: FakeConnector, model_server: FakeOpenAI
) -> None:
    bot = await make_app(ALLOWED_TENANT_IDS=TENANT_ID.upper())
    await bot.post(teams_message("hi from the allowed tenant", service_url=connector.url))
    assert connector.texts()[-1] == "echo: hi from the allowed tenant"
    stranger = "11111111-2222-4333-8444-555555555555"
    await bot.post(teams_message("hello", tenant_id=stranger, service_url=connector.url))
    await bot.post(emulator_message("hello", service_url=connector.url))
    assert connector.texts()[-2:] == ["Sorry, MemoryBot isn't available to your organisation."] * 2
    assert len(model_server.chat_requests()) == 1
    assert await stored(bot, f"user/{stranger}/{USER_AAD_OBJECT_ID}") == []
    assert await stored(bot, "channel/emulator/emulator-user-1") == []


async def test_a_person_over_the_rate_limit_gets_a_polite_reply(
    make_app: AppFactory, connector: FakeConnector, model_server: FakeOpenAI
) -> None:
    bot = await make_app(RATE_LIMIT_PER_MINUTE="2")
    for n in range(3):
        await bot.post(emulator_message(f"message {n}", service_url=connector.url))
    assert "faster than I can take them" in connector.texts()[-1]
    assert len(model_server.chat_requests()) == 2
    assert await stored(bot, "channel/emulator/emulator-user-1") == [
        "message 0",
        "echo: message 0",
        "message 1",
        "echo: message 1",
    ]
    await bot.post(emulator_message("hi", user_id="someone-else", service_url=connector.url))
    assert connector.texts()[-1] == "echo: hi"


async def test_a_burst_over_the_rate_limit_is_told_once(
    make_app: AppFactory, connector: FakeConnector, model_server: FakeOpenAI
) -> None:
    bot = await make_app(RATE_LIMIT_PER_MINUTE="2")
    for n in range(8):
        await bot.post(emulator_message(f"message {n}", service_url=connector.url))
    told = [text for text in connector.texts() if "faster than I can take them" in text]
    assert len(told) == 1
    assert len(model_server.chat_requests()) == 2


async def test_feedback_from_outside_cannot_forge_or_flood_a_log_line(
    bot: AppServer, connector: FakeConnector, caplog: pytest.LogCaptureFixture
) -> None:
    invoke = teams_message("", service_url=connector.url)
    invoke.pop("text")
    invoke.update(
        type="invoke",
        name="message/submitAction",
        replyToId="r\r\nINFO forged: admin logged in" + "x" * 200_000,
        value={"actionValue": {"reaction": "like\nERROR forged line" + "y" * 200_000}},
    )
    with caplog.at_level(logging.INFO):
        status, _ = await bot.post(invoke)
    assert status == 200
    [line] = [r.getMessage() for r in caplog.records if r.getMessage().startswith("feedback:")]
    assert "\n" not in line
    assert "\r" not in line
    assert "reaction=other" in line
    assert len(line) < 200


async def test_stop_ends_the_model_stream_at_once_and_keeps_what_was_shown_marked_stopped(
    bot: AppServer, connector: FakeConnector, model_server: FakeOpenAI
) -> None:
    """Teams answers a streaming update with 403 once the person pressed Stop."""
    words = [f"word{n}" for n in range(60)]
    model_server.reply = lambda _: " ".join(words)
    model_server.chunk_delay = 0.1  # 6 s in all; an update about every second
    text_updates = 0

    def second_text_update(activity: dict[str, Any]) -> bool:
        nonlocal text_updates
        info = entity(activity, "streaminfo") or {}
        if activity["type"] == "typing" and info.get("streamType") == "streaming":
            text_updates += 1
            return text_updates == 2
        return False

    connector.fail_next(403, when=second_text_update)
    await bot.post(teams_message("tell me a long story", service_url=connector.url))

    shown = next(
        a["text"]
        for a in connector.activities
        if a["type"] == "typing"
        and (entity(a, "streaminfo") or {}).get("streamType") == "streaming"
    )
    final = connector.messages()[-1]
    assert final["text"] == shown  # finalised with what the person saw, nothing after it
    assert entity(final, "streaminfo") == {
        "type": "streaminfo",
        "streamId": connector.activities[0]["_id"],
        "streamType": "final",
    }
    assert len(connector.messages()) == 1
    for _ in range(50):  # the model server notices at its next chunk (0.1 s)
        if model_server.streams_cut:
            break
        await asyncio.sleep(0.1)
    assert model_server.streams_cut == 1  # the model's stream was closed, not read to the end
    assert await stored(bot) == ["tell me a long story", f"{shown}{STOPPED_MARK}"]


@pytest.mark.parametrize("where", ["personal", "groupChat"])
async def test_an_answer_citing_a_recalled_memory_carries_a_teams_citation(
    bot: AppServer, connector: FakeConnector, model_server: FakeOpenAI, where: ConversationType
) -> None:
    """The prompt numbers each recalled line; the answer's [n] becomes a citation of it."""
    assert bot.store is not None
    group = where != "personal"
    said = teams_message(
        "who is my manager?", conversation_type=where, mention_bot=group, service_url=connector.url
    )
    key = memory_key_for(Activity().deserialize(said))
    assert key is not None
    earlier = conversation_memory(bot.store)
    may_3 = datetime(2026, 5, 3, 9, 30, tzinfo=UTC)
    await earlier.remember(
        key, "My manager is Grace Hopper", "Noted.", at=may_3, author=USER_NAME if group else ""
    )
    for n in range(30):  # later chats, so that the fact is recalled, not in the recent window
        await earlier.remember(key, f"small talk {n}", "ok", at=may_3 + timedelta(days=1 + n))

    def answer(messages: list[Any]) -> str:
        quoted = " ".join(str(m["content"]) for m in messages)
        number = re.search(r"\[(\d+)\] [^:]*said: My manager is Grace Hopper", quoted)
        assert number is not None, "the fact was not recalled as a numbered line"
        return f"Your manager is Grace Hopper [{number.group(1)}]."

    model_server.reply = answer
    await bot.post(said)
    final = connector.messages()[-1]
    assert final["text"].startswith("Your manager is Grace Hopper [")
    label = entity(final, AI_LABEL_TYPE)
    assert label is not None
    [claim] = label["citation"]
    assert f"[{claim['position']}]" in final["text"]
    assert claim["appearance"] == {
        "@type": "DigitalDocument",
        "name": ("This chat" if group else "Our chat") + " on 3 May 2026",
        "abstract": (f"{USER_NAME} said" if group else "You said") + ": My manager is Grace Hopper",
    }
    # Remembered without the marker: its number meant something in that one prompt only.
    assert (await stored(bot, key))[-1] == "Your manager is Grace Hopper."


async def test_a_bare_mention_in_a_group_gets_a_nudge_not_a_complaint(
    bot: AppServer, connector: FakeConnector, model_server: FakeOpenAI
) -> None:
    mention = teams_message(
        "", conversation_type="groupChat", mention_bot=True, service_url=connector.url
    )
    status, _ = await bot.post(mention)
    assert status in (200, 201)
    assert connector.texts()[-1] == JUST_MENTIONED
    picture = {"contentType": "image/png", "contentUrl": "https://example.com/p.png"}
    await bot.post({**mention, "id": "with-a-picture", "attachments": [picture]})  # no text
    assert connector.texts()[-1] == NOT_TEXT
    assert model_server.chat_requests() == []
