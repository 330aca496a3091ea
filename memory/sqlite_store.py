"""SQLite store: the embedded default, one file, no set-up.

aiosqlite keeps SQLite calls off the event loop. Writes go through `BEGIN IMMEDIATE`, so a
read-modify-write is atomic even when several processes share the file; WAL lets readers
carry on while a write is in progress.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path

import aiosqlite

from memory.errors import StoreError, StoreUnavailable
from memory.records import ConversationRecord
from memory.store import Mutation

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    key TEXT PRIMARY KEY,
    body TEXT NOT NULL,
    updated_at TEXT
)
"""


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
            await db.execute(_SCHEMA)
        except (OSError, sqlite3.Error) as error:
            raise StoreUnavailable(f"cannot open the SQLite file {self.path}: {error}") from error
        self._db = db

    def _connection(self) -> aiosqlite.Connection:
        if self._db is None:
            raise StoreError("the SQLite store is not open")
        return self._db

    async def load(self, key: str) -> ConversationRecord:
        try:
            async with self._connection().execute(
                "SELECT body FROM records WHERE key = ?", (key,)
            ) as cursor:
                row = await cursor.fetchone()
        except sqlite3.Error as error:
            raise StoreUnavailable(f"SQLite read failed: {error}") from error
        return _decode(key, row[0] if row else None)

    async def update(self, key: str, mutate: Mutation) -> ConversationRecord:
        db = self._connection()
        async with self._write_lock:
            try:
                await db.execute("BEGIN IMMEDIATE")
                try:
                    async with db.execute(
                        "SELECT body FROM records WHERE key = ?", (key,)
                    ) as cursor:
                        row = await cursor.fetchone()
                    record = mutate(_decode(key, row[0] if row else None))
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
                except BaseException:
                    await db.execute("ROLLBACK")
                    raise
                await db.execute("COMMIT")
            except sqlite3.Error as error:
                raise StoreUnavailable(f"SQLite write failed: {error}") from error
        return record

    async def delete(self, key: str) -> None:
        db = self._connection()
        async with self._write_lock:
            try:
                await db.execute("DELETE FROM records WHERE key = ?", (key,))
            except sqlite3.Error as error:
                raise StoreUnavailable(f"SQLite delete failed: {error}") from error

    async def close(self) -> None:
        db, self._db = self._db, None
        if db is not None:
            async with self._write_lock:
                await db.close()


def _decode(key: str, body: str | None) -> ConversationRecord:
    if body is None:
        return ConversationRecord(key=key)
    try:
        return ConversationRecord.from_json(json.loads(body))
    except (ValueError, KeyError, TypeError) as error:
        raise StoreError(f"the stored record is unreadable ({type(error).__name__})") from error
