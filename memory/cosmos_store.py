"""Azure Cosmos DB store: production memory, behind the same interface as the SQLite store.

Each memory key owns one logical partition (path `/pk`, value `partition_key_for(key)`). In it sit
the working record, under the fixed id `record`, and the archive, one small item per message
with its indexed term list (`memory.recall.terms_of`). A turn's load is one query inside the
partition that returns the record and the archive items matching the message's terms together
(`load_with_matches`; `load` alone is a point read); a turn's write is one transactional batch
(the record, replaced only if its `_etag` is unchanged, plus the new archive items), so the
record and the archive never disagree; forgetting deletes the whole partition's items.

One `CosmosClient` per store, opened by `open()` and closed by `close()`. Throttling (429) and
dropped connections are retried by the SDK itself, configured from `CosmosRetryPolicy`; the few
transient statuses the SDK leaves alone (449 always, 408 and 5xx on writes, 503 after one try) are
retried here with back-off. Whatever still fails leaves the store as a `memory.errors` class.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import math
import random
import string
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import aiohttp
import numpy as np
from azure.core.credentials_async import AsyncTokenCredential
from azure.core.exceptions import AzureError, ClientAuthenticationError
from azure.core.pipeline.transport import AioHttpTransport
from azure.cosmos import PartitionKey
from azure.cosmos.aio import ContainerProxy, CosmosClient, DatabaseProxy
from azure.cosmos.exceptions import CosmosBatchOperationError, CosmosHttpResponseError
from azure.identity.aio import DefaultAzureCredential

from memory.errors import StoreConflict, StoreError, StoreNotReady, StoreUnavailable
from memory.recall import terms_of
from memory.records import ConversationRecord, Message
from memory.store import Mutation
from telemetry import record_store_request

log = logging.getLogger(__name__)

T = TypeVar("T")

PARTITION_KEY_PATH = "/pk"
RECORD_ITEM_ID = "record"
ARCHIVE_ITEM_PREFIX = "m-"
MAX_ID_LENGTH = 255
DEFAULT_TTL_SECONDS = 90 * 86_400
CLOSE_GRACE_SECONDS = 0.05
INDEXING_POLICY: dict[str, Any] = {
    "indexingMode": "consistent",
    "automatic": True,
    "includedPaths": [
        {"path": "/pk/?"},
        {"path": "/kind/?"},
        {"path": "/terms/[]/?"},
        {"path": "/seq/?"},
    ],
    "excludedPaths": [{"path": "/*"}, {"path": '/"_etag"/?'}],
}
"""Index only what queries filter or sort on: message texts and records cost no index writes."""

_LITERAL = frozenset(string.ascii_letters + string.digits + "-")
_ESCAPE = "_"
_HASHED = "~"
_DIGEST_LENGTH = 64

_RECENT_WRITES = 4
_RECENT_READS = 1000  # records kept between a turn's load and its save (~10 KB each)
_BATCH_LIMIT = 100
_DELETE_CONCURRENCY = 8
_MAX_SEARCH_TERMS = 32
_MIN_SEARCH_CANDIDATES = 100
_MAX_SEARCH_CANDIDATES = 500
_MAX_VECTOR_CANDIDATES = 300

# The record item's `seq`, above every archive item's (milliseconds x 1,000, about 1.8e15 now),
# and exact as a JSON number (at most 2**53 - 1).
_RECORD_SEQ = 2**53 - 1
# What a query reads of the record item: the fields `_stored` and the record's JSON use.
_RECORD_FIELDS = (
    'c.id, c._etag, c.schema, c["key"], c.summary, c.messages, c.pending, c.message_count, '
    "c.since, c.updated_at, c.recentWrites, c.archived"
)

_BM25_K1 = 1.2  # the usual BM25 constants (FTS5 uses the same)
_BM25_B = 0.75

_NOT_FOUND = 404
_CONFLICT = 409
_PRECONDITION_FAILED = 412
_THROTTLED = 429
_TRANSIENT_STATUSES = frozenset({408, 449, 500, 502, 503, 504})


def cosmos_safe(text: str, max_length: int = MAX_ID_LENGTH) -> str:
    """`text` in a form Cosmos DB accepts as an item id or partition key, one-to-one.

    Letters, digits and `-` stay as they are; every other UTF-8 byte becomes `_` and two hex
    digits, so the result never holds `/ \\ ? #`, `%` (which breaks point operations in the
    gateway), spaces or dots. A form longer than `max_length`, or an empty one, is cut and
    followed by `~` and the SHA-256 of `text`: `~` never appears in the plain form, so the two
    kinds cannot meet, and two texts share a form only if SHA-256 collides.
    """
    raw = text.encode("utf-8", "surrogatepass")
    escaped = "".join(
        chr(byte) if chr(byte) in _LITERAL else f"{_ESCAPE}{byte:02X}" for byte in raw
    )
    if escaped and len(escaped) <= max_length:
        return escaped
    digest = hashlib.sha256(raw).hexdigest()
    return f"{escaped[: max_length - _DIGEST_LENGTH - 1]}{_HASHED}{digest}"


def partition_key_for(key: str) -> str:
    """The partition key value that holds everything remembered under a memory key."""
    return cosmos_safe(key)


def archive_item_id(message: Message) -> str:
    """The id of a message's archive item; archiving the same message twice writes one item."""
    return ARCHIVE_ITEM_PREFIX + cosmos_safe(message.id, MAX_ID_LENGTH - len(ARCHIVE_ITEM_PREFIX))


