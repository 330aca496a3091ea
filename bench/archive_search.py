"""How long one SQLite archive search takes as one person's archive grows.

    .venv/bin/python -m bench.archive_search [--sizes 10,100,1000,5000,20000] [--questions 100]

For each size, a fresh SQLite store holds one person with that many turns (two messages each:
the benchmark's Zipf-distributed chat and the fake model's reply, written one turn a write as a
conversation does) beside 50 other people with 20 turns each; then the person asks `--questions`
new questions and each search's time on the store's thread is measured (the best of three
rounds, in ms per search). Also the file's size, and, with `--migrate-from-schema-0`, the size
of the same messages in a schema 0 file and how long re-indexing it takes.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import sqlite3
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.support import Talk, model_reply
from memory.recall import query_terms, rank_candidates
from memory.records import Message
from memory.sqlite_store import SQLiteStore

PERSON = "tenant/one-person"
CROWD = 50
CROWD_TURNS = 20
LIMIT = 35  # what a turn asks for: recall limit + window at the default budget


def turns(seed: int, count: int) -> list[Message]:
    talk = Talk(seed)
    at = datetime(2026, 1, 5, tzinfo=UTC)
    messages: list[Message] = []
    for _ in range(count):
        text = talk.user_text()
        messages.append(Message("user", text, at=at))
        messages.append(Message("assistant", model_reply([{"content": text}]), at=at))
    return messages


async def fill(store: SQLiteStore, size: int) -> None:
    for n in range(CROWD):
        await store.update(f"tenant/crowd-{n}", lambda r: r, archive=turns(100 + n, CROWD_TURNS))
    everything = turns(7, size)
    for start in range(0, len(everything), 2):  # one turn a write, as a conversation does
        await store.update(PERSON, lambda r: r, archive=everything[start : start + 2])


async def search_ms(store: SQLiteStore, questions: list[list[str]]) -> float:
    def every_search() -> None:
        for terms in questions:  # candidates as the store finds them, ranked as recall does
            store._best(PERSON, terms, LIMIT, rank_candidates)

    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        await store._run("search", every_search)
        best = min(best, time.perf_counter() - started)
    return best * 1000 / len(questions)


def schema_0_copy(source: Path, target: Path) -> None:
    """The same messages in a file as MemoryBot wrote it before per-person terms."""
    db = sqlite3.connect(target)
    db.execute("CREATE TABLE records (key TEXT PRIMARY KEY, body TEXT NOT NULL, updated_at TEXT)")
    db.execute(
        "CREATE VIRTUAL TABLE archive USING fts5(content, owner, key UNINDEXED, id UNINDEXED, "
        "role UNINDEXED, at UNINDEXED, tokenize = 'unicode61 remove_diacritics 2')"
    )
    rows = sqlite3.connect(source).execute("SELECT text, key, id, role, at FROM archive")
    db.executemany(
        "INSERT INTO archive (content, owner, key, id, role, at) VALUES (?, ?, ?, ?, ?, ?)",
        [
            (text, "k" + hashlib.sha256(key.encode()).hexdigest()[:32], key, id_, role, at)
            for text, key, id_, role, at in rows
        ],
    )
    db.commit()
    db.execute("VACUUM")
    db.close()


async def measure(size: int, questions: list[list[str]], migrate: bool, scratch: Path) -> str:
    path = scratch / f"archive-{size}.db"
    store = SQLiteStore(path)
    await store.open()
    try:
        await fill(store, size)
        took = await search_ms(store, questions)
    finally:
        await store.close()
    line = (
        f"| {size:,} turns ({2 * size:,} messages) | {took:.2f} ms | "
        f"{path.stat().st_size / 2**20:.1f} MiB |"
    )
    if migrate:
        old = scratch / f"archive-{size}-schema-0.db"
        schema_0_copy(path, old)
        before = old.stat().st_size / 2**20
        started = time.perf_counter()
        migrated = SQLiteStore(old)
        await migrated.open()
        await migrated.close()
        took_s = time.perf_counter() - started
        line += f" {before:.1f} MiB → {old.stat().st_size / 2**20:.1f} MiB in {took_s:.2f} s |"
    return line


async def main_async(options: argparse.Namespace) -> None:
    talk = Talk(12345)
    questions = [query_terms(talk.user_text()) for _ in range(options.questions)]
    print(f"one person beside {CROWD} others of {CROWD_TURNS} turns; {options.questions} searches")
    header = "| the person's archive | one search | file |"
    print(header + (" schema 0 file → migrated in |" if options.migrate_from_schema_0 else ""))
    print("|---|---:|---:|" + ("---:|" if options.migrate_from_schema_0 else ""))
    with tempfile.TemporaryDirectory() as scratch:
        for size in options.sizes:
            print(await measure(size, questions, options.migrate_from_schema_0, Path(scratch)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes",
        type=lambda raw: [int(part) for part in raw.split(",")],
        default=[10, 100, 1000, 5000, 20000],
        help="the person's turns, comma-separated",
    )
    parser.add_argument("--questions", type=int, default=100)
    parser.add_argument("--migrate-from-schema-0", action="store_true")
    options = parser.parse_args()
    if not all(1 <= size <= 100_000 for size in options.sizes) or options.questions < 1:
        parser.error("--sizes from 1 to 100000 turns each, --questions at least 1")
    asyncio.run(main_async(options))


if __name__ == "__main__":
    main()
