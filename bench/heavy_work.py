"""Other people's turns while one person's heavy work runs on the same store.

    .venv/bin/python -m bench.heavy_work [--backend sqlite|cosmos] [--messages N] [--people 20]
        [--seconds 8] [--think-ms 500] [--forgets 3]

One store (`--backend`: a SQLite file, or the local Cosmos DB API server the tests use, started
as `bench.load` and `bench.soak` start it) holds one person with a huge archive (`--messages`
messages, each with a 256-dimension embedding, as the local embeddings give) beside `--people`
others with 200 archived messages each. The others talk all along: a turn is what
`ConversationMemory` does for a message without the model (the prompt: `load_ranked` beside the
question's embedding, then `nearest_ranked`; then `remember`: one `update` with the turn's
archive and vectors), each person waiting `--think-ms` between turns. Embeddings are
deterministic fakes (from a hash of the text).

Phases, in this order: alone (`--seconds`); while the heavy person exports (`archived(key,
100000)`, back to back, `--seconds`); while they search by vector (`nearest_ranked`, back to
back, `--seconds`); while they are forgotten (`delete`, `--forgets` times, the
archive filled again in between: the phase lasts as long as the deletes do). A short pause
separates the phases; only turns started inside a phase count for it.

Prints a table: per phase, the others' turns, their p50 / p95 / max in ms, and the heavy
operations done and their median time. On SQLite, 40,000 messages by default; takes about a
minute (most of it filling the archive). On Cosmos DB, 5,000 by default; takes about a minute.
The local server (one Node process, data in memory) fills 40,000 in seconds, but its queries
slow with all the data it holds: at 20,000 the others' turns take 0.4 s alone and 8 s during
an export, a forget 75 s; at 40,000 the others' requests time out and the run stops. It has no
request-unit throttling, so the figures say nothing of what a real account's throughput limit
does to the others while a forget or an export spends request units; and it has no vector
search, so a vector search reads the newest 300 embedded items.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from bench.archive_search import turns
from bench.support import BACKENDS, Backend, Talk, model_reply, percentile
from config import Settings, settings_from
from memory.conversation import ConversationMemory
from memory.records import Message
from memory.store import MemoryStore
from wiring import create_store

HEAVY = "tenant/heavy-person"
DIMENSIONS = 256  # the local embeddings' (`local_embeddings.py`)
OTHER_MESSAGES = 200
FILL_BATCH = 500  # archived messages per write while filling
EXPORT_LIMIT = 100_000
PAUSE_SECONDS = 0.5
# The heavy person's archive by default; on Cosmos DB the local server slows with its data.
DEFAULT_MESSAGES = {"sqlite": 40_000, "cosmos": 5_000}
STORE_NAMES = {
    "sqlite": "SQLite",
    "cosmos": "Cosmos DB (local API server: one Node process, no request-unit throttling)",
}


async def fake_embed(texts: Sequence[str]) -> list[list[float]]:
    """A unit vector per text, the same for the same text."""
    vectors = []
    for text in texts:
        seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")
        vector = np.random.default_rng(seed).standard_normal(DIMENSIONS).astype(np.float32)
        vectors.append((vector / np.linalg.norm(vector)).tolist())
    return vectors


def memory_on(store: MemoryStore) -> ConversationMemory:
    settings = Settings()
    return ConversationMemory(
        store,
        system_prompt="system",
        max_messages=settings.memory_max_messages,
        context_tokens=settings.memory_context_tokens,
        summary_every=settings.memory_summary_every,
        summary_concurrency=settings.memory_summary_concurrency,
        embed=fake_embed,
    )


def spread(messages: list[Message]) -> list[Message]:
    """The messages said 30 seconds apart, as a long conversation's are, instead of all at one
    instant: Cosmos DB orders its archive by the millisecond of `at` (then the archive number,
    modulo 1,000), and `CosmosStore._neighbours` fails on two messages in one place."""
    start = messages[0].at if messages else datetime.now(UTC)
    return [replace(m, at=start + timedelta(seconds=30 * n)) for n, m in enumerate(messages)]


async def fill(store: MemoryStore, key: str, messages: list[Message], seed: int) -> None:
    """`messages` archived under `key` with a random unit embedding each, in large writes."""
    messages = spread(messages)
    rng = np.random.default_rng(seed)
    for start in range(0, len(messages), FILL_BATCH):
        batch = messages[start : start + FILL_BATCH]
        matrix = rng.standard_normal((len(batch), DIMENSIONS)).astype(np.float32)
        matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
        vectors = {m.id: row.tolist() for m, row in zip(batch, matrix, strict=True)}
        await store.update(key, lambda record: record, archive=batch, vectors=vectors)


@dataclass
class Phase:
    name: str
    started: float = 0.0
    ended: float = 0.0
    spans: list[tuple[float, float]] = field(default_factory=list)  # else started..ended
    heavy_seconds: list[float] = field(default_factory=list)
    heavy_what: str = ""


@dataclass
class Others:
    """The other people, talking until told to stop; each turn's start and seconds."""

    memory: ConversationMemory
    people: int
    think: float
    turns: list[tuple[float, float]] = field(default_factory=list)
    stopping: bool = False

    async def person(self, n: int) -> None:
        talk = Talk(1000 + n)
        key = f"tenant/other-{n}"
        await asyncio.sleep(self.think * n / self.people)  # spread over the think time
        while not self.stopping:
            text = talk.user_text()
            started = time.perf_counter()
            await self.memory.prompt_for(key, text)
            await self.memory.remember(key, text, model_reply([{"content": text}]))
            self.turns.append((started, time.perf_counter() - started))
            await asyncio.sleep(self.think)

    def during(self, phase: Phase) -> list[float]:
        spans = phase.spans or [(phase.started, phase.ended)]
        return [took for at, took in self.turns if any(s <= at < e for s, e in spans)]


