"""The Cosmos DB store's own promises, beyond the shared suite: retries, start-up checks, item
layout, safe ids, races and what a turn costs, against the local Cosmos DB API server."""

from __future__ import annotations

import asyncio
import gc
import logging
import socket
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from azure.core.credentials import AccessToken
from azure.core.exceptions import ClientAuthenticationError
from azure.cosmos import PartitionKey
from azure.cosmos.aio import ContainerProxy
from hypothesis import given, settings
from hypothesis import strategies as st

import memory.cosmos.provisioning
import memory.cosmos.store
from memory import ConversationMemory, Message
from memory.cosmos import (
    ARCHIVE_ITEM_PREFIX,
    MAX_ID_LENGTH,
    RECORD_ITEM_ID,
    CosmosRetryPolicy,
    CosmosStore,
    archive_item_id,
    cosmos_safe,
    partition_key_for,
)
from memory.cosmos.provisioning import INDEXING_POLICY, has_full_text, vector_dimensions
from memory.errors import StoreConflict, StoreError, StoreNotReady, StoreUnavailable
from memory.recall import query_terms
from memory.terms import terms_of
from tests.conftest import conversation_memory, cosmos_client, cosmos_store_on
from tests.memory.test_store_behaviour import AWKWARD_KEYS
from tests.support.cosmos_server import CosmosServer, ServedRequest

pytestmark = pytest.mark.integration

FORBIDDEN_IN_IDS = set("/\\?#%")

QUICK = CosmosRetryPolicy(
    throttle_retries=2,
    throttle_wait_seconds=1,
    connection_retries=1,
    connection_backoff_seconds=0.05,
    read_timeout_seconds=5,
    transient_attempts=3,
    transient_backoff_seconds=0.05,
    write_attempts=4,
    conflict_backoff_seconds=0.01,
)
"""Short retries, so that tests of giving up finish in a few seconds."""


@pytest.fixture
async def store(cosmos: CosmosServer, cosmos_database: str) -> AsyncIterator[CosmosStore]:
    store = cosmos_store_on(cosmos, cosmos_database, retry=QUICK)
    await store.open()
    cosmos.clear_requests()
    yield store
    await store.close()


@pytest.fixture
async def raw(cosmos: CosmosServer, cosmos_database: str) -> AsyncIterator[ContainerProxy]:
    """The test database's memory container, through the SDK directly, to inspect items."""
    async with cosmos_client(cosmos) as client:
        database = await client.create_database_if_not_exists(cosmos_database)
        yield await database.create_container_if_not_exists(
            "memory", PartitionKey("/pk"), default_ttl=60
        )


def memory_on(store: CosmosStore, max_messages: int = 20) -> ConversationMemory:
    return conversation_memory(store, system_prompt="system", max_messages=max_messages)


def shape(requests: list[ServedRequest]) -> list[tuple[str, str, int]]:
    """Requests as (method, what they touched, status), without the database's name."""
    return [(r["method"], r["path"].split("/colls/", 1)[-1], r["status"]) for r in requests]


def unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


# --------------------------------------------------------------------------- throttling, outages


async def test_throttled_requests_are_retried_until_they_succeed(
    cosmos: CosmosServer, cosmos_database: str
) -> None:
    store = cosmos_store_on(cosmos, cosmos_database)  # the production retry policy
    await store.open()
    cosmos.clear_requests()
    cosmos.inject(status=429, count=5, retry_after_ms=50)
    await memory_on(store).remember("k", "still here?", "yes")
    statuses = [r["status"] for r in cosmos.requests()]
    assert statuses[:5] == [429] * 5
    assert [m.content for m in (await store.load("k")).messages] == ["still here?", "yes"]
    await store.close()


async def test_throttling_that_does_not_end_is_store_unavailable(
    cosmos: CosmosServer, store: CosmosStore
) -> None:
    cosmos.inject(status=429, retry_after_ms=20)
    with pytest.raises(StoreUnavailable, match=r"429.*throughput"):
        await store.load("k")


@pytest.mark.parametrize("status", [408, 449, 503])
async def test_transient_statuses_on_writes_are_retried(
    cosmos: CosmosServer, store: CosmosStore, status: int
) -> None:
    cosmos.inject(status=status, count=2, method="POST", path="/docs")
    await memory_on(store).remember("k", "saved despite it")
    assert [m.content for m in (await store.load("k")).messages] == ["saved despite it"]
    assert [r["status"] for r in cosmos.requests()].count(status) == 2


