"""MemoryBot's routing, with a stand-in memory and model and no servers: which handler answers,
and the one sentence a person reads when the store or the model fails in any of them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any, cast

import pytest
from botbuilder.core import BotAdapter, TurnContext
from botbuilder.schema import Activity, ConversationReference, ResourceResponse

from bots import MemoryBot
from bots.commands import Command, command_in
from bots.limits import MAX_PEOPLE, RateLimiter
from bots.wording import (
    FORGET_BUTTON_EXPIRED,
    FORGET_CANCELLED,
    GROUP_CHAT,
    KEPT,
    MODEL_FAILED,
    NO_ITEMS,
    NOT_KEPT,
    PERSONAL_CHAT,
    RATE_LIMITED,
    REPLY_NOT_SAVED,
    STORE_DOWN_WHILE_ANSWERING,
    STORE_DOWN_WHILE_FORGETTING,
    STORE_DOWN_WHILE_RUNNING_A_COMMAND,
    TENANT_REFUSED,
)
from memory import (
    Context,
    ConversationMemory,
    ConversationRecord,
    Ledger,
    Lineage,
    MemoryStore,
    Message,
    StoreUnavailable,
)
from model_client import ChatModel, ModelBusy, ModelError, Prompt
from tests.support.activities import (
    TENANT_ID,
    USER_AAD_OBJECT_ID,
    ConversationType,
    emulator_message,
    file_consent_invoke,
    teams_message,
)

pytestmark = pytest.mark.unit

SERVICE_URL = "http://127.0.0.1:1"  # never called: the adapter here records what is sent


class RecordingAdapter(BotAdapter):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__()
        self.sent: list[Activity] = []

    async def send_activities(
        self, context: TurnContext, activities: list[Activity]
    ) -> list[ResourceResponse]:
        self.sent.extend(activities)
        return [ResourceResponse(id=str(len(self.sent)))]

    async def update_activity(self, context: TurnContext, activity: Activity) -> None:
        raise NotImplementedError

    async def delete_activity(self, context: TurnContext, reference: ConversationReference) -> None:
        raise NotImplementedError

    def texts(self) -> list[str]:
        """What a person reads of each message: its text, or a card's summary."""
        return [a.text or a.summary for a in self.sent if a.type == "message"]


class StandInMemory:
    """The parts of ConversationMemory the bot calls; `failing` names the ones that fail."""

    def __init__(self, *failing: str, record: ConversationRecord | None = None) -> None:
        self.failing = set(failing)
        self.record = record
        self.remembered: list[tuple[str, str | None]] = []
        self.forgotten: list[str] = []

    def _call(self, name: str) -> None:
        if name in self.failing:
            raise StoreUnavailable(f"{name} failed")

    async def context_for(self, key: str, text: str, *, author: str = "") -> Context:
        self._call("context_for")
        return Context([{"role": "user", "content": text}], [])

    async def remember(
        self,
        key: str,
        text: str,
        reply: str | None,
        *,
        author: str = "",
        stopped: bool = False,
        lineage: Lineage | None = None,
    ) -> bool:
        self._call("remember")
        self.remembered.append((text, reply))
        return True

    async def recall(self, key: str) -> ConversationRecord:
        self._call("recall")
        return self.record or ConversationRecord(key=key)

    async def export(self, key: str) -> dict[str, Any]:
        self._call("export")
        return {
            "format": "memorybot-export/1",
            "exported_at": "2026-01-05T09:00:00+00:00",
            "summary": "",
            "message_count": 0,
            "since": None,
            "item_count": 0,
            "recent_count": 0,
            "archive_count": 0,
            "items": [],
            "recent_messages": [],
            "archive": [],
        }

    async def forget(self, key: str) -> None:
        self._call("forget")
        self.forgotten.append(key)


