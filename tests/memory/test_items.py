"""Memory items: extracted by the model off the reply path, dictated with "remember that",
replaced when contradicted, recalled into prompts, forgotten one by one. On every store."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from memory import ConversationMemory, ConversationRecord, MemoryStore
from memory.items import (
    MAX_CURRENT_ITEMS,
    MAX_ITEM_CHARS,
    NewItem,
    dictated,
    extraction_prompt,
    kind_of,
    read_extraction,
    with_items,
)
from memory.records import ChatMessage, MemoryItem, Message
from memory.summary import summary_prompt
from memory.tokens import count_tokens, prompt_tokens
from tests.conftest import StoreFactory, conversation_memory

pytestmark = pytest.mark.integration

MAY_3 = datetime(2026, 5, 3, 9, 0, tzinfo=UTC)


class Extractor:
    """The model's `complete`: answers extraction prompts from a script, counts the calls."""

    def __init__(self, *answers: str | Exception) -> None:
        self.answers = list(answers)
        self.prompts: list[Sequence[ChatMessage]] = []

    async def __call__(self, messages: Sequence[ChatMessage]) -> str:
        self.prompts.append(messages)
        answer = self.answers.pop(0) if self.answers else '{"items": []}'
        if isinstance(answer, Exception):
            raise answer
        return answer


def items_json(*items: object) -> str:
    return json.dumps({"items": list(items)})


def memory_on(store: MemoryStore, extractor: Extractor | None) -> ConversationMemory:
    return conversation_memory(
        store, summarise=extractor, extract_every=4, summary_every=1000, max_messages=40
    )


@pytest.mark.parametrize(
    ("said", "kept"),
    [
        ("remember that my daughter's name is Maya", "my daughter's name is Maya"),
        ("Please remember: the launch moved to 12 June.", "the launch moved to 12 June"),
        ("Can you remember I take my coffee black", "I take my coffee black"),
        ("I remember that day well", None),
        ("do you remember my manager?", None),
        ("remember that", None),  # nothing said: ask what to keep
        ("Remember that!", None),
        ("remember \u0000", None),
        ("remember ...", None),
        ("remember that the code is 42\u0000", "the code is 42"),
        ("remember that that was Tuesday", "that was Tuesday"),
        ("By the way, please remember that I'm on leave next week.", "I'm on leave next week"),
        ("Thanks! Remember that the demo is on Friday", "the demo is on Friday"),
        ("Oh, I remember that day well", None),  # remembering, not dictating
        ("He said, remember that guy from college?", None),  # a question
        ("Mei: Remember that class I told you about? I made a bowl", None),
        (
            "Sam: remember that the train leaves at 9. Don't be late!",
            "the train leaves at 9. Don't be late",
        ),
        ("Do you remember? Remember: the code is 42", "the code is 42"),
        ("Fine.\nremember that", None),
        ("Can you remember that my son is Sam?", "my son is Sam"),  # asked politely, kept
        (
            "remember https://example.com/search?q=budget is the dashboard",
            "https://example.com/search?q=budget is the dashboard",
        ),
    ],
)
def test_what_a_person_dictates_is_kept_as_said(said: str, kept: str | None) -> None:
    assert dictated(said) == kept


def test_the_remember_command_is_never_read_as_a_question() -> None:
    said = "remember FAQ: why is the build red? flaky tests"
    assert dictated(said) is None  # in chat: it asks something
    assert dictated(said, command=True) == "FAQ: why is the build red? flaky tests"