async def test_reset_connections_are_retried(cosmos: CosmosServer, store: CosmosStore) -> None:
    cosmos.inject(reset=True, count=2)
    await memory_on(store).remember("k", "through a flaky network")
    assert [m.content for m in (await store.load("k")).messages] == ["through a flaky network"]


@pytest.mark.parametrize("fault", [{"status": 503}, {"reset": True}], ids=["503", "reset"])
async def test_an_outage_is_store_unavailable_within_seconds(
    cosmos: CosmosServer, store: CosmosStore, fault: dict[str, Any]
) -> None:
    await memory_on(store).remember("k", "before the outage")
    cosmos.inject(**fault)
    started = time.monotonic()
    with pytest.raises(StoreUnavailable) as raised:
        await store.load("k")
    with pytest.raises(StoreUnavailable):
        await memory_on(store).remember("k", "during the outage")
    assert time.monotonic() - started < 15
    assert cosmos.key not in str(raised.value)

    cosmos.clear_faults()
    assert [m.content for m in (await store.load("k")).messages] == ["before the outage"]


async def test_an_unreachable_account_at_start_up_is_store_unavailable_and_leaks_nothing(
    cosmos: CosmosServer,
) -> None:
    store = CosmosStore(
        f"https://127.0.0.1:{unused_port()}/",
        key=cosmos.key,
        database="memorybot",
        container="memory",
        verify_tls=False,
        retry=QUICK,
    )
    with pytest.raises(StoreUnavailable, match="COSMOS_ENDPOINT"):
        await store.open()
    await store.close()
    gc.collect()  # an unclosed aiohttp session would warn here, and warnings are errors


# --------------------------------------------------------------------------- start-up checks


async def test_a_missing_database_is_named_with_the_fix(
    cosmos: CosmosServer, cosmos_database: str
) -> None:
    store = cosmos_store_on(cosmos, cosmos_database, create_if_missing=False)
    with pytest.raises(StoreNotReady) as raised:
        await store.open()
    message = str(raised.value)
    assert f"database '{cosmos_database}' does not exist" in message
    assert "COSMOS_CREATE_IF_MISSING=true" in message
    await store.close()


async def test_a_missing_container_is_named_with_the_fix(
    cosmos: CosmosServer, cosmos_database: str
) -> None:
    async with cosmos_client(cosmos) as client:
        await client.create_database(cosmos_database)
    store = cosmos_store_on(cosmos, cosmos_database, container="chats", create_if_missing=False)
    with pytest.raises(StoreNotReady) as raised:
        await store.open()
    message = str(raised.value)
    assert "container 'chats' does not exist" in message
    assert "COSMOS_CREATE_IF_MISSING=true" in message
    assert "/pk" in message


async def test_create_if_missing_creates_a_container_partitioned_by_pk_with_ttl_on(
    cosmos: CosmosServer, cosmos_database: str
) -> None:
    store = cosmos_store_on(cosmos, cosmos_database, ttl_seconds=3600)
    await store.open()
    await store.close()
    async with cosmos_client(cosmos) as client:
        properties = await (
            client.get_database_client(cosmos_database).get_container_client("memory").read()
        )
    assert properties["partitionKey"]["paths"] == ["/pk"]
    assert properties["defaultTtl"] == 3600


@pytest.mark.parametrize(
    ("partition_key", "default_ttl", "complaint"),
    [("/id", 60, "partitioned by"), ("/pk", None, "time to live switched off")],
)
async def test_a_container_that_does_not_suit_memory_is_refused(
    cosmos: CosmosServer,
    cosmos_database: str,
    partition_key: str,
    default_ttl: int | None,
    complaint: str,
) -> None:
    async with cosmos_client(cosmos) as client:
        database = await client.create_database(cosmos_database)
        await database.create_container(
            "memory", PartitionKey(partition_key), default_ttl=default_ttl
        )
    store = cosmos_store_on(cosmos, cosmos_database)
    with pytest.raises(StoreNotReady, match=complaint):
        await store.open()


# --------------------------------------------------------------------------- authentication


class FakeCredential:
    """An Entra ID credential: hands out a token, or fails as a missing identity does."""

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.scopes: list[str] = []
        self.closed = False

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.scopes.extend(scopes)
        if self.fail:
            raise ClientAuthenticationError("no managed identity here")
        return AccessToken("token", int(time.time()) + 3600)

    async def close(self) -> None:
        self.closed = True

    async def __aenter__(self) -> FakeCredential:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


