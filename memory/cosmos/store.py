"""Azure Cosmos DB store: production memory, behind the same interface as the SQLite store.

Each memory key owns one logical partition (`memory.cosmos.ids`). In it sit the working
record, under the fixed id `record`, and the archive, one small item per message with its
indexed term list (`memory.terms`). A turn's load is one query inside the partition that returns
the record and the archive items matching the message's terms together (`load_with_candidates`;
`load` alone is a point read); a turn's write is one transactional batch (the record, replaced
only if its `_etag` is unchanged, plus the new archive items), so the record and the archive
never disagree; forgetting deletes the whole partition's items. Candidates are ranked by
`memory.recall`, through `StoreBase`; requests and their retries go through
`memory.cosmos.requests`, the client and container through `memory.cosmos.provisioning`.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import math
import random
import time
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence, Set
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
from azure.core import MatchConditions
from azure.core.credentials_async import AsyncTokenCredential
from azure.cosmos.aio import ContainerProxy
from azure.cosmos.exceptions import CosmosBatchOperationError, CosmosHttpResponseError

from memory.cosmos.ids import (
    RECORD_ITEM_ID,
    archive_item_id,
    archive_item_id_for,
    mark_item_id,
    marks_partition_for,
    partition_key_for,
)
from memory.cosmos.provisioning import VECTOR_PATH, ContainerSpec, connect
from memory.cosmos.requests import (
    CONFLICT,
    NOT_FOUND,
    PRECONDITION_FAILED,
    CosmosRequests,
    CosmosRetryPolicy,
    charged,
)
from memory.errors import StoreConflict, StoreError
from memory.records import Around, Candidate, ConversationRecord, Embeddings, Match, Message
from memory.store import (
    Mutation,
    Ranking,
    Similarity,
    StoreBase,
    needing_neighbours,
    with_neighbours,
)
from memory.terms import terms_of

log = logging.getLogger(__name__)

CLOSE_GRACE_SECONDS = 0.05

_RECENT_WRITES = 4
_RECENT_READS = 1000  # records kept between a turn's load and its save (~10 KB each)
_BATCH_LIMIT = 100
_DELETE_CONCURRENCY = 8
_MIN_SEARCH_CANDIDATES = 100
_MAX_SEARCH_CANDIDATES = 500
_MAX_VECTOR_CANDIDATES = 300
_NEIGHBOUR_SPAN = 10 * 60 * 1000 * 1000  # ten minutes, in `seq` units
# One person's heavy work (a forget's many deletes, an export's long read) asks for low priority:
# on an account with priority-based execution, when the container's throughput runs out these
# requests are throttled before everyone else's turns. Without the feature the header is ignored.
_BACKGROUND: dict[str, Any] = {"priority": "Low"}
_MAX_NEIGHBOUR_ROWS = 200
# Answers to a query the container may not run that are not retried: 400 (the feature or index
# is missing); 500 (Cosmos DB's documented answer to a FullTextScore it cannot parse).
_OPTIONAL_FAILURES = frozenset({400, 500})
COOL_DOWN_SECONDS = 600  # how long a failed optional search is left alone
_monotonic = time.monotonic  # the clock of COOL_DOWN_SECONDS
_VECTOR_KEY = VECTOR_PATH.removeprefix("/")  # the item property holding the numbers
_VECTOR_FIELD = f".{_VECTOR_KEY}"  # as a query names it: c.embedding

# The record item's `seq`, above every archive item's (milliseconds x 1,000, about 1.8e15 now),
# and exact as a JSON number (at most 2**53 - 1).
_RECORD_SEQ = 2**53 - 1
# What a query reads of the record item: the fields `_stored` and the record's JSON use.
_RECORD_FIELDS = (
    'c.id, c._etag, c.schema, c["key"], c.summary, c.messages, c.pending, c.message_count, '
    "c.since, c.updated_at, c.recentWrites, c.archived, c.items, c.unextracted"
)


class CosmosStore(StoreBase):
    """Memory in an Azure Cosmos DB (NoSQL API) container, one logical partition per key."""

    EXPORT_PAGE = 1000  # archived messages read per query by an export

    def __init__(
        self,
        endpoint: str,
        *,
        key: str | None,
        database: str,
        container: str,
        verify_tls: bool = True,
        create_if_missing: bool = False,
        ttl_seconds: int | None = None,
        credential: AsyncTokenCredential | None = None,
        retry: CosmosRetryPolicy | None = None,
        trust_env: bool = False,
    ) -> None:
        """`key` authenticates with the account key; without one the store uses Entra ID:
        `credential` if given (the caller closes it), else a DefaultAzureCredential of its own
        (managed identity in Azure, the developer's `az login` locally), closed with the store.
        `trust_env` lets the SDK's HTTP session take a proxy from the environment.
        `ttl_seconds`: how long each item lives after its last write (the record after the
        person's last message, an archived message after it was archived); None leaves it to
        the container's default time to live.
        """
        if ttl_seconds is not None and ttl_seconds < 1:
            raise ValueError("ttl_seconds must be at least 1")
        self.endpoint = endpoint
        self.database_name = database
        self.container_name = container
        self.verify_tls = verify_tls
        self.create_if_missing = create_if_missing
        self.ttl_seconds = ttl_seconds
        self.retry = retry or CosmosRetryPolicy()
        self.trust_env = trust_env
        self._key = key or None
        self._credential = credential
        self._requests = CosmosRequests(endpoint, self.retry)
        self._spec = ContainerSpec(database, container, ttl_seconds, create_if_missing)
        # Each item lives `ttl_seconds` from its last write; without it, the container's default.
        self._ttl = {} if ttl_seconds is None else {"ttl": ttl_seconds}
        self._resources: AsyncExitStack | None = None
        self._container: ContainerProxy | None = None
        # What the container offers beyond the portable queries (`open`): full-text search, and
        # vector search for embeddings of `_vector_dimensions`, which are then kept as numbers.
        self._full_text = _OptionalSearch(offered=False)
        self._vector_search = _OptionalSearch(offered=False)
        self._vector_dimensions: int | None = None
        self._key_locks: dict[str, _KeyLock] = {}
        self._recent_reads: OrderedDict[str, _StoredRecord] = OrderedDict()

    def describe(self) -> str:
        auth = "key auth" if self._key else "Entra ID"
        search = ", full-text search" if self._full_text.offered else ""
        if self._vector_search.offered:
            search += f", vector search ({self._vector_dimensions} dimensions)"
        return (
            f"cosmos ({self.endpoint}, {self.database_name}/{self.container_name}, {auth}{search})"
        )

    async def open(self) -> None:
        if self._container is not None:
            return
        connected = await connect(
            self._requests,
            self._spec,
            key=self._key,
            credential=self._credential,
            verify_tls=self.verify_tls,
            trust_env=self.trust_env,
        )
        self._resources, self._container = connected.resources, connected.container
        self._full_text = _OptionalSearch(offered=connected.full_text)
        self._vector_dimensions = connected.vector_dimensions
        self._vector_search = _OptionalSearch(offered=connected.vector_dimensions is not None)

    async def load(self, key: str) -> ConversationRecord:
        stored = await self._read(self._open_container(), key)
        self._keep_read(key, stored)
        return stored.record

    async def load_with_candidates(
        self,
        key: str,
        terms: Sequence[str],
        limit: int,
        rank: Ranking,
        around: int,
        words: Sequence[str] = (),
    ) -> tuple[ConversationRecord, list[Candidate]]:
        """The record and the archive's candidate matches in one query inside the partition.

        The record item carries the highest `seq`, so it leads the query's order; a record
        that is not among the results (none yet, or one written before records had a `seq`)
        is read on its own.
        """
        container = self._open_container()
        # Flat on purpose: only archive items hold `terms`, so no `kind` test is needed, and
        # nesting makes the test server's query parser take up to a second per query shape.
        rows = await self._archive_rows(
            key,
            f"(c.id = '{RECORD_ITEM_ID}' OR {_any_term(terms)})",
            {"@top": _candidates(limit) + 1, **_term_parameters(terms)},
            "load a memory and search its archive",
            extra_fields=", " + _RECORD_FIELDS,
        )
        found = [row for row in rows if row.get("id") == RECORD_ITEM_ID]
        stored = self._stored(key, found[0]) if found else await self._read(container, key)
        self._keep_read(key, stored)
        messages = [row for row in rows if row.get("id") != RECORD_ITEM_ID]
        messages += await self._older_matches(key, words, messages, _candidates(limit))
        shown = {m.id for m in stored.record.unsummarised}  # the prompt shows these anyway
        best = await self._with_neighbours(key, _best(messages, terms, limit, rank), around, shown)
        return stored.record, best

    def _keep_read(self, key: str, stored: _StoredRecord) -> None:
        # A turn loads the record, then saves it: the save starts from this read (and its etag)
        # instead of reading again. If someone wrote in between, the write fails and re-reads.
        self._recent_reads[key] = stored
        self._recent_reads.move_to_end(key)
        while len(self._recent_reads) > _RECENT_READS:
            self._recent_reads.popitem(last=False)

    async def update(
        self,
        key: str,
        mutate: Mutation,
        *,
        archive: Sequence[Message] = (),
        vectors: Mapping[str, Sequence[float]] | None = None,
    ) -> ConversationRecord:
        container = self._open_container()
        partition = partition_key_for(key)
        async with self._exclusive(key):
            our_writes: list[str] = []
            for attempt in range(1, self.retry.write_attempts + 1):
                known = self._recent_reads.pop(key, None) if attempt == 1 else None
                stored = known or await self._read(container, key)
                if any(write in stored.recent_writes for write in our_writes):
                    # A write whose answer was lost (and which the SDK then retried) had landed.
                    return stored.record
                record = mutate(stored.record)
                if record == stored.record and not archive:
                    return record
                write_id = uuid.uuid4().hex
                our_writes.append(write_id)
                if await self._write(
                    container, partition, record, stored, write_id, archive, vectors or {}
                ):
                    return record
                log.debug("lost a write race on a memory record (attempt %d)", attempt)
                await asyncio.sleep(
                    random.uniform(0, self.retry.conflict_backoff_seconds * attempt)
                )
        raise StoreConflict(
            f"gave up after {self.retry.write_attempts} attempts: other writers kept changing "
            "the same memory record; the turn was not saved, ask the person to try again"
        )

    async def find_candidates(
        self, key: str, terms: Sequence[str], limit: int, rank: Ranking, words: Sequence[str] = ()
    ) -> list[Candidate]:
        """The newest archive items holding any of `terms`, as many as `_candidates` says."""
        rows = await self._archive_rows(
            key,
            f"c.kind = 'message' AND ({_any_term(terms)})",
            {"@top": _candidates(limit), **_term_parameters(terms)},
            "search a memory's archive",
        )
        rows += await self._older_matches(key, words, rows, _candidates(limit))
        return _best(rows, terms, limit, rank)

    async def _older_matches(
        self,
        key: str,
        words: Sequence[str],
        newest: list[dict[str, Any]],
        top: int,
    ) -> list[dict[str, Any]]:
        """Where the search by terms stopped at its bound (`top` newest matches) and the
        container has Cosmos DB's full-text search: the archive's best `top` matches for the
        question's own `words` by Cosmos DB's BM25 (FullTextScore, its statistics taken over the
        person's partition), those not among `newest`. A rare word is what finds an old fact, and
        with a common word beside it the newest matches can crowd it out. Nothing where the
        search is off or failed (`_optional_rows`)."""
        if len(newest) < top or not words:
            return []
        names = [f"@w{n}" for n in range(len(words))]
        listed = ", ".join(names)
        rows = await self._optional_rows(
            self._full_text,
            "full-text search",
            key,
            f"c.kind = 'message' AND FullTextContainsAny(c.content, {listed})",
            {"@top": top, **dict(zip(names, words, strict=True))},
            order_by=f"RANK FullTextScore(c.content, {listed})",
            full_text_score_scope="Local",
        )
        known = {row.get("messageId") for row in newest}
        return [row for row in rows or () if row.get("messageId") not in known]

    async def _optional_rows(
        self,
        search: _OptionalSearch,
        name: str,
        key: str,
        where: str,
        parameters: dict[str, object],
        *,
        order_by: str,
        **options: Any,
    ) -> list[dict[str, Any]] | None:
        """The rows of a query that only some containers can run (`search`), or None where the
        container has no such search, or it failed lately, or it fails now: a search the turn
        can do without never fails the turn. A failure (a refusal, 400; the 500 Cosmos DB may
        answer a query it cannot parse; an outage) is not retried, is logged once with its
        status only, and the search is not asked again for COOL_DOWN_SECONDS."""
        if not search.usable(_monotonic()):
            return None
        try:
            return await self._archive_rows(
                key,
                where,
                parameters,
                f"search a memory's archive by {name}",
                order_by=order_by,
                expected=_OPTIONAL_FAILURES,
                **options,
            )
        except Exception as error:  # any failure, as above (CancelledError is no Exception)
            status = getattr(error, "status_code", None)
            if search.failed(_monotonic()):
                log.warning(
                    "Cosmos DB's %s failed (%s); not asked again for %d minutes",
                    name,
                    f"HTTP {status}" if isinstance(status, int) else type(error).__name__,
                    COOL_DOWN_SECONDS // 60,
                )
            return None

    async def nearest_candidates(
        self,
        key: str,
        vector: Sequence[float],
        limit: int,
        similar: Similarity,
        around: int,
        shown: Set[str],
    ) -> list[Candidate]:
        nearest = await self._nearest_by_vector_search(key, vector, limit + len(shown))
        if nearest is None:  # compared here, among the newest
            embedded = await self._embedded(key, len(vector))
            closest = similar(embedded.matrix, vector, limit + len(shown))
            nearest = [
                Candidate(embedded.messages[embedded.ids[i]], embedded.orders[i]) for i in closest
            ]
        found = [c for c in nearest if c.message.id not in shown][:limit]
        return await self._with_neighbours(key, found, around, shown)

    async def _nearest_by_vector_search(
        self, key: str, vector: Sequence[float], top: int
    ) -> list[Candidate] | None:
        """The `top` archived messages whose embeddings are closest to `vector` in the whole
        archive, by Cosmos DB's vector search (VectorDistance), where the container has it for
        embeddings of this size; None where it has not or it failed (`_optional_rows`): the
        caller then compares the newest embeddings itself."""
        if self._vector_dimensions != len(vector):
            return None
        rows = await self._optional_rows(
            self._vector_search,
            "vector search",
            key,
            # No IS_DEFINED(c.embedding): the range index leaves embeddings out, so that test
            # would load every item; the vector index holds only items that have one.
            "c.kind = 'message'",
            {"@top": top, "@vector": _vector_numbers(vector)},
            order_by=f"VectorDistance(c{_VECTOR_FIELD}, @vector)",
        )
        if rows is None:
            return None
        try:
            messages = _messages(rows)
        except StoreError:
            self._vector_search.failed(_monotonic())
            return None
        return [Candidate(m, _seq(row)) for m, row in zip(messages, rows, strict=True)]

    async def _with_neighbours(
        self, key: str, candidates: list[Candidate], around: int, shown: Set[str] = frozenset()
    ) -> list[Candidate]:
        """The first `around` candidates with the messages said just before and after them
        (those the prompt shows anyway, `shown`, need none)."""
        placed = needing_neighbours(candidates, around, shown)
        if not placed:
            return candidates
        return with_neighbours(candidates, await self._neighbours(key, [c.order for c in placed]))

    async def _embedded(self, key: str, dimensions: int) -> Embeddings:
        """The newest embedded messages, kept either way (`_archive_item`), to compare here."""
        rows = await self._archive_rows(
            key,
            f"c.kind = 'message' AND (IS_DEFINED(c.vector) OR IS_DEFINED(c{_VECTOR_FIELD}))",
            {"@top": _MAX_VECTOR_CANDIDATES},
            "search a memory's embeddings",
            extra_fields=f", c.vector, c{_VECTOR_FIELD}",
        )
        usable = [
            (row, vector)
            for row in rows
            if (vector := _decode_vector(row.get("vector", row.get(_VECTOR_KEY)))) is not None
            and vector.shape == (dimensions,)
        ]
        messages = _messages(row for row, _ in usable)
        return Embeddings(
            ids=tuple(m.id for m in messages),
            orders=tuple(int(row.get("seq", 0)) for row, _ in usable),
            matrix=np.array([vector for _, vector in usable], dtype=np.float32).reshape(
                len(usable), dimensions
            ),
            messages={m.id: m for m in messages},
        )

    async def _neighbours(self, key: str, orders: Sequence[int]) -> dict[int, Around]:
        """One query for the messages said within NEIGHBOUR_SPAN of each place (`seq` is in
        milliseconds x 1,000), then the nearest before and after each."""
        if not orders:
            return {}
        spans = [(order - _NEIGHBOUR_SPAN, order + _NEIGHBOUR_SPAN) for order in orders]
        padded = _padded(len(spans))
        within = " OR ".join(f"(c.seq >= @lo{n} AND c.seq <= @hi{n})" for n in range(padded))
        parameters: dict[str, object] = {"@top": _MAX_NEIGHBOUR_ROWS}
        for n in range(padded):
            low, high = spans[min(n, len(spans) - 1)]
            parameters |= {f"@lo{n}": low, f"@hi{n}": high}
        rows = await self._archive_rows(
            key, f"c.kind = 'message' AND ({within})", parameters, "read a memory's archive"
        )
        placed = sorted(
            zip((int(row.get("seq", 0)) for row in rows), _messages(rows), strict=True),
            key=lambda pair: pair[0],  # messages have no order of their own: two may share a seq
        )
        found: dict[int, Around] = {}
        for order in orders:
            before = [m for seq, m in placed if seq < order]
            after = [m for seq, m in placed if seq > order]
            found[order] = (before[-1] if before else None, after[0] if after else None)
        return found

    async def archived(self, key: str, limit: int | None = None) -> list[Message]:
        """Read from the newest down, EXPORT_PAGE items a query (each retried on its own, at
        low priority), each page below the `seq` where the last one ended. Two messages may
        share a `seq` (archived in the same millisecond by two writes): the next page starts
        at that `seq` again, and skips the ones already read there."""
        if limit is not None and limit <= 0:
            return []
        newest: list[dict[str, Any]] = []
        up_to = _RECORD_SEQ - 1
        read_at_edge: set[str] = set()  # messages of `seq` up_to already read
        while limit is None or len(newest) < limit:
            wanted = (
                self.EXPORT_PAGE if limit is None else min(limit - len(newest), self.EXPORT_PAGE)
            )
            top = wanted + len(read_at_edge)
            rows = await self._archive_rows(
                key,
                "c.kind = 'message' AND c.seq <= @upTo",
                {"@top": top, "@upTo": up_to},
                "read a memory's archive",
                background=True,
            )
            fresh = [
                row
                for row in rows
                if not (_seq(row) == up_to and row.get("messageId") in read_at_edge)
            ]
            newest += fresh[:wanted]
            if len(rows) < top or not fresh:
                break
            edge = _seq(rows[-1])
            at_edge = {str(row.get("messageId")) for row in rows if _seq(row) == edge}
            read_at_edge = at_edge | read_at_edge if edge == up_to else at_edge
            up_to = edge
        return _messages(reversed(newest))

    async def delete(self, key: str) -> None:
        container = self._open_container()
        partition = partition_key_for(key)
        self._recent_reads.pop(key, None)

        async def delete_item(item_id: str) -> None:
            try:
                await self._requests(
                    "delete a memory item",
                    lambda: container.delete_item(
                        item_id, partition_key=partition, response_hook=charged, **_BACKGROUND
                    ),
                    expected={NOT_FOUND},
                )
            except CosmosHttpResponseError:
                return

        async def item_ids() -> list[str]:
            rows = container.query_items(
                "SELECT VALUE c.id FROM c WHERE c.pk = @pk",
                parameters=[{"name": "@pk", "value": partition}],
                partition_key=partition,
                response_hook=charged,
                **_BACKGROUND,
            )
            return [str(item_id) async for item_id in rows]

        async with self._exclusive(key):
            # The working record goes first, so the bot stops using the memory at once.
            await delete_item(RECORD_ITEM_ID)
            pending = await self._requests("list a memory's items", item_ids)
            limit = asyncio.Semaphore(_DELETE_CONCURRENCY)

            async def delete_limited(item_id: str) -> None:
                async with limit:
                    await delete_item(item_id)

            outcomes = await asyncio.gather(
                *(delete_limited(item_id) for item_id in pending), return_exceptions=True
            )
            for outcome in outcomes:
                if isinstance(outcome, BaseException):
                    raise outcome

    async def delete_messages(self, key: str, ids: Sequence[str]) -> None:
        """One delete each (at most _DELETE_CONCURRENCY at once, low priority); a message
        already gone is fine."""
        container = self._open_container()
        partition = partition_key_for(key)
        limit = asyncio.Semaphore(_DELETE_CONCURRENCY)

        async def delete_one(message_id: str) -> None:
            async with limit:
                try:
                    await self._requests(
                        "delete an archived message",
                        lambda: container.delete_item(
                            archive_item_id_for(message_id),
                            partition_key=partition,
                            response_hook=charged,
                            **_BACKGROUND,
                        ),
                        expected={NOT_FOUND},
                    )
                except CosmosHttpResponseError:
                    return

        await asyncio.gather(*(delete_one(message_id) for message_id in ids))

    async def mark(
        self, key: str, name: str, value: str, *, now: float, seconds: float, replace: bool
    ) -> bool:
        """One create (or upsert, to `replace`); where a mark of that name is found but has
        expired, a replace conditional on its `_etag`, so that of two writers one wins. Each
        mark item carries a `ttl`, so Cosmos DB removes it once it has expired (where the
        container has a time to live); `expires` decides meanwhile."""
        container = self._open_container()
        partition = marks_partition_for(key)
        item_id = mark_item_id(name)
        item = {
            "id": item_id,
            "pk": partition,
            "kind": "mark",
            "name": name,
            "value": value,
            "at": now,
            "expires": now + seconds,
            "ttl": max(1, math.ceil(seconds)),
        }
        if replace:
            await self._requests(
                "set a mark",
                lambda: container.upsert_item(item, response_hook=charged),
            )
            return True
        try:
            await self._requests(
                "set a mark",
                lambda: container.create_item(item, response_hook=charged),
                expected={CONFLICT},
            )
            return True
        except CosmosHttpResponseError:
            pass  # one stands, or stood: it may have expired
        standing = await self._mark_item(key, name)
        if standing is None or float(standing.get("expires", 0)) > now:
            return False  # standing, or removed this instant by whoever holds it now
        try:
            await self._requests(
                "set a mark",
                lambda: container.replace_item(
                    item_id,
                    item,
                    etag=standing.get("_etag"),
                    match_condition=MatchConditions.IfNotModified,
                    response_hook=charged,
                ),
                expected={PRECONDITION_FAILED, NOT_FOUND},
            )
        except CosmosHttpResponseError:
            return False  # someone else renewed it first
        return True

    async def marked(self, key: str, name: str, *, now: float) -> str | None:
        item = await self._mark_item(key, name)
        if item is None or float(item.get("expires", 0)) <= now:
            return None
        return str(item.get("value", ""))

    async def _mark_item(self, key: str, name: str) -> dict[str, Any] | None:
        container = self._open_container()
        try:
            item: dict[str, Any] = await self._requests(
                "read a mark",
                lambda: container.read_item(
                    mark_item_id(name),
                    partition_key=marks_partition_for(key),
                    response_hook=charged,
                ),
                expected={NOT_FOUND},
            )
        except CosmosHttpResponseError:
            return None
        return item

    async def unmark(self, key: str, name: str) -> bool:
        container = self._open_container()
        try:
            await self._requests(
                "remove a mark",
                lambda: container.delete_item(
                    mark_item_id(name),
                    partition_key=marks_partition_for(key),
                    response_hook=charged,
                ),
                expected={NOT_FOUND},
            )
        except CosmosHttpResponseError:
            return False  # none stood, or another caller removed it first
        return True

    async def count_marks(self, key: str, prefix: str, *, since: float, now: float) -> int:
        """One query in the key's marks partition; `kind` is indexed, the rest is read from the
        few marks a key has."""
        container = self._open_container()
        partition = marks_partition_for(key)

        async def count() -> int:
            rows = container.query_items(
                "SELECT VALUE COUNT(1) FROM c WHERE c.pk = @pk AND c.kind = 'mark' "
                "AND STARTSWITH(c.name, @prefix) AND c.at >= @since AND c.expires > @now",
                parameters=[
                    {"name": "@pk", "value": partition},
                    {"name": "@prefix", "value": prefix},
                    {"name": "@since", "value": since},
                    {"name": "@now", "value": now},
                ],
                partition_key=partition,
                response_hook=charged,
            )
            counted: list[Any] = [row async for row in rows]  # VALUE COUNT(1): one number
            return sum(int(row) for row in counted)

        return await self._requests("count marks", count)

    async def close(self) -> None:
        resources, self._resources, self._container = self._resources, None, None
        if resources is not None:
            await resources.aclose()
            # aiohttp finishes closing TLS connections on later turns of the event loop; a loop
            # that ends at once (at process exit, or a test's) would report their sockets unclosed.
            await asyncio.sleep(CLOSE_GRACE_SECONDS)

    def _open_container(self) -> ContainerProxy:
        if self._container is None:
            raise StoreError("the Cosmos DB store is not open; call open() first")
        return self._container

    async def _read(self, container: ContainerProxy, key: str) -> _StoredRecord:
        """The record under `key` as stored now (an empty one, with no etag, when absent)."""
        try:
            item = await self._requests(
                "read a memory record",
                lambda: container.read_item(
                    RECORD_ITEM_ID, partition_key=partition_key_for(key), response_hook=charged
                ),
                expected={NOT_FOUND},
            )
        except CosmosHttpResponseError:
            return _StoredRecord(ConversationRecord(key=key), None, (), 0)
        return self._stored(key, item)

    def _stored(self, key: str, item: dict[str, Any]) -> _StoredRecord:
        """The record item as read (whole, or as `_RECORD_FIELDS` of it)."""
        try:
            record = ConversationRecord.from_json(item)
            recent_writes = tuple(str(write) for write in item.get("recentWrites", ()))
            archived = int(item.get("archived", 0))
        except (ValueError, KeyError, TypeError) as error:
            raise StoreError(
                f"the stored memory record is unreadable ({type(error).__name__})"
            ) from error
        if record.key != key:
            raise StoreError(
                "two memory keys map to one Cosmos DB partition; refusing to mix their memories"
            )
        return _StoredRecord(record, item.get("_etag"), recent_writes, archived)

    async def _write(
        self,
        container: ContainerProxy,
        partition: str,
        record: ConversationRecord,
        stored: _StoredRecord,
        write_id: str,
        archive: Sequence[Message],
        vectors: Mapping[str, Sequence[float]],
    ) -> bool:
        """Write `record` and the archive items in one batch, if the record is still as read.

        False when another writer got there first: 409 on create, 412 on replace, or 404 when
        the record vanished (deleted, or expired) after it was read; then nothing was written.
        `recentWrites` lets a later read tell that a write whose answer was lost had landed;
        `archived` numbers the archive items, so that they keep the order they were written in.
        """
        archive_items = [
            self._archive_item(partition, message, stored.archived + n, vectors.get(message.id))
            for n, message in enumerate(archive)
        ]
        item = {
            **record.to_json(),
            "id": RECORD_ITEM_ID,
            "pk": partition,
            "kind": "record",
            "seq": _RECORD_SEQ,
            **self._ttl,
            "recentWrites": [*stored.recent_writes[-(_RECENT_WRITES - 1) :], write_id],
            "archived": stored.archived + len(archive_items),
        }
        record_operation: tuple[Any, ...]
        if stored.etag is None:
            record_operation = ("create", (item,))
        else:
            record_operation = ("replace", (RECORD_ITEM_ID, item), {"if_match_etag": stored.etag})
        # A batch holds at most 100 operations. Upserts are idempotent, so an overflow (never
        # from a chat turn) is archived ahead of the record.
        split = max(len(archive_items) - (_BATCH_LIMIT - 1), 0)
        for start in range(0, split, _BATCH_LIMIT):
            await self._upsert_batch(
                container, partition, archive_items[start : min(start + _BATCH_LIMIT, split)]
            )
        operations = [record_operation, *(("upsert", (a,)) for a in archive_items[split:])]
        try:
            await self._requests(
                "save a memory record",
                lambda: container.execute_item_batch(
                    operations, partition_key=partition, response_hook=charged
                ),
                expected={CONFLICT, PRECONDITION_FAILED, NOT_FOUND},
            )
        except (CosmosHttpResponseError, CosmosBatchOperationError):
            return False
        return True

    async def _upsert_batch(
        self, container: ContainerProxy, partition: str, items: list[dict[str, Any]]
    ) -> None:
        operations = [("upsert", (item,)) for item in items]
        await self._requests(
            "archive messages",
            lambda: container.execute_item_batch(
                operations, partition_key=partition, response_hook=charged
            ),
        )

    def _archive_item(
        self, partition: str, message: Message, number: int, vector: Sequence[float] | None
    ) -> dict[str, Any]:
        """A message as an archive item; `seq` sorts the archive in the order things were said:
        by the millisecond of `at`, then by the order the messages were archived in. An embedding
        is kept as base64 float32 (`vector`), a quarter of its size as a JSON list of numbers,
        except where the container's vector search takes it: there as the list of numbers its
        vector index reads (VECTOR_PATH)."""
        item = {
            **message.to_json(),
            "id": archive_item_id(message),
            "pk": partition,
            "kind": "message",
            "messageId": message.id,
            "seq": round(message.at.timestamp() * 1000) * 1000 + number % 1000,
            "terms": terms_of(message.content),
            **self._ttl,
        }
        if vector is not None and len(vector) == self._vector_dimensions:
            item[_VECTOR_KEY] = _vector_numbers(vector)
        elif vector is not None:
            item["vector"] = _encode_vector(vector)
        return item

    async def _archive_rows(
        self,
        key: str,
        where: str,
        parameters: dict[str, object],
        action: str,
        extra_fields: str = "",
        *,
        background: bool = False,
        order_by: str = "c.seq DESC",
        expected: frozenset[int] = frozenset(),
        **options: Any,
    ) -> list[dict[str, Any]]:
        """The first `@top` items of `key`'s partition that meet `where`, highest `seq` first
        (or as `order_by` says); at low priority if `background` (`_BACKGROUND`); an answer
        with a status in `expected` is raised as the SDK's error.

        Archive items' `seq` orders them newest first; the record's is higher than all.
        """
        container = self._open_container()
        partition = partition_key_for(key)
        fields = "c.messageId, c.role, c.content, c.at, c.seq, c.terms, c.author" + extra_fields
        # Only fixed text and parameter names are joined here; every value is a parameter.
        query = (
            f"SELECT TOP @top {fields} FROM c "  # noqa: S608
            f"WHERE c.pk = @pk AND {where} ORDER BY {order_by}"
        )
        bound: list[dict[str, object]] = [{"name": "@pk", "value": partition}]
        bound += [{"name": name, "value": value} for name, value in parameters.items()]

        async def fetch() -> list[dict[str, Any]]:
            found = container.query_items(
                query,
                parameters=bound,
                partition_key=partition,
                response_hook=charged,
                **(_BACKGROUND if background else {}),
                **options,
            )
            return [row async for row in found]

        return await self._requests(action, fetch, expected=expected)

    @asynccontextmanager
    async def _exclusive(self, key: str) -> AsyncIterator[None]:
        """Serialise this process's writes to one key, so they never race each other.

        Other processes can still race; the conditional write settles those.
        """
        entry = self._key_locks.get(key)
        if entry is None:
            entry = self._key_locks[key] = _KeyLock()
        entry.users += 1
        try:
            async with entry.lock:
                yield
        finally:
            entry.users -= 1
            if entry.users == 0:
                del self._key_locks[key]


def _any_term(terms: Sequence[str]) -> str:
    """`terms` held by an item, with room for a power of two of them: a few query texts only.

    Every distinct query text is parsed and planned once (by Cosmos DB, and by the test server,
    where that takes 20 to 50 ms); padded to 1, 2, 4, ... terms, a search has six texts, not 32.
    """
    return " OR ".join(f"ARRAY_CONTAINS(c.terms, @t{n})" for n in range(_padded(len(terms))))


def _term_parameters(terms: Sequence[str]) -> dict[str, object]:
    """The terms as parameters, the last repeated to fill the padded query."""
    return {f"@t{n}": terms[min(n, len(terms) - 1)] for n in range(_padded(len(terms)))}


def _padded(count: int) -> int:
    return 1 << max(count - 1, 0).bit_length()


def _candidates(limit: int) -> int:
    """How many matching archive items a search reads, to rank them here."""
    return min(max(limit * 4, _MIN_SEARCH_CANDIDATES), _MAX_SEARCH_CANDIDATES)


def _best(
    rows: list[dict[str, Any]], terms: Sequence[str], limit: int, rank: Ranking
) -> list[Candidate]:
    """The best `limit` archive rows by `rank`: the search's terms each holds, its length in
    terms, its `seq` (the archive's order)."""
    by_order: dict[int, dict[str, Any]] = {}
    matches: list[Match] = []
    wanted = frozenset(terms)
    for row in rows:
        held = row.get("terms") or ()  # distinct, as `terms_of` gives them
        order = int(row.get("seq", 0))
        by_order[order] = row
        matches.append(Match(order, wanted.intersection(held), len(held)))
    best = rank(matches, terms)[:limit]
    messages = _messages(by_order[m.order] for m in best)
    return [
        Candidate(message, m.order, m.matched, m.length)
        for message, m in zip(messages, best, strict=True)
    ]


def _encode_vector(vector: Sequence[float]) -> str:
    return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode("ascii")


def _vector_numbers(vector: Sequence[float]) -> list[float]:
    """An embedding as JSON numbers of 7 significant digits, float32's precision: shorter text
    than Python's full repr of each, and the same cosine to within a millionth."""
    return [float(f"{value:.7g}") for value in vector]


def _decode_vector(encoded: Any) -> np.ndarray[Any, np.dtype[np.float32]] | None:
    """An embedding kept either way (`_archive_item`), or None if it is neither."""
    try:
        if isinstance(encoded, list):
            return np.asarray(encoded, dtype=np.float32)
        return np.frombuffer(base64.b64decode(encoded), dtype="<f4").astype(np.float32)
    except (TypeError, ValueError):
        return None


def _seq(row: dict[str, Any]) -> int:
    return int(row.get("seq", 0))


def _messages(rows: Iterable[dict[str, Any]]) -> list[Message]:
    try:
        return [Message.from_json({**row, "id": row["messageId"]}) for row in rows]
    except (ValueError, KeyError, TypeError) as error:
        raise StoreError(f"an archived message is unreadable ({type(error).__name__})") from error


@dataclass(slots=True)
class _OptionalSearch:
    """A search the container may offer beyond the portable queries: used while it works; after
    a failure, left alone for COOL_DOWN_SECONDS (times from `time.monotonic`)."""

    offered: bool
    resume_at: float = 0.0

    def usable(self, now: float) -> bool:
        return self.offered and now >= self.resume_at

    def failed(self, now: float) -> bool:
        """Leaves the search alone for a while; True if it was in use until now (say so)."""
        in_use = now >= self.resume_at
        self.resume_at = now + COOL_DOWN_SECONDS
        return in_use


@dataclass(frozen=True, slots=True)
class _StoredRecord:
    record: ConversationRecord
    etag: str | None
    recent_writes: tuple[str, ...]
    archived: int


class _KeyLock:
    """A per-key lock and the number of tasks holding or awaiting it."""

    __slots__ = ("lock", "users")

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.users = 0