class MarksInMemory:
    """The store's marks as a dict, for the ledger (both real stores' marks are checked in
    tests/memory/test_store_behaviour.py)."""

    def __init__(self) -> None:
        self.marks: dict[tuple[str, str], tuple[str, float, float]] = {}

    async def mark(
        self, key: str, name: str, value: str, *, now: float, seconds: float, replace: bool
    ) -> bool:
        standing = self.marks.get((key, name))
        if not replace and standing is not None and standing[2] > now:
            return False
        self.marks[key, name] = (value, now, now + seconds)
        return True

    async def marked(self, key: str, name: str, *, now: float) -> str | None:
        standing = self.marks.get((key, name))
        return standing[0] if standing is not None and standing[2] > now else None

    async def unmark(self, key: str, name: str) -> bool:
        return self.marks.pop((key, name), None) is not None

    async def count_marks(self, key: str, prefix: str, *, since: float, now: float) -> int:
        return sum(
            1
            for (k, name), (_, at, expires) in self.marks.items()
            if k == key and name.startswith(prefix) and at >= since and expires > now
        )


class StandInModel:
    def __init__(self, failure: ModelError | None = None) -> None:
        self.failure = failure

    async def complete(self, messages: Prompt) -> str:
        if self.failure is not None:
            raise self.failure
        return f"echo: {messages[-1]['content']}"

    async def stream(self, messages: Prompt) -> AsyncIterator[str]:
        yield await self.complete(messages)


def bot_with(memory: StandInMemory, model: StandInModel | None = None, **options: Any) -> MemoryBot:
    options.setdefault("ledger", Ledger(cast(MemoryStore, MarksInMemory())))
    return MemoryBot(
        cast(ConversationMemory, memory),
        cast(ChatModel, model or StandInModel()),
        typing_after_seconds=60,
        **options,
    )


LAST_CARD = "the question of the last card sent"


async def say(bot: MemoryBot, *turns: str | dict[str, Any]) -> list[str]:
    """Each turn (a text, or a raw activity) in the Emulator; returns the texts sent back. A card
    answer for LAST_CARD presses a button of the last card the bot sent."""
    adapter = RecordingAdapter()
    for turn in turns:
        body = emulator_message(turn, service_url=SERVICE_URL) if isinstance(turn, str) else turn
        if isinstance(body.get("value"), dict) and body["value"].get("question") == LAST_CARD:
            card = next(a for a in reversed(adapter.sent) if a.attachments).attachments[0]
            body = body | {"value": card.content["actions"][0]["data"] | body["value"]}
            body["value"]["question"] = card.content["actions"][0]["data"]["question"]
        await bot.on_turn(TurnContext(adapter, Activity().deserialize(body)))
    return adapter.texts()


def card_answer(action: str, question: str = LAST_CARD) -> dict[str, Any]:
    value = {"action": action, "question": question}
    return emulator_message("", service_url=SERVICE_URL) | {"value": value}


async def test_a_message_is_answered_and_remembered() -> None:
    memory = StandInMemory()
    assert await say(bot_with(memory), "hello") == ["echo: hello"]
    assert memory.remembered == [("hello", "echo: hello")]


@pytest.mark.parametrize(
    ("failing", "turns", "sentence"),
    [
        (("context_for",), ["hello"], STORE_DOWN_WHILE_ANSWERING),
        (("recall",), ["memory"], STORE_DOWN_WHILE_RUNNING_A_COMMAND),
        (("export",), ["/export"], STORE_DOWN_WHILE_RUNNING_A_COMMAND),
        (("forget",), ["forget", "yes"], STORE_DOWN_WHILE_FORGETTING),
        (
            ("forget",),
            ["forget", card_answer("memorybot.forget.confirm")],
            STORE_DOWN_WHILE_FORGETTING,
        ),
    ],
)
async def test_a_store_failure_gets_the_one_sentence_for_what_was_being_done(
    failing: tuple[str, ...], turns: list[str | dict[str, Any]], sentence: str
) -> None:
    texts = await say(bot_with(StandInMemory(*failing)), *turns)
    assert texts[-1] == sentence


async def test_a_reply_that_could_not_be_saved_says_so() -> None:
    assert await say(bot_with(StandInMemory("remember")), "hello") == [
        "echo: hello",
        REPLY_NOT_SAVED,
    ]


@pytest.mark.parametrize(("save_fails", "second"), [(False, KEPT), (True, NOT_KEPT)])
async def test_a_model_failure_says_what_failed_and_whether_the_message_was_kept(
    save_fails: bool, second: str
) -> None:
    memory = StandInMemory(*(["remember"] if save_fails else []))
    texts = await say(bot_with(memory, StandInModel(ModelBusy("429"))), "hello")
    assert texts == [f"{MODEL_FAILED[ModelBusy]} {second}"]
    assert memory.remembered == ([] if save_fails else [("hello", None)])


