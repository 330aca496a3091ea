"""SQLite recall does bounded work per search: rare words reach the whole archive, common ones
only the newest matches. The bounds are made small here so that a few dozen messages show it."""

import hashlib
import sqlite3
import struct
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from memory.errors import StoreError
from memory.records import Message
from memory.sqlite_store import SCHEMA_VERSION, SQLiteStore

pytestmark = pytest.mark.integration

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


@pytest.mark.parametrize("fewest_read", [32, 2], ids=["all-read-ranked-here", "fts5-picks"])
async def test_a_common_word_picks_out_the_right_message_among_those_holding_a_rare_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fewest_read: int
) -> None:
    # With 32 read, the three holders of the rare word are all read and ranked here; with 2,
    # there are more than are read, and FTS5 must rank them on the common word too.
    monkeypatch.setattr(SQLiteStore, "FEWEST_CANDIDATES", fewest_read)
    old = [  # as long as each other, so that only the common word tells them apart
        "Bluebird standup moved to the afternoon",
        "The Bluebird budget is 40,000 euros.",
        "Bluebird retro notes are in the wiki",
    ]
    filler = [f"budget row {n}" for n in range(40)] + [f"other filler {n}" for n in range(60)]
    store = await store_with(tmp_path, old + filler)
    try:
        found = await store.search("k", ["bluebird", "budget"], 1)
    finally:
        await store.close()
    assert [m.id for m in found] == ["m1"]


async def test_rare_matches_that_fill_the_limit_leave_no_room_for_recent_ones(
    tmp_path: Path,
) -> None:
    old = [f"Bluebird note {n}" for n in range(4)]
    store = await store_with(tmp_path, old + [f"budget row {n}" for n in range(40)])
    try:
        found = await store.search("k", ["bluebird", "budget"], 3)
    finally:
        await store.close()
    assert len(found) == 3
    assert all("Bluebird" in m.content for m in found)


async def test_a_recent_message_found_both_ways_comes_back_once(tmp_path: Path) -> None:
    contents = [f"budget row {n}" for n in range(40)] + ["The Bluebird budget is set."]
    store = await store_with(tmp_path, contents)
    try:
        found = await store.search("k", ["bluebird", "budget"], 20)
    finally:
        await store.close()
    ids = [m.id for m in found]
    assert ids[0] == "m40"
    assert len(ids) == len(set(ids)) == 8  # the newest 8 matches, the rare one among them


async def test_when_all_matches_fit_the_window_every_one_is_ranked(tmp_path: Path) -> None:
    # "budget" is common (6 matches, over RARE_MATCHES) but all its matches fit RECENT_MATCHES.
    contents = ["budget " + "long " * 20] + [f"budget {n}" for n in range(5)] + ["other"] * 20
    store = await store_with(tmp_path, contents)
    try:
        found = await store.search("k", ["budget"], 10)
    finally:
        await store.close()
    assert len(found) == 6
    assert found[-1].id == "m0"  # the longest holder of the word ranks last


def write_version_0_file(path: Path, rows: list[tuple[str, str, str]]) -> None:
    """A file as MemoryBot wrote it before per-person terms: content indexed for everyone, one
    owner token per key."""
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE records (key TEXT PRIMARY KEY, body TEXT NOT NULL, updated_at TEXT)")
    db.execute(
        "CREATE VIRTUAL TABLE archive USING fts5(content, owner, key UNINDEXED, id UNINDEXED, "
        "role UNINDEXED, at UNINDEXED, tokenize = 'unicode61 remove_diacritics 2')"
    )
    db.executemany(
        "INSERT INTO archive (content, owner, key, id, role, at) VALUES (?, ?, ?, ?, 'user', ?)",
        [
            (
                content,
                "k" + hashlib.sha256(key.encode()).hexdigest()[:32],
                key,
                id_,
                START.isoformat(),
            )
            for key, id_, content in rows
        ],
    )
    db.commit()
    db.close()


