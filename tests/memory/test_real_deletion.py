"""Deletion is real: after a forget and a clean close, no file of the SQLite store holds a word
of what was forgotten (the record, the archive's text and its full-text index, the WAL), while
everyone else's memory is whole; the files are readable by their owner only. On Cosmos DB, a
forget leaves no item in the person's partition."""

from __future__ import annotations

import asyncio
import sqlite3
import stat
import threading
from contextlib import closing
from pathlib import Path

import pytest

from memory import ConversationMemory
from memory.cosmos import partition_key_for
from memory.records import ConversationRecord, Message
from memory.sqlite_store import SQLiteStore
from tests.conftest import conversation_memory, cosmos_client, cosmos_store_on
from tests.support.cosmos_server import CosmosServer

pytestmark = pytest.mark.integration

SECRET = "zanzibarquux"
FORGOTTEN = ("zanzibar", "Zanzibar", "quux")  # the secret word, and any part of it
KEPT = "marmalade"


def memory_on(store: SQLiteStore) -> ConversationMemory:
    return conversation_memory(store, system_prompt="system", max_messages=6)


def bytes_in(directory: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(directory.iterdir())}


def found_in(files: dict[str, bytes], words: tuple[str, ...]) -> list[str]:
    return [
        f"{word} in {name}"
        for name, data in files.items()
        for word in words
        if word.encode() in data
    ]


async def fill(store: SQLiteStore) -> ConversationMemory:
    """The secret said in many turns of one person's (record, summary-less window, archive,
    embeddings), between turns of another's, so that the index has several segments."""
    memory = memory_on(store)
    for n in range(40):
        await memory.remember("secret-keeper", f"My code word {n} is {SECRET}, {SECRET}s!", "Kept.")
        await memory.remember("other", f"I like {KEPT} on toast, day {n}", "Noted.")
    await store.update(
        "secret-keeper",
        lambda record: record,
        archive=[Message("user", f"{SECRET} once more")],
        vectors=None,
    )
    return memory


async def test_a_forgotten_word_is_in_no_file_after_a_clean_close(tmp_path: Path) -> None:
    directory = tmp_path / "data"
    store = SQLiteStore(directory / "memory.db")
    await store.open()
    memory = await fill(store)
    assert found_in(bytes_in(directory), (SECRET,))  # written where it can be found
    await memory.forget("secret-keeper")
    await store.close()

    files = bytes_in(directory)
    assert found_in(files, FORGOTTEN) == []
    assert found_in(files, (KEPT,)) == [f"{KEPT} in memory.db"]

    store = SQLiteStore(directory / "memory.db")
    await store.open()
    try:
        with sqlite3.connect(directory / "memory.db") as db:
            assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
            db.execute("INSERT INTO archive (archive) VALUES ('integrity-check')")
        other = await store.load("other")
        assert other.message_count == 80
        assert len(await store.search("other", [KEPT], 100)) == 40
        assert (await store.load("secret-keeper")).message_count == 0
        assert await store.search("secret-keeper", [SECRET], 10) == []
    finally:
        await store.close()


async def test_words_forgotten_one_message_at_a_time_are_in_no_file_after_a_clean_close(
    tmp_path: Path,
) -> None:
    """`forget <words>`: the messages that hold them go in rounds; the index is merged once."""
    directory = tmp_path / "data"
    store = SQLiteStore(directory / "memory.db")
    await store.open()
    memory = await fill(store)
    assert await memory.forget_matching("secret-keeper", SECRET) == (0, 41)
    await store.close()
    files = bytes_in(directory)
    assert found_in(files, FORGOTTEN) == []
    assert found_in(files, (KEPT,)) == [f"{KEPT} in memory.db"]