async def test_without_a_key_the_store_uses_entra_id(
    cosmos: CosmosServer, cosmos_database: str
) -> None:
    credential = FakeCredential()
    store = CosmosStore(
        cosmos.endpoint,
        key=None,
        database=cosmos_database,
        container="memory",
        verify_tls=False,
        create_if_missing=True,
        credential=credential,
    )
    await store.open()
    await memory_on(store).remember("k", "hello")
    await store.close()
    assert credential.scopes
    assert not credential.closed  # handed in, so the caller closes it
    assert store.describe().endswith(f"{cosmos_database}/memory, Entra ID)")


async def test_a_credential_the_store_made_is_closed_with_it(
    cosmos: CosmosServer, cosmos_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[FakeCredential] = []

    def default_credential() -> FakeCredential:
        made.append(FakeCredential())
        return made[-1]

    monkeypatch.setattr(memory.cosmos.provisioning, "DefaultAzureCredential", default_credential)
    store = CosmosStore(
        cosmos.endpoint,
        key=None,
        database=cosmos_database,
        container="memory",
        verify_tls=False,
        create_if_missing=True,
    )
    await store.open()
    await store.close()
    assert [credential.closed for credential in made] == [True]


async def test_no_entra_id_token_is_store_not_ready_saying_what_to_set(
    cosmos: CosmosServer, cosmos_database: str
) -> None:
    credential = FakeCredential(fail=True)
    store = CosmosStore(
        cosmos.endpoint,
        key=None,
        database=cosmos_database,
        container="memory",
        verify_tls=False,
        credential=credential,
        retry=QUICK,
    )
    with pytest.raises(StoreNotReady, match=r"COSMOS_KEY.*managed identity"):
        await store.open()
    await store.close()


def test_the_description_names_the_account_and_never_the_key(cosmos: CosmosServer) -> None:
    store = cosmos_store_on(cosmos, "memorybot", container="memory")
    assert store.describe() == f"cosmos ({cosmos.endpoint}, memorybot/memory, key auth)"
    assert cosmos.key not in store.describe()


# --------------------------------------------------------------------------- item layout


async def test_items_carry_their_partition_key_and_time_to_live(
    cosmos: CosmosServer, cosmos_database: str, raw: ContainerProxy
) -> None:
    store = cosmos_store_on(cosmos, cosmos_database, ttl_seconds=1234)
    await store.open()
    key = "user/tenant/person"
    await memory_on(store).remember(key, "I drink green tea", "Noted")
    await store.close()

    partition = partition_key_for(key)
    items = [
        item
        async for item in raw.query_items(
            "SELECT * FROM c WHERE c.pk = @pk",
            parameters=[{"name": "@pk", "value": partition}],
            partition_key=partition,
        )
    ]
    assert {item["kind"] for item in items} == {"record", "message"}
    assert all(item["pk"] == partition and item["ttl"] == 1234 for item in items)
    record = next(item for item in items if item["kind"] == "record")
    assert record["id"] == RECORD_ITEM_ID
    assert record["key"] == key
    messages = [item for item in items if item["kind"] == "message"]
    assert sorted(item["content"] for item in messages) == ["I drink green tea", "Noted"]
    assert all(item["id"].startswith(ARCHIVE_ITEM_PREFIX) for item in messages)
    assert all(item["terms"] == terms_of(item["content"]) for item in messages)


async def test_every_write_renews_the_time_to_live(
    cosmos: CosmosServer, store: CosmosStore, raw: ContainerProxy
) -> None:
    memory = memory_on(store)
    await memory.remember("k", "first")
    first = await raw.read_item(RECORD_ITEM_ID, partition_key=partition_key_for("k"))
    await memory.remember("k", "second")
    second = await raw.read_item(RECORD_ITEM_ID, partition_key=partition_key_for("k"))
    assert second["ttl"] == first["ttl"] == store.ttl_seconds
    assert second["_etag"] != first["_etag"]


async def test_every_person_has_a_record_with_the_same_id_in_their_own_partition(
    store: CosmosStore, raw: ContainerProxy
) -> None:
    memory = memory_on(store)
    await memory.remember("alice", "alice's")
    await memory.remember("bob", "bob's")
    alice = await raw.read_item(RECORD_ITEM_ID, partition_key=partition_key_for("alice"))
    bob = await raw.read_item(RECORD_ITEM_ID, partition_key=partition_key_for("bob"))
    assert (alice["id"], bob["id"]) == (RECORD_ITEM_ID, RECORD_ITEM_ID)
    assert alice["messages"][0]["content"] == "alice's"
    assert bob["messages"][0]["content"] == "bob's"


def test_awkward_and_long_keys_become_distinct_safe_ids() -> None:
    keys = [*AWKWARD_KEYS, "", "%2F", "_2F", "~", "a" * 255, "a" * 256, "é" * 1000]
    forms = [partition_key_for(key) for key in keys]
    assert len(set(forms)) == len(keys)
    for form in forms:
        assert 0 < len(form) <= MAX_ID_LENGTH
        assert not FORBIDDEN_IN_IDS & set(form)
        assert form == form.strip()
        assert "." not in form
    message = Message("user", "x", datetime.now(UTC), id="id/with?odd#chars" * 40)
    assert len(archive_item_id(message)) <= MAX_ID_LENGTH
    assert not FORBIDDEN_IN_IDS & set(archive_item_id(message))


@settings(deadline=None)
@given(st.text(), st.text())
def test_two_keys_never_share_a_partition(first: str, second: str) -> None:
    if first != second:
        assert partition_key_for(first) != partition_key_for(second)
    form = cosmos_safe(first)
    assert 0 < len(form) <= MAX_ID_LENGTH
    assert not FORBIDDEN_IN_IDS & set(form)


# --------------------------------------------------------------------------- cost and races


async def test_a_turn_costs_one_point_read_and_one_write(
    cosmos: CosmosServer, store: CosmosStore
) -> None:
    memory = memory_on(store)
    await memory.remember("k", "first turn", "ok")
    cosmos.clear_requests()
    await memory.remember("k", "second turn", "ok")
    assert shape(cosmos.requests()) == [
        ("GET", f"memory/docs/{RECORD_ITEM_ID}/", 200),
        ("POST", "memory/docs/", 200),  # one transactional batch: record and archive
    ]
    cosmos.clear_requests()
    await store.load("k")
    assert shape(cosmos.requests()) == [("GET", f"memory/docs/{RECORD_ITEM_ID}/", 200)]


async def test_a_whole_turn_is_one_query_for_record_and_recall_and_one_write(
    cosmos: CosmosServer, store: CosmosStore
) -> None:
    memory = memory_on(store)
    await memory.remember("k", "I work on Project Falcon", "ok")
    cosmos.clear_requests()
    prompt = await memory.prompt_for("k", "what about Falcon?")
    assert shape(cosmos.requests()) == [
        ("POST", "memory/docs/", 200),  # record and recall, one query in the person's partition
    ]
    assert [m["content"] for m in prompt[1:]] == [
        "I work on Project Falcon",
        "ok",
        "what about Falcon?",
    ]
    cosmos.clear_requests()
    await memory.remember("k", "what about Falcon?", "it is on track")
    assert shape(cosmos.requests()) == [
        ("POST", "memory/docs/", 200),  # one transactional batch from the read above
    ]


async def test_a_record_the_query_does_not_return_is_read_on_its_own(
    cosmos: CosmosServer, cosmos_database: str, store: CosmosStore
) -> None:
    memory = memory_on(store)
    await memory.remember("k", "I work on Project Falcon", "ok")
    # As a record written before records carried `seq`: the query's order leaves it out.
    async with cosmos_client(cosmos) as client:
        container = client.get_database_client(cosmos_database).get_container_client("memory")
        item = await container.read_item(RECORD_ITEM_ID, partition_key=partition_key_for("k"))
        unsequenced = {k: v for k, v in item.items() if k != "seq"}
        await container.replace_item(RECORD_ITEM_ID, unsequenced)
    cosmos.clear_requests()
    record, matches = await store.load_with_matches("k", ["falcon"], 5)
    assert [m.content for m in record.messages] == ["I work on Project Falcon", "ok"]
    assert [m.content for m in matches] == ["I work on Project Falcon"]
    assert [method for method, _, _ in shape(cosmos.requests())] == ["POST", "GET"]
    await memory.remember("k", "and Project Kite", "noted")  # the save still starts from it
    assert (await store.load("k")).message_count == 4


async def test_a_first_turn_creates_the_record_in_one_write(
    cosmos: CosmosServer, store: CosmosStore
) -> None:
    await memory_on(store).remember("new person", "hello")
    assert shape(cosmos.requests()) == [
        ("GET", f"memory/docs/{RECORD_ITEM_ID}/", 404),
        ("POST", "memory/docs/", 200),
    ]


async def test_two_stores_racing_on_one_key_lose_nothing(
    cosmos: CosmosServer, cosmos_database: str
) -> None:
    first = cosmos_store_on(cosmos, cosmos_database)
    second = cosmos_store_on(cosmos, cosmos_database)
    await first.open()
    await second.open()
    memories = [memory_on(first, 100), memory_on(second, 100)]
    await asyncio.gather(*(memories[n % 2].remember("k", f"q{n}", f"a{n}") for n in range(20)))
    contents = [m.content for m in (await first.load("k")).messages]
    assert len(contents) == 40
    for n in range(20):
        assert contents.index(f"a{n}") == contents.index(f"q{n}") + 1
    archive = await second.archived("k", 100)
    assert sorted(m.content for m in archive) == sorted(contents)
    await first.close()
    await second.close()


@pytest.mark.parametrize("existing", [False, True], ids=["create-409", "replace-412"])
async def test_a_write_that_loses_a_race_is_redone_on_the_newer_record(
    cosmos: CosmosServer, cosmos_database: str, existing: bool
) -> None:
    slow = cosmos_store_on(cosmos, cosmos_database)
    fast = cosmos_store_on(cosmos, cosmos_database)
    await slow.open()
    await fast.open()
    if existing:
        await memory_on(fast).remember("k", "already here")
    cosmos.clear_requests()
    # The slow store's write reaches the server only after the fast store has written.
    cosmos.inject(delay_ms=500, count=1, method="POST", path="/docs")
    slow_turn = asyncio.create_task(memory_on(slow).remember("k", "slow"))
    await asyncio.sleep(0.2)
    await memory_on(fast).remember("k", "fast")
    await slow_turn

    contents = [m.content for m in (await slow.load("k")).messages]
    assert contents == ["already here", "fast", "slow"][0 if existing else 1 :]
    writes = [r for r in cosmos.requests() if r["method"] == "POST"]
    assert len(writes) == 3  # the slow store wrote twice
    await slow.close()
    await fast.close()


async def test_a_write_whose_answer_was_lost_is_not_applied_twice(
    cosmos: CosmosServer, store: CosmosStore
) -> None:
    memory = memory_on(store)
    await memory.remember("k", "one")
    cosmos.inject(drop=True, count=1, method="POST", path="/docs")
    await memory.remember("k", "two")
    assert [m.content for m in (await store.load("k")).messages] == ["one", "two"]
    assert -1 in [r["status"] for r in cosmos.requests()]


async def test_writers_that_keep_winning_end_in_store_conflict(
    cosmos: CosmosServer, store: CosmosStore
) -> None:
    await memory_on(store).remember("k", "one")
    cosmos.clear_requests()
    cosmos.inject(status=412, method="POST", path="/docs")
    with pytest.raises(StoreConflict, match="try again"):
        await memory_on(store).remember("k", "two")
    writes = [r for r in cosmos.requests() if r["method"] == "POST"]
    assert len(writes) == QUICK.write_attempts


# --------------------------------------------------------------------------- archive


async def test_recall_prefers_messages_holding_the_rarer_words(store: CosmosStore) -> None:
    memory = memory_on(store, max_messages=2)
    await memory.remember("k", "My manager is Grace Hopper")
    for n in range(6):
        await memory.remember("k", f"The manager meeting number {n} went fine")
    found = await store.search("k", query_terms("Who is Grace, my manager?"), 3)
    assert found[0].content == "My manager is Grace Hopper"
    assert len(found) == 3


async def test_recall_prefers_a_short_message_to_newer_long_ones_holding_the_same_word(
    store: CosmosStore,
) -> None:
    memory = memory_on(store, max_messages=2)
    await memory.remember("k", "We decided to launch on March 3rd.")
    for n in range(4):
        await memory.remember(
            "k",
            f"Draft {n}: summarise the risks of moving the launch, the budget, the hiring plan, "
            "the vendor contracts and the office move for the finance review.",
        )
    found = await store.search("k", query_terms("When did we decide to launch?"), 2)
    assert found[0].content == "We decided to launch on March 3rd."


# --------------------------------------------------------------------------- full-text search

FULL_TEXT_POLICY = {
    "defaultLanguage": "en-US",
    "fullTextPaths": [{"path": "/content", "language": "en-US"}],
}
INDEXED_FOR_FULL_TEXT = {**INDEXING_POLICY, "fullTextIndexes": [{"path": "/content"}]}


@pytest.mark.parametrize(
    ("properties", "offered"),
    [
        ({"fullTextPolicy": FULL_TEXT_POLICY, "indexingPolicy": INDEXED_FOR_FULL_TEXT}, True),
        ({"indexingPolicy": INDEXED_FOR_FULL_TEXT}, False),  # no policy: the account refuses
        ({"fullTextPolicy": FULL_TEXT_POLICY, "indexingPolicy": INDEXING_POLICY}, False),
        (  # full text on another property
            {
                "fullTextPolicy": {"fullTextPaths": [{"path": "/text"}]},
                "indexingPolicy": {"fullTextIndexes": [{"path": "/text"}]},
            },
            False,
        ),
        ({"fullTextPolicy": "on", "indexingPolicy": {"fullTextIndexes": ["/content"]}}, False),
        ({}, False),
    ],
)
def test_full_text_search_is_used_where_the_container_has_its_policy_and_index(
    properties: dict[str, Any], offered: bool
) -> None:
    assert has_full_text(properties) is offered


async def store_on_a_container(
    cosmos: CosmosServer, database_name: str, **policies: Any
) -> CosmosStore:
    """A store on a container made as the deployment makes it, with `policies` (its indexing
    policy and the full-text or vector policy a search needs)."""
    async with cosmos_client(cosmos) as client:
        database = await client.create_database(database_name)
        await database.create_container("memory", PartitionKey("/pk"), default_ttl=60, **policies)
    store = cosmos_store_on(cosmos, database_name, retry=QUICK)
    await store.open()
    return store


async def full_text_store(cosmos: CosmosServer, database_name: str) -> CosmosStore:
    return await store_on_a_container(
        cosmos,
        database_name,
        indexing_policy=INDEXED_FOR_FULL_TEXT,
        full_text_policy=FULL_TEXT_POLICY,
    )


async def test_a_search_cut_at_its_bound_asks_full_text_for_older_matches_and_rests_if_refused(
    cosmos: CosmosServer,
    cosmos_database: str,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The test server keeps a container's full-text policy but cannot run FullTextScore: it
    refuses the query with 400, as an account without the feature does. The turn goes on with
    the search by terms, and the store leaves full-text search alone for a while."""
    store = await full_text_store(cosmos, cosmos_database)
    try:
        assert store.describe().endswith(", full-text search)")
        archive = [Message("user", f"the garden needs water, day {n}") for n in range(120)]
        await store.update("k", lambda record: record, archive=archive)
        cosmos.clear_requests()
        with caplog.at_level(logging.WARNING, logger="memory.cosmos.store"):
            found = await store.search("k", query_terms("watering the garden"), 5)
        assert len(found) == 5
        assert [(method, status) for method, _, status in shape(cosmos.requests())] == [
            ("POST", 200),  # the newest 100 matches by terms: as many as it reads
            ("POST", 400),  # Cosmos DB's BM25 over the whole archive, refused, not retried
        ]
        refusals = [r.getMessage() for r in caplog.records if "full-text" in r.getMessage()]
        assert len(refusals) == 1
        assert "HTTP 400" in refusals[0]
        assert "garden" not in refusals[0]  # no chat text in logs
        cosmos.clear_requests()
        _, matches = await store.load_with_matches("k", ["the garden"], 5)
        assert len(matches) == 5
        assert [status for _, _, status in shape(cosmos.requests())] == [200]  # left alone
        later = time.monotonic() + memory.cosmos.store.COOL_DOWN_SECONDS + 1
        monkeypatch.setattr(memory.cosmos.store, "_monotonic", lambda: later)
        cosmos.clear_requests()
        await store.load_with_matches("k", ["the garden"], 5)
        assert [status for _, _, status in shape(cosmos.requests())] == [200, 400]  # asked again
    finally:
        await store.close()


async def test_a_search_within_its_bound_needs_no_full_text_search(
    cosmos: CosmosServer, cosmos_database: str
) -> None:
    store = await full_text_store(cosmos, cosmos_database)
    try:
        archive = [Message("user", f"the garden needs water, day {n}") for n in range(20)]
        await store.update("k", lambda record: record, archive=archive)
        cosmos.clear_requests()
        assert len(await store.search("k", query_terms("the garden"), 5)) == 5
        assert [status for _, _, status in shape(cosmos.requests())] == [200]
        assert store.describe().endswith(", full-text search)")  # never refused
    finally:
        await store.close()


async def test_a_container_without_full_text_search_is_searched_by_terms_alone(
    cosmos: CosmosServer, store: CosmosStore
) -> None:
    assert "full-text" not in store.describe()
    archive = [Message("user", f"the garden needs water, day {n}") for n in range(120)]
    await store.update("k", lambda record: record, archive=archive)
    cosmos.clear_requests()
    assert len(await store.search("k", query_terms("the garden"), 5)) == 5
    assert [status for _, _, status in shape(cosmos.requests())] == [200]


async def test_the_archive_lists_a_turn_in_the_order_it_was_said(store: CosmosStore) -> None:
    memory = memory_on(store)
    at = datetime(2025, 1, 1, tzinfo=UTC)
    await memory.remember("k", "question", "answer", at=at)
    await memory.remember("k", "next question", "next answer", at=at)
    assert [m.content for m in await store.archived("k", 10)] == [
        "question",
        "answer",
        "next question",
        "next answer",
    ]
    assert [m.content for m in await store.archived("k", 2)] == ["next question", "next answer"]


async def test_archiving_the_same_message_twice_keeps_one_copy(store: CosmosStore) -> None:
    message = Message("user", "only once please")
    for _ in range(2):
        await store.update("k", lambda record: record, archive=[message])
    assert [m.id for m in await store.archived("k", 10)] == [message.id]


async def test_more_messages_than_a_batch_holds_are_all_archived(store: CosmosStore) -> None:
    messages = [Message("user", f"bulk message {n}") for n in range(150)]
    await store.update("k", lambda record: record, archive=messages)
    assert len(await store.archived("k", 1000)) == 150


async def test_an_export_read_in_pages_reads_messages_sharing_a_seq_once_each(
    store: CosmosStore,
) -> None:
    """Messages said in the same millisecond and archived by different writes can share a
    `seq`; pages are cut by `seq`, so one page can end among them. Each is read once."""
    store.EXPORT_PAGE = 101  # odd: pages end between two messages of one `seq`
    at = datetime(2025, 1, 1, tzinfo=UTC)
    written: list[str] = []
    for write in range(2):  # `seq` numbers archive items modulo 1,000: every seq twice
        messages = [Message("user", f"w{write} m{n}", at=at) for n in range(1000)]
        written += [m.id for m in messages]
        await store.update("k", lambda record: record, archive=messages)
    exported = [m.id for m in await store.archived("k")]
    assert len(exported) == len(set(exported)) == 2000
    assert set(exported) == set(written)
    newest = [m.id for m in await store.archived("k", 203)]
    assert len(newest) == len(set(newest)) == 203
    assert set(newest) <= set(written)


async def test_a_store_that_is_not_open_says_so(cosmos: CosmosServer) -> None:
    store = cosmos_store_on(cosmos, "never-opened")
    with pytest.raises(StoreError, match="not open"):
        await store.load("k")


async def test_embeddings_are_kept_compactly_and_the_nearest_come_first(
    store: CosmosStore, raw: ContainerProxy
) -> None:
    messages = [Message("user", text) for text in ("cats", "dogs", "tax forms")]
    vectors = {
        messages[0].id: [1.0, 0.0, 0.0],
        messages[1].id: [0.8, 0.6, 0.0],
        messages[2].id: [0.0, 0.0, 1.0],
    }
    unembedded = Message("user", "no vector for me")
    await store.update("k", lambda record: record, archive=[*messages, unembedded], vectors=vectors)

    nearest = await store.nearest("k", [0.9, 0.1, 0.0], 2)
    assert [m.content for m in nearest] == ["cats", "dogs"]
    assert await store.nearest("k", [1.0, 0.0], 5) == []  # another model's dimensions
    item = await raw.read_item(archive_item_id(messages[0]), partition_key=partition_key_for("k"))
    assert isinstance(item["vector"], str)


VECTOR_POLICY = {
    "vectorEmbeddings": [
        {"path": "/embedding", "dataType": "float32", "distanceFunction": "cosine", "dimensions": 3}
    ]
}
INDEXED_FOR_VECTORS = {**INDEXING_POLICY, "vectorIndexes": [{"path": "/embedding", "type": "flat"}]}


@pytest.mark.parametrize(
    ("properties", "dimensions"),
    [
        ({"vectorEmbeddingPolicy": VECTOR_POLICY, "indexingPolicy": INDEXED_FOR_VECTORS}, 3),
        ({"vectorEmbeddingPolicy": VECTOR_POLICY, "indexingPolicy": INDEXING_POLICY}, None),
        ({"indexingPolicy": INDEXED_FOR_VECTORS}, None),
        (  # numbers the store does not write
            {
                "vectorEmbeddingPolicy": {
                    "vectorEmbeddings": [
                        {"path": "/embedding", "dataType": "int8", "dimensions": 3}
                    ]
                },
                "indexingPolicy": INDEXED_FOR_VECTORS,
            },
            None,
        ),
        (
            {
                "vectorEmbeddingPolicy": {
                    "vectorEmbeddings": [
                        {"path": "/embedding", "dataType": "float32", "dimensions": "3"}
                    ]
                },
                "indexingPolicy": INDEXED_FOR_VECTORS,
            },
            None,
        ),
        ({}, None),
    ],
)
def test_vector_search_is_used_where_the_container_has_its_policy_and_index(
    properties: dict[str, Any], dimensions: int | None
) -> None:
    assert vector_dimensions(properties) == dimensions


async def test_on_a_vector_search_container_embeddings_are_numbers_and_a_refusal_falls_back_once(
    cosmos: CosmosServer, cosmos_database: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The test server keeps a container's vector policy but cannot run VectorDistance: it
    refuses the query with 400. The store then compares the newest embeddings itself, those
    kept as numbers and those kept as base64 alike, and does not ask again."""
    store = await store_on_a_container(
        cosmos,
        cosmos_database,
        indexing_policy=INDEXED_FOR_VECTORS,
        vector_embedding_policy=VECTOR_POLICY,
    )
    async with cosmos_client(cosmos) as client:
        container = client.get_database_client(cosmos_database).get_container_client("memory")
        try:
            assert store.describe().endswith(", vector search (3 dimensions))")
            messages = [Message("user", text) for text in ("cats", "dogs", "tax forms")]
            vectors = {
                messages[0].id: [1.0, 0.0, 0.0],
                messages[1].id: [0.8, 0.6, 0.0],
                messages[2].id: [0.0, 0.0, 1.0],
            }
            other_model = Message("user", "another model's")
            await store.update(
                "k",
                lambda record: record,
                archive=[*messages, other_model],
                vectors={**vectors, other_model.id: [0.5, 0.5]},
            )
            partition = partition_key_for("k")
            kept = await container.read_item(archive_item_id(messages[1]), partition_key=partition)
            assert kept["embedding"] == [0.8, 0.6, 0.0]  # what the vector index reads
            assert "vector" not in kept
            other = await container.read_item(archive_item_id(other_model), partition_key=partition)
            assert isinstance(other["vector"], str)  # not the index's size: compact
            assert "embedding" not in other

            cosmos.clear_requests()
            with caplog.at_level(logging.WARNING, logger="memory.cosmos.store"):
                nearest = await store.nearest("k", [0.9, 0.1, 0.0], 2)
            assert [m.content for m in nearest] == ["cats", "dogs"]
            assert [status for _, _, status in shape(cosmos.requests())] == [400, 200]
            refusals = [r.getMessage() for r in caplog.records if "vector search" in r.getMessage()]
            assert len(refusals) == 1
            assert "HTTP 400" in refusals[0]
            # Refused or not, embeddings of its size are kept where the vector index reads them.
            later = Message("user", "birds")
            await store.update(
                "k", lambda record: record, archive=[later], vectors={later.id: [0.0, 1.0, 0.0]}
            )
            kept = await container.read_item(archive_item_id(later), partition_key=partition)
            assert kept["embedding"] == [0.0, 1.0, 0.0]

            cosmos.clear_requests()
            assert [m.content for m in await store.nearest("k", [0.1, 0.9, 0.0], 1)] == ["birds"]
            assert [status for _, _, status in shape(cosmos.requests())] == [200]
            assert [m.content for m in await store.nearest("k", [0.5, 0.5], 1)] == [
                "another model's"
            ]
        finally:
            await store.close()


async def test_one_persons_forget_and_export_ask_for_low_priority_and_turns_do_not(
    cosmos: CosmosServer, store: CosmosStore
) -> None:
    """On an account with priority-based execution, a big forget or export is throttled before
    everyone else's turns when the container's throughput runs out."""
    memory = memory_on(store)
    for n in range(3):
        await memory.remember("k", f"turn {n}", "ok")
    cosmos.clear_requests()
    await memory.prompt_for("k", "what about turn 1?")
    await memory.remember("k", "what about turn 1?", "ok")
    assert {r["priority"] for r in cosmos.requests()} == {""}
    cosmos.clear_requests()
    await store.archived("k", 100)
    assert {r["priority"] for r in cosmos.requests()} == {"Low"}
    cosmos.clear_requests()
    await store.delete("k")
    forget = cosmos.requests()
    assert len(forget) == 1 + 1 + 8  # the record, the list, the 8 archived messages
    assert [r["priority"] for r in forget] == ["Low"] * 10