@dataclass(frozen=True, slots=True)
class CosmosRetryPolicy:
    """Every retry number of the Cosmos DB store, in one place.

    The defaults keep one store operation well inside the 15 seconds Teams waits for a reply.
    `throttle_*` and `connection_*` configure the SDK's own retries; `transient_*` covers what
    the SDK does not retry; `write_attempts` bounds the compare-and-swap loop against
    concurrent writers.
    """

    throttle_retries: int = 9
    """429s retried per request, each after the service's x-ms-retry-after-ms (at least 1)."""
    throttle_wait_seconds: int = 5
    """Most time spent waiting on 429s for one request before giving up."""
    connection_retries: int = 3
    """Retries after a refused, reset or dropped connection, per request."""
    connection_backoff_seconds: float = 0.5
    """Pause between connection retries."""
    read_timeout_seconds: float = 10.0
    """How long one request waits for an answer (the SDK's default is 65 s)."""
    transient_attempts: int = 4
    """Tries of one request answered 408, 449, 500, 502, 503 or 504."""
    transient_backoff_seconds: float = 0.2
    """First pause after a transient status; doubled each time, with jitter."""
    write_attempts: int = 10
    """Conditional writes tried by `update` before it gives up with StoreConflict."""
    conflict_backoff_seconds: float = 0.02
    """Upper bound of the random pause after losing a write race, times the attempt number."""

    def client_options(self) -> dict[str, Any]:
        """The CosmosClient keyword arguments that carry this policy."""
        return {
            "retry_total": max(1, self.throttle_retries),
            "retry_backoff_max": max(1, self.throttle_wait_seconds),
            "retry_connect": self.connection_retries,
            "retry_read": self.connection_retries,
            "retry_backoff_factor": self.connection_backoff_seconds,
            "read_timeout": self.read_timeout_seconds,
        }