@pytest.mark.parametrize(
    ("said", "kept", "kind"),
    [
        ("I prefer tea over coffee, remember that", "I prefer tea over coffee", "preference"),
        ("My son is called Sam - please remember that!", "My son is called Sam", "fact"),
        (
            "We moved the launch to March 3. Remember that.",
            "We moved the launch to March 3",
            "fact",
        ),
        (
            "We decided to use Postgres, can you remember that?",
            "We decided to use Postgres",
            "decision",
        ),
        ("I'm vegetarian; could you please remember this?", "I'm vegetarian", "fact"),
        ("My badge number is 4471, remember this", "My badge number is 4471", "fact"),
        ("I prefer tea over coffee (remember that)", "I prefer tea over coffee", "preference"),
        (
            "The freeze starts on 12 December — remember that",
            "The freeze starts on 12 December",
            "fact",
        ),
        ("Thanks! My manager is Priya.\n\nRemember that!!", "Thanks! My manager is Priya", "fact"),
        ("Is it Friday? No, it's Monday. Remember that", "Is it Friday? No, it's Monday", "fact"),
        (
            "Maya starts school in Lyon, remember that" + " " * 16000,
            "Maya starts school in Lyon",
            "fact",
        ),
        (
            "I prefer tea over coffee, remember that please",
            "I prefer tea over coffee",
            "preference",
        ),
        ("My badge number is 4471, remember that, thanks!", "My badge number is 4471", "fact"),
    ],
)
def test_what_a_person_asks_to_keep_after_saying_it_is_kept(
    said: str, kept: str, kind: str
) -> None:
    assert dictated(said) == kept
    assert kind_of(kept) == kind


def test_a_long_message_that_ends_asking_to_remember_keeps_its_last_sentences() -> None:
    said = "So much happened this week. " * 25 + "My locker code is 4471, remember that"
    kept = dictated(said)
    assert kept is not None
    assert kept.endswith("My locker code is 4471")
    assert kept.startswith("So much happened")  # whole sentences, not a cut one
    assert len(kept) <= MAX_ITEM_CHARS


@pytest.mark.parametrize(
    "said",
    [
        "I remember that day",
        "Do you remember that?",
        "Do you still remember that?",
        "Don't you remember that?",
        "I can't remember that",
        "I don't remember that",
        "you'd remember that",
        "we'll always remember that",
        "Hard to remember that",
        "Sure, I remember that.",
        "Remember that?",
        "remember that",
        "Remember this!",
        "remember that, and then we went home",
        "We went to the lake, remember that, and then we went home",
        "We met in Paris last May, remember that?",  # asks whether they recall it
        "Is the launch on March 3? Remember that.",  # a question is no thing to keep
        "Fine.\nremember that",
        "By the way, remember that",  # points at something said before
        "OK Sam, remember that",
        "I prefer tea, remember that 🙏",  # only closing marks may follow
    ],
)
def test_remembering_or_asking_whether_one_remembers_is_not_dictating(said: str) -> None:
    assert dictated(said) is None


@pytest.mark.parametrize(
    ("said", "kind"),
    [
        ("I prefer dark mode", "preference"),
        ("my favourite café is Zoë's", "preference"),
        ("we decided to use Postgres", "decision"),
        ("We're going with the blue logo", "decision"),
        ("my manager is Priya Shah", "fact"),
        ("the freeze starts on 12 December", "fact"),
        ("I'd rather take the train", "preference"),
        ("the venue looks like a barn", "fact"),  # everyday words, said of no one
        ("it is rather far", "fact"),
        ("Sam will go with us to Paris", "fact"),
        ("the decision meeting is on Monday", "fact"),
    ],
)
async def test_a_dictated_thing_is_kept_as_the_kind_its_words_say(
    store_factory: StoreFactory, said: str, kind: str
) -> None:
    memory = memory_on(await store_factory(), None)
    item = await memory.remember_item("k", said)
    assert item is not None
    assert item.kind == kind
    await memory.remember("k", f"remember that {said} too", "OK.", at=MAY_3)
    dictated_item = (await memory.recall("k")).current_items[-1]
    assert (dictated_item.text, dictated_item.kind) == (f"{said} too", kind)


def test_an_item_is_not_added_twice_and_a_replaced_one_is_kept_superseded() -> None:
    record = with_items(ConversationRecord(key="k"), [NewItem("Lives in Paris.")], MAY_3)
    [paris] = record.items
    later = MAY_3 + timedelta(days=30)
    record = with_items(
        record,
        [NewItem("lives in paris"), NewItem("Lives in Lyon.", replaces=(paris.id,))],
        later,
    )
    assert [i.text for i in record.current_items] == ["Lives in Lyon."]
    [old, new] = record.items
    assert (old.superseded_by, old.superseded_at) == (new.id, later)


