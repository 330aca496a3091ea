"""One behaviour suite for the store interface, run against every backend with the same asserts."""

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from memory import ConversationMemory, ConversationRecord, MemoryStore, Message
from memory.conversation import EXPORT_FORMAT
from memory.recall import search_terms
from memory.terms import terms_of
from tests.conftest import StoreFactory, conversation_memory

pytestmark = pytest.mark.integration

AWKWARD_KEYS = [
    "user/tenant/with/slashes",
    "back\\slash",
    "question?mark",
    "hash#tag",
    "mixed/\\?#all",
    "Ünïcödé/ключ/鍵",
    "x" * 300,
    "x" * 299 + "y",
    "Case",
    "case",
]


def memory_on(store: MemoryStore, max_messages: int = 20) -> ConversationMemory:
    return conversation_memory(store, system_prompt="system", max_messages=max_messages)


async def test_a_turn_round_trips(store_factory: StoreFactory) -> None:
    memory = memory_on(await store_factory())
    await memory.remember("k", "I work on Project Falcon", "Noted.")
    record = await memory.recall("k")
    assert [(m.role, m.content) for m in record.messages] == [
        ("user", "I work on Project Falcon"),
        ("assistant", "Noted."),
    ]
    assert record.updated_at is not None


async def test_an_unknown_key_is_an_empty_record(store_factory: StoreFactory) -> None:
    store = await store_factory()
    assert await store.load("nobody") == ConversationRecord(key="nobody")


async def test_trimming_keeps_the_newest_whole_turns(store_factory: StoreFactory) -> None:
    memory = memory_on(await store_factory(), max_messages=4)
    for n in range(5):
        await memory.remember("k", f"q{n}", f"a{n}")
    record = await memory.recall("k")
    assert [m.content for m in record.messages] == ["q3", "a3", "q4", "a4"]


async def test_keys_are_isolated(store_factory: StoreFactory) -> None:
    memory = memory_on(await store_factory())
    await memory.remember("alice", "my secret is 42", "ok")
    await memory.remember("bob", "hello", "hi")
    alice = await memory.recall("alice")
    bob = await memory.recall("bob")
    assert all("42" not in m.content for m in bob.messages)
    assert [m.content for m in alice.messages] == ["my secret is 42", "ok"]


async def test_delete_forgets_one_key_only(store_factory: StoreFactory) -> None:
    memory = memory_on(await store_factory())
    await memory.remember("alice", "a", "b")
    await memory.remember("bob", "c", "d")
    await memory.forget("alice")
    await memory.forget("never-seen")
    assert (await memory.recall("alice")).messages == ()
    assert len((await memory.recall("bob")).messages) == 2


async def test_awkward_keys_are_stored_apart(store_factory: StoreFactory) -> None:
    memory = memory_on(await store_factory())
    for key in AWKWARD_KEYS:
        await memory.remember(key, f"told under {key}")
    for key in AWKWARD_KEYS:
        record = await memory.recall(key)
        assert [m.content for m in record.messages] == [f"told under {key}"]
        assert record.key == key


async def test_concurrent_saves_lose_nothing(store_factory: StoreFactory) -> None:
    memory = memory_on(await store_factory(), max_messages=100)
    await asyncio.gather(*(memory.remember("k", f"q{n}", f"a{n}") for n in range(20)))
    record = await memory.recall("k")
    assert len(record.messages) == 40
    contents = [m.content for m in record.messages]
    for n in range(20):
        # Each reply follows its own question: turns are never interleaved.
        assert contents.index(f"a{n}") == contents.index(f"q{n}") + 1


async def test_memory_survives_reopening_the_store(store_factory: StoreFactory) -> None:
    first = await store_factory()
    await memory_on(first).remember("k", "remember me", "I will")
    await first.close()
    second = await store_factory(reopen=True)
    assert [m.content for m in (await second.load("k")).messages] == ["remember me", "I will"]


async def test_what_another_instance_wrote_is_seen_by_the_next_load_and_write(
    store_factory: StoreFactory,
) -> None:
    first = memory_on(await store_factory())
    second = memory_on(await store_factory(reopen=True))

    def contents(record: ConversationRecord) -> list[str]:
        return [m.content for m in record.messages]

    await first.remember("k", "one", "1")
    assert contents(await first.recall("k")) == ["one", "1"]
    await second.remember("k", "two", "2")
    assert contents(await first.recall("k")) == ["one", "1", "two", "2"]
    await first.remember("k", "three")
    assert contents(await second.recall("k")) == ["one", "1", "two", "2", "three"]