async def repeated(phase: Phase, seconds: float, work: Callable[[], Awaitable[object]]) -> None:
    phase.started = time.perf_counter()
    deadline = phase.started + seconds
    while time.perf_counter() < deadline:
        began = time.perf_counter()
        await work()
        phase.heavy_seconds.append(time.perf_counter() - began)
    phase.ended = time.perf_counter()


async def run(options: argparse.Namespace, backend: Backend) -> tuple[list[Phase], Others]:
    store = create_store(settings_from(backend.environment("heavy-work")))
    await store.open()
    try:
        memory = memory_on(store)
        started = time.perf_counter()
        await fill(store, HEAVY, turns(7, options.messages // 2), seed=7)
        await memory.remember(HEAVY, "The heavy person's latest question.", "An answer.")
        for n in range(options.people):
            await fill(store, f"tenant/other-{n}", turns(100 + n, OTHER_MESSAGES // 2), 100 + n)
        print(f"filled in {time.perf_counter() - started:.1f} s")

        others = Others(memory, options.people, options.think_ms / 1000)
        talking = [asyncio.create_task(others.person(n)) for n in range(options.people)]
        await asyncio.sleep(PAUSE_SECONDS * 2)  # warm up: every person's first turn done
        phases: list[Phase] = []
        seconds = options.seconds

        alone = Phase("alone")
        alone.started = time.perf_counter()
        await asyncio.sleep(seconds)
        alone.ended = time.perf_counter()
        phases.append(alone)

        await asyncio.sleep(PAUSE_SECONDS)
        export = Phase("export", heavy_what=f"archived({EXPORT_LIMIT:,})")

        async def export_all() -> None:
            exported = await store.archived(HEAVY, EXPORT_LIMIT)
            if len(exported) < options.messages:
                raise RuntimeError(f"export gave {len(exported)} messages")

        await repeated(export, seconds, export_all)
        phases.append(export)

        await asyncio.sleep(PAUSE_SECONDS)
        vector = Phase("vector search", heavy_what="nearest_ranked")
        queries = np.random.default_rng(3)

        async def search() -> None:
            query = queries.standard_normal(DIMENSIONS).tolist()
            await store.nearest_ranked(
                HEAVY, query, memory.recall_limit, memory.neighboured_hits, frozenset()
            )

        await repeated(vector, seconds, search)
        phases.append(vector)

        forget = Phase("forget", heavy_what="delete")
        for n in range(options.forgets):  # the others' turns during each forget count
            if n:  # the person again, while the others talk (not counted)
                await fill(store, HEAVY, turns(7, options.messages // 2), seed=7)
                await memory.remember(HEAVY, "The heavy person's latest question.", "An answer.")
            await asyncio.sleep(PAUSE_SECONDS)
            began = time.perf_counter()
            await memory.forget(HEAVY)
            forget.heavy_seconds.append(time.perf_counter() - began)
            forget.spans.append((began, time.perf_counter()))
        phases.append(forget)
        await asyncio.sleep(PAUSE_SECONDS)

        others.stopping = True
        await asyncio.gather(*talking)
        left = await store.archived(HEAVY, 10)
        record = await store.load(HEAVY)
        if left or record.message_count:
            raise RuntimeError("the forgotten person's memory is still there")
        return phases, others
    finally:
        await store.close()


def row(phase: Phase, others: Others) -> str:
    took = others.during(phase)
    ms = [seconds * 1000 for seconds in took]
    heavy = "—"
    if phase.heavy_seconds:
        median = statistics.median(phase.heavy_seconds) * 1000
        heavy = f"{len(phase.heavy_seconds)} × {phase.heavy_what}, {median:,.1f} ms each"
    return (
        f"| {phase.name} | {len(ms)} | {percentile(ms, 0.50):.1f} | {percentile(ms, 0.95):.1f} "
        f"| {max(ms, default=float('nan')):.1f} | {heavy} |"
    )


async def main_async(options: argparse.Namespace) -> None:
    size = f"{options.messages:,}"
    if options.backend == "cosmos" and options.messages < DEFAULT_MESSAGES["sqlite"]:
        size += f" (not {DEFAULT_MESSAGES['sqlite']:,} as on SQLite: the local server slows)"
    print(
        f"{STORE_NAMES[options.backend]}: one person with {size} archived messages (embedded), "
        f"{options.people} others talking, {options.think_ms} ms between each one's turns"
    )
    with (
        tempfile.TemporaryDirectory(prefix="memorybot-heavy-") as scratch,
        Backend(options.backend, Path(scratch)) as backend,
    ):
        phases, others = await run(options, backend)
    print("| phase | others' turns | p50 ms | p95 ms | max ms | the heavy person's work |")
    print("|---|---:|---:|---:|---:|---|")
    for phase in phases:
        print(row(phase, others))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=BACKENDS, default="sqlite")
    parser.add_argument(
        "--messages", type=int, help="the heavy person's archive: 40000 on sqlite, 5000 on cosmos"
    )
    parser.add_argument("--people", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--think-ms", type=int, default=500)
    parser.add_argument("--forgets", type=int, default=3)
    options = parser.parse_args()
    if options.messages is None:
        options.messages = DEFAULT_MESSAGES[options.backend]
    if not 2 <= options.messages <= EXPORT_LIMIT or options.people < 1 or options.seconds <= 0:
        parser.error("--messages from 2 to 100000, --people at least 1, --seconds above 0")
    if options.forgets < 1 or options.think_ms < 0:
        parser.error("--forgets at least 1, --think-ms not below 0")
    asyncio.run(main_async(options))


if __name__ == "__main__":
    main()
