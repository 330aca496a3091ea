"""The one storage interface every backend implements (SQLite, Azure Cosmos DB).

Small on purpose: stores move whole records and archived messages, and know nothing of trimming,
summaries or prompts. `update` is a compare-and-swap loop, so the merge policy lives in one place
(the caller's function) and each backend only has to make the write conditional.

`StoreBase` does the shared work once: it reads a search's terms, asks the backend for
candidates and has `memory.recall` rank them, so every backend ranks alike. A backend supplies
only the primitives: find candidates (with or without the record), list embeddings, read
messages by id.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from memory.recall import most_similar, rank_by_terms, search_terms
from memory.records import Candidate, ConversationRecord, Embedded, Message

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
        """Archived messages of `key` holding any of the words of `terms`, best first."""

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


class StoreBase(ABC):
    """Search, recall and nearest neighbours for every backend, ranked by `memory.recall`."""

    async def search(self, key: str, terms: Sequence[str], limit: int) -> list[Message]:
        wanted = search_terms(terms)
        if not wanted or limit <= 0:
            return []
        return rank_by_terms(await self.find_candidates(key, wanted, limit), wanted)[:limit]

    async def load_with_matches(
        self, key: str, terms: Sequence[str], limit: int
    ) -> tuple[ConversationRecord, list[Message]]:
        wanted = search_terms(terms)
        if not wanted or limit <= 0:
            return await self.load(key), []
        record, candidates = await self.load_with_candidates(key, wanted, limit)
        return record, rank_by_terms(candidates, wanted)[:limit]

    async def nearest(self, key: str, vector: Sequence[float], limit: int) -> list[Message]:
        if limit <= 0:
            return []
        embedded = await self.embedded(key)
        chosen = [embedded[i] for i in most_similar([e.vector for e in embedded], vector)[:limit]]
        unread = [e.id for e in chosen if e.message is None]
        read = {m.id: m for m in await self.messages(key, unread)} if unread else {}
        found = (e.message or read.get(e.id) for e in chosen)
        return [message for message in found if message is not None]

    @abstractmethod
    async def load(self, key: str) -> ConversationRecord: ...

    @abstractmethod
    async def find_candidates(self, key: str, terms: Sequence[str], limit: int) -> list[Candidate]:
        """Archived messages of `key` holding any of `terms` (already read by `search_terms`),
        in bounded work: enough for the best `limit` to be among them."""

    @abstractmethod
    async def load_with_candidates(
        self, key: str, terms: Sequence[str], limit: int
    ) -> tuple[ConversationRecord, list[Candidate]]:
        """`load(key)` and `find_candidates(key, terms, limit)` at once."""

    @abstractmethod
    async def embedded(self, key: str) -> list[Embedded]:
        """The embeddings kept for `key`'s archived messages (the newest, within a bound)."""

    @abstractmethod
    async def messages(self, key: str, ids: Sequence[str]) -> list[Message]:
        """The archived messages of `key` with these ids, in no particular order."""