@pytest.mark.parametrize(
    ("record", "description"),
    [
        (None, "I don't remember anything about you yet."),
        (
            ConversationRecord(
                key="k",
                messages=(Message("user", "hi"), Message("assistant", "hello")),
                summary="They like tea.",
                message_count=5,
                since=datetime(2024, 3, 5, tzinfo=UTC),
            ),
            "I remember 5 messages about you since 05 March 2024: the latest 2 word for word, "
            "and all of them in a searchable archive.\n\nSummary of older messages: They like tea.",
        ),
        (
            ConversationRecord(key="k", messages=(Message("user", "hi"),), message_count=1),
            "I remember 1 messages about you: the latest 1 word for word, and all of them in a "
            "searchable archive.\n\nThere is no summary of older messages yet.",
        ),
    ],
)
async def test_memory_describes_what_is_kept(
    record: ConversationRecord | None, description: str
) -> None:
    expected = description
    if record is not None:  # the card's text: its title, no kept things yet, then the rest
        expected = f"What I remember about you\n\n{NO_ITEMS}\n\n{description}"  # plain text
    assert await say(bot_with(StandInMemory(record=record)), "memory") == [expected]


async def test_forget_asks_first_and_a_no_keeps_everything() -> None:
    memory = StandInMemory()
    texts = await say(bot_with(memory), "forget", card_answer("memorybot.forget.cancel"))
    assert texts == [
        f"{PERSONAL_CHAT.forget_question} (Reply yes to confirm.)",  # a summary: plain text
        FORGET_CANCELLED,
    ]
    assert memory.forgotten == []


async def test_a_yes_after_another_message_is_only_a_message() -> None:
    memory = StandInMemory()
    texts = await say(bot_with(memory), "forget", "what's the weather?", "yes")
    assert texts[-1] == "echo: yes"
    assert memory.forgotten == []


async def test_a_confirmed_forget_forgets() -> None:
    memory = StandInMemory()
    texts = await say(bot_with(memory), "forget", "yes")
    assert texts[-1] == PERSONAL_CHAT.forgotten
    assert memory.forgotten == ["channel/emulator/emulator-user-1"]


async def test_another_tenant_is_refused_before_any_handler() -> None:
    memory = StandInMemory("context_for", "remember")  # would fail, were it reached
    bot = bot_with(memory, allowed_tenant_ids=frozenset({"another-tenant"}))
    texts = await say(bot, teams_message("hello", tenant_id=TENANT_ID, service_url=SERVICE_URL))
    assert texts == [TENANT_REFUSED]


async def test_a_tenant_named_by_another_channel_is_not_believed() -> None:
    memory = StandInMemory()
    bot = bot_with(memory, allowed_tenant_ids=frozenset({TENANT_ID.lower()}))
    forged = emulator_message("hello", service_url=SERVICE_URL)
    forged["conversation"]["tenantId"] = TENANT_ID
    forged["channelData"] = {"tenant": {"id": TENANT_ID}}
    assert await say(bot, forged) == [TENANT_REFUSED]
    assert await say(bot, teams_message("hello", service_url=SERVICE_URL)) != [TENANT_REFUSED]


GROUP = "19:team-room@thread.v2"


def in_group(text: str, member: str, value: dict[str, Any] | None = None) -> dict[str, Any]:
    """`text` said in the group chat GROUP by `member`, mentioning the bot; with a button's
    `value`, a press."""
    said = teams_message(
        text,
        conversation_type="groupChat",
        conversation_id=GROUP,
        aad_object_id=member,
        mention_bot=True,
        service_url=SERVICE_URL,
    )
    return said | ({"value": value} if value else {})


async def test_a_forget_button_works_for_who_asked_that_question_only() -> None:
    memory = StandInMemory()
    bot = bot_with(memory)

    asker, other = "11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222"
    confirm = {"action": "memorybot.forget.confirm", "question": LAST_CARD}
    stale = {"action": "memorybot.forget.confirm", "question": "a question never asked"}
    assert (await say(bot, in_group("forget", asker), in_group("", asker, stale)))[-1] == (
        FORGET_BUTTON_EXPIRED
    )
    assert (await say(bot, in_group("forget", asker), in_group("", other, confirm)))[-1] == (
        FORGET_BUTTON_EXPIRED
    )
    assert memory.forgotten == []
    texts = await say(bot, in_group("forget", asker), in_group("", asker, confirm))
    assert texts[-1] == GROUP_CHAT.forgotten
    assert len(memory.forgotten) == 1