class CosmosStore:
    """Memory in an Azure Cosmos DB (NoSQL API) container, one logical partition per key."""

    def __init__(
        self,
        endpoint: str,
        *,
        key: str | None,
        database: str,
        container: str,
        verify_tls: bool = True,
        create_if_missing: bool = False,
        ttl_seconds: int = DEFAULT_TTL_SECONDS,
        credential: AsyncTokenCredential | None = None,
        retry: CosmosRetryPolicy | None = None,
        trust_env: bool = False,
    ) -> None:
        """`key` authenticates with the account key; without one the store uses Entra ID:
        `credential` if given (the caller closes it), else a DefaultAzureCredential of its own
        (managed identity in Azure, the developer's `az login` locally), closed with the store.
        `trust_env` lets the SDK's HTTP session take a proxy from the environment.
        """
        if ttl_seconds < 1:
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
        self._resources: AsyncExitStack | None = None
        self._container: ContainerProxy | None = None
        self._key_locks: dict[str, _KeyLock] = {}
        self._recent_reads: OrderedDict[str, _StoredRecord] = OrderedDict()

    def describe(self) -> str:
        auth = "key auth" if self._key else "Entra ID"
        return f"cosmos ({self.endpoint}, {self.database_name}/{self.container_name}, {auth})"

    async def open(self) -> None:
        if self._container is not None:
            return
        resources = AsyncExitStack()
        try:
            credential: str | AsyncTokenCredential
            if self._key:
                credential = self._key
            elif self._credential is not None:
                credential = self._credential
            else:
                owned = DefaultAzureCredential()
                resources.push_async_callback(owned.close)
                credential = owned
            client = CosmosClient(
                self.endpoint,
                credential,
                connection_verify=self.verify_tls,
                no_response_on_write=True,
                # Trusting the environment makes aiohttp look for ~/.netrc on a worker thread
                # before every request: only worth it when a proxy is to be found there.
                transport=AioHttpTransport(use_env_settings=self.trust_env),
                **self.retry.client_options(),
            )
            # Registered before entering: a client whose first request fails keeps its HTTP
            # session open unless it is closed.
            resources.push_async_callback(client.close)
            await self._request("connect to the account", client.__aenter__, at_start=True)
            container = await self._prepare(client)
        except BaseException:
            await resources.aclose()
            raise
        self._resources = resources
        self._container = container

    async def load(self, key: str) -> ConversationRecord:
        stored = await self._read(self._open_container(), key)
        self._keep_read(key, stored)
        return stored.record

    async def load_with_matches(
        self, key: str, terms: Sequence[str], limit: int
    ) -> tuple[ConversationRecord, list[Message]]:
        """The record and the best archive matches in one query inside the partition.

        The record item carries the highest `seq`, so it leads the query's order; a record
        that is not among the results (none yet, or one written before records had a `seq`)
        is read on its own.
        """
        wanted = _search_terms(terms)
        if not wanted or limit <= 0:
            return await self.load(key), []
        container = self._open_container()
        # Flat on purpose: only archive items hold `terms`, so no `kind` test is needed, and
        # nesting makes the test server's query parser take up to a second per query shape.
        rows = await self._archive_rows(
            key,
            f"(c.id = '{RECORD_ITEM_ID}' OR {_any_term(wanted)})",
            {"@top": _candidates(limit) + 1, **_term_parameters(wanted)},
            "load a memory and search its archive",
            extra_fields=", " + _RECORD_FIELDS,
        )
        found = [row for row in rows if row.get("id") == RECORD_ITEM_ID]
        stored = self._stored(key, found[0]) if found else await self._read(container, key)
        self._keep_read(key, stored)
        messages = [row for row in rows if row.get("id") != RECORD_ITEM_ID]
        return stored.record, _messages(_best_matches(messages, wanted)[:limit])

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

    async def search(self, key: str, terms: Sequence[str], limit: int) -> list[Message]:
        wanted = _search_terms(terms)
        if not wanted or limit <= 0:
            return []
        rows = await self._archive_rows(
            key,
            f"c.kind = 'message' AND ({_any_term(wanted)})",
            {"@top": _candidates(limit), **_term_parameters(wanted)},
            "search a memory's archive",
        )
        return _messages(_best_matches(rows, wanted)[:limit])

    async def nearest(self, key: str, vector: Sequence[float], limit: int) -> list[Message]:
        """Cosine similarity, worked out here over the newest embedded messages: the local test
        server has no vector search, so Cosmos DB's own (VectorDistance) is not used yet."""
        if limit <= 0:
            return []
        rows = await self._archive_rows(
            key,
            "c.kind = 'message' AND IS_DEFINED(c.vector)",
            {"@top": _MAX_VECTOR_CANDIDATES},
            "search a memory's embeddings",
            extra_fields=", c.vector",
        )
        return _messages(_most_similar(rows, vector)[:limit])

    async def archived(self, key: str, limit: int) -> list[Message]:
        if limit <= 0:
            return []
        rows = await self._archive_rows(
            key, "c.kind = 'message'", {"@top": limit}, "read a memory's archive"
        )
        return _messages(reversed(rows))

    async def delete(self, key: str) -> None:
        container = self._open_container()
        partition = partition_key_for(key)
        self._recent_reads.pop(key, None)

        async def delete_item(item_id: str) -> None:
            try:
                await self._request(
                    "delete a memory item",
                    lambda: container.delete_item(item_id, partition_key=partition),
                    expected={_NOT_FOUND},
                )
            except CosmosHttpResponseError:
                return

        async def item_ids() -> list[str]:
            rows = container.query_items(
                "SELECT VALUE c.id FROM c WHERE c.pk = @pk",
                parameters=[{"name": "@pk", "value": partition}],
                partition_key=partition,
            )
            return [str(item_id) async for item_id in rows]

        async with self._exclusive(key):
            # The working record goes first, so the bot stops using the memory at once.
            await delete_item(RECORD_ITEM_ID)
            pending = await self._request("list a memory's items", item_ids)
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

    async def _prepare(self, client: CosmosClient) -> ContainerProxy:
        """Check that the database and container exist and suit the store; create when allowed."""
        where = f"at {self.endpoint}"
        database: DatabaseProxy = client.get_database_client(self.database_name)
        if await self._missing("read the database", database.read):
            if not self.create_if_missing:
                raise StoreNotReady(
                    f"the Cosmos DB database '{self.database_name}' does not exist {where}: "
                    "create it with the deployment (or fix COSMOS_DATABASE), or set "
                    "COSMOS_CREATE_IF_MISSING=true to let the bot create it (local development)"
                )
            database = await self._request(
                "create the database",
                lambda: client.create_database_if_not_exists(self.database_name),
                at_start=True,
            )
        container = database.get_container_client(self.container_name)
        if await self._missing("read the container", container.read):
            if not self.create_if_missing:
                raise StoreNotReady(
                    f"the Cosmos DB container '{self.container_name}' does not exist in database "
                    f"'{self.database_name}' {where}: create it with the deployment (partition key "
                    f"{PARTITION_KEY_PATH}, time to live on), or fix COSMOS_CONTAINER, or set "
                    "COSMOS_CREATE_IF_MISSING=true to let the bot create it (local development)"
                )
            container = await self._request(
                "create the container",
                lambda: database.create_container_if_not_exists(
                    id=self.container_name,
                    partition_key=PartitionKey(path=PARTITION_KEY_PATH),
                    default_ttl=self.ttl_seconds,
                    indexing_policy=INDEXING_POLICY,
                ),
                at_start=True,
            )
        properties = await self._request("read the container", container.read, at_start=True)
        self._check_container(properties)
        return container

    def _check_container(self, properties: dict[str, Any]) -> None:
        """Refuse a container that would misplace items or keep them forever."""
        name = f"the Cosmos DB container '{self.database_name}/{self.container_name}'"
        paths = properties.get("partitionKey", {}).get("paths", [])
        if paths != [PARTITION_KEY_PATH]:
            raise StoreNotReady(
                f"{name} is partitioned by {paths or 'nothing'}, but memory needs "
                f"{PARTITION_KEY_PATH}: point COSMOS_CONTAINER at a container made for MemoryBot"
            )
        if properties.get("defaultTtl") is None:
            raise StoreNotReady(
                f"{name} has time to live switched off, so memory would never expire: turn it "
                "on (default time to live -1 or a number of seconds) in the deployment"
            )

    async def _missing(self, action: str, read: Callable[[], Awaitable[Any]]) -> bool:
        try:
            await self._request(action, read, expected={_NOT_FOUND}, at_start=True)
        except CosmosHttpResponseError:
            return True
        return False

    async def _read(self, container: ContainerProxy, key: str) -> _StoredRecord:
        """The record under `key` as stored now (an empty one, with no etag, when absent)."""
        try:
            item = await self._request(
                "read a memory record",
                lambda: container.read_item(RECORD_ITEM_ID, partition_key=partition_key_for(key)),
                expected={_NOT_FOUND},
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
            "ttl": self.ttl_seconds,
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
            await self._request(
                "save a memory record",
                lambda: container.execute_item_batch(operations, partition_key=partition),
                expected={_CONFLICT, _PRECONDITION_FAILED, _NOT_FOUND},
            )
        except (CosmosHttpResponseError, CosmosBatchOperationError):
            return False
        return True

    async def _upsert_batch(
        self, container: ContainerProxy, partition: str, items: list[dict[str, Any]]
    ) -> None:
        operations = [("upsert", (item,)) for item in items]
        await self._request(
            "archive messages",
            lambda: container.execute_item_batch(operations, partition_key=partition),
        )

    def _archive_item(
        self, partition: str, message: Message, number: int, vector: Sequence[float] | None
    ) -> dict[str, Any]:
        """A message as an archive item; `seq` sorts the archive in the order things were said:
        by the millisecond of `at`, then by the order the messages were archived in. An embedding
        is kept as base64 float32, a quarter of its size as a JSON list of numbers."""
        item = {
            **message.to_json(),
            "id": archive_item_id(message),
            "pk": partition,
            "kind": "message",
            "messageId": message.id,
            "seq": round(message.at.timestamp() * 1000) * 1000 + number % 1000,
            "terms": terms_of(message.content),
            "ttl": self.ttl_seconds,
        }
        if vector is not None:
            item["vector"] = _encode_vector(vector)
        return item

    async def _archive_rows(
        self,
        key: str,
        where: str,
        parameters: dict[str, object],
        action: str,
        extra_fields: str = "",
    ) -> list[dict[str, Any]]:
        """The first `@top` items of `key`'s partition that meet `where`, highest `seq` first.

        Archive items' `seq` orders them newest first; the record's is higher than all.
        """
        container = self._open_container()
        partition = partition_key_for(key)
        fields = "c.messageId, c.role, c.content, c.at, c.seq, c.terms" + extra_fields
        # Only fixed text and parameter names are joined here; every value is a parameter.
        query = (
            f"SELECT TOP @top {fields} FROM c "  # noqa: S608
            f"WHERE c.pk = @pk AND {where} ORDER BY c.seq DESC"
        )
        bound: list[dict[str, object]] = [{"name": "@pk", "value": partition}]
        bound += [{"name": name, "value": value} for name, value in parameters.items()]

        async def fetch() -> list[dict[str, Any]]:
            found = container.query_items(query, parameters=bound, partition_key=partition)
            return [row async for row in found]

        return await self._request(action, fetch)

    async def _request(
        self,
        action: str,
        operation: Callable[[], Awaitable[T]],
        *,
        expected: set[int] | frozenset[int] = frozenset(),
        at_start: bool = False,
    ) -> T:
        """Run one SDK call, retrying the transient statuses the SDK leaves alone.

        An HTTP status in `expected` is re-raised as the SDK's error for the caller to handle;
        every other failure becomes a StoreError (StoreNotReady when `at_start`).
        """
        delay = self.retry.transient_backoff_seconds
        attempt = 1
        while True:
            record_store_request()  # counted per turn; request units are not read yet
            try:
                return await operation()
            except (CosmosHttpResponseError, CosmosBatchOperationError) as error:
                if error.status_code in expected:
                    raise
                if (
                    error.status_code in _TRANSIENT_STATUSES
                    and attempt < self.retry.transient_attempts
                ):
                    log.debug("Cosmos DB answered %s; retrying", error.status_code)
                    await asyncio.sleep(delay * random.uniform(0.5, 1.5))
                    delay *= 2
                    attempt += 1
                    continue
                raise self._translate(error, action, at_start) from error
            except (AzureError, aiohttp.ClientError, OSError, TimeoutError) as error:
                raise self._translate(error, action, at_start) from error

    def _translate(self, error: Exception, action: str, at_start: bool) -> StoreError:
        """A StoreError that says what failed and what to do, without secrets or chat text."""
        failed = f"Cosmos DB at {self.endpoint} could not {action}"
        if isinstance(error, ClientAuthenticationError):
            return StoreNotReady(
                f"{failed}: no Entra ID token ({type(error).__name__}); set COSMOS_KEY, or give "
                "the bot a managed identity (locally: `az login`)"
            )
        status = getattr(error, "status_code", None)
        if status == 401:
            return StoreNotReady(f"{failed}: the credentials were refused (401); check COSMOS_KEY")
        if status == 403:
            return StoreNotReady(
                f"{failed}: access denied (403); with Entra ID, give the bot's identity the "
                "'Cosmos DB Built-in Data Contributor' role on the account (data-plane roles "
                "cannot create databases or containers: the deployment does)"
            )
        if status == _THROTTLED:
            return StoreUnavailable(
                f"{failed}: still throttled (429) after {self.retry.throttle_retries} retries; "
                "raise the container's throughput (RU/s) or spread the load"
            )
        if status in _TRANSIENT_STATUSES:
            return StoreUnavailable(
                f"{failed}: the service kept answering {status} after "
                f"{self.retry.transient_attempts} attempts; try again shortly"
            )
        if isinstance(status, int):
            substatus = getattr(error, "sub_status", None)
            detail = f"HTTP {status}" + (f", substatus {substatus}" if substatus else "")
            kind = StoreNotReady if at_start else StoreError
            return kind(f"{failed} ({detail})")
        return StoreUnavailable(
            f"{failed}: the service cannot be reached ({type(error).__name__}); check "
            "COSMOS_ENDPOINT and the network, or whether the account is up"
        )

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


def _search_terms(terms: Sequence[str]) -> list[str]:
    """The distinct indexed terms of a search, at most `_MAX_SEARCH_TERMS`."""
    wanted = list(dict.fromkeys(t for term in terms for t in terms_of(term)))
    return wanted[:_MAX_SEARCH_TERMS]


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


def _best_matches(rows: list[dict[str, Any]], terms: list[str]) -> list[dict[str, Any]]:
    """Archive rows ranked by BM25 over the candidates the query found; then newest first.

    Cosmos DB has no full-text rank here, so rarity (IDF) is judged among the candidates, and
    a message's length is its number of distinct terms: as in FTS5's BM25, a short message
    that holds a rare term outranks a long one that holds it among many others.
    """
    held = [set(row.get("terms", ())) for row in rows]
    if not rows:
        return []
    average = sum(len(h) for h in held) / len(held) or 1.0
    counts = {term: sum(term in h for h in held) for term in terms}
    idf = {
        term: math.log(1 + (len(rows) - count + 0.5) / (count + 0.5))
        for term, count in counts.items()
        if count
    }

    def score(index: int) -> tuple[float, float]:
        norm = 1 - _BM25_B + _BM25_B * len(held[index]) / average
        weight = sum(w for term, w in idf.items() if term in held[index])
        return weight * (_BM25_K1 + 1) / (1 + _BM25_K1 * norm), float(rows[index].get("seq", 0))

    order = sorted(range(len(rows)), key=score, reverse=True)
    return [rows[i] for i in order]


def _encode_vector(vector: Sequence[float]) -> str:
    return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode("ascii")


def _most_similar(rows: list[dict[str, Any]], vector: Sequence[float]) -> list[dict[str, Any]]:
    """Rows whose embedding has the query's length, most cosine-similar to it first."""
    query = np.asarray(vector, dtype=np.float32)
    usable: list[dict[str, Any]] = []
    stored: list[np.ndarray[Any, np.dtype[np.float32]]] = []
    for row in rows:
        try:
            embedding = np.frombuffer(base64.b64decode(row["vector"]), dtype="<f4")
        except (KeyError, TypeError, ValueError):
            continue
        if embedding.shape == query.shape:
            usable.append(row)
            stored.append(embedding)
    if not usable:
        return []
    matrix = np.stack(stored)
    norms = np.linalg.norm(matrix, axis=1) * (np.linalg.norm(query) or 1.0)
    scores = matrix @ query / np.where(norms == 0, 1.0, norms)
    return [usable[int(i)] for i in np.argsort(-scores, kind="stable")]


def _messages(rows: Iterable[dict[str, Any]]) -> list[Message]:
    try:
        return [Message.from_json({**row, "id": row["messageId"]}) for row in rows]
    except (ValueError, KeyError, TypeError) as error:
        raise StoreError(f"an archived message is unreadable ({type(error).__name__})") from error


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
