"""The Azure Cosmos DB store, split by job: ids, requests and retries, provisioning, the store."""

from memory.cosmos.ids import (
    ARCHIVE_ITEM_PREFIX,
    MAX_ID_LENGTH,
    PARTITION_KEY_PATH,
    RECORD_ITEM_ID,
    archive_item_id,
    cosmos_safe,
    partition_key_for,
)
from memory.cosmos.provisioning import INDEXING_POLICY
from memory.cosmos.requests import CosmosRetryPolicy
from memory.cosmos.store import CLOSE_GRACE_SECONDS, CosmosStore

__all__ = [
    "ARCHIVE_ITEM_PREFIX",
    "CLOSE_GRACE_SECONDS",
    "INDEXING_POLICY",
    "MAX_ID_LENGTH",
    "PARTITION_KEY_PATH",
    "RECORD_ITEM_ID",
    "CosmosRetryPolicy",
    "CosmosStore",
    "archive_item_id",
    "cosmos_safe",
    "partition_key_for",
]