async def test_commands_count_toward_the_rate_limit() -> None:
    bot = bot_with(StandInMemory(), rate_limiter=RateLimiter(2))
    texts = await say(bot, "help", "memory", "hello")
    assert texts[-1] == RATE_LIMITED.format(limit=2)


async def test_the_limit_is_per_person_across_their_chats_and_per_member_in_a_group() -> None:
    bot = bot_with(StandInMemory(), rate_limiter=RateLimiter(2))
    member = "33333333-3333-4333-8333-333333333333"

    def teams(
        text: str, where: ConversationType = "personal", aad: str = USER_AAD_OBJECT_ID
    ) -> dict[str, Any]:
        return teams_message(
            text,
            conversation_type=where,
            conversation_id="19:room@thread.v2" if where != "personal" else None,
            mention_bot=where != "personal",
            aad_object_id=aad,
            service_url=SERVICE_URL,
        )

    texts = await say(bot, teams("one"), teams("two", "groupChat"), teams("three", "groupChat"))
    assert texts[-1] == RATE_LIMITED.format(limit=2)  # the same person, whichever chat
    texts = await say(bot, teams("mine", "groupChat", aad=member))
    assert texts[-1] != RATE_LIMITED.format(limit=2)  # another member's own budget


def test_the_limiter_keeps_a_bounded_number_of_people() -> None:
    limiter = RateLimiter(1)
    for n in range(MAX_PEOPLE + 50):
        assert limiter.allow(f"person-{n}")
    assert len(limiter) == MAX_PEOPLE
    assert not limiter.allow(f"person-{MAX_PEOPLE + 49}")  # the newest are still counted


async def test_a_message_delivered_again_is_answered_and_remembered_once() -> None:
    memory = StandInMemory()
    bot = bot_with(memory)
    message = emulator_message("hello", service_url=SERVICE_URL)
    assert await say(bot, message, message) == ["echo: hello"]
    assert memory.remembered == [("hello", "echo: hello")]
    other = emulator_message("hello", service_url=SERVICE_URL)  # same words, another message
    assert await say(bot, other) == ["echo: hello"]


class BrokenMemory(StandInMemory):
    async def context_for(self, key: str, text: str, *, author: str = "") -> Context:
        raise RuntimeError("a bug, not a store failure")


async def test_a_message_whose_handling_failed_is_handled_when_delivered_again() -> None:
    marks = MarksInMemory()
    message = emulator_message("hello", service_url=SERVICE_URL)
    with pytest.raises(RuntimeError):
        await say(bot_with(BrokenMemory(), ledger=Ledger(cast(MemoryStore, marks))), message)
    assert marks.marks == {}  # given back
    memory = StandInMemory()
    assert await say(bot_with(memory, ledger=Ledger(cast(MemoryStore, marks))), message) == [
        "echo: hello"
    ]


class UnreachableMarks(MarksInMemory):
    async def mark(self, *args: Any, **kwargs: Any) -> bool:
        raise StoreUnavailable("the ledger's store is down")


async def test_a_ledger_that_cannot_be_reached_lets_the_message_through() -> None:
    bot = bot_with(StandInMemory(), ledger=Ledger(cast(MemoryStore, UnreachableMarks())))
    assert await say(bot, "help") != []
    assert await say(bot, "hello") == ["echo: hello"]


async def test_two_instances_on_one_store_share_the_limit_and_the_forget_question() -> None:
    marks = MarksInMemory()
    memory = StandInMemory()
    first, second = (
        bot_with(memory, ledger=Ledger(cast(MemoryStore, marks)), rate_limiter=RateLimiter(3))
        for _ in range(2)
    )
    assert (await say(first, "forget"))[-1].startswith(PERSONAL_CHAT.forget_question)
    assert await say(second, "yes") == [PERSONAL_CHAT.forgotten]  # asked on one, answered on other
    assert len(memory.forgotten) == 1
    assert await say(first, "hello") == ["echo: hello"]  # each instance has seen two or one
    assert await say(second, "hello again") == [RATE_LIMITED.format(limit=3)]