async def test_a_forget_finishes_the_index_while_others_are_served(tmp_path: Path) -> None:
    """The index is merged in small steps after the rows are gone, each a hand-over of its own."""
    store = SQLiteStore(tmp_path / "memory.db")
    store.MERGE_PAGES = 1
    await store.open()
    loop = asyncio.get_running_loop()
    merging, queued = asyncio.Event(), threading.Event()
    order: list[str] = []
    merge, load = store._merge_step, store._load

    def noted_merge() -> bool:
        if not merging.is_set():  # the first step waits until a load is queued behind it
            loop.call_soon_threadsafe(merging.set)
            queued.wait(10)
        merged = merge()
        order.append(f"merge {merged}")
        return merged

    def noted_load(key: str) -> ConversationRecord:
        order.append(f"load {key}")
        return load(key)

    try:
        await fill(store)
        store._merge_step = noted_merge  # type: ignore[method-assign]
        store._load = noted_load  # type: ignore[method-assign]
        forgetting = asyncio.create_task(store.delete("secret-keeper"))
        await asyncio.wait_for(merging.wait(), 10)
        loading = asyncio.create_task(store.load("other"))
        await asyncio.sleep(0)  # handed over, behind the first step
        queued.set()
        assert (await loading).message_count == 80
        await forgetting
    finally:
        queued.set()
        await store.close()
    assert order[:2] == ["merge True", "load other"]  # between two steps, not after the forget
    assert order[-1] == "merge False"  # until nothing was left to merge
    assert found_in(bytes_in(tmp_path), FORGOTTEN) == []


async def test_expired_words_are_in_no_file_once_purged(tmp_path: Path) -> None:
    now = [1_800_000_000.0]
    store = SQLiteStore(tmp_path / "memory.db", 3600, clock=lambda: now[0], purge_every=0.01)
    await store.open()
    try:
        await fill(store)
        now[0] += 1800
        await memory_on(store).remember("other", f"{KEPT} again", "Noted.")
        now[0] += 1801
        for _ in range(500):  # until the background purge has done its work
            if SECRET.encode() not in checkpointed(store.path):
                break
            await asyncio.sleep(0.01)
        assert len(await store.archived("other", 10)) == 2
    finally:
        await store.close()
    files = bytes_in(tmp_path)
    assert found_in(files, FORGOTTEN) == []
    assert found_in(files, (f"{KEPT} again",)) == [f"{KEPT} again in memory.db"]


def checkpointed(path: Path) -> bytes:
    """The database file once the WAL is copied into it (as another process may do)."""
    with closing(sqlite3.connect(path)) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path.read_bytes()


def as_an_older_version_left_it(path: Path) -> None:
    sqlite3.connect(path).close()
    path.chmod(0o644)
    path.parent.chmod(0o755)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_the_directory_and_files_are_readable_by_their_owner_only(tmp_path: Path) -> None:
    directory = tmp_path / "data" / "bot"
    store = SQLiteStore(directory / "memory.db")
    await store.open()
    try:
        await memory_on(store).remember("k", "hello", "hi")
        names = {path.name for path in directory.iterdir()}
        assert names == {"memory.db", "memory.db-wal", "memory.db-shm"}
        assert mode(directory) == 0o700
        assert {name: mode(directory / name) for name in names} == dict.fromkeys(names, 0o600)
    finally:
        await store.close()
    assert [path.name for path in directory.iterdir()] == ["memory.db"]


async def test_a_file_an_older_version_left_readable_by_others_is_made_private(
    tmp_path: Path,
) -> None:
    path = tmp_path / "memory.db"
    as_an_older_version_left_it(path)
    store = SQLiteStore(path)
    await store.open()
    await store.close()
    assert mode(path) == 0o600
    assert mode(tmp_path) == 0o755  # a directory the store did not create is left alone


async def test_a_cosmos_db_forget_leaves_no_item_in_the_partition(
    cosmos: CosmosServer, cosmos_database: str
) -> None:
    store = cosmos_store_on(cosmos, cosmos_database)
    await store.open()
    try:
        memory = conversation_memory(store, system_prompt="system", max_messages=4)
        for n in range(6):
            await memory.remember("secret-keeper", f"My code word {n} is {SECRET}", "Kept.")
            await memory.remember("other", f"I like {KEPT}, day {n}", "Noted.")
        await memory.forget("secret-keeper")
    finally:
        await store.close()

    async def items_of(key: str) -> list[dict[str, object]]:
        partition = partition_key_for(key)
        async with cosmos_client(cosmos) as client:
            container = client.get_database_client(cosmos_database).get_container_client("memory")
            return [
                item
                async for item in container.query_items(
                    "SELECT * FROM c WHERE c.pk = @pk",
                    parameters=[{"name": "@pk", "value": partition}],
                    partition_key=partition,
                )
            ]

    assert await items_of("secret-keeper") == []
    assert len(await items_of("other")) == 1 + 12  # the record and every archived message