def test_the_oldest_standing_items_go_past_the_cap() -> None:
    new = [NewItem(f"fact number {n}") for n in range(MAX_CURRENT_ITEMS + 5)]
    record = with_items(ConversationRecord(key="k"), new, MAY_3)
    assert len(record.current_items) == MAX_CURRENT_ITEMS
    assert record.current_items[0].text == "fact number 5"


def test_an_extraction_answer_is_read_leniently_but_never_trusted() -> None:
    said = [Message("user", "My daughter Maya starts school in Lyon", MAY_3)]
    standing = [MemoryItem("Has a son.", id="abc")]
    answer = (
        "Sure!\n```json\n"
        + items_json(
            {"kind": "fact", "text": "Daughter Maya starts school in Lyon.", "sources": [1, 7]},
            {
                "kind": "mood",
                "text": "Unknown kind becomes a fact.",
                "replaces": ["abc", "made-up"],
            },
            {"kind": "fact"},
            "not an item",
        )
        + "\n```"
    )
    first, second = read_extraction(answer, standing, said)
    assert first == NewItem(
        "Daughter Maya starts school in Lyon.", "fact", (said[0].id,), (), said_at=MAY_3
    )
    assert second == NewItem("Unknown kind becomes a fact.", "fact", (), ("abc",))
    with pytest.raises(ValueError, match="JSON"):
        read_extraction("I found nothing.", standing, said)


async def test_items_are_extracted_off_the_reply_path_and_replaced_when_contradicted(
    store_factory: StoreFactory,
) -> None:
    extractor = Extractor(
        items_json({"kind": "fact", "text": "Lives in Paris.", "sources": [1]}),
    )
    memory = memory_on(await store_factory(), extractor)
    await memory.remember("k", "I live in Paris", "Nice.", at=MAY_3)
    assert extractor.prompts == []  # 2 messages: not yet
    await memory.remember("k", "and I work at Contoso", "Noted.", at=MAY_3)
    await memory.drain()
    [prompt] = extractor.prompts
    assert "[1] (2026-05-03) Person: I live in Paris" in prompt[1]["content"]
    [paris] = (await memory.recall("k")).current_items
    assert paris.text == "Lives in Paris."
    assert len(paris.sources) == 1

    extractor.answers.append(
        items_json({"kind": "fact", "text": "Lives in Lyon.", "replaces": [paris.id]})
    )
    await memory.remember("k", "We moved to Lyon last week", "Congratulations!")
    await memory.remember("k", "It is lovely", "Glad to hear.")
    await memory.drain()
    assert len(extractor.prompts) == 2
    assert (
        f"- id {paris.id} (2026-05-03, fact): Lives in Paris." in extractor.prompts[1][1]["content"]
    )
    record = await memory.recall("k")
    assert [i.text for i in record.current_items] == ["Lives in Lyon."]
    assert [i.text for i in record.items] == ["Lives in Paris.", "Lives in Lyon."]
    assert record.unextracted == 0


async def test_a_failed_extraction_drops_nothing_and_an_unreadable_one_is_not_asked_again(
    store_factory: StoreFactory,
) -> None:
    extractor = Extractor(
        RuntimeError("model down"),
        items_json({"kind": "preference", "text": "Likes tea.", "sources": [1]}),
        "no JSON here",
    )
    memory = memory_on(await store_factory(), extractor)
    for n in range(2):
        await memory.remember("k", "I like tea" if n == 0 else "really", "ok")
    await memory.drain()
    assert (await memory.recall("k")).unextracted == 4  # failed: kept for the next time
    for _ in range(2):  # the extraction the first of them starts reads all six
        await memory.remember("k", "more", "ok")
        await memory.drain()
    record = await memory.recall("k")
    assert "I like tea" in extractor.prompts[1][1]["content"]  # read again, with the new ones
    assert [(i.kind, i.text) for i in record.current_items] == [("preference", "Likes tea.")]
    for _ in range(2):
        await memory.remember("k", "again", "ok")
        await memory.drain()
    # Unreadable: read, nothing added, and not asked again; only the newest two wait.
    assert len(extractor.prompts) == 3
    assert (await memory.recall("k")).unextracted == 2
    assert len((await memory.recall("k")).current_items) == 1


