"""SQLite store: the embedded default, one file, no set-up.

SQLite is called from one thread of the store's own, never from the event loop, and each store
operation is one function run there: a whole turn's write (read, merge, write, archive, commit)
is one hand-over between threads, not one per statement. The two long ones, forgetting and
exporting a large archive, go in bounded steps of their own, so that others' turns run between.
Writes go through `BEGIN IMMEDIATE`, so a read-modify-write is atomic even when several
processes share the file; WAL lets readers carry on while a write is in progress. The archive is
an FTS5 table of each person's own terms, which finds a search's candidates in bounded work
(rare words through the whole archive, common ones among the newest matches); embeddings (when
configured) sit beside it as float32 blobs, all of one person's read per search: fine for the
embedded default, not for millions. Ranking is `memory.recall`'s, through `StoreBase`.

With a time to live (`MEMORY_TTL_DAYS`), as on Cosmos DB: a record is not read once its last
write is that old, an archived message (and its embedding) once it was archived that long ago,
and a background task deletes them, a bounded step at a time. What is deleted leaves no trace in
the file: freed pages are zeroed (`secure_delete`), the full-text index is merged so that no
segment keeps a deleted message's terms, and a clean close empties the WAL. The directory (when
the store creates it) and the files are readable by their owner only.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import sqlite3
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence, Set
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from memory.errors import StoreError, StoreUnavailable
from memory.records import (
    ROLES,
    Around,
    Candidate,
    ConversationRecord,
    Embeddings,
    Match,
    Message,
)
from memory.store import (
    Mutation,
    Ranking,
    Similarity,
    StoreBase,
    needing_neighbours,
    with_neighbours,
)
from memory.terms import terms_of
from telemetry import record_store_request

T = TypeVar("T")
_Matrix = np.ndarray[Any, np.dtype[np.float32]]
log = logging.getLogger(__name__)
# user_version of the file: 3 is the archive indexed by per-person stemmed terms
# (`memory.terms`). Older files are re-indexed on open: version 2 (per-person terms, not
# stemmed) and version 0 (the archive's content indexed as one vocabulary for everyone).
SCHEMA_VERSION = 3
# The archive's text column in each older version.
_TEXT_COLUMN = {0: "content", 2: "text"}
# The archive indexes, for each message, its owner's token (`owner`) and its terms, each joined
# to the owner's token (`words`): a term's index entries are then one person's, so a search
# reads that person's matches only, and its BM25 rarity is judged within their own messages.
_ARCHIVE = """
    CREATE VIRTUAL TABLE {name} USING fts5(
        words, owner, text UNINDEXED, key UNINDEXED, id UNINDEXED, role UNINDEXED,
        at UNINDEXED, author UNINDEXED, tokenize = 'unicode61 remove_diacritics 2'
    )