async def test_a_store_failure_while_answering_a_file_consent_gets_its_sentence() -> None:
    """The file consent invoke is answered 200 whatever happened; the person reads what did."""
    memory = StandInMemory()
    bot = bot_with(memory)
    adapter = RecordingAdapter()
    export = teams_message("export", service_url=SERVICE_URL)
    await bot.on_turn(TurnContext(adapter, Activity().deserialize(export)))
    offer = adapter.sent[-1].attachments[0].content["acceptContext"]
    memory.failing.add("export")
    upload = {"uploadUrl": "https://upload.example/1", "name": "x.json", "uniqueId": "1"}
    invoke = file_consent_invoke("accept", offer, upload, service_url=SERVICE_URL)
    await bot.on_turn(TurnContext(adapter, Activity().deserialize(invoke)))
    assert adapter.texts()[-1] == STORE_DOWN_WHILE_RUNNING_A_COMMAND
    assert [a.value.status for a in adapter.sent if a.type == "invokeResponse"] == [200]


async def test_another_members_keep_does_not_void_the_question_and_a_double_press_forgets() -> None:
    memory = StandInMemory()
    bot = bot_with(memory)
    asker, other = "11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222"

    keep = {"action": "memorybot.forget.cancel", "question": "not the one asked"}
    confirm = {"action": "memorybot.forget.confirm", "question": LAST_CARD}
    texts = await say(bot, in_group("forget", asker), in_group("", other, keep))
    assert texts[-1] == FORGET_CANCELLED  # nothing forgotten, and A's question still stands
    adapter = RecordingAdapter()
    card = None
    for turn in (in_group("forget", asker),):
        await bot.on_turn(TurnContext(adapter, Activity().deserialize(turn)))
        card = next(a for a in reversed(adapter.sent) if a.attachments).attachments[0]
    assert card is not None
    data = card.content["actions"][0]["data"] | {"action": confirm["action"]}
    presses = [in_group("", asker, data), in_group("", asker, data)]  # two ids: a double press
    await asyncio.gather(
        *(bot.on_turn(TurnContext(adapter, Activity().deserialize(p))) for p in presses)
    )
    assert len(memory.forgotten) == 1


async def test_a_redelivery_over_this_instances_limit_is_dropped_quietly() -> None:
    bot = bot_with(StandInMemory(), rate_limiter=RateLimiter(1))
    message = emulator_message("hello", service_url=SERVICE_URL)
    assert await say(bot, message, message) == ["echo: hello"]
    assert await say(bot, "another") == [RATE_LIMITED.format(limit=1)]


async def test_a_forget_button_pressed_after_another_message_forgets_nothing() -> None:
    memory = StandInMemory()
    confirm = card_answer("memorybot.forget.confirm")
    texts = await say(bot_with(memory), "forget", "what's the weather?", confirm)
    assert texts[-1] == FORGET_BUTTON_EXPIRED
    assert memory.forgotten == []


class FailingAfterReply(StandInMemory):
    async def remember(self, *args: Any, **kwargs: Any) -> bool:
        raise RuntimeError("a bug after the answer went out")


async def test_a_message_answered_before_its_handling_failed_is_not_answered_again() -> None:
    marks = MarksInMemory()
    message = emulator_message("hello", service_url=SERVICE_URL)
    bot = bot_with(FailingAfterReply(), ledger=Ledger(cast(MemoryStore, marks)))
    with pytest.raises(RuntimeError):
        await say(bot, message)
    assert (
        await say(bot_with(StandInMemory(), ledger=Ledger(cast(MemoryStore, marks))), message) == []
    )


@pytest.mark.parametrize(
    ("said", "understood"),
    [
        ("forget Pepper", (Command.FORGET, "Pepper")),
        ("/Forget  the   dog", (Command.FORGET, "the dog")),
        ("forget", (Command.FORGET, "")),
        ("Forget it, never mind", None),  # said, not asked: chat
        ("forget about that, nevermind!", None),
        ("forget that please", (Command.FORGET, "that please")),  # asked: answered truthfully
        ("forget it Pepper", (Command.FORGET, "it Pepper")),
        ("forget when we met?", None),
        ("help me with this", None),
    ],
)
def test_commands_are_read_as_people_mean_them(
    said: str, understood: tuple[Command, str] | None
) -> None:
    assert command_in(said) == understood