async def test_load_with_matches_is_a_load_and_a_search_at_once(
    store_factory: StoreFactory,
) -> None:
    store = await store_factory()
    memory = memory_on(store, max_messages=4)
    said = [
        "the falcon launch is in May",
        "lunch at noon",
        "falcon budget approved",
        "nothing much",
        "weather is fine",
    ]
    for n, text in enumerate(said):
        await memory.remember("k", text, f"reply {n}")
    record, matches = await store.load_with_matches("k", ["falcon"], 5)
    assert record == await store.load("k")
    assert record.message_count == 10
    assert [m.id for m in matches] == [m.id for m in await store.search("k", ["falcon"], 5)]
    assert {m.content for m in matches} == {"the falcon launch is in May", "falcon budget approved"}
    assert await store.load_with_matches("k", [], 5) == (record, [])
    nobody = await store.load("nobody")
    assert await store.load_with_matches("nobody", ["falcon"], 5) == (nobody, [])


async def test_search_terms_are_read_as_the_archive_reads_messages(
    store_factory: StoreFactory,
) -> None:
    store = await store_factory()
    memory = memory_on(store)
    await memory.remember("k", "Falcon's launch slipped to Zürich week", "Noted.")
    await memory.remember("k", "Lunch plans", "Enjoy.")
    for terms in (["Falcon's"], ["FALCON"], ["Zürich"], ["project launch"]):
        found = await store.search("k", terms, 5)
        assert [m.content for m in found] == ["Falcon's launch slipped to Zürich week"], terms
    assert await store.search("k", ["the", "'s", "  "], 5) == []


async def test_word_forms_find_each_other(store_factory: StoreFactory) -> None:
    store = await store_factory()
    memory = memory_on(store)
    await memory.remember("k", "I've been researching pottery studios by the river", "Fun!")
    await memory.remember("k", "Lunch plans for Friday", "Enjoy.")
    for asked in (["any research on a studio?"], ["researched"], ["Studio"]):
        found = await store.search("k", asked, 5)
        assert [m.content for m in found] == [
            "I've been researching pottery studios by the river"
        ], asked


# Marks: the short-lived notes `memory.Ledger` keeps (deliveries taken, questions standing).
NOW = 1_800_000_000.0


async def test_a_mark_is_set_once_while_it_stands_then_again_once_expired(
    store_factory: StoreFactory,
) -> None:
    store = await store_factory()
    assert await store.mark("k", "delivery:1", "", now=NOW, seconds=60, replace=False)
    assert not await store.mark("k", "delivery:1", "", now=NOW + 59, seconds=60, replace=False)
    assert await store.mark("k", "delivery:1", "", now=NOW + 60, seconds=60, replace=False)
    assert await store.mark("other", "delivery:1", "", now=NOW, seconds=60, replace=False)


async def test_of_two_instances_setting_one_mark_at_once_one_wins(
    store_factory: StoreFactory,
) -> None:
    first, second = await store_factory(), await store_factory(reopen=True)
    for round_ in range(3):
        name = f"delivery:{round_}"
        outcomes = await asyncio.gather(
            *(
                store.mark("k", name, "", now=NOW, seconds=60, replace=False)
                for store in (first, second) * 4
            )
        )
        assert outcomes.count(True) == 1
    # An expired mark, renewed by both at once: still one.
    outcomes = await asyncio.gather(
        *(
            store.mark("k", "delivery:0", "", now=NOW + 61, seconds=60, replace=False)
            for store in (first, second) * 4
        )
    )
    assert outcomes.count(True) == 1


async def test_a_mark_is_read_replaced_and_removed(store_factory: StoreFactory) -> None:
    store = await store_factory()
    assert await store.marked("k", "question:forget", now=NOW) is None
    await store.mark("k", "question:forget", "first", now=NOW, seconds=300, replace=True)
    await store.mark("k", "question:forget", "second", now=NOW + 1, seconds=300, replace=True)
    assert await store.marked("k", "question:forget", now=NOW + 2) == "second"
    assert await store.marked("k", "question:forget", now=NOW + 301) is None  # expired
    assert await store.unmark("k", "question:forget")
    assert not await store.unmark("k", "question:forget")  # removing none is fine, and said
    assert await store.marked("k", "question:forget", now=NOW + 2) is None


async def test_marks_are_counted_by_name_and_time(store_factory: StoreFactory) -> None:
    store = await store_factory()
    for n, name in enumerate(["delivery:a", "delivery:b", "delivery:c", "deliveryX", "q:d"]):
        await store.mark("k", name, "", now=NOW + n * 10, seconds=100, replace=False)
    await store.mark("other", "delivery:z", "", now=NOW, seconds=100, replace=False)
    assert await store.count_marks("k", "delivery:", since=NOW, now=NOW + 40) == 3
    assert await store.count_marks("k", "delivery:", since=NOW + 10, now=NOW + 40) == 2
    assert await store.count_marks("k", "delivery:", since=NOW, now=NOW + 105) == 2  # 1 expired
    assert await store.count_marks("k", "del%", since=NOW, now=NOW + 40) == 0  # `%` is plain


