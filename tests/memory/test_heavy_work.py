"""One person's heavy work on SQLite is done in steps that let everyone else's operations in
between: a forget deletes the record first, then the archive and embeddings a chunk at a time;
an export reads a page at a time. The chunks are made small here so that a few messages show it
(`bench/heavy_work.py` measures the latency it buys)."""

import asyncio
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from memory.errors import StoreUnavailable
from memory.records import ConversationRecord, Message
from memory.sqlite_store import SQLiteStore
from tests.conftest import write_turn

pytestmark = pytest.mark.integration

START = datetime(2026, 1, 5, 9, tzinfo=UTC)
MESSAGES = 10  # four chunks of three


def archive_of(key: str, count: int, first: int = 0) -> list[Message]:
    return [
        Message("user", f"budget note {n} of {key}", at=START + timedelta(minutes=n), id=f"m{n}")
        for n in range(first, first + count)
    ]


async def chunked_store(tmp_path: Path) -> SQLiteStore:
    store = SQLiteStore(tmp_path / "memory.db")
    store.FORGET_CHUNK = 3
    store.EXPORT_PAGE = 3
    await store.open()
    await write_turn(store, "k", archive_of("k", MESSAGES))
    await write_turn(store, "other", archive_of("other", 2))
    return store


def rows_of(path: Path, key: str) -> dict[str, int]:
    with sqlite3.connect(path) as db:
        return {
            table: db.execute(f"SELECT count(*) FROM {table} WHERE key = ?", (key,)).fetchone()[0]  # noqa: S608
            for table in ("records", "archive", "vectors")
        }


async def test_a_forget_larger_than_a_chunk_leaves_nothing_of_the_key(tmp_path: Path) -> None:
    store = await chunked_store(tmp_path)
    try:
        assert len(await store.nearest("k", [1.0, 5.0], 3)) == 3  # embeddings kept in memory
        await store.delete("k")
        assert rows_of(store.path, "k") == {"records": 0, "archive": 0, "vectors": 0}
        assert await store.load("k") == ConversationRecord(key="k")
        assert await store.archived("k", 100) == []
        assert await store.search("k", ["budget"], 10) == []
        assert await store.nearest("k", [1.0, 5.0], 10) == []
        assert rows_of(store.path, "other") == {"records": 1, "archive": 2, "vectors": 2}
        assert len(await store.search("other", ["budget"], 10)) == 2
    finally:
        await store.close()


def noting(steps: list[str], step: str, work: Callable[..., object]) -> Callable[..., object]:
    """`work`, noting in `steps` each time it runs (on the store's thread) and for which key."""

    def noted(*args: object) -> object:
        steps.append(f"{step} {args[0]}")
        return work(*args)

    return noted


async def test_others_are_served_between_the_steps_of_a_forget(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = await chunked_store(tmp_path)
    steps: list[str] = []
    for name, step in [
        ("_delete", "record"),
        ("_delete_archived", "archive"),
        ("_delete_embedded", "embeddings"),
        ("_load", "load"),
    ]:
        monkeypatch.setattr(store, name, noting(steps, step, getattr(store, name)))
    try:
        forgetting = asyncio.create_task(store.delete("k"))
        await asyncio.sleep(0)  # the forget's first step is handed over
        other = await store.load("other")  # handed over while the record's step runs
        await forgetting
    finally:
        await store.close()
    assert other.message_count == 2
    assert steps == [
        "record k",
        "load other",  # before the archive's steps, not after the whole forget
        *["archive k"] * 4,
        *["embeddings k"] * 4,
    ]


async def test_the_record_goes_first_and_a_later_forget_finishes_an_interrupted_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = await chunked_store(tmp_path)
    chunk = store._delete_archived
    seen: list[ConversationRecord] = []

    def failing_second(key: str, up_to: int) -> int | None:
        seen.append(store._load(key))
        if len(seen) == 2:
            raise sqlite3.OperationalError("disk I/O error")
        return chunk(key, up_to)

    monkeypatch.setattr(store, "_delete_archived", failing_second)
    try:
        with pytest.raises(StoreUnavailable):
            await store.delete("k")
        assert seen == [ConversationRecord(key="k")] * 2  # no record from the first chunk on
        assert rows_of(store.path, "k") == {"records": 0, "archive": MESSAGES - 3, "vectors": 10}
        monkeypatch.setattr(store, "_delete_archived", chunk)
        await store.delete("k")
        assert rows_of(store.path, "k") == {"records": 0, "archive": 0, "vectors": 0}
    finally:
        await store.close()


async def test_a_turn_taken_during_a_forget_starts_a_new_memory(tmp_path: Path) -> None:
    store = await chunked_store(tmp_path)
    try:
        forgetting = asyncio.create_task(store.delete("k"))
        await asyncio.sleep(0)
        await write_turn(store, "k", archive_of("k", 1, first=MESSAGES))  # between two steps
        await forgetting
        assert [m.id for m in await store.archived("k", 100)] == [f"m{MESSAGES}"]
        assert (await store.load("k")).message_count == 1
        assert rows_of(store.path, "k") == {"records": 1, "archive": 1, "vectors": 1}
    finally:
        await store.close()


async def test_an_export_read_in_pages_is_the_newest_oldest_first(tmp_path: Path) -> None:
    store = await chunked_store(tmp_path)
    try:
        everything = [f"m{n}" for n in range(MESSAGES)]
        for limit in (1, 3, 4, 9, 10, 11, 1000):
            exported = await store.archived("k", limit)
            assert [m.id for m in exported] == everything[-limit:], limit
        assert await store.archived("k", 0) == []
        assert [m.id for m in await store.archived("other", 100)] == ["m0", "m1"]
    finally:
        await store.close()