async def test_a_file_from_before_per_person_terms_is_migrated_on_open(tmp_path: Path) -> None:
    path = tmp_path / "memory.db"
    write_version_0_file(
        path,
        [
            ("k", "m0", "The Bluebird budget is 40,000 euros."),
            ("other", "o0", "Bluebird for someone else"),
            ("k", "m1", "A café in Zürich"),
            *[("crowd", f"c{n}", f"crowd message {n}") for n in range(2500)],  # several batches
        ],
    )
    store = SQLiteStore(path)
    await store.open()
    try:
        assert [m.id for m in await store.search("k", ["bluebird"], 5)] == ["m0"]
        assert [m.id for m in await store.search("k", ["cafe", "zurich"], 5)] == ["m1"]
        assert [m.id for m in await store.archived("k", 10)] == ["m0", "m1"]
        await store.update("k", lambda record: record, archive=[Message("user", "Bluebird again")])
        assert len(await store.search("k", ["bluebird"], 5)) == 2
    finally:
        await store.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        # An older MemoryBot sharing the file fails loudly instead of writing unsearchable rows.
        with pytest.raises(sqlite3.OperationalError):
            db.execute(
                "INSERT INTO archive (content, owner, key, id, role, at) "
                "VALUES ('x', 'k', 'k', 'old', 'user', '')"
            )

    reopened = SQLiteStore(path)  # found done: nothing indexed twice, nothing lost
    await reopened.open()
    try:
        assert len(await reopened.archived("k", 10)) == 3
        assert len(await reopened.archived("crowd", 5000)) == 2500
        await reopened.delete("k")
        assert await reopened.archived("k", 10) == []
        assert [m.id for m in await reopened.search("other", ["bluebird"], 5)] == ["o0"]
    finally:
        await reopened.close()


async def test_a_file_from_a_newer_memorybot_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "memory.db"
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    store = SQLiteStore(path)
    with pytest.raises(StoreError, match="newer"):
        await store.open()
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "delete"


async def test_a_file_indexed_without_word_stems_is_indexed_again_on_open(tmp_path: Path) -> None:
    path = tmp_path / "memory.db"
    store = SQLiteStore(path)
    await store.open()
    said = Message("user", "I was researching pottery studios", id="m0")
    await store.update("k", lambda record: record, archive=[said])
    await store.close()
    with sqlite3.connect(path) as db:  # as schema 2 indexed it: whole words, not their stems
        owner = "k" + hashlib.sha256(b"k").hexdigest()[:16]
        db.execute("UPDATE archive SET words = ?", (f"{owner}researching {owner}pottery",))
        db.execute("PRAGMA user_version = 2")
    reopened = SQLiteStore(path)
    await reopened.open()
    try:
        assert [m.id for m in await reopened.search("k", ["research"], 5)] == ["m0"]
        assert [m.id for m in await reopened.search("k", ["potteries"], 5)] == ["m0"]
    finally:
        await reopened.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


async def test_kept_embeddings_stay_the_newest_as_turns_append_to_them(tmp_path: Path) -> None:
    """The newest embeddings are kept in memory and appended to each turn (in a buffer that is
    compacted when full); what is kept must match the file's newest rows, turn after turn."""
    store = SQLiteStore(tmp_path / "m.db")
    store.NEWEST_EMBEDDED = 5
    await store.open()

    def in_the_file() -> tuple[list[str], list[list[float]]]:
        rows = store._connection().execute(
            "SELECT id, vector FROM vectors WHERE key = 'k' ORDER BY rowid DESC LIMIT 5"
        )
        newest = list(reversed(rows.fetchall()))
        vectors = [struct.unpack("<3f", vector) for _, vector in newest]
        return [id_ for id_, _ in newest], [list(v) for v in vectors]

    try:
        for n in range(23):
            said = Message("user", f"note {n}")
            vector = [float(n), 1.0, float(n % 3)]
            await store.update(
                "k", lambda record: record, archive=[said], vectors={said.id: vector}
            )
            if n == 0:  # the first search keeps them; later turns append to what is kept
                await store.nearest("k", [1.0, 0.0, 0.0], 1)
            kept = await store._run("read", store._embedded, "k", 3)
            ids, vectors = await store._run("read", in_the_file)
            assert list(kept.ids) == ids
            assert kept.matrix.tolist() == vectors
        assert ("k", 3) in store._buffers  # appended in the buffer, not read again
    finally:
        await store.close()