async def test_without_a_model_only_what_the_person_dictates_is_kept(
    store_factory: StoreFactory,
) -> None:
    memory = memory_on(await store_factory(), None)
    await memory.remember("k", "remember that my daughter's name is Maya", "I will.")
    await memory.remember("k", "I live in Paris", "Nice.")
    record = await memory.recall("k")
    [maya] = record.current_items
    assert maya.text == "my daughter's name is Maya"
    assert maya.sources == (record.messages[0].id,)
    assert record.unextracted == 0


async def test_a_chat_turn_that_ends_asking_to_remember_keeps_what_came_before(
    store_factory: StoreFactory,
) -> None:
    memory = memory_on(await store_factory(), None)
    await memory.remember("k", "I prefer tea over coffee, remember that!", "I will.", at=MAY_3)
    await memory.remember("k", "Do you remember that?", "Which part?", at=MAY_3)
    record = await memory.recall("k")
    [tea] = record.current_items
    assert (tea.text, tea.kind) == ("I prefer tea over coffee", "preference")
    assert tea.sources == (record.messages[0].id,)


async def test_items_reach_the_prompt_the_most_relevant_first(
    store_factory: StoreFactory,
) -> None:
    memory = memory_on(await store_factory(), None)
    for fact in ("Daughter Maya starts school in Lyon.", "Takes coffee black.", "Manager: Ada."):
        await memory.remember_item("k", fact)
    prompt = await memory.prompt_for("k", "When does Maya start school?")
    quoted = next(m["content"] for m in prompt if "What you know about them" in m["content"])
    lines = [line for line in quoted.splitlines() if line.startswith("- (")]
    assert lines[0].endswith("fact) Daughter Maya starts school in Lyon.")
    assert len(lines) == 3


async def test_remember_forget_one_and_forget_by_words(store_factory: StoreFactory) -> None:
    store = await store_factory()
    memory = memory_on(store, None)
    tea = await memory.remember_item("k", "Likes green tea.")
    assert tea is not None
    assert await memory.remember_item("k", "likes green tea") is None  # said already
    await memory.remember_item("k", "Works at Contoso.")
    await memory.remember("k", "The tea shop on Rue Cler is my favourite", "Noted.", at=MAY_3)
    await memory.remember("k", "Contoso moved offices", "OK.", at=MAY_3)

    items, messages, in_summary = await memory.matching("k", "tea")
    assert [i.text for i in items] == ["Likes green tea."]
    assert [m.content for m in messages] == ["The tea shop on Rue Cler is my favourite"]
    assert not in_summary
    assert (await memory.recall("k")).message_count == 4
    assert await memory.forget_matching("k", "tea") == (1, 1)

    record = await memory.recall("k")
    assert record.message_count == 3  # what `memory` and an export say is kept
    assert [i.text for i in record.current_items] == ["Works at Contoso."]
    assert "The tea shop on Rue Cler is my favourite" not in [m.content for m in record.messages]
    assert await store.search("k", ["tea"], 10) == []
    assert [m.content for m in await store.search("k", ["Contoso"], 10)] == [
        "Contoso moved offices"
    ]
    [contoso] = record.current_items
    await memory.forget_items("k", [contoso.id])
    assert (await memory.recall("k")).items == ()
    export = await memory.export("k")
    assert export["items"] == []