"""  # `text`, not schema 0's `content`: an older MemoryBot's insert fails, not lands unindexed
_SCHEMA = (
    """
    CREATE TABLE IF NOT EXISTS records (
        key TEXT PRIMARY KEY,
        body TEXT NOT NULL,
        updated_at TEXT
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS vectors (
        key TEXT NOT NULL,
        id TEXT NOT NULL,
        vector BLOB NOT NULL,
        position INTEGER,
        PRIMARY KEY (key, id)
    )
    """,
    # A person's vectors newest first (an index on `key` keeps its rows in rowid order).
    "CREATE INDEX IF NOT EXISTS vectors_by_key ON vectors (key)",
)
# Marks (`MemoryStore.mark`): short-lived, so purged by expiry, a few at a time, as marks are set.
# Added without a schema version: an older MemoryBot leaves the table alone.
_MARKS = (
    """
    CREATE TABLE IF NOT EXISTS marks (
        key TEXT NOT NULL,
        name TEXT NOT NULL,
        value TEXT NOT NULL,
        at REAL NOT NULL,
        expires REAL NOT NULL,
        PRIMARY KEY (key, name)
    )
    """,
    "CREATE INDEX IF NOT EXISTS marks_by_expiry ON marks (expires)",
)
_EXPIRED_MARKS_PURGED = 64  # at most, each time a mark is set
# Retention (`ttl_seconds`), also added without a schema version. A record expires from its
# `updated_at`, the time of its last write. An archived message expires from when it was
# archived: each write that archives messages notes when, from the rowid of its first message on
# (up to the next write's), so that what has expired is every row below one rowid, found in two
# index lookups and skipped by searches for nothing. Rowids run in the order messages were
# archived; one is reused only once every row above it is gone, and a write clears the notes from
# its first rowid on. An older MemoryBot's rows count from the write before them.
_RETENTION = (
    "CREATE TABLE IF NOT EXISTS archive_times (first_rowid INTEGER PRIMARY KEY, at REAL NOT NULL)",
    "CREATE INDEX IF NOT EXISTS archive_times_by_time ON archive_times (at)",
    "CREATE INDEX IF NOT EXISTS records_by_update ON records (updated_at)",
)
_NO_ROWID = 2**63 - 1  # SQLite's largest rowid: every row below it expired means all have
_PRIVATE_FILE = 0o600  # the database file; SQLite gives its WAL and shared memory the same mode
_PRIVATE_DIRECTORY = 0o700


class SQLiteStore(StoreBase):
    DECODED_RECORDS = 256  # records kept decoded, by key, with the stored text they came from
    RARE_MATCHES = 64  # a term in at most this many of a person's messages: whole archive searched
    RECENT_MATCHES = 200  # other terms: ranked among the person's newest this-many matches
    NEWEST_EMBEDDED = 2000  # semantic recall compares the newest this-many embedded messages
    EMBEDDED_PEOPLE = 32  # people whose newest embeddings are kept in memory (~2 MB each)
    FEWEST_CANDIDATES = 32  # read into Python from each set, however few results are asked for
    # Long work on one person's archive is done in steps, each a hand-over of its own to the
    # store's thread, so that everyone else's operations run in between.
    FORGET_CHUNK = 500  # archived messages (or embeddings) deleted per transaction by a forget
    EXPORT_PAGE = 500  # archived messages read per step by an export
    PURGE_STEP = 500  # expired records and archived messages deleted per step of retention
    PURGE_EVERY = 300.0  # seconds between two purges of what has expired
    MERGE_PAGES = 64  # full-text index pages (~4 KB) merged per step after a delete (~10 ms)

    def __init__(
        self,
        path: Path | str,
        ttl_seconds: float | None = None,
        *,
        clock: Callable[[], float] = time.time,
        purge_every: float | None = None,
    ) -> None:
        """`ttl_seconds`: how long a record is kept after its last write, and an archived
        message after it was archived (None: until `delete`). `clock`: seconds since the epoch,
        for retention. `purge_every`: seconds between two background purges (PURGE_EVERY)."""
        if ttl_seconds is not None and ttl_seconds <= 0:
            raise ValueError("ttl_seconds must be positive (or None: no retention)")
        self.path = Path(path)
        self.ttl_seconds = ttl_seconds
        self._clock = clock
        self._purge_every = self.PURGE_EVERY if purge_every is None else purge_every
        self._purging: asyncio.Task[None] | None = None
        # Messages forgotten one by one since the full-text index was last merged: merged in the
        # background, and at the latest on close, so that a forget of many in rounds merges once.
        self._merge_due = False
        self._db: sqlite3.Connection | None = None
        self._thread: ThreadPoolExecutor | None = None
        # Used on the store's thread only. A turn reads its record twice (for the prompt, then
        # in the write) and the next turn reads what this one wrote: when the stored text is
        # unchanged, the record decoded from it (immutable) is reused instead of parsed again.
        self._decoded: OrderedDict[str, tuple[str, ConversationRecord]] = OrderedDict()
        # Also the store thread's only: the newest embeddings of recent people, by key and size.
        self._embeddings: OrderedDict[tuple[str, int], Embeddings] = OrderedDict()
        # Where each kept matrix lives: a buffer with room to append, and the end of its rows.
        self._buffers: dict[tuple[str, int], tuple[_Matrix, int]] = {}
        self._data_version = -1

    def describe(self) -> str:
        return f"sqlite ({self.path})"

    async def open(self) -> None:
        if self._thread is not None:
            return
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-store")
        try:
            await self._run(f"open the SQLite file {self.path}", self._connect)
        except StoreError:
            await self.close()
            raise
        if self.ttl_seconds is not None:
            self._purging = asyncio.create_task(
                self._purge_in_background(), name=f"purge {self.path}"
            )

    def _connect(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=_PRIVATE_DIRECTORY)
            _make_private(self.path)
        except OSError as error:
            raise sqlite3.OperationalError(str(error)) from error
        db = sqlite3.connect(self.path, isolation_level=None)
        try:
            _refuse_newer(db)  # before anything is written to the file
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("PRAGMA busy_timeout=5000")
            db.execute("PRAGMA secure_delete=ON")  # deleted text is zeroed, not left in free space
            migrated = _prepare(db)
            if _date_the_archive(db, self._clock()) or migrated:
                _compact(db)
        except BaseException:
            db.close()
            raise
        self._db = db

    async def _run(self, what: str, work: Callable[..., T], *args: object) -> T:
        """`work(*args)` on the store's thread; SQLite's errors become the store's."""
        if self._thread is None:
            raise StoreError("the SQLite store is not open")
        try:
            done = asyncio.get_running_loop().run_in_executor(self._thread, work, *args)
        except RuntimeError as error:  # the thread was shut down meanwhile
            raise StoreError("the SQLite store is closed") from error
        try:
            return await done
        except sqlite3.Error as error:
            raise StoreUnavailable(f"cannot {what}: {error}") from error

    def _connection(self) -> sqlite3.Connection:
        if self._db is None:
            raise StoreError("the SQLite store is not open")
        return self._db

    async def load(self, key: str) -> ConversationRecord:
        record_store_request()
        return await self._run("read from SQLite", self._load, key)

    def _load(self, key: str) -> ConversationRecord:
        return self._decode(key, self._live_body(self._connection(), key, self._clock()))

    def _live_body(self, db: sqlite3.Connection, key: str, now: float) -> str | None:
        """The key's stored record, unless it has expired (the purge deletes it later)."""
        row = db.execute("SELECT body, updated_at FROM records WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        body, written = row
        if self.ttl_seconds is not None and written is not None and written < self._cutoff(now):
            return None
        return str(body)

    def _cutoff(self, now: float) -> str:
        """A record last written before this (as `updated_at` is stored) has expired at `now`."""
        return _moment(now - (self.ttl_seconds or 0))

    def _live_from(self, db: sqlite3.Connection, now: float) -> int:
        """The rowid from which archived messages are live at `now`: those below it expired."""
        if self.ttl_seconds is None:
            return 0
        newest_expired = db.execute(
            "SELECT first_rowid FROM archive_times WHERE at <= ? "
            "ORDER BY at DESC, first_rowid DESC LIMIT 1",
            (now - self.ttl_seconds,),
        ).fetchone()
        if newest_expired is None:
            return 0
        following = db.execute(
            "SELECT first_rowid FROM archive_times WHERE first_rowid > ? "
            "ORDER BY first_rowid LIMIT 1",
            (newest_expired[0],),
        ).fetchone()
        return _NO_ROWID if following is None else int(following[0])

    def _decode(self, key: str, body: str | None) -> ConversationRecord:
        known = self._decoded.get(key)
        if body is not None and known is not None and known[0] == body:
            self._decoded.move_to_end(key)
            return known[1]
        record = _decode(key, body)
        if body is not None:
            self._remember_decoded(key, body, record)
        return record

    def _remember_decoded(self, key: str, body: str, record: ConversationRecord) -> None:
        self._decoded[key] = (body, record)
        self._decoded.move_to_end(key)
        if len(self._decoded) > self.DECODED_RECORDS:
            self._decoded.popitem(last=False)

    async def update(
        self,
        key: str,
        mutate: Mutation,
        *,
        archive: Sequence[Message] = (),
        vectors: Mapping[str, Sequence[float]] | None = None,
    ) -> ConversationRecord:
        """As the store interface says; `mutate` runs on the store's thread, in the transaction."""
        record_store_request()
        return await self._run("write to SQLite", self._update, key, mutate, archive, vectors)

    def _update(
        self,
        key: str,
        mutate: Mutation,
        archive: Sequence[Message],
        vectors: Mapping[str, Sequence[float]] | None,
    ) -> ConversationRecord:
        db = self._connection()
        now = self._clock()
        with _transaction(db):
            record = mutate(self._decode(key, self._live_body(db, key, now)))
            body = json.dumps(record.to_json(), ensure_ascii=False)
            db.execute(  # `updated_at`: when written, from which the record expires
                "INSERT INTO records (key, body, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT(key) DO UPDATE SET body = excluded.body, "
                "updated_at = excluded.updated_at",
                (key, body, _moment(now)),
            )
            positions: dict[str, int | None] = {}
            owner = _owner(key)
            for m in archive:  # one at a time: each message's rowid is its place in the archive
                inserted = db.execute(
                    "INSERT INTO archive (words, owner, text, key, id, role, at, author) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        _words_of(owner, m.content),
                        owner,
                        m.content,
                        key,
                        m.id,
                        m.role,
                        m.at.isoformat(),
                        m.author,
                    ),
                )
                positions[m.id] = inserted.lastrowid
            placed = [rowid for rowid in positions.values() if rowid is not None]
            if placed:  # archived now, from its first rowid on; notes above it were stale
                db.execute("DELETE FROM archive_times WHERE first_rowid >= ?", (min(placed),))
                db.execute(
                    "INSERT INTO archive_times (first_rowid, at) VALUES (?, ?)", (min(placed), now)
                )
            if vectors:
                db.executemany(
                    "INSERT OR REPLACE INTO vectors (key, id, vector, position) "
                    "VALUES (?, ?, ?, ?)",
                    [
                        (
                            key,
                            id_,
                            np.asarray(vector, dtype=np.float32).tobytes(),
                            positions.get(id_),
                        )
                        for id_, vector in vectors.items()
                    ],
                )
        self._remember_decoded(key, body, record)  # only once the commit went through
        if vectors:
            self._add_embeddings(key, vectors, positions)
        return record

    async def find_candidates(
        self, key: str, terms: Sequence[str], limit: int, rank: Ranking, words: Sequence[str] = ()
    ) -> list[Candidate]:
        record_store_request()
        return await self._run("search SQLite", self._best, key, terms, limit, rank)

    async def load_with_candidates(
        self,
        key: str,
        terms: Sequence[str],
        limit: int,
        rank: Ranking,
        around: int,
        words: Sequence[str] = (),
    ) -> tuple[ConversationRecord, list[Candidate]]:
        record_store_request()
        return await self._run(
            "read from SQLite", self._load_with_candidates, key, terms, limit, rank, around
        )

    def _load_with_candidates(
        self, key: str, terms: Sequence[str], limit: int, rank: Ranking, around: int
    ) -> tuple[ConversationRecord, list[Candidate]]:
        record = self._load(key)
        shown = {m.id for m in record.unsummarised}  # the prompt shows these anyway
        return record, self._with_neighbours(
            key, self._best(key, terms, limit, rank), around, shown
        )

    def _with_neighbours(
        self, key: str, candidates: list[Candidate], around: int, shown: Set[str] = frozenset()
    ) -> list[Candidate]:
        """The first `around` candidates with the messages said just before and after them
        (those the prompt shows anyway, `shown`, need none)."""
        placed = needing_neighbours(candidates, around, shown)
        if not placed:
            return candidates
        return with_neighbours(candidates, self._neighbours(key, [c.order for c in placed]))

    def _best(self, key: str, terms: Sequence[str], limit: int, rank: Ranking) -> list[Candidate]:
        """The matches ranked on what the index holds; only the best `limit` are read whole."""
        best = rank(self._matches_of(key, terms, limit), terms)[:limit]
        if not best:
            return []
        marks = ",".join("?" * len(best))
        rows = self._connection().execute(
            f"SELECT rowid, id, role, text, at, author FROM archive WHERE rowid IN ({marks})",  # noqa: S608
            [match.order for match in best],
        )
        read = {row[0]: _archived(*row[1:]) for row in rows}
        return [
            Candidate(read[m.order], m.order, m.matched, m.length) for m in best if m.order in read
        ]

    def _matches_of(self, key: str, terms: Sequence[str], limit: int) -> list[Match]:
        """The person's archived messages holding any of `terms`, in bounded work.

        A common word matches a share of everything a person ever said, so reading every match
        would grow with the archive. When there are more than RECENT_MATCHES matches, the
        messages holding a rare word (one found in at most RARE_MATCHES of the person's
        messages) are looked for through the whole archive, since a rare word is what finds an
        old fact, and the newest RECENT_MATCHES matches of any word beside them. Each set is
        read into Python whole, to be ranked there, unless it may hold more than are read; then
        FTS5 passes on its best by its own BM25 (which costs more per match than reading one).
        """
        db = self._connection()
        owner = _owner(key)
        # Each term as the archive indexed it; terms come from `memory.terms`, as indexed ones do.
        by_token = {token: term for term in terms if (token := _token(term))}
        if not by_token:
            return []
        wanted = {owner + token: term for token, term in by_token.items()}
        everything = _any_of(owner, list(by_token))
        live = self._live_from(db, self._clock())  # what was archived before has expired
        # The rowid of the RECENT_MATCHES-th newest match: the newest matches are from there on.
        oldest = db.execute(
            "SELECT rowid FROM archive WHERE archive MATCH ? AND rowid >= ? "
            "ORDER BY rowid DESC LIMIT 1 OFFSET ?",
            (everything, live, self.RECENT_MATCHES - 1),
        ).fetchone()
        # The newest matches are read whole where no more of them are wanted than are read.
        newest_wanted = None if self._read_limit(limit) >= self.RECENT_MATCHES else limit
        if oldest is None:  # few matches in all: every one is a candidate
            return self._light(db, key, everything, live, wanted, newest_wanted)
        counted = {token: self._count(db, _any_of(owner, [token])) for token in by_token}
        rare = [token for token, count in counted.items() if count <= self.RARE_MATCHES]
        common = [token for token, count in counted.items() if count > self.RARE_MATCHES]
        found: list[Match] = []
        if rare:
            holding_a_rare_word = _any_of(owner, rare)
            more_than_read = sum(counted[t] for t in rare) > self._read_limit(limit)
            if common and more_than_read:
                # Every row of the person qualifies for the second part (the owner column
                # weighs nothing), so FTS5 picks among them on every word. Otherwise every one
                # is read and ranked on every word here, and FTS5 need not look for the common
                # words in them (its cost grew with the archive).
                holding_a_rare_word += f' AND ({_any_of(owner, common)} OR owner:"{owner}")'
            found = self._light(
                db, key, holding_a_rare_word, live, wanted, limit if more_than_read else None
            )
        if common:
            seen = {match.order for match in found}
            recent = self._light(db, key, everything, oldest[0], wanted, newest_wanted)
            found += [match for match in recent if match.order not in seen]
        return found

    @staticmethod
    def _read_limit(limit: int) -> int:
        """How many matches `_light` reads into Python when `limit` are wanted."""
        return max(limit, SQLiteStore.FEWEST_CANDIDATES)

    def _count(self, db: sqlite3.Connection, expression: str) -> int:
        """How many rows match, counting no further than one past RARE_MATCHES."""
        return int(
            db.execute(
                "SELECT count(*) FROM (SELECT 1 FROM archive WHERE archive MATCH ? LIMIT ?)",
                (expression, self.RARE_MATCHES + 1),
            ).fetchone()[0]
        )

    @staticmethod
    def _light(
        db: sqlite3.Connection,
        key: str,
        expression: str,
        from_rowid: int,
        wanted: Mapping[str, str],
        limit: int | None = None,
    ) -> list[Match]:
        """The matches of `expression` from `from_rowid` on, read from their indexed words only:
        every one, or, given a `limit`, FTS5's best `_read_limit(limit)`. `wanted` maps each
        indexed word (owner token and term) to the search term it stands for."""
        if limit is None:
            rows = db.execute(
                "SELECT rowid, words FROM archive WHERE archive MATCH ? AND key = ? AND rowid >= ?",
                (expression, key, from_rowid),
            )
        else:
            rows = db.execute(
                "SELECT rowid, words FROM archive WHERE archive MATCH ? "
                "AND rank MATCH 'bm25(1.0, 0.0)' AND key = ? AND rowid >= ? ORDER BY rank LIMIT ?",
                (expression, key, from_rowid, SQLiteStore._read_limit(limit)),
            )
        found: list[Match] = []
        searched = wanted.keys()
        for rowid, words in rows:  # a row's indexed words, one space apart
            indexed = words.split(" ") if words else []
            matched = frozenset([wanted[word] for word in searched & set(indexed)])
            found.append(Match(rowid, matched, len(indexed)))
        return found

    async def nearest_candidates(
        self,
        key: str,
        vector: Sequence[float],
        limit: int,
        similar: Similarity,
        around: int,
        shown: Set[str],
    ) -> list[Candidate]:
        record_store_request()
        return await self._run(
            "search SQLite", self._nearest, key, vector, limit, similar, around, shown
        )

    def _nearest(
        self,
        key: str,
        vector: Sequence[float],
        limit: int,
        similar: Similarity,
        around: int,
        shown: Set[str],
    ) -> list[Candidate]:
        embedded = self._embedded(key, len(vector))
        # Asked for `shown` more than wanted: those are dropped before any text is read.
        closest = similar(embedded.matrix, vector, limit + len(shown))
        chosen = [i for i in closest if embedded.ids[i] not in shown][:limit]
        by_id = {
            m.id: m
            for m in self._messages(
                key, [embedded.ids[i] for i in chosen], [embedded.orders[i] for i in chosen]
            )
        }
        found = [
            Candidate(by_id[embedded.ids[i]], embedded.orders[i])
            for i in chosen
            if embedded.ids[i] in by_id
        ]
        return self._with_neighbours(key, found, around, shown)

    def _embedded(self, key: str, dimensions: int) -> Embeddings:
        """The person's newest NEWEST_EMBEDDED embeddings of `dimensions`, from memory where
        they are kept: reading and decoding thousands of rows each turn would cost more than the
        comparison. Another process's commit to the file (PRAGMA data_version) drops them all."""
        db = self._connection()
        version = int(db.execute("PRAGMA data_version").fetchone()[0])
        if version != self._data_version:
            self._embeddings.clear()
            self._buffers.clear()
            self._data_version = version
        cached = self._embeddings.get((key, dimensions))
        if cached is None:
            rows = db.execute(
                "SELECT id, vector, position FROM vectors WHERE key = ? AND length(vector) = ? "
                "ORDER BY rowid DESC LIMIT ?",
                (key, dimensions * 4, self.NEWEST_EMBEDDED),
            ).fetchall()
            rows.reverse()
            matrix = np.frombuffer(b"".join(row[1] for row in rows), dtype=np.float32)
            cached = Embeddings(
                ids=tuple(row[0] for row in rows),
                orders=tuple(-1 if row[2] is None else row[2] for row in rows),
                matrix=self._buffered(key, matrix.reshape(len(rows), dimensions)),
            )
        self._keep_embeddings(key, dimensions, cached)
        return cached

    def _keep_embeddings(self, key: str, dimensions: int, embeddings: Embeddings) -> None:
        self._embeddings[(key, dimensions)] = embeddings
        self._embeddings.move_to_end((key, dimensions))
        if len(self._embeddings) > self.EMBEDDED_PEOPLE:
            dropped, _ = self._embeddings.popitem(last=False)
            self._buffers.pop(dropped, None)

    def _add_embeddings(
        self, key: str, vectors: Mapping[str, Sequence[float]], positions: Mapping[str, int | None]
    ) -> None:
        """Newly written embeddings join the person's kept ones (the oldest leave past the
        bound), so that the next turn need not read them back."""
        for (kept_key, dimensions), kept in list(self._embeddings.items()):
            if kept_key != key:
                continue
            new = [(id_, v) for id_, v in vectors.items() if len(v) == dimensions]
            if not new:
                continue
            rows = np.asarray([v for _, v in new], dtype=np.float32)
            keep = self.NEWEST_EMBEDDED
            self._embeddings[(key, dimensions)] = Embeddings(
                ids=(*kept.ids, *(id_ for id_, _ in new))[-keep:],
                orders=(*kept.orders, *(positions.get(id_) or -1 for id_, _ in new))[-keep:],
                matrix=self._appended(key, kept.matrix, rows),
            )

    def _buffered(self, key: str, matrix: _Matrix) -> _Matrix:
        """`matrix` as the newest rows of a buffer with room for as many again, so that a turn's
        new embeddings are written after them instead of the whole matrix being copied."""
        buffer = np.empty((2 * self.NEWEST_EMBEDDED, matrix.shape[1]), dtype=np.float32)
        buffer[: len(matrix)] = matrix
        self._buffers[(key, matrix.shape[1])] = (buffer, len(matrix))
        return buffer[: len(matrix)]

    def _appended(self, key: str, kept: _Matrix, rows: _Matrix) -> _Matrix:
        """`kept` with `rows` after it, the oldest past NEWEST_EMBEDDED left out: written into
        the key's buffer, which is compacted (its newest rows moved to its start) when full,
        once every NEWEST_EMBEDDED rows. The matrix handed out before is not used after."""
        keep, dimensions = self.NEWEST_EMBEDDED, kept.shape[1]
        buffer, end = self._buffers.get((key, dimensions), (None, 0))
        if (
            buffer is None
            or len(rows) >= keep
            or len(kept) != min(end, keep)
            or not np.shares_memory(buffer, kept)
        ):
            return self._buffered(key, np.concatenate([kept, rows])[-keep:])
        if end + len(rows) > len(buffer):
            live = min(end, keep - len(rows))
            buffer[:live] = buffer[end - live : end]
            end = live
        buffer[end : end + len(rows)] = rows
        end += len(rows)
        self._buffers[(key, dimensions)] = (buffer, end)
        return buffer[max(0, end - keep) : end]

    def _messages(self, key: str, ids: Sequence[str], orders: Sequence[int]) -> list[Message]:
        """The archived messages `ids`, whose places in the archive are `orders` where known
        (-1 where not)."""
        if not ids:
            return []
        db = self._connection()
        live = self._live_from(db, self._clock())
        marks = ",".join("?" * len(ids))
        rowids = list(orders)
        if min(rowids) < 0:  # some place not kept along with the embeddings: look them up
            rowids = [
                row[0]
                for row in db.execute(
                    f"SELECT position FROM vectors WHERE key = ? AND id IN ({marks}) "  # noqa: S608
                    "AND position IS NOT NULL",
                    (key, *ids),
                )
            ]
        if len(rowids) == len(ids):  # read by their place in the archive: no scan
            rows = db.execute(
                "SELECT id, role, text, at, author FROM archive WHERE rowid IN "  # noqa: S608
                f"({','.join('?' * len(rowids))}) AND key = ? AND rowid >= ?",
                (*rowids, key, live),
            )
            return [_archived(*row) for row in rows]
        rows = db.execute(
            "SELECT id, role, text, at, author FROM archive WHERE archive MATCH ? AND key = ? "  # noqa: S608
            f"AND id IN ({marks}) AND rowid >= ?",
            (_person(key), key, *ids, live),
        )
        return [_archived(*row) for row in rows]

    def _neighbours(self, key: str, orders: Sequence[int]) -> dict[int, Around]:
        """A turn's messages are written together, so a message's neighbours are usually the
        rows just before and after it: those are read by rowid, all at once; only where another
        person wrote in between does FTS5 walk the person's rows to the nearest one."""
        db = self._connection()
        live = self._live_from(db, self._clock())
        steps = {order + step for order in orders for step in (-1, 1)}
        around = sorted(rowid for rowid in steps if rowid >= live) or [live]
        marks = ",".join("?" * len(around))
        rows = db.execute(
            f"SELECT rowid, id, role, text, at, author, key FROM archive WHERE rowid IN ({marks})",  # noqa: S608
            around,
        )
        adjacent = {row[0]: _archived(*row[1:6]) for row in rows if row[6] == key}
        found: dict[int, Around] = {}
        for order in orders:
            before, after = adjacent.get(order - 1), adjacent.get(order + 1)
            if before is None:
                before = self._nearest_row(db, key, order, "<", "DESC", live)
            if after is None:
                after = self._nearest_row(db, key, order, ">", "ASC", live)
            found[order] = (before, after)
        return found

    @staticmethod
    def _nearest_row(
        db: sqlite3.Connection, key: str, order: int, sign: str, direction: str, live: int
    ) -> Message | None:
        """The person's message nearest `order` on one side (FTS5 walks their rows in order),
        not one archived before rowid `live` (expired)."""
        row = db.execute(
            "SELECT id, role, text, at, author FROM archive WHERE archive MATCH ? AND key = ? "  # noqa: S608
            f"AND rowid {sign} ? AND rowid >= ? ORDER BY rowid {direction} LIMIT 1",
            (_person(key), key, order, live),
        ).fetchone()
        return None if row is None else _archived(*row)

    async def archived(self, key: str, limit: int | None = None) -> list[Message]:
        """Read from the newest down, EXPORT_PAGE messages a hand-over, so that a large export
        holds no one else up for as long as it takes; newest in the order they were archived
        (as Cosmos DB's `seq`), which each page reads in bounded work. What is archived while
        the export is under way is not in it."""
        newest: list[Message] = []
        up_to = 2**63 - 1  # SQLite's largest rowid
        while limit is None or len(newest) < limit:
            wanted = (
                self.EXPORT_PAGE if limit is None else min(limit - len(newest), self.EXPORT_PAGE)
            )
            page, up_to = await self._run("read from SQLite", self._archived, key, wanted, up_to)
            newest += page
            if len(page) < wanted:
                break
        newest.reverse()
        return newest

    def _archived(self, key: str, limit: int, up_to: int) -> tuple[list[Message], int]:
        """The key's newest `limit` archived messages at or below rowid `up_to`, newest first,
        and the rowid to read on from."""
        db = self._connection()
        rows = db.execute(
            "SELECT rowid, id, role, text, at, author FROM archive WHERE archive MATCH ? "
            "AND key = ? AND rowid <= ? AND rowid >= ? ORDER BY rowid DESC LIMIT ?",
            (_person(key), key, up_to, self._live_from(db, self._clock()), limit),
        ).fetchall()
        return [_archived(*row[1:]) for row in rows], rows[-1][0] - 1 if rows else up_to

    async def delete(self, key: str) -> None:
        """The record goes first, in a transaction of its own, so that the bot stops using the
        memory at once; then what the key had archived and embedded by then, FORGET_CHUNK rows a
        transaction and a hand-over: one transaction for a large archive held everyone else up
        for as long as it took. A turn taken meanwhile starts a new memory, which this forget
        leaves alone. Interrupted (the store closed, or failed), what is left has no record, and
        the key's next forget deletes it. Last, the full-text index is merged (`_merge_index`),
        so that no word of what was forgotten is left in the file."""
        archived, embedded = await self._run("delete from SQLite", self._delete, key)
        forgot_messages = archived is not None
        while archived is not None:
            archived = await self._run("delete from SQLite", self._delete_archived, key, archived)
        while embedded is not None:
            embedded = await self._run("delete from SQLite", self._delete_embedded, key, embedded)
        if forgot_messages:
            await self._merge_index("delete from SQLite")

    async def _merge_index(self, what: str) -> None:
        """FTS5 deletes a message from its index by writing a deletion beside the old entry,
        which stays, terms and all, in its segment until the segments are merged (SQLite 3.44's
        `secure-delete` option would remove it at once; Python's SQLite here is older). So the
        segments are merged into one, MERGE_PAGES pages a transaction and a hand-over, until
        FTS5 finds nothing left to merge; SQLite zeroes the pages this frees."""
        while await self._run(what, self._merge_step):
            pass

    def _merge_step(self) -> bool:
        """One step of merging the index's segments; False when there was nothing to merge."""
        db = self._connection()
        before = db.total_changes
        with _transaction(db):
            # A negative size merges every segment, whatever its level (FTS5's 'merge' command).
            db.execute(
                "INSERT INTO archive (archive, rank) VALUES ('merge', ?)", (-self.MERGE_PAGES,)
            )
        return db.total_changes - before >= 2  # FTS5's own test of whether it merged anything

    def _delete(self, key: str) -> tuple[int | None, int | None]:
        """The key's record deleted; the rowids of its newest archived message and newest
        embedding then (None where there is none), from which `delete` deletes the rest."""
        db = self._connection()
        self._decoded.pop(key, None)
        self._drop_embeddings(key)
        with _transaction(db):
            db.execute("DELETE FROM records WHERE key = ?", (key,))
            archived = db.execute(
                "SELECT rowid FROM archive WHERE archive MATCH ? AND key = ? "
                "ORDER BY rowid DESC LIMIT 1",
                (_person(key), key),
            ).fetchone()
            embedded = db.execute(
                "SELECT rowid FROM vectors WHERE key = ? ORDER BY rowid DESC LIMIT 1", (key,)
            ).fetchone()
        return (archived[0] if archived else None, embedded[0] if embedded else None)

    def _delete_archived(self, key: str, up_to: int) -> int | None:
        """The key's newest FORGET_CHUNK archived messages at or below rowid `up_to` deleted, in
        one transaction; the rowid to go on from, or None when none are left."""
        db = self._connection()
        with _transaction(db):
            rowids = [
                row[0]
                for row in db.execute(
                    "SELECT rowid FROM archive WHERE archive MATCH ? AND key = ? AND rowid <= ? "
                    "ORDER BY rowid DESC LIMIT ?",
                    (_person(key), key, up_to, self.FORGET_CHUNK),
                )
            ]
            self._delete_rows(db, "archive", rowids)
        return rowids[-1] - 1 if len(rowids) == self.FORGET_CHUNK else None

    def _delete_embedded(self, key: str, up_to: int) -> int | None:
        """As `_delete_archived`, for the key's embeddings; none of them is kept in memory after."""
        db = self._connection()
        with _transaction(db):
            rowids = [
                row[0]
                for row in db.execute(
                    "SELECT rowid FROM vectors WHERE key = ? AND rowid <= ? "
                    "ORDER BY rowid DESC LIMIT ?",
                    (key, up_to, self.FORGET_CHUNK),
                )
            ]
            self._delete_rows(db, "vectors", rowids)
        self._drop_embeddings(key)  # a search meanwhile may have kept some of them
        return rowids[-1] - 1 if len(rowids) == self.FORGET_CHUNK else None

    def _drop_embeddings(self, key: str) -> None:
        for kept in [k for k in self._embeddings if k[0] == key]:
            del self._embeddings[kept]
            self._buffers.pop(kept, None)

    @staticmethod
    def _delete_rows(db: sqlite3.Connection, table: str, rowids: Sequence[int]) -> None:
        if rowids:
            marks = ",".join("?" * len(rowids))
            db.execute(f"DELETE FROM {table} WHERE rowid IN ({marks})", rowids)  # noqa: S608

    async def delete_messages(self, key: str, ids: Sequence[str]) -> None:
        record_store_request()
        for start in range(0, len(ids), self.FORGET_CHUNK):
            chunk = list(ids[start : start + self.FORGET_CHUNK])
            await self._run("delete from SQLite", self._delete_messages, key, chunk)
        if ids:  # no word of them left in the full-text index either, soon (see _merge_due)
            self._merge_due = True

    def _delete_messages(self, key: str, ids: Sequence[str]) -> None:
        db = self._connection()
        self._drop_embeddings(key)
        marks = ",".join("?" * len(ids))
        with _transaction(db):
            db.execute(
                "DELETE FROM archive WHERE rowid IN (SELECT rowid FROM archive "  # noqa: S608
                f"WHERE archive MATCH ? AND key = ? AND id IN ({marks}))",
                (_person(key), key, *ids),
            )
            db.execute(
                f"DELETE FROM vectors WHERE key = ? AND id IN ({marks})",  # noqa: S608
                (key, *ids),
            )

    async def mark(
        self, key: str, name: str, value: str, *, now: float, seconds: float, replace: bool
    ) -> bool:
        record_store_request()
        return await self._run(
            "write to SQLite", self._mark, key, name, value, now, now + seconds, replace
        )

    def _mark(
        self, key: str, name: str, value: str, now: float, expires: float, replace: bool
    ) -> bool:
        db = self._connection()
        with _transaction(db):
            db.execute(
                "DELETE FROM marks WHERE rowid IN "
                "(SELECT rowid FROM marks WHERE expires <= ? LIMIT ?)",
                (now, _EXPIRED_MARKS_PURGED),
            )
            if not replace:
                db.execute(
                    "DELETE FROM marks WHERE key = ? AND name = ? AND expires <= ?",
                    (key, name, now),
                )
            verb = "INSERT OR REPLACE" if replace else "INSERT OR IGNORE"
            written = db.execute(
                f"{verb} INTO marks (key, name, value, at, expires) VALUES (?, ?, ?, ?, ?)",
                (key, name, value, now, expires),
            )
            return written.rowcount == 1

    async def marked(self, key: str, name: str, *, now: float) -> str | None:
        record_store_request()
        return await self._run("read from SQLite", self._marked, key, name, now)

    def _marked(self, key: str, name: str, now: float) -> str | None:
        rows = self._connection().execute(
            "SELECT value FROM marks WHERE key = ? AND name = ? AND expires > ?", (key, name, now)
        )
        return _first(rows)

    async def unmark(self, key: str, name: str) -> bool:
        record_store_request()
        return await self._run("write to SQLite", self._unmark, key, name)

    def _unmark(self, key: str, name: str) -> bool:
        deleted = self._connection().execute(
            "DELETE FROM marks WHERE key = ? AND name = ?", (key, name)
        )
        return deleted.rowcount == 1

    async def count_marks(self, key: str, prefix: str, *, since: float, now: float) -> int:
        record_store_request()
        return await self._run("read from SQLite", self._count_marks, key, prefix, since, now)

    def _count_marks(self, key: str, prefix: str, since: float, now: float) -> int:
        # `substr`, not LIKE: a name's `%` and `_` are plain characters here.
        counted = self._connection().execute(
            "SELECT count(*) FROM marks WHERE key = ? AND substr(name, 1, ?) = ? "
            "AND at >= ? AND expires > ?",
            (key, len(prefix), prefix, since, now),
        )
        return int(counted.fetchone()[0])

    async def purge_expired(self, limit: int | None = None) -> int:
        """One step of retention, one transaction and one hand-over to the store's thread: at
        most `limit` (PURGE_STEP) expired records and archived messages deleted, records first,
        each message with its embedding. How many records and messages went (0 without a time
        to live); fewer than `limit`: none expired is left."""
        if self.ttl_seconds is None:
            return 0
        return await self._run(
            "purge expired memory from SQLite", self._purge_expired, limit or self.PURGE_STEP
        )

    def _purge_expired(self, limit: int) -> int:
        db = self._connection()
        now = self._clock()
        with _transaction(db):
            keys = [
                row[0]
                for row in db.execute(
                    "SELECT key FROM records WHERE updated_at < ? LIMIT ?",
                    (self._cutoff(now), limit),
                )
            ]
            db.executemany("DELETE FROM records WHERE key = ?", [(key,) for key in keys])
            live = self._live_from(db, now)
            messages: list[tuple[int, str, str]] = (
                db.execute(
                    "SELECT rowid, key, id FROM archive WHERE rowid < ? ORDER BY rowid LIMIT ?",
                    (live, limit - len(keys)),
                ).fetchall()
                if len(keys) < limit
                else []
            )
            self._delete_rows(db, "archive", [rowid for rowid, _, _ in messages])
            db.executemany(
                "DELETE FROM vectors WHERE key = ? AND id = ?",
                [(key, id_) for _, key, id_ in messages],
            )
            if len(keys) + len(messages) < limit:  # every expired message gone: their times too
                db.execute("DELETE FROM archive_times WHERE first_rowid < ?", (live,))
        for key in keys:
            self._decoded.pop(key, None)
        for key in {key for _, key, _ in messages}:
            self._drop_embeddings(key)
        return len(keys) + len(messages)

    async def _purge_in_background(self) -> None:
        """What has expired is deleted now and then every `purge_every` seconds, PURGE_STEP at
        a time, each step a hand-over of its own, so that nobody waits for the whole; then the
        full-text index is merged, as after a forget."""
        while True:
            try:
                purged, step = 0, self.PURGE_STEP
                while step >= self.PURGE_STEP:
                    step = await self.purge_expired(self.PURGE_STEP)
                    purged += step
                if purged or self._merge_due:
                    self._merge_due = False
                    await self._merge_index("purge expired memory from SQLite")
                if purged:
                    log.info("SQLite: %d expired records and messages deleted", purged)
            except Exception:  # a background task: logged, and tried again next time
                log.exception("SQLite: expired memory not purged this time")
            await asyncio.sleep(self._purge_every)

    async def close(self) -> None:
        purging, self._purging = self._purging, None
        if purging is not None:
            purging.cancel()
            with suppress(asyncio.CancelledError):
                await purging
        if self._merge_due and self._thread is not None:
            self._merge_due = False
            with suppress(StoreError):  # closing goes on; the next open's forget merges
                await self._merge_index("merge the full-text index")
        thread, self._thread = self._thread, None
        if thread is None:
            return
        loop = asyncio.get_running_loop()
        # Queued operations finish first: the thread runs them in order, then the close.
        await loop.run_in_executor(thread, self._disconnect)
        thread.shutdown(wait=False)

    def _disconnect(self) -> None:
        self._decoded.clear()
        self._embeddings.clear()
        self._buffers.clear()
        db, self._db = self._db, None
        if db is not None:
            try:  # the WAL emptied, so that nothing deleted is left in it
                db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error as error:
                log.info("SQLite WAL not emptied at close: %s", error)
            db.close()


@contextmanager
def _transaction(db: sqlite3.Connection) -> Iterator[None]:
    """`BEGIN IMMEDIATE` ... `COMMIT`, rolled back on any error, a failed commit's included."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise


def _prepare(db: sqlite3.Connection) -> bool:
    """Create the tables, or bring an older file's up to SCHEMA_VERSION, in one transaction (so
    that of several processes opening one file, one migrates and the others then see it done).
    True when an older archive was migrated."""
    with _transaction(db):
        version = _refuse_newer(db)
        db.execute(_SCHEMA[0])
        db.execute(_SCHEMA[1])
        columns = {row[1] for row in db.execute("PRAGMA table_info(vectors)")}
        if "position" not in columns:  # files before schema 3
            db.execute("ALTER TABLE vectors ADD COLUMN position INTEGER")
        db.execute(_SCHEMA[2])
        for statement in (*_MARKS, *_RETENTION):
            db.execute(statement)
        if version == SCHEMA_VERSION:
            return False
        migrating = bool(
            db.execute("SELECT 1 FROM sqlite_master WHERE name = 'archive'").fetchone()
        )
        if migrating:
            _migrate_archive(db, _TEXT_COLUMN.get(version, "text"))
        else:
            db.execute(_ARCHIVE.format(name="archive"))
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    return migrating


def _date_the_archive(db: sqlite3.Connection, now: float) -> bool:
    """A file an older MemoryBot wrote has archived messages but no note of when: they count
    as archived `now`. True when so (the file is then compacted once: what its older MemoryBot
    deleted may still be in its free pages and index segments)."""
    with _transaction(db):
        dated = db.execute(
            "INSERT INTO archive_times (first_rowid, at) SELECT 0, ? "
            "WHERE NOT EXISTS (SELECT 1 FROM archive_times) "
            "AND EXISTS (SELECT 1 FROM archive)",
            (now,),
        )
        return dated.rowcount == 1


def _compact(db: sqlite3.Connection) -> None:
    """After a migration, or on a file an older MemoryBot wrote: the index's segments merged
    into one (no deleted message's terms left in them), the file rewritten without free pages
    (nothing deleted left in them; the old archive's pages back to the file system), the WAL
    emptied."""
    try:
        db.execute("INSERT INTO archive (archive) VALUES ('optimize')")
        db.execute("VACUUM")
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    except sqlite3.OperationalError as error:  # another process is using the file: later, then
        log.info("SQLite file not compacted after the migration: %s", error)


def _make_private(path: Path) -> None:
    """The database file created readable by its owner only (SQLite creates its WAL and shared
    memory with the file's mode), and made so if an older MemoryBot created it readable by
    others."""
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, _PRIVATE_FILE))
    for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        try:
            if file.stat().st_mode & 0o077:
                file.chmod(_PRIVATE_FILE)
        except FileNotFoundError:
            continue
        except PermissionError as error:  # another user's file, shared on purpose
            log.warning("SQLite file left readable by others: %s", error)


def _moment(seconds: float) -> str:
    """Seconds since the epoch as a record's `updated_at` is stored (UTC, ISO 8601, to the
    microsecond, so that stored moments compare as text)."""
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="microseconds")


def _refuse_newer(db: sqlite3.Connection) -> int:
    """The file's schema version, unless a newer MemoryBot wrote it (then StoreError)."""
    version = int(db.execute("PRAGMA user_version").fetchone()[0])
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"the SQLite file's schema is version {version}, newer than this MemoryBot's "
            f"({SCHEMA_VERSION}): run the MemoryBot that wrote it"
        )
    return version


def _migrate_archive(db: sqlite3.Connection, text_column: str) -> None:
    """Every message re-indexed by its owner's terms as `memory.terms` reads them now, keeping
    its rowid (the order of the archive); `text_column` is where the older file keeps the text."""
    total = db.execute("SELECT count(*) FROM archive").fetchone()[0]
    log.info("SQLite archive: indexing %d messages again (once, schema %d)", total, SCHEMA_VERSION)
    db.execute(_ARCHIVE.format(name="archive_next"))
    rows = db.execute(
        f"SELECT rowid, {text_column}, key, id, role, at FROM archive ORDER BY rowid"  # noqa: S608
    )
    while batch := rows.fetchmany(1000):
        db.executemany(
            "INSERT INTO archive_next (rowid, words, owner, text, key, id, role, at, author) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, '')",
            [
                (rowid, _words_of(owner, text), owner, text, key, id_, role, at)
                for rowid, text, key, id_, role, at in batch
                for owner in (_owner(key),)
            ],
        )
    db.execute("DROP TABLE archive")
    db.execute("ALTER TABLE archive_next RENAME TO archive")


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
    """One FTS token per memory key (letters and digits only, so the tokenizer keeps it whole).
    64 bits: every query also checks `key`, so even a collision would mix no one's messages."""
    return "k" + hashlib.sha256(key.encode()).hexdigest()[:16]


def _token(term: str) -> str:
    """One of `memory.terms`' terms as one FTS token: its letters and digits (without the apostrophe
    `terms_of` may keep inside a word, where the tokenizer would split it)."""
    return term.replace("'", "")


def _words_of(owner: str, content: str) -> str:
    """What the archive indexes of a message: each distinct term, joined to its owner's token."""
    return " ".join(owner + token for token in map(_token, terms_of(content)) if token)


def _any_of(owner: str, tokens: Sequence[str]) -> str:
    """An FTS5 query for messages of `owner` holding any of `tokens`."""
    return "words:(" + " OR ".join(f'"{owner}{token}"' for token in tokens) + ")"


def _person(key: str) -> str:
    """An FTS5 query for every archived message of `key`."""
    return f'owner:"{_owner(key)}"'


def _archived(id_: str, role: str, content: str, at: str, author: str | None = "") -> Message:
    """An archived row as a message; what `Message.from_json` checks, checked here without the
    dictionary (searches read hundreds of rows a turn)."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}")
    return Message(role, content, datetime.fromisoformat(at), id_, author or "")
