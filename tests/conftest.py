"""Shared fixtures: store backends for the shared suite, and the fake servers tests talk to.

Every test that asks for `store_factory` runs once per backend (SQLite, and Cosmos DB through the
local `@vercel/cosmosdb-server`), with the same asserts. The Cosmos DB server starts once per run
and each test gets its own database, so no test sees another's data.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

import pytest
from azure.cosmos.aio import CosmosClient
from azure.cosmos.exceptions import CosmosHttpResponseError

from config import Settings
from memory import ConversationMemory, MemoryStore
from memory.cosmos import CLOSE_GRACE_SECONDS, CosmosStore
from memory.records import ConversationRecord, Message
from memory.sqlite_store import SQLiteStore
from tests.support.cosmos_server import CosmosServer, CosmosServerError

STORE_BACKENDS = ["sqlite", "cosmos"]


class StoreFactory(Protocol):
    def __call__(self, *, reopen: bool = False) -> Awaitable[MemoryStore]: ...


@pytest.fixture(scope="session")
def cosmos_server() -> Iterator[CosmosServer]:
    """One local Cosmos DB API server for the whole run; needs Node.js and `npm ci`."""
    server = CosmosServer()
    try:
        server.start()
    except CosmosServerError as error:
        pytest.fail(f"the Cosmos DB test server did not start: {error}", pytrace=False)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def cosmos(cosmos_server: CosmosServer) -> Iterator[CosmosServer]:
    """The run's Cosmos DB server, answering normally and with an empty request log.

    A test that stopped it gets it started again (empty) for the next one; faults a test left
    pending are cleared.
    """
    cosmos_server.start()
    cosmos_server.clear_faults()
    cosmos_server.clear_requests()
    yield cosmos_server
    if cosmos_server.running:
        cosmos_server.clear_faults()


def cosmos_store_on(
    server: CosmosServer, database: str, *, container: str = "memory", **options: Any
) -> CosmosStore:
    """A CosmosStore on the test server that may create its database and container, with the
    settings' time to live unless `options` say otherwise."""
    settings: dict[str, Any] = {
        "verify_tls": False,
        "create_if_missing": True,
        "ttl_seconds": Settings().memory_ttl_days * 86_400,
        **options,
    }
    return CosmosStore(
        server.endpoint, key=server.key, database=database, container=container, **settings
    )


def conversation_memory(store: MemoryStore, **options: Any) -> ConversationMemory:
    """ConversationMemory on `store` with the settings' defaults for every limit that `options`
    leaves out (the app builds it from Settings too, in `wiring.create_memory`)."""
    defaults = Settings()
    limits: dict[str, Any] = {
        "system_prompt": "system",
        "max_messages": defaults.memory_max_messages,
        "context_tokens": defaults.memory_context_tokens,
        "summary_every": defaults.memory_summary_every,
        "summary_concurrency": defaults.memory_summary_concurrency,
        "extract_every": defaults.memory_extract_every,
    }
    return ConversationMemory(store, **{**limits, **options})


async def write_turn(store: MemoryStore, key: str, archive: list[Message]) -> None:
    """A turn's write: the record's window and count, the messages archived with embeddings."""

    def with_them(record: ConversationRecord) -> ConversationRecord:
        return replace(
            record,
            messages=(*record.messages, *archive)[-2:],
            message_count=record.message_count + len(archive),
        )

    vectors = {m.id: [1.0, float(n)] for n, m in enumerate(archive)}
    await store.update(key, with_them, archive=archive, vectors=vectors)


def new_database_name() -> str:
    return f"test-{uuid.uuid4().hex[:12]}"


@asynccontextmanager
async def cosmos_client(server: CosmosServer) -> AsyncIterator[CosmosClient]:
    """An SDK client on the test server, to set up or inspect what a store sees.

    Closed even when its first request fails (`async with CosmosClient(...)` leaks its HTTP
    session then), and given the same moment to finish closing as `CosmosStore.close`.
    """
    client = CosmosClient(server.endpoint, server.key, connection_verify=False)
    try:
        await client.__aenter__()
        yield client
    finally:
        await client.close()
        await asyncio.sleep(CLOSE_GRACE_SECONDS)


async def drop_database(server: CosmosServer, name: str) -> None:
    """Delete a test database, if the server is up and the database exists."""
    if not server.running:
        return
    server.clear_faults()
    async with cosmos_client(server) as client:
        try:
            await client.delete_database(name)
        except CosmosHttpResponseError as error:
            if error.status_code != 404:
                raise


@pytest.fixture
async def cosmos_database(cosmos: CosmosServer) -> AsyncIterator[str]:
    """The name of a database of this test's own, dropped afterwards."""
    name = new_database_name()
    yield name
    await drop_database(cosmos, name)


@pytest.fixture(params=STORE_BACKENDS)
async def store_factory(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[StoreFactory]:
    """Opens stores of one backend; `reopen=True` opens the same storage again, as a new store."""
    build: Callable[[], MemoryStore]
    server: CosmosServer | None = None
    database = new_database_name()
    if request.param == "cosmos":
        # Requested here, not as an argument, so that SQLite-only runs need no Node.js.
        server = running = request.getfixturevalue("cosmos")

        def build() -> MemoryStore:
            return cosmos_store_on(running, database)

    else:

        def build() -> MemoryStore:
            return SQLiteStore(tmp_path / "memory.db")

    opened: list[MemoryStore] = []

    async def open_store(*, reopen: bool = False) -> MemoryStore:
        store = build()
        await store.open()
        opened.append(store)
        return store

    yield open_store
    for store in opened:
        await store.close()
    if server is not None:
        await drop_database(server, database)