async def test_items_expire_from_their_own_date(store_factory: StoreFactory) -> None:
    memory = conversation_memory(await store_factory(), item_ttl=timedelta(days=90))
    await memory.remember("k", "remember that the office is in Leeds", "OK.", at=MAY_3)
    later = MAY_3 + timedelta(days=60)
    await memory.remember("k", "remember that the team is ten people", "OK.", at=later)
    await memory.remember("k", "hello again", "Hi.", at=MAY_3 + timedelta(days=91))
    assert [i.text for i in (await memory.recall("k")).items] == ["the team is ten people"]


async def test_forget_by_words_forgets_every_match_the_summary_and_superseded_items(
    store_factory: StoreFactory,
) -> None:
    store = await store_factory()
    memory = memory_on(store, None)
    said = [Message("user", f"marigold note {n}", MAY_3 + timedelta(minutes=n)) for n in range(450)]
    said.append(Message("user", "nothing to do with it", MAY_3))
    await store.update("k", lambda record: record, archive=said)
    old = MemoryItem("Grows marigolds.", id="old")
    new = MemoryItem("Grows roses.", id="new")

    def seed(record: ConversationRecord) -> ConversationRecord:
        return replace(
            record,
            summary="They grow marigolds and like tea.",
            items=(replace(old, superseded_by="new"), new),
            message_count=451,
        )

    await store.update("k", seed)
    items, messages, in_summary = await memory.matching("k", "marigold")
    assert ([i.id for i in items], len(messages), in_summary) == (["old"], 50, True)
    assert await memory.forget_matching("k", "marigolds") == (1, 450)
    record = await store.load("k")
    assert record.message_count == 1
    assert record.summary == ""
    assert [i.id for i in record.items] == ["new"]
    assert await store.search("k", ["marigold"], 500) == []
    assert [m.content for m in await store.search("k", ["nothing"], 10)] == [
        "nothing to do with it"
    ]


def test_the_background_prompts_stay_within_the_budget_whatever_was_said() -> None:
    # A person (or one member of a group) sends messages of 16,000 emoji: the summary and the
    # extraction prompts still fit the prompt budget; they hold the oldest messages that fit
    # (the first one cut, when alone it does not), and the rest wait for the next call.
    at = datetime(2026, 3, 2, tzinfo=UTC)
    short = [Message("user", f"My sister Ana moves to Porto in May, day {n}", at) for n in range(3)]
    said = [*short, *(Message("user", "🎉" * 16_000, at) for _ in range(200))]
    standing = [MemoryItem(f"Item number {n} " + "word " * 60, at=at) for n in range(200)]
    for budget in (1000, 3000):
        summary, folded = summary_prompt("An earlier summary. " * 2000, said, budget)
        extraction, read = extraction_prompt(standing, said, budget)
        for prompt, held in ((summary, folded), (extraction, read)):
            assert prompt_tokens(prompt) <= budget + 60  # lines are counted roughly
            assert 1 <= held < len(said)
            assert "My sister Ana moves to Porto in May, day 0" in prompt[1]["content"]
    # The smallest budget allowed is less than the instructions: one message still goes.
    for prompt, held in (summary_prompt("", said, 200), extraction_prompt(standing, said, 200)):
        assert held == 1
        assert prompt_tokens(prompt) <= count_tokens(prompt[0]["content"]) + 60
    huge_first = said[3:]
    summary, folded = summary_prompt("", huge_first, 3000)
    assert folded == 1
    assert prompt_tokens(summary) <= 3000
    assert "🎉" in summary[1]["content"]
    extraction, read = extraction_prompt(standing, said, 3000)
    assert read == 3  # the short ones whole; the next, alone too long, waits
    assert "Item number 199" in extraction[1]["content"]  # the newest standing items first
    assert "Item number 0 " not in extraction[1]["content"]
    # ... after those the new messages are about, however old (a new item may replace one).
    standing[0] = MemoryItem("Their sister Ana lives in Lisbon", at=at)
    extraction, _ = extraction_prompt(standing, said, 3000)
    listed = extraction[1]["content"]
    assert "Their sister Ana lives in Lisbon" in listed
    assert listed.index("Their sister Ana") < listed.index("Item number 199")  # oldest first
