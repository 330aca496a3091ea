"""MEMORY_TTL_DAYS on SQLite, as on Cosmos DB: a record expires a time to live after its last
write, an archived message (and its embedding) a time to live after it was archived. Expired
rows are never read, and are deleted in bounded steps, in the background. The clock is the
store's own, moved by hand: no test waits for days."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from config import settings_from
from memory.records import ConversationRecord, Message
from memory.sqlite_store import SQLiteStore
from tests.conftest import write_turn
from wiring import create_store

pytestmark = pytest.mark.integration

DAY = 86_400.0
TTL = 10 * DAY
LONG_AGO = datetime(2020, 1, 1, tzinfo=UTC)  # when the messages were said: never what counts


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def said(key: str, count: int, word: str = "budget") -> list[Message]:
    return [
        Message("user", f"{word} note {n} of {key}", at=LONG_AGO, id=f"{key}-{word}-{n}")
        for n in range(count)
    ]


async def opened(tmp_path: Path, clock: Clock, purge_every: float | None = None) -> SQLiteStore:
    store = SQLiteStore(tmp_path / "memory.db", TTL, clock=clock, purge_every=purge_every)
    await store.open()
    return store


def rows(path: Path, key: str | None = None) -> dict[str, int]:
    where, args = ("WHERE key = ?", (key,)) if key else ("", ())
    with sqlite3.connect(path) as db:
        return {
            table: db.execute(f"SELECT count(*) FROM {table} {where}", args).fetchone()[0]  # noqa: S608
            for table in ("records", "archive", "vectors")
        }


async def everything_of(store: SQLiteStore, key: str) -> tuple[int, int, int, int]:
    """What each way of reading finds of `key`: record's messages, search, export, nearest."""
    record = await store.load(key)
    found = await store.search(key, ["budget"], 100)
    exported = await store.archived(key, 100)
    nearest = await store.nearest(key, [1.0, 1.0], 100)
    return len(record.messages), len(found), len(exported), len(nearest)


async def test_a_record_expires_a_time_to_live_after_its_last_write(tmp_path: Path) -> None:
    clock = Clock()
    store = await opened(tmp_path, clock)
    try:
        await write_turn(store, "k", said("k", 2))
        clock.advance(TTL - DAY)
        await write_turn(store, "k", said("k", 1, "later"))  # the write renews it
        clock.advance(TTL - DAY)
        assert (await store.load("k")).message_count == 3
        clock.advance(2 * DAY)
        assert await store.load("k") == ConversationRecord(key="k")
        await write_turn(store, "k", said("k", 1, "anew"))  # a new memory, not the old one's
        record = await store.load("k")
        assert record.message_count == 1
        assert [m.content for m in record.messages] == ["anew note 0 of k"]
    finally:
        await store.close()


async def test_an_archived_message_expires_from_when_it_was_archived_not_when_said(
    tmp_path: Path,
) -> None:
    clock = Clock()
    store = await opened(tmp_path, clock)
    try:
        await write_turn(store, "k", said("k", 3))  # said in 2020, archived now
        clock.advance(TTL / 2)
        await write_turn(store, "other", said("other", 2))
        await write_turn(store, "k", said("k", 1, "fresh"))
        assert await everything_of(store, "k") == (2, 3, 4, 4)
        clock.advance(TTL / 2 + 1)  # k's first three have expired; the rest has not
        assert (await store.load("k")).message_count == 4  # written since: the record stands
        assert [m.content for m in await store.archived("k", 100)] == ["fresh note 0 of k"]
        assert await store.search("k", ["budget"], 100) == []
        assert [m.id for m in await store.nearest("k", [1.0, 1.0], 100)] == ["k-fresh-0"]
        assert len(await store.search("other", ["budget"], 100)) == 2
        clock.advance(TTL / 2)  # now everything has
        assert await everything_of(store, "k") == (0, 0, 0, 0)
        assert await everything_of(store, "other") == (0, 0, 0, 0)
    finally:
        await store.close()


