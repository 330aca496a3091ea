"""Connecting to Cosmos DB and checking the container: the client and credential lifecycle,
and provisioning where the operator allows it (local development).

One `CosmosClient` per store. Without an account key the store uses Entra ID: a credential the
caller gives (and closes), or a DefaultAzureCredential of its own (managed identity in Azure,
the developer's `az login` locally), closed with the client.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

from azure.core.credentials_async import AsyncTokenCredential
from azure.core.pipeline.transport import AioHttpTransport
from azure.cosmos import PartitionKey
from azure.cosmos.aio import ContainerProxy, CosmosClient, DatabaseProxy
from azure.cosmos.exceptions import CosmosHttpResponseError
from azure.identity.aio import DefaultAzureCredential

from memory.cosmos.ids import PARTITION_KEY_PATH
from memory.cosmos.requests import NOT_FOUND, CosmosRequests
from memory.errors import StoreNotReady

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
"""Index only what queries filter or sort on: message texts and records cost no index writes.
The deployment's container adds Cosmos DB's full-text index on message texts
(`FULL_TEXT_PATH`); a container made here has none, since an account without the feature
refuses a container that asks for it."""

FULL_TEXT_PATH = "/content"
"""Where archive items keep a message's text, which Cosmos DB's full-text search reads."""

VECTOR_PATH = "/embedding"
"""Where archive items keep a message's embedding as a list of numbers, on a container with
Cosmos DB's vector search (elsewhere it is kept compactly, as base64, in `vector`)."""


@dataclass(frozen=True, slots=True)
class Connected:
    """An open client's container, what it offers, and what closes the client."""

    resources: AsyncExitStack
    container: ContainerProxy
    full_text: bool
    """Whether the container has Cosmos DB's full-text search on message texts
    (`has_full_text`)."""
    vector_dimensions: int | None
    """The dimensions of the embeddings the container's vector search takes, if it has one
    (`vector_dimensions`)."""


@dataclass(frozen=True, slots=True)
class ContainerSpec:
    """Where memory lives, and what the store may do about it being missing."""

    database: str
    container: str
    ttl_seconds: int | None
    """A container made here expires items after this long (None: only where items say so)."""
    create_if_missing: bool


async def connect(
    requests: CosmosRequests,
    spec: ContainerSpec,
    *,
    key: str | None,
    credential: AsyncTokenCredential | None,
    verify_tls: bool,
    trust_env: bool,
) -> Connected:
    """An open client's container, checked (and created where allowed), and what closes it."""
    resources = AsyncExitStack()
    try:
        auth: str | AsyncTokenCredential
        if key:
            auth = key
        elif credential is not None:
            auth = credential
        else:
            owned = DefaultAzureCredential()
            resources.push_async_callback(owned.close)
            auth = owned
        client = CosmosClient(
            requests.endpoint,
            auth,
            connection_verify=verify_tls,
            no_response_on_write=True,
            # Trusting the environment makes aiohttp look for ~/.netrc on a worker thread
            # before every request: only worth it when a proxy is to be found there.
            transport=AioHttpTransport(use_env_settings=trust_env),
            **requests.retry.client_options(),
        )
        # Registered before entering: a client whose first request fails keeps its HTTP
        # session open unless it is closed.
        resources.push_async_callback(client.close)
        await requests("connect to the account", client.__aenter__, at_start=True)
        container, properties = await _prepare(requests, spec, client)
    except BaseException:
        await resources.aclose()
        raise
    return Connected(resources, container, has_full_text(properties), vector_dimensions(properties))


async def _prepare(
    requests: CosmosRequests, spec: ContainerSpec, client: CosmosClient
) -> tuple[ContainerProxy, dict[str, Any]]:
    """Check that the database and container exist and suit the store (create them where
    allowed); the container and its properties."""
    where = f"at {requests.endpoint}"
    database: DatabaseProxy = client.get_database_client(spec.database)
    if await _missing(requests, "read the database", database.read):
        if not spec.create_if_missing:
            raise StoreNotReady(
                f"the Cosmos DB database '{spec.database}' does not exist {where}: "
                "create it with the deployment (or fix COSMOS_DATABASE), or set "
                "COSMOS_CREATE_IF_MISSING=true to let the bot create it (local development)"
            )
        database = await requests(
            "create the database",
            lambda: client.create_database_if_not_exists(spec.database),
            at_start=True,
        )
    container = database.get_container_client(spec.container)
    if await _missing(requests, "read the container", container.read):
        if not spec.create_if_missing:
            raise StoreNotReady(
                f"the Cosmos DB container '{spec.container}' does not exist in database "
                f"'{spec.database}' {where}: create it with the deployment (partition key "
                f"{PARTITION_KEY_PATH}, time to live on), or fix COSMOS_CONTAINER, or set "
                "COSMOS_CREATE_IF_MISSING=true to let the bot create it (local development)"
            )
        container = await requests(
            "create the container",
            lambda: database.create_container_if_not_exists(
                id=spec.container,
                partition_key=PartitionKey(path=PARTITION_KEY_PATH),
                default_ttl=spec.ttl_seconds or -1,
                indexing_policy=INDEXING_POLICY,
            ),
            at_start=True,
        )
    properties = await requests("read the container", container.read, at_start=True)
    _check_container(spec, properties)
    return container, properties


def _check_container(spec: ContainerSpec, properties: dict[str, Any]) -> None:
    """Refuse a container that would misplace items or keep them forever."""
    name = f"the Cosmos DB container '{spec.database}/{spec.container}'"
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


def has_full_text(properties: dict[str, Any]) -> bool:
    """Whether a container's properties give message texts Cosmos DB's full-text search: a
    full-text policy and a full-text index on FULL_TEXT_PATH. A container can have them only
    on an account with the feature, so they also say that the account has it."""

    declared = _entries(properties.get("fullTextPolicy"), "fullTextPaths")
    indexed = _entries(properties.get("indexingPolicy"), "fullTextIndexes")
    return FULL_TEXT_PATH in declared and FULL_TEXT_PATH in indexed


def vector_dimensions(properties: dict[str, Any]) -> int | None:
    """The dimensions of the embeddings a container's vector search takes at VECTOR_PATH (its
    vector embedding policy, float32, with a vector index there), or None. Fixed when the
    container was made; embeddings of other dimensions are kept and compared as elsewhere."""
    indexed = _entries(properties.get("indexingPolicy"), "vectorIndexes")
    declared = _entries(properties.get("vectorEmbeddingPolicy"), "vectorEmbeddings")
    entry = declared.get(VECTOR_PATH)
    if VECTOR_PATH not in indexed or entry is None or entry.get("dataType") != "float32":
        return None
    dimensions = entry.get("dimensions")
    return dimensions if isinstance(dimensions, int) and dimensions > 0 else None


def _entries(policy: Any, name: str) -> dict[object, dict[str, Any]]:
    """A policy's list `name` of {"path": ...} entries, by path (nothing where malformed)."""
    listed = policy.get(name) if isinstance(policy, dict) else None
    if not isinstance(listed, list):
        return {}
    return {entry.get("path"): entry for entry in listed if isinstance(entry, dict)}


async def _missing(
    requests: CosmosRequests, action: str, read: Callable[[], Awaitable[Any]]
) -> bool:
    try:
        await requests(action, read, expected={NOT_FOUND}, at_start=True)
    except CosmosHttpResponseError:
        return True
    return False
