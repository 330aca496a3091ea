"""ConversationMemory: what the bot calls to remember, recall and forget.

A turn costs one record load with an archive search (one request where the store can), then
one conditional write after the reply. Messages leaving the recent window wait in `pending` until
a background task folds them into the running summary; if that fails they stay, and every
message stays in the archive either way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from memory.context import Context, assemble_context
from memory.items import (
    NewItem,
    dictated,
    extraction_prompt,
    kind_of,
    read_extraction,
    unexpired,
    with_items,
    without_items,
)
from memory.recall import (
    Embed,
    WordVectors,
    fuse,
    meaning_of,
    query_terms,
    rank_by_words,
    rank_items,
)
from memory.records import (
    Candidate,
    ChatMessage,
    ConversationRecord,
    Lineage,
    MemoryItem,
    Message,
    utc_now,
)
from memory.store import MemoryStore
from memory.summary import Complete, summary_prompt
from memory.terms import terms_of
from memory.trimming import recent_window

log = logging.getLogger(__name__)
STOPPED_MARK = " [stopped here by the person]"
"""Ends a reply the person stopped, as kept: what they saw of it, and that it stopped there."""
SUMMARY_BACKLOG_SECONDS = 30.0  # a summary that waited longer for a slot is logged
_FORGET_BATCH = 200  # archived messages found and deleted per round by `forget_matching`
_FORGET_ROUNDS = 500  # at most 100,000 messages
EXPORT_FORMAT = "memorybot-export/1"
"""The `format` of an export; its number changes with any change a reader must know of."""
# How much each ranking counts when they are fused (weighted reciprocal rank fusion), as found
# on the recall benchmark at 2,000 tokens (docs/memory.md):
# - Lexical (BM25) finds a message only through a shared word, and people ask in other words: at
#   a quarter weight it found more than at a half, with the local model and with MiniLM standing
#   in for a deployment (0.786 against 0.778).
# - Word by word reads the shared words too, and their near neighbours. Beside the local model's
#   sentence vectors (the mean of the same word vectors, so less) or no embeddings, it counts
#   four times as much as they do: 0.621 against 0.582 in the embedded default, 0.519 against
#   0.489 on Cosmos DB. Beside a deployment's embeddings (a better model) it counts as much:
#   four times found 0.710 against 0.786.
LEXICAL_WEIGHT = 0.25
EMBEDDINGS_WEIGHT = 1.0
WORDS_WEIGHT = 1.0
WORDS_WEIGHT_BESIDE_LOCAL = 4.0


class ConversationMemory:
    """Memory behind one store: builds prompts under a budget, and keeps each turn.

    Its limits come from the settings (`wiring.create_memory` builds it for the app and the
    replay tool); none has a default here but `extract_every`, off (0) unless asked for, and
    `item_ttl`, none (items kept until forgotten) unless given.
    """

    def __init__(
        self,
        store: MemoryStore,
        *,
        system_prompt: str,
        max_messages: int,
        context_tokens: int,
        summary_every: int,
        summary_concurrency: int,
        extract_every: int = 0,
        item_ttl: timedelta | None = None,
        summarise: Complete | None = None,
        embed: Embed | None = None,
        words: WordVectors | None = None,
        embed_is_local: bool = False,
        recall_limit: int | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.store = store
        self.system_prompt = system_prompt
        self.max_messages = max_messages
        self.context_tokens = context_tokens
        self.summary_every = summary_every
        self.extract_every = extract_every
        self.item_ttl = item_ttl
        self.summarise = summarise
        self.embed = embed
        self.words = words
        # Whether `embed` is the local model that `words` also comes from (or there is none):
        # then word by word, the better use of that model, counts more.
        self.words_weight = (
            WORDS_WEIGHT_BESIDE_LOCAL if embed_is_local or embed is None else WORDS_WEIGHT
        )
        # Labels that name who speaks at the start of messages, as in a replayed transcript
        # ("Priya: …"): left out of what is compared by meaning (`memory.recall.meaning_of`).
        # The replay tool sets them from its transcript; in Teams the speaker is never in the
        # text.
        self.speaker_labels: frozenset[str] = frozenset()
        # Older messages each ranking finds: about twice what fits in the budget (most are 15 to
        # 60 tokens, and some of the best are shown anyway), within a bound on the work per
        # turn. A ranking that finds more lets the fused one fill the prompt with better lines.
        self.recall_limit = (
            min(max(8, context_tokens // 10), 200) if recall_limit is None else recall_limit
        )
        # The best hits also bring the messages said around them (often the question a hit
        # answers), where they fit behind better hits (memory.context.NEIGHBOUR_DISCOUNT).
        self.neighboured_hits = max(2, context_tokens // 400)
        self.clock = clock
        # Pending messages are also archived, so past this cap the oldest leave the record only.
        self.max_pending = max(summary_every * 4, 40)
        self._summaries: dict[str, asyncio.Task[bool]] = {}
        # Summaries are background work: at most this many at once, so that a burst of people
        # does not send a burst of summary calls competing with their own turns (for the
        # model's rate limit and the process's time); the others wait their turn.
        self._summary_slots = asyncio.Semaphore(max(1, summary_concurrency))

    async def prompt_for(self, key: str, text: str, *, author: str = "") -> list[ChatMessage]:
        """The messages to send the model when the person behind `key` (or, in a memory several
        people share, `author`) says `text`."""
        return (await self.context_for(key, text, author=author)).messages

    async def context_for(self, key: str, text: str, *, author: str = "") -> Context:
        """`prompt_for`'s messages, with the recalled messages they show by number (which an
        answer may cite)."""
        # The best hits of each ranking come with the messages said around them (often the
        # question they answer), read in the same request. The question is embedded while the
        # record loads; the closest messages are then looked for among those the recent window
        # does not show.
        (record, lexical), vector = await asyncio.gather(
            self.store.load_ranked(key, [text], self.recall_limit, self.neighboured_hits),
            self._embedding_of(text),
        )
        rankings: list[list[Candidate]] = [lexical]
        weights = [LEXICAL_WEIGHT]
        if vector is not None and self.recall_limit > 0:
            shown = frozenset(m.id for m in record.unsummarised)
            semantic = await self.store.nearest_ranked(
                key, vector, self.recall_limit, self.neighboured_hits, shown
            )
            rankings.append(semantic)
            weights.append(EMBEDDINGS_WEIGHT)
        if self.words is not None and self.recall_limit > 0:
            pool = list({c.message.id: c for ranking in rankings for c in ranking}.values())
            rankings.append(rank_by_words(text, pool, self.words, self.speaker_labels))
            weights.append(self.words_weight)
        hits = fuse(rankings, self.recall_limit, weights) if len(rankings) > 1 else lexical
        return assemble_context(
            self.system_prompt,
            record,
            text,
            budget=self.context_tokens,
            items=rank_items(record.current_items, text),
            recalled=[h.message for h in hits],
            neighbours={h.message.id: h.around for h in hits if h.around is not None},
            now=self.clock(),
            author=author,
        )

    async def remember(
        self,
        key: str,
        user_text: str,
        reply: str | None = None,
        *,
        at: datetime | None = None,
        author: str = "",
        stopped: bool = False,
        lineage: Lineage | None = None,
    ) -> bool:
        """Keep the person's message and, when there is one, the bot's reply, as one turn.

        `author` names who said it where several people share the memory (a group chat).
        `stopped`: the person stopped the reply, which is what they saw of it, so marked.
        `lineage`: the history the turn's context was read from (`Context.lineage`); when
        something said has been forgotten since (while the answer was written), the turn was
        said before the forget and is not kept. Returns whether it was kept."""
        now = at or self.clock()
        turn = [Message("user", user_text, now, author=author)]
        if reply is not None:
            turn.append(Message("assistant", reply + (STOPPED_MARK if stopped else ""), now))
        asked = dictated(user_text)  # "remember that …": kept as said, whatever the model
        told = [NewItem(asked, kind_of(asked), sources=(turn[0].id,), said_at=now)] if asked else []

        def append_turn(record: ConversationRecord) -> ConversationRecord:
            if lineage is not None and not lineage.goes_on_in(record.lineage):
                raise _ForgottenMeanwhile
            combined = (*record.messages, *turn)
            window = recent_window(combined, self.max_messages)
            left_window = combined[: len(combined) - len(window)]
            pending = (*record.pending, *left_window) if self.summarise else ()
            appended = replace(
                record,
                messages=window,
                pending=pending[-self.max_pending :],
                message_count=record.message_count + len(turn),
                since=record.since or now,
                updated_at=now,
                unextracted=record.unextracted + len(turn) if self._extracting else 0,
            )
            kept = unexpired(appended, now, self.item_ttl)  # items expire from their own date
            return with_items(kept, told, now) if told else kept

        vectors = await self._vectors(turn)
        try:
            record = await self.store.update(key, append_turn, archive=turn, vectors=vectors)
        except _ForgottenMeanwhile:
            log.info("a turn said before a forget was not kept")
            return False
        if self.summarise and (
            len(record.pending) >= self.summary_every
            or (self._extracting and record.unextracted >= self.extract_every)
        ):
            self._summarise_later(key)
        return True

    @property
    def _extracting(self) -> bool:
        return self.summarise is not None and self.extract_every > 0

    async def remember_item(self, key: str, text: str) -> MemoryItem | None:
        """Keeps `text` as the person said it (the `remember` command), a fact, preference or
        decision as its words say (`kind_of`); None when a standing item says it already."""
        now = self.clock()
        added: list[MemoryItem] = []

        def add(record: ConversationRecord) -> ConversationRecord:
            updated = with_items(record, [NewItem(text, kind_of(text))], now)
            added[:] = [item for item in updated.items if item not in record.items]
            return replace(updated, since=updated.since or now, updated_at=now)

        await self.store.update(key, add)
        return added[0] if added else None

    async def forget_items(self, key: str, ids: Sequence[str]) -> None:
        """Forgets the items of `ids`, superseded ones included."""

        def drop(record: ConversationRecord) -> ConversationRecord:
            return replace(without_items(record, ids), items_forgotten=record.items_forgotten + 1)

        await self.store.update(key, drop)

    async def matching(
        self, key: str, words: str, limit: int = 50
    ) -> tuple[list[MemoryItem], list[Message], bool]:
        """What `forget <words>` would forget: the items (superseded ones included) and the
        best `limit` kept messages that hold any of `words`, and whether the summary does."""
        terms = set(query_terms(words))
        record, found = await self.store.load_with_matches(key, [words], limit)
        items = [item for item in record.items if terms & set(terms_of(item.text))]
        kept = {m.id: m for m in found}
        for message in record.unsummarised:  # not always archived yet: the window's too
            if terms & set(terms_of(message.content)):
                kept.setdefault(message.id, message)
        in_summary = bool(terms & set(terms_of(record.summary)))
        return items, list(kept.values())[:limit], in_summary

    async def forget_matching(self, key: str, words: str) -> tuple[int, int]:
        """Forgets every item and kept message that holds any of `words`, and the summary if it
        does (a summary cannot be cut word by word); how many items and messages went.

        The archive is searched again after each deletion until nothing more is found: a
        search reads bounded candidates, newest first, so the older matches come next."""
        terms = set(query_terms(words))
        if not terms:
            return 0, 0
        forgotten_items: list[str] = []
        gone: set[str] = set()

        def drop(record: ConversationRecord) -> ConversationRecord:
            items = [item.id for item in record.items if terms & set(terms_of(item.text))]
            forgotten_items[:] = items
            window = [m.id for m in record.unsummarised if terms & set(terms_of(m.content))]
            gone.update(window)
            summary = "" if terms & set(terms_of(record.summary)) else record.summary
            return replace(
                _forgetting(without_items(record, items)),
                summary=summary,
                messages=tuple(m for m in record.messages if m.id not in gone),
                pending=tuple(m for m in record.pending if m.id not in gone),
            )

        await self.store.update(key, drop)
        await self.store.delete_messages(key, list(gone))
        for _ in range(_FORGET_ROUNDS):
            found = [m.id for m in await self.store.search(key, [words], _FORGET_BATCH)]
            found = [message_id for message_id in found if message_id not in gone]
            if not found:
                break
            await self.store.delete_messages(key, found)
            gone.update(found)

        def recount(record: ConversationRecord) -> ConversationRecord:
            # The count says how many messages are kept (`memory`, export); and a turn that read
            # its context during the deletions (when the archive still held them) is not kept.
            return replace(
                _forgetting(record), message_count=max(0, record.message_count - len(gone))
            )

        await self.store.update(key, recount)
        return len(forgotten_items), len(gone)

    async def _embedding_of(self, text: str) -> list[float] | None:
        """The question's embedding, when there are embeddings; lexical recall carries on
        without when the embeddings call fails."""
        if self.embed is None:
            return None
        try:
            [vector] = await self.embed([meaning_of(text, self.speaker_labels)])
        except Exception as error:
            log.warning("embedding failed, lexical recall only: %s", type(error).__name__)
            return None
        return vector

    async def _vectors(self, messages: Sequence[Message]) -> dict[str, list[float]] | None:
        if self.embed is None:
            return None
        try:
            vectors = await self.embed(
                [meaning_of(m.content, self.speaker_labels) for m in messages]
            )
        except Exception as error:
            log.warning("embedding failed, archived without: %s", type(error).__name__)
            return None
        return {m.id: v for m, v in zip(messages, vectors, strict=True)}

    async def recall(self, key: str) -> ConversationRecord:
        return await self.store.load(key)

    async def export(self, key: str) -> dict[str, Any]:
        """Everything kept for `key` as JSON-ready data, nothing left out: the items, the
        summary, the counts, the recent messages and the whole archive (read in pages by the
        store). The format is `EXPORT_FORMAT`, described in docs/export.md and
        docs/export.schema.json."""
        record, archive = await asyncio.gather(self.store.load(key), self.store.archived(key))
        return {
            "format": EXPORT_FORMAT,
            "exported_at": utc_now().isoformat(),
            "summary": record.summary,
            "message_count": record.message_count,
            "since": record.since.isoformat() if record.since else None,
            "item_count": len(record.items),
            "recent_count": len(record.unsummarised),
            "archive_count": len(archive),
            "items": [item.to_json() for item in record.items],
            "recent_messages": [m.to_json() for m in record.unsummarised],
            "archive": [m.to_json() for m in archive],
        }

    async def forget(self, key: str) -> None:
        """Delete everything kept for `key`; a summary under way for it is abandoned first."""
        task = self._summaries.pop(key, None)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        # A turn under way read the record as it was: marked, so that it is not kept after.
        await self.store.update(key, _forgetting)
        await self.store.delete(key)

    async def extract_now(self, key: str) -> bool:
        """Ask the model for items in the messages no extraction has read; False when it was
        not due or the call failed (the messages are then read again next time)."""
        if self.summarise is None or not self._extracting:
            return False
        record = await self.store.load(key)
        unread = min(record.unextracted, len(record.unsummarised))
        if record.unextracted < self.extract_every:
            return False
        batch = record.unsummarised[len(record.unsummarised) - unread :]
        standing = record.current_items
        prompt, held = extraction_prompt(standing, batch, self.context_tokens)
        try:
            answer = await self.summarise(prompt)
        except Exception as error:
            log.warning("item extraction failed, messages kept for later: %s", type(error).__name__)
            return False
        try:
            new = read_extraction(answer, standing, batch[:held])
        except ValueError as error:  # read, but not the JSON asked for: not asked again
            log.warning("item extraction answer unreadable: %s", type(error).__name__)
            new = []
        now = self.clock()
        # Read: the oldest `held` of the unread ones (and any that left the record unread);
        # the newer ones the prompt had no room for are read next time.
        done = record.unextracted - (unread - held)

        def keep(current: ConversationRecord) -> ConversationRecord:
            if _forgotten_since(record, current):
                return current
            read = replace(current, unextracted=max(current.unextracted - done, 0))
            return with_items(read, new, now)

        await self.store.update(key, keep)
        return True

    async def summarise_now(self, key: str) -> bool:
        """Fold the pending messages into the summary; False (and nothing dropped) on failure."""
        if self.summarise is None:
            return False
        record = await self.store.load(key)
        batch = record.pending
        if len(batch) < self.summary_every:
            return False
        prompt, held = summary_prompt(record.summary, batch, self.context_tokens)
        try:
            summary = (await self.summarise(prompt)).strip()
        except Exception as error:
            log.warning("summary failed, messages kept for later: %s", type(error).__name__)
            return False
        if not summary:
            return False
        folded = {m.id for m in batch[:held]}  # the others wait for the next summary

        def fold(current: ConversationRecord) -> ConversationRecord:
            if _forgotten_since(record, current):
                return current
            kept = tuple(m for m in current.pending if m.id not in folded)
            return replace(current, summary=summary, pending=kept)

        await self.store.update(key, fold)
        return True

    async def drain(self) -> None:
        """Wait for the summaries under way (tests, the replay tool and shutdown use this)."""
        while self._summaries:
            await asyncio.gather(*self._summaries.values(), return_exceptions=True)

    async def close(self, grace_seconds: float = 10.0) -> None:
        """Let summaries under way finish for a while, then cancel the rest."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.drain(), grace_seconds)
        for task in list(self._summaries.values()):
            task.cancel()
        await asyncio.gather(*self._summaries.values(), return_exceptions=True)

    def _summarise_later(self, key: str) -> None:
        if key in self._summaries:
            return
        task = asyncio.create_task(self._summarise_logged(key))
        self._summaries[key] = task
        task.add_done_callback(lambda done: self._forget_task(key, done))

    def _forget_task(self, key: str, task: asyncio.Task[bool]) -> None:
        if self._summaries.get(key) is task:
            del self._summaries[key]

    async def _summarise_logged(self, key: str) -> bool:
        queued = time.monotonic()
        try:
            async with self._summary_slots:
                waited = time.monotonic() - queued
                if waited > SUMMARY_BACKLOG_SECONDS:  # the operator's signal to allow more
                    log.info("a summary waited %.0f s for MEMORY_SUMMARY_CONCURRENCY", waited)
                await self.extract_now(key)
                return await self.summarise_now(key)
        except Exception as error:
            log.warning("summary not saved: %s", type(error).__name__)
            return False


class _ForgottenMeanwhile(Exception):
    """Raised in a write's mutation to write nothing: something was forgotten since the turn
    being kept read its record."""


def _forgetting(record: ConversationRecord) -> ConversationRecord:
    """`record` marked as going through a forget of what was said (a new `lineage`): work that
    read it before is not written back after."""
    return replace(record, forgets=record.forgets + 1)


def _forgotten_since(read: ConversationRecord, current: ConversationRecord) -> bool:
    """Whether something of `read` was forgotten before `current`: what was made of it (a
    summary, items) may hold what was forgotten, so it is not written back."""
    return (
        current.message_count == 0
        or not read.lineage.goes_on_in(current.lineage)
        or current.items_forgotten != read.items_forgotten
    )
