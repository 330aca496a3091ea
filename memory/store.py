"""The one storage interface every backend implements (SQLite, Azure Cosmos DB).

Small on purpose: stores move whole records and archived messages, and know nothing of trimming,
summaries or prompts. `update` is a compare-and-swap loop, so the merge policy lives in one place
(the caller's function) and each backend only has to make the write conditional.

`StoreBase` does the shared work once: it reads a search's terms and hands the backend
`memory.recall`'s ranking, so every backend ranks alike. A backend supplies only the primitives:
find candidates and have them ranked (with or without the record), list embeddings, read
messages by id, read the messages around a place in the archive.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from memory.recall import most_similar, rank_candidates, search_terms
from memory.records import Around, Candidate, ConversationRecord, Embeddings, Match, Message

Mutation = Callable[[ConversationRecord], ConversationRecord]
Ranking = Callable[[Sequence[Match], Sequence[str]], list[Match]]
"""How a store is told to order what it found: best first (`memory.recall.rank_candidates`).
Stores rank matches before reading their text, so only the best are read."""


def _rank(matches: Sequence[Match], terms: Sequence[str]) -> list[Match]:
    return rank_candidates(matches, terms)


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

    async def load_ranked(
        self, key: str, terms: Sequence[str], limit: int
    ) -> tuple[ConversationRecord, list[Candidate]]:
        """`load_with_matches`, each match with its place in the archive."""

    async def nearest(self, key: str, vector: Sequence[float], limit: int) -> list[Message]:
        """Archived messages of `key` whose embeddings are closest to `vector`, closest first."""

    async def nearest_ranked(
        self, key: str, vector: Sequence[float], limit: int
    ) -> list[Candidate]:
        """`nearest`, each message with its place in the archive where known (else -1)."""

    async def neighbours(self, key: str, orders: Sequence[int]) -> dict[int, Around]:
        """For each place in `key`'s archive, the messages just before and just after it."""

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
        return [c.message for c in await self.find_candidates(key, wanted, limit, _rank)]

    async def load_with_matches(
        self, key: str, terms: Sequence[str], limit: int
    ) -> tuple[ConversationRecord, list[Message]]:
        record, ranked = await self.load_ranked(key, terms, limit)
        return record, [c.message for c in ranked]

    async def load_ranked(
        self, key: str, terms: Sequence[str], limit: int
    ) -> tuple[ConversationRecord, list[Candidate]]:
        """`load_with_matches`, each match with its place in the archive."""
        wanted = search_terms(terms)
        if not wanted or limit <= 0:
            return await self.load(key), []
        return await self.load_with_candidates(key, wanted, limit, _rank)

    async def nearest(self, key: str, vector: Sequence[float], limit: int) -> list[Message]:
        return [c.message for c in await self.nearest_ranked(key, vector, limit)]

    async def nearest_ranked(
        self, key: str, vector: Sequence[float], limit: int
    ) -> list[Candidate]:
        """`nearest`, each message with its place in the archive where the store knows it."""
        if limit <= 0:
            return []
        embedded = await self.embedded(key, len(vector))
        chosen = most_similar(embedded.matrix, vector, limit)
        unread = [embedded.ids[i] for i in chosen if embedded.ids[i] not in embedded.messages]
        read = {m.id: m for m in await self.messages(key, unread)} if unread else {}
        found: list[Candidate] = []
        for i in chosen:
            message = embedded.messages.get(embedded.ids[i]) or read.get(embedded.ids[i])
            if message is not None:
                found.append(Candidate(message, embedded.orders[i]))
        return found

    @abstractmethod
    async def load(self, key: str) -> ConversationRecord: ...

    @abstractmethod
    async def find_candidates(
        self, key: str, terms: Sequence[str], limit: int, rank: Ranking
    ) -> list[Candidate]:
        """The best `limit` archived messages of `key` holding any of `terms` (already read by
        `search_terms`), as `rank` orders the candidates found in bounded work."""

    @abstractmethod
    async def load_with_candidates(
        self, key: str, terms: Sequence[str], limit: int, rank: Ranking
    ) -> tuple[ConversationRecord, list[Candidate]]:
        """`load(key)` and `find_candidates(key, terms, limit, rank)` at once."""

    @abstractmethod
    async def embedded(self, key: str, dimensions: int) -> Embeddings:
        """The embeddings of `dimensions` kept for `key`'s archived messages (the newest, within
        a bound)."""

    @abstractmethod
    async def messages(self, key: str, ids: Sequence[str]) -> list[Message]:
        """The archived messages of `key` with these ids, in no particular order."""

    @abstractmethod
    async def neighbours(self, key: str, orders: Sequence[int]) -> dict[int, Around]:
        """For each place in `key`'s archive, the messages just before and just after it."""
