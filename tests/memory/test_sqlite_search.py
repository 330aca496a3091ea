"""SQLite recall does bounded work per search: rare words reach the whole archive, common ones
only the newest matches. The bounds are made small here so that a few dozen messages show it."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

from memory.records import Message
from memory.sqlite_store import SQLiteStore

START = datetime(2026, 1, 5, 9, tzinfo=UTC)


async def store_with(tmp_path: Path, contents: list[str]) -> SQLiteStore:
    store = SQLiteStore(tmp_path / "memory.db")
    store.RARE_MATCHES = 4
    store.RECENT_MATCHES = 8
    await store.open()
    archive = [
        Message(role="user", content=text, at=START + timedelta(minutes=n), id=f"m{n}")
        for n, text in enumerate(contents)
    ]
    await store.update("k", lambda record: record, archive=archive)
    await store.update("other", lambda record: record, archive=[Message("user", "Bluebird budget")])
    return store


async def test_a_rare_word_finds_the_oldest_message_under_many_common_ones(
    tmp_path: Path,
) -> None:
    store = await store_with(
        tmp_path, ["The Bluebird budget is 40,000 euros."] + [f"budget row {n}" for n in range(40)]
    )
    try:
        found = await store.search("k", ["bluebird", "budget"], 5)
    finally:
        await store.close()
    assert found[0].id == "m0"
    # What is left is filled from the newest matches of the common word, best first.
    assert {m.id for m in found[1:]} <= {f"m{n}" for n in range(33, 41)}
    assert len(found) == 5


async def test_a_common_word_alone_is_ranked_among_the_newest_matches_only(
    tmp_path: Path,
) -> None:
    store = await store_with(tmp_path, [f"budget row {n}" for n in range(30)])
    try:
        found = await store.search("k", ["budget"], 50)
    finally:
        await store.close()
    assert sorted(m.id for m in found) == sorted(f"m{n}" for n in range(22, 30))


async def test_rare_words_alone_rank_the_whole_archive_by_bm25(tmp_path: Path) -> None:
    contents = [
        "Falcon " + "padding words that make this message long " * 3,
        "Falcon launch",
        "nothing to see",
        "Falcon, briefly",
    ]
    store = await store_with(tmp_path, contents + [f"filler {n}" for n in range(30)])
    try:
        found = await store.search("k", ["falcon", "launch"], 10)
        none = await store.search("k", ["absent"], 10)
    finally:
        await store.close()
    # Both words beat one; a short message beats a long one holding the same word.
    assert [m.id for m in found] == ["m1", "m3", "m0"]
    assert none == []
