"""The one storage interface every backend implements (SQLite, Azure Cosmos DB).

Small on purpose: stores move whole records and archived messages, and know nothing of trimming,
summaries or prompts. `update` is a compare-and-swap loop, so the merge policy lives in one place
(the caller's function) and each backend only has to make the write conditional.

`StoreBase` does the shared work once: it reads a search's terms and hands the backend
`memory.recall`'s ranking, so every backend ranks alike. A backend supplies only the primitives:
find candidates and have them ranked (with or without the record), and find the messages whose
embeddings are closest with the comparison they are handed; each with the messages said around
the best ones where asked.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence, Set
from dataclasses import replace
from typing import Any, Protocol

from memory.recall import most_similar, rank_candidates, search_terms, search_words
from memory.records import Around, Candidate, ConversationRecord, Match, Message

Mutation = Callable[[ConversationRecord], ConversationRecord]
Ranking = Callable[[Sequence[Match], Sequence[str]], list[Match]]
"""How a store is told to order what it found: best first (`memory.recall.rank_candidates`).
Stores rank matches before reading their text, so only the best are read."""
Similarity = Callable[[Any, Sequence[float], int], list[int]]
"""How a store is told to compare embeddings (`memory.recall.most_similar`): the indexes of the
rows of a matrix closest to a vector, best first."""


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
        self, key: str, terms: Sequence[str], limit: int, around: int = 0
    ) -> tuple[ConversationRecord, list[Candidate]]:
        """`load_with_matches`, each match with its place in the archive, and the best `around`
        with the messages said just before and after them."""

    async def nearest(self, key: str, vector: Sequence[float], limit: int) -> list[Message]:
        """Archived messages of `key` whose embeddings are closest to `vector`, closest first."""

    async def nearest_ranked(
        self,
        key: str,
        vector: Sequence[float],
        limit: int,
        around: int = 0,
        shown: Set[str] = frozenset(),
    ) -> list[Candidate]:
        """`nearest`, each message with its place in the archive where known (else -1), and
        the best `around` with the messages said just before and after them; none of `shown`
        (what the prompt shows anyway)."""

    async def archived(self, key: str, limit: int | None = None) -> list[Message]:
        """The newest `limit` archived messages of `key` (all of them when `limit` is None),
        oldest first, for export. Read in pages, each a request (or a hand-over) of its own, so
        that a whole archive can be read without holding anyone else up; what is archived while
        the read is under way may be left out."""

    async def delete(self, key: str) -> None:
        """Forget everything stored under `key`, archive included; deleting nothing is fine."""

    async def delete_messages(self, key: str, ids: Sequence[str]) -> None:
        """Forget the archived messages of `key` with these ids (and their embeddings)."""

    async def mark(
        self, key: str, name: str, value: str, *, now: float, seconds: float, replace: bool
    ) -> bool:
        """Sets the mark `name` of `key` to `value`, standing from `now` (seconds since the
        epoch) until `now + seconds`. Unless `replace`, only where no mark of that name stands:
        True when this call set it. Atomic between every process on the same storage: of two
        that set one mark at once, one gets True. (Marks are the store's short-lived notes:
        which deliveries were taken, which questions stand; `memory.ledger` reads them.)"""

    async def marked(self, key: str, name: str, *, now: float) -> str | None:
        """The value of `key`'s mark `name` if it stands at `now`, else None."""

    async def unmark(self, key: str, name: str) -> bool:
        """Removes `key`'s mark `name`: True when this call removed it (of two at once, one);
        removing none is fine."""

    async def count_marks(self, key: str, prefix: str, *, since: float, now: float) -> int:
        """How many of `key`'s marks named `prefix`... standing at `now` were set at or after
        `since`."""

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
        found = await self.find_candidates(key, wanted, limit, _rank, search_words(terms))
        return [c.message for c in found]

    async def load_with_matches(
        self, key: str, terms: Sequence[str], limit: int
    ) -> tuple[ConversationRecord, list[Message]]:
        record, ranked = await self.load_ranked(key, terms, limit)
        return record, [c.message for c in ranked]

    async def load_ranked(
        self, key: str, terms: Sequence[str], limit: int, around: int = 0
    ) -> tuple[ConversationRecord, list[Candidate]]:
        wanted = search_terms(terms)
        if not wanted or limit <= 0:
            return await self.load(key), []
        return await self.load_with_candidates(
            key, wanted, limit, _rank, around, search_words(terms)
        )

    async def nearest(self, key: str, vector: Sequence[float], limit: int) -> list[Message]:
        return [c.message for c in await self.nearest_ranked(key, vector, limit)]

    async def nearest_ranked(
        self,
        key: str,
        vector: Sequence[float],
        limit: int,
        around: int = 0,
        shown: Set[str] = frozenset(),
    ) -> list[Candidate]:
        if limit <= 0:
            return []
        return await self.nearest_candidates(key, vector, limit, most_similar, around, shown)

    @abstractmethod
    async def load(self, key: str) -> ConversationRecord: ...

    @abstractmethod
    async def find_candidates(
        self, key: str, terms: Sequence[str], limit: int, rank: Ranking, words: Sequence[str] = ()
    ) -> list[Candidate]:
        """The best `limit` archived messages of `key` holding any of `terms` (already read by
        `search_terms`), as `rank` orders the candidates found in bounded work. `words` are the
        question's own words (`search_words`), for a search that reads text with an analyser of
        its own (Cosmos DB's full-text search)."""

    @abstractmethod
    async def load_with_candidates(
        self,
        key: str,
        terms: Sequence[str],
        limit: int,
        rank: Ranking,
        around: int,
        words: Sequence[str] = (),
    ) -> tuple[ConversationRecord, list[Candidate]]:
        """`load(key)` and `find_candidates(key, terms, limit, rank)` at once, the best `around`
        of them with the messages said just before and after them."""

    @abstractmethod
    async def nearest_candidates(
        self,
        key: str,
        vector: Sequence[float],
        limit: int,
        similar: Similarity,
        around: int,
        shown: Set[str],
    ) -> list[Candidate]:
        """The `limit` archived messages of `key`, none of `shown`, whose embeddings `similar`
        finds closest to `vector` (among the newest, within a bound), the best `around` with the
        messages said just before and after them."""


def _rank(matches: Sequence[Match], terms: Sequence[str]) -> list[Match]:
    return rank_candidates(matches, terms)


def needing_neighbours(
    candidates: Sequence[Candidate], around: int, shown: Set[str]
) -> list[Candidate]:
    """Which of the best `around` candidates a store reads the neighbours of: those whose place
    it knows and that the prompt does not show anyway."""
    return [c for c in candidates[:around] if c.order >= 0 and c.message.id not in shown]


def with_neighbours(
    candidates: Sequence[Candidate], found: Mapping[int, Around]
) -> list[Candidate]:
    """`candidates`, each with the neighbours `found` at its place in the archive."""
    return [replace(c, around=found[c.order]) if c.order in found else c for c in candidates]
