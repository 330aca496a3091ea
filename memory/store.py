"""The one storage interface every backend implements (SQLite, Azure Cosmos DB).

Small on purpose: stores move whole records and archived messages, and know nothing of trimming,
summaries or prompts. `update` is a compare-and-swap loop, so the merge policy lives in one place
(the caller's function) and each backend only has to make the write conditional.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from memory.records import ConversationRecord, Message

Mutation = Callable[[ConversationRecord], ConversationRecord]


class MemoryStore(Protocol):
    async def open(self) -> None:
        """Connect and check that the storage exists (creating it only where allowed)."""

    async def load(self, key: str) -> ConversationRecord:
        """The record for `key`, or an empty one if nothing is stored."""

    async def update(
        self,
        key: str,
        mutate: Mutation,
        *,
        archive: Sequence[Message] = (),
        vectors: Mapping[str, Sequence[float]] | None = None,
    ) -> ConversationRecord:
        """Apply `mutate` to the stored record and write it, with no lost updates.

        `mutate` must be pure: on a concurrent write it is applied again to the newer record.
        `archive` messages are added to the key's searchable archive (once each, by id), with
        their embedding from `vectors` (by message id) where there is one.
        """

    async def search(self, key: str, terms: Sequence[str], limit: int) -> list[Message]:
        """Archived messages of `key` matching any of `terms`, best matches first."""

    async def load_with_matches(
        self, key: str, terms: Sequence[str], limit: int
    ) -> tuple[ConversationRecord, list[Message]]:
        """`load(key)` and `search(key, terms, limit)` at once: one request (Cosmos DB) or one
        hand-over to the store's thread (SQLite) where two would otherwise be needed."""

    async def nearest(self, key: str, vector: Sequence[float], limit: int) -> list[Message]:
        """Archived messages of `key` whose embeddings are closest to `vector`, closest first."""

    async def archived(self, key: str, limit: int) -> list[Message]:
        """The newest `limit` archived messages of `key`, oldest first (for export)."""

    async def delete(self, key: str) -> None:
        """Forget everything stored under `key`, archive included; deleting nothing is fine."""

    async def close(self) -> None:
        """Release connections; safe to call twice."""

    def describe(self) -> str:
        """A short, secret-free description for the start-up log line."""
