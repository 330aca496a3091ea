"""The one storage interface every backend implements (SQLite, Azure Cosmos DB).

Small on purpose: stores move whole records and know nothing of trimming or prompts. `update`
is a compare-and-swap loop, so the merge policy lives in one place (the caller's function) and
each backend only has to make the write conditional.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from memory.records import ConversationRecord

Mutation = Callable[[ConversationRecord], ConversationRecord]


class MemoryStore(Protocol):
    async def open(self) -> None:
        """Connect and check that the storage exists (creating it only where allowed)."""

    async def load(self, key: str) -> ConversationRecord:
        """The record for `key`, or an empty one if nothing is stored."""

    async def update(self, key: str, mutate: Mutation) -> ConversationRecord:
        """Apply `mutate` to the stored record and write it, with no lost updates.

        `mutate` must be pure: on a concurrent write it is applied again to the newer record.
        """

    async def delete(self, key: str) -> None:
        """Forget everything stored under `key`; deleting nothing is not an error."""

    async def close(self) -> None:
        """Release connections; safe to call twice."""

    def describe(self) -> str:
        """A short, secret-free description for the start-up log line."""