async def test_marks_leave_the_memory_alone(store_factory: StoreFactory) -> None:
    store = await store_factory()
    memory = memory_on(store)
    await memory.remember("k", "I work on Project Falcon", "Noted.")
    await store.mark("k", "delivery:falcon", "Falcon", now=NOW, seconds=60, replace=False)
    assert [m.content for m in await store.search("k", ["falcon"], 10)] == [
        "I work on Project Falcon"
    ]
    assert len(await store.archived("k", 10)) == 2
    assert len((await store.load("k")).messages) == 2


async def test_forgetting_a_memory_keeps_its_marks(store_factory: StoreFactory) -> None:
    """Marks hold no words; they keep a forgotten person's rate limit and taken deliveries."""
    store = await store_factory()
    await memory_on(store).remember("k", "I work on Project Falcon", "Noted.")
    await store.mark("k", "delivery:1", "", now=NOW, seconds=60, replace=False)
    await store.delete("k")
    assert await store.load("k") == ConversationRecord(key="k")
    assert await store.archived("k", 10) == []
    assert await store.count_marks("k", "delivery:", since=NOW, now=NOW + 1) == 1


START = datetime(2026, 1, 5, 9, tzinfo=UTC)


async def archive(store: MemoryStore, key: str, count: int, first: int = 0) -> list[str]:
    """Archives `count` messages of `key`, a second apart, in writes of at most 500; their ids."""
    messages = [
        Message("user", f"note {n} of {key}", at=START + timedelta(seconds=n), id=f"{key}-m{n}")
        for n in range(first, first + count)
    ]
    for start in range(0, count, 500):
        written = messages[start : start + 500]

        def counted(record: ConversationRecord, added: int = len(written)) -> ConversationRecord:
            return replace(record, message_count=record.message_count + added, since=START)

        await store.update(key, counted, archive=written)
    return [m.id for m in messages]


async def test_the_whole_archive_is_read_page_by_page_oldest_first(
    store_factory: StoreFactory,
) -> None:
    """Past 1,000 messages and across many pages, nothing is left out and nothing repeats;
    with a limit, the newest that many."""
    store = await store_factory()
    store.EXPORT_PAGE = 97  # type: ignore[attr-defined]  # both stores read exports in pages
    everything = await archive(store, "k", 1203)
    await archive(store, "other", 3)
    assert [m.id for m in await store.archived("k")] == everything
    assert [m.id for m in await store.archived("k", None)] == everything
    for limit in (1, 96, 97, 98, 1202, 1203, 5000):
        assert [m.id for m in await store.archived("k", limit)] == everything[-limit:], limit
    assert await store.archived("k", 0) == []
    assert await store.archived("nobody") == []


async def test_an_export_holds_everything_kept(store_factory: StoreFactory) -> None:
    store = await store_factory()
    memory = memory_on(store, max_messages=4)
    everything = await archive(store, "k", 1100)
    await memory.remember_item("k", "I lead the Falcon budget review")
    await memory.remember("k", "what did we decide?", "To ship in May.")
    export = await memory.export("k")
    assert export["format"] == EXPORT_FORMAT
    assert [m["id"] for m in export["archive"]][:1100] == everything
    assert export["archive_count"] == len(export["archive"]) == 1102
    assert [m["content"] for m in export["archive"][-2:]] == [
        "what did we decide?",
        "To ship in May.",
    ]
    assert [m["content"] for m in export["recent_messages"]] == [
        "what did we decide?",
        "To ship in May.",
    ]
    assert export["recent_count"] == 2
    assert [item["text"] for item in export["items"]] == ["I lead the Falcon budget review"]
    assert export["item_count"] == 1
    assert export["message_count"] == 1102
    assert export["since"] == START.isoformat()


async def test_each_candidate_tells_ranking_which_terms_it_holds_and_how_many_it_has(
    store_factory: StoreFactory,
) -> None:
    store = await store_factory()
    texts = [
        "The Bluebird budget is 40,000 euros.",
        "Budget review on Friday, budget again",
        "Nothing to see here",
    ]
    start = datetime(2026, 1, 5, 9, tzinfo=UTC)
    archive = [
        Message(role="user", content=text, at=start + timedelta(minutes=n), id=f"m{n}")
        for n, text in enumerate(texts)
    ]
    await store.update("k", lambda record: record, archive=archive)
    question = "bluebird budget friday"
    terms = search_terms([question])
    _, found = await store.load_ranked("k", [question], 10)
    # What BM25 reads of a message: the search's terms it holds, and its count of distinct terms.
    assert {(c.message.id, c.matched, c.length) for c in found} == {
        ("m0", frozenset(terms) & set(terms_of(texts[0])), len(terms_of(texts[0]))),
        ("m1", frozenset(terms) & set(terms_of(texts[1])), len(terms_of(texts[1]))),
    }
