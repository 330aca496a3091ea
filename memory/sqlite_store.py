"""SQLite store: the embedded default, one file, no set-up.

aiosqlite keeps SQLite calls off the event loop. Writes go through `BEGIN IMMEDIATE`, so a
read-modify-write is atomic even when several processes share the file; WAL lets readers
carry on while a write is in progress. The archive is an FTS5 table, ranked by BM25; embeddings
(when configured) sit beside it as float32 blobs, compared by cosine similarity with numpy, which
reads all of one person's vectors per search: fine for the embedded default, not for millions.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sqlite3
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import aiosqlite
import numpy as np

from memory.errors import StoreError, StoreUnavailable
from memory.records import ConversationRecord, Message
from memory.store import Mutation
from telemetry import record_store_request

_SCHEMA = (
    """
    CREATE TABLE IF NOT EXISTS records (
        key TEXT PRIMARY KEY,
        body TEXT NOT NULL,
        updated_at TEXT
    )
    """,
    """
    CREATE VIRTUAL TABLE IF NOT EXISTS archive USING fts5(
        content, owner, key UNINDEXED, id UNINDEXED, role UNINDEXED, at UNINDEXED,
        tokenize = 'unicode61 remove_diacritics 2'
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS vectors (
        key TEXT NOT NULL,
        id TEXT NOT NULL,
        vector BLOB NOT NULL,
        PRIMARY KEY (key, id)
    )
    """,
)


class SQLiteStore:
    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._db: aiosqlite.Connection | None = None
        self._write_lock = asyncio.Lock()

    def describe(self) -> str:
        return f"sqlite ({self.path})"

    async def open(self) -> None:
        if self._db is not None:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = await aiosqlite.connect(self.path, isolation_level=None)
            await db.execute("PRAGMA journal_mode=WAL")
            await db.execute("PRAGMA synchronous=NORMAL")
            await db.execute("PRAGMA busy_timeout=5000")
            for statement in _SCHEMA:
                await db.execute(statement)
        except (OSError, sqlite3.Error) as error:
            raise StoreUnavailable(f"cannot open the SQLite file {self.path}: {error}") from error
        self._db = db

    def _connection(self) -> aiosqlite.Connection:
        if self._db is None:
            raise StoreError("the SQLite store is not open")
        return self._db

    async def load(self, key: str) -> ConversationRecord:
        record_store_request()
        try:
            rows = await self._connection().execute_fetchall(
                "SELECT body FROM records WHERE key = ?", (key,)
            )
        except sqlite3.Error as error:
            raise StoreUnavailable(f"SQLite read failed: {error}") from error
        return _decode(key, _first(rows))

    async def update(
        self,
        key: str,
        mutate: Mutation,
        *,
        archive: Sequence[Message] = (),
        vectors: Mapping[str, Sequence[float]] | None = None,
    ) -> ConversationRecord:
        record_store_request()
        async with self._transaction("write") as db:
            rows = await db.execute_fetchall("SELECT body FROM records WHERE key = ?", (key,))
            record = mutate(_decode(key, _first(rows)))
            await db.execute(
                "INSERT INTO records (key, body, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT(key) DO UPDATE SET body = excluded.body, "
                "updated_at = excluded.updated_at",
                (
                    key,
                    json.dumps(record.to_json(), ensure_ascii=False),
                    record.updated_at.isoformat() if record.updated_at else None,
                ),
            )
            if archive:
                owner = _owner(key)
                await db.executemany(
                    "INSERT INTO archive (content, owner, key, id, role, at) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    [(m.content, owner, key, m.id, m.role, m.at.isoformat()) for m in archive],
                )
            if vectors:
                await db.executemany(
                    "INSERT OR REPLACE INTO vectors (key, id, vector) VALUES (?, ?, ?)",
                    [
                        (key, id_, np.asarray(vector, dtype=np.float32).tobytes())
                        for id_, vector in vectors.items()
                    ],
                )
        return record

    async def search(self, key: str, terms: Sequence[str], limit: int) -> list[Message]:
        if not terms or limit <= 0:
            return []
        record_store_request()
        # The owner token is indexed, so FTS5 looks only at this person's messages; matching
        # `key` alone (unindexed) would rank everyone's matches and then drop the others'.
        words = " OR ".join('"' + term.replace('"', '""') + '"' for term in terms)
        query = f"owner:{_owner(key)} AND content:({words})"
        try:
            rows = await self._connection().execute_fetchall(
                "SELECT id, role, content, at FROM archive WHERE archive MATCH ? AND key = ? "
                "ORDER BY bm25(archive, 1.0, 0.0) LIMIT ?",
                (query, key, limit),
            )
        except sqlite3.Error as error:
            raise StoreUnavailable(f"SQLite search failed: {error}") from error
        return [_archived(*row) for row in rows]

    async def nearest(self, key: str, vector: Sequence[float], limit: int) -> list[Message]:
        if limit <= 0:
            return []
        record_store_request()
        try:
            async with self._connection().execute(
                "SELECT id, vector FROM vectors WHERE key = ?", (key,)
            ) as cursor:
                rows = list(await cursor.fetchall())
            if not rows:
                return []
            ids = [row[0] for row in rows]
            best = [ids[i] for i in _most_similar([row[1] for row in rows], vector, limit)]
            marks = ",".join("?" * len(best))
            async with self._connection().execute(
                f"SELECT id, role, content, at FROM archive WHERE key = ? AND id IN ({marks})",  # noqa: S608
                (key, *best),
            ) as cursor:
                found = {row[0]: _archived(*row) for row in await cursor.fetchall()}
        except sqlite3.Error as error:
            raise StoreUnavailable(f"SQLite search failed: {error}") from error
        return [found[id_] for id_ in best if id_ in found]

    async def archived(self, key: str, limit: int) -> list[Message]:
        try:
            async with self._connection().execute(
                "SELECT id, role, content, at FROM archive WHERE key = ? "
                "ORDER BY at DESC, rowid DESC LIMIT ?",
                (key, limit),
            ) as cursor:
                rows = await cursor.fetchall()
        except sqlite3.Error as error:
            raise StoreUnavailable(f"SQLite read failed: {error}") from error
        return [_archived(*row) for row in reversed(list(rows))]

    async def delete(self, key: str) -> None:
        async with self._transaction("delete") as db:
            await db.execute("DELETE FROM records WHERE key = ?", (key,))
            await db.execute("DELETE FROM archive WHERE key = ?", (key,))
            await db.execute("DELETE FROM vectors WHERE key = ?", (key,))

    @asynccontextmanager
    async def _transaction(self, what: str) -> AsyncIterator[aiosqlite.Connection]:
        """One write transaction at a time; rolled back on any error, SQLite's made ours."""
        db = self._connection()
        async with self._write_lock:
            try:
                await db.execute("BEGIN IMMEDIATE")
                try:
                    yield db
                except BaseException:
                    await db.execute("ROLLBACK")
                    raise
                await db.execute("COMMIT")
            except sqlite3.Error as error:
                raise StoreUnavailable(f"SQLite {what} failed: {error}") from error

    async def close(self) -> None:
        db, self._db = self._db, None
        if db is not None:
            async with self._write_lock:
                await db.close()


def _first(rows: Iterable[sqlite3.Row]) -> str | None:
    """The first column of the first row, if any (a record's body)."""
    for row in rows:
        return str(row[0])
    return None


def _decode(key: str, body: str | None) -> ConversationRecord:
    if body is None:
        return ConversationRecord(key=key)
    try:
        return ConversationRecord.from_json(json.loads(body))
    except (ValueError, KeyError, TypeError) as error:
        raise StoreError(f"the stored record is unreadable ({type(error).__name__})") from error


def _owner(key: str) -> str:
    """One FTS token per memory key (letters and digits only, so the tokenizer keeps it whole)."""
    return "k" + hashlib.sha256(key.encode()).hexdigest()[:32]


def _archived(id_: str, role: str, content: str, at: str) -> Message:
    return Message.from_json({"id": id_, "role": role, "content": content, "at": at})


def _most_similar(blobs: Sequence[bytes], vector: Sequence[float], limit: int) -> list[int]:
    """Indexes of the `limit` blobs most cosine-similar to `vector`, best first."""
    query = np.asarray(vector, dtype=np.float32)
    stored = [np.frombuffer(blob, dtype=np.float32) for blob in blobs]
    usable = [i for i, v in enumerate(stored) if v.shape == query.shape]
    if not usable:
        return []
    matrix = np.stack([stored[i] for i in usable])
    norms = np.linalg.norm(matrix, axis=1) * (np.linalg.norm(query) or 1.0)
    scores = matrix @ query / np.where(norms == 0, 1.0, norms)
    order = np.argsort(-scores)[:limit]
    return [usable[int(i)] for i in order]