async def test_a_purge_step_deletes_at_most_its_limit_of_expired_rows(tmp_path: Path) -> None:
    clock = Clock()
    store = await opened(tmp_path, clock)
    try:
        await write_turn(store, "old", said("old", 5))
        clock.advance(TTL / 2)
        await write_turn(store, "new", said("new", 2))
        assert await store.purge_expired(3) == 0  # nothing has expired yet
        clock.advance(TTL / 2 + 1)
        # The old record and its five messages: six rows, three a step.
        assert [await store.purge_expired(3) for _ in range(3)] == [3, 3, 0]
        assert rows(store.path, "old") == {"records": 0, "archive": 0, "vectors": 0}
        assert rows(store.path, "new") == {"records": 1, "archive": 2, "vectors": 2}
        with sqlite3.connect(store.path) as db:  # the times of what went went too
            assert db.execute("SELECT count(*) FROM archive_times").fetchone()[0] == 1
        assert len(await store.search("new", ["budget"], 10)) == 2
        clock.advance(TTL)
        assert await store.purge_expired() == 3
        assert rows(store.path) == {"records": 0, "archive": 0, "vectors": 0}
    finally:
        await store.close()


async def test_messages_archived_after_a_forget_of_the_newest_are_dated_anew(
    tmp_path: Path,
) -> None:
    """A forget of the newest messages frees their rowids for the next write, which notes its
    own time from there on: it does not inherit an older write's."""
    clock = Clock()
    store = await opened(tmp_path, clock)
    try:
        await write_turn(store, "a", said("a", 2))
        clock.advance(TTL / 4)
        await write_turn(store, "b", said("b", 2))
        await write_turn(store, "b", said("b", 2, "more"))
        await store.delete("b")
        clock.advance(TTL / 4)
        await write_turn(store, "c", said("c", 3))  # the rowids b had
        clock.advance(TTL * 3 / 4 + 1)  # a's and b's writes have expired, c's has not
        assert await store.archived("a", 10) == []
        assert len(await store.archived("c", 10)) == 3
        assert await store.purge_expired() == 3  # a's record and messages
        assert rows(store.path, "c") == {"records": 1, "archive": 3, "vectors": 3}
    finally:
        await store.close()


async def test_messages_an_older_version_archived_count_from_the_first_open(
    tmp_path: Path,
) -> None:
    clock = Clock()
    store = await opened(tmp_path, clock)
    await write_turn(store, "k", said("k", 2))
    await store.close()
    with sqlite3.connect(tmp_path / "memory.db") as db:  # as a MemoryBot before retention left it
        db.execute("DROP TABLE archive_times")
    clock.advance(TTL * 3)
    store = await opened(tmp_path, clock)
    try:
        assert len(await store.archived("k", 10)) == 2
        clock.advance(TTL + 1)
        assert await store.archived("k", 10) == []
    finally:
        await store.close()


async def test_without_a_time_to_live_nothing_expires(tmp_path: Path) -> None:
    clock = Clock()
    store = SQLiteStore(tmp_path / "memory.db", clock=clock)
    await store.open()
    try:
        await write_turn(store, "k", said("k", 2))
        clock.advance(100 * 365 * DAY)
        assert await everything_of(store, "k") == (2, 2, 2, 2)
        assert await store.purge_expired() == 0
        assert store._purging is None
    finally:
        await store.close()


async def test_expired_rows_are_purged_in_the_background_until_none_is_left(
    tmp_path: Path,
) -> None:
    clock = Clock()
    store = await opened(tmp_path, clock, purge_every=0.01)
    store.PURGE_STEP = 2
    try:
        await write_turn(store, "k", said("k", 7))
        await write_turn(store, "other", said("other", 1))
        clock.advance(TTL + 1)
        await write_turn(store, "new", said("new", 1))
        for _ in range(500):
            if rows(store.path) == {"records": 1, "archive": 1, "vectors": 1}:
                break
            await asyncio.sleep(0.01)
        assert rows(store.path, "new") == {"records": 1, "archive": 1, "vectors": 1}
        assert rows(store.path) == {"records": 1, "archive": 1, "vectors": 1}
    finally:
        await store.close()
    assert store._purging is None


async def test_the_bots_store_has_the_settings_time_to_live(tmp_path: Path) -> None:
    store = create_store(settings_from({"SQLITE_PATH": str(tmp_path / "m.db")}))
    assert isinstance(store, SQLiteStore)
    assert store.ttl_seconds == 90 * DAY
    store = create_store(
        settings_from({"SQLITE_PATH": str(tmp_path / "m.db"), "MEMORY_TTL_DAYS": "7"})
    )
    assert isinstance(store, SQLiteStore)
    assert store.ttl_seconds == 7 * DAY
    assert timedelta(seconds=store.ttl_seconds) == timedelta(days=7)
