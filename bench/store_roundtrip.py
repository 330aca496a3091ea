"""What one chat turn costs in store time, Cosmos DB against SQLite, and how big a memory grows.

    .venv/bin/python -m bench.store_roundtrip [--turns 500] [--people 10] [--close-connections]

A turn is what the bot does around the model call: `ConversationMemory.prompt_for` (load the
record, search the archive) and then `remember` (one conditional write of the record and the new
archive items). Turns go round `--people` memory keys with realistic message lengths; the first
few are warm-up. Prints the median and 95th percentile per turn for each store, the Cosmos DB
requests per turn (counted by the local server), and the size of one person's Cosmos DB items
after 1,000 turns with the default 20-message window.

Cosmos DB here is the local `@vercel/cosmosdb-server` over HTTPS on loopback, with connections
kept alive as the real gateway does (`--close-connections` reopens one per request, the test
suite's setting): the figures are the client side (SDK, TLS, JSON, the store's logic), not Azure's
network or service time, and its request charge is always 1, so request units are not measured.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from azure.cosmos.aio import CosmosClient

from memory import MemoryStore
from memory.cosmos import RECORD_ITEM_ID, CosmosStore, partition_key_for
from memory.sqlite_store import SQLiteStore
from tests.conftest import conversation_memory
from tests.support.cosmos_server import CosmosServer

WARM_UP_TURNS = 20
GROWTH_TURNS = 1000
SYSTEM_PROMPT = "You are MemoryBot, a helpful assistant that remembers each person."
WORDS = (
    "project budget launch meeting design review customer release plan team schedule "
    "report draft onboarding roadmap metrics feedback travel offsite hiring contract "
    "quarter deadline estimate migration incident dashboard backlog retrospective"
).split()


def sentence(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words)).capitalize() + "."


def user_text(rng: random.Random) -> str:
    """About 100 characters, like a chat message."""
    return sentence(rng, rng.randint(10, 18))


def reply_text(rng: random.Random) -> str:
    """About 400 characters, like a model's answer."""
    return " ".join(sentence(rng, rng.randint(8, 14)) for _ in range(rng.randint(4, 6)))


@dataclass
class Timings:
    """Seconds per measured turn: building the prompt (load and search), and saving the turn."""

    prompt: list[float] = field(default_factory=list)
    save: list[float] = field(default_factory=list)

    @property
    def turn(self) -> list[float]:
        return [p + s for p, s in zip(self.prompt, self.save, strict=True)]


async def time_turns(store: MemoryStore, turns: int, people: int, seed: int) -> Timings:
    """Each turn timed in its two halves, warm-up turns left out."""
    rng = random.Random(seed)
    memory = conversation_memory(store, system_prompt=SYSTEM_PROMPT)
    timings = Timings()
    for turn in range(WARM_UP_TURNS + turns):
        key = f"user/tenant-{turn % people}/person"
        text = user_text(rng)
        started = time.perf_counter()
        await memory.prompt_for(key, text)
        prompted = time.perf_counter()
        await memory.remember(key, text, reply_text(rng))
        saved = time.perf_counter()
        if turn >= WARM_UP_TURNS:
            timings.prompt.append(prompted - started)
            timings.save.append(saved - prompted)
    return timings


async def measured(
    name: str, open_store: Callable[[], Awaitable[MemoryStore]], turns: int, people: int
) -> Timings:
    store = await open_store()
    try:
        timings = await time_turns(store, turns, people, seed=7)
    finally:
        await store.close()
    print(f"{name:<8} turn    {summary(timings.turn)}")
    print(f"{'':<8} prompt  {summary(timings.prompt)}   (load + archive search)")
    print(f"{'':<8} save    {summary(timings.save)}   (conditional write + archive)")
    return timings


def summary(timings: list[float]) -> str:
    median = statistics.median(timings) * 1000
    p95 = statistics.quantiles(timings, n=20)[-1] * 1000
    return f"median {median:6.2f} ms   p95 {p95:6.2f} ms"


async def cosmos_growth(server: CosmosServer) -> dict[str, Any]:
    """Item sizes after GROWTH_TURNS turns of one person, as stored (system properties too)."""
    store = CosmosStore(
        server.endpoint,
        key=server.key,
        database="bench-growth",
        container="memory",
        verify_tls=False,
        create_if_missing=True,
    )
    await store.open()
    memory = conversation_memory(store, system_prompt=SYSTEM_PROMPT)
    rng = random.Random(11)
    key = "user/tenant/one-person"
    try:
        for _ in range(GROWTH_TURNS):
            await memory.remember(key, user_text(rng), reply_text(rng))
    finally:
        await store.close()
    partition = partition_key_for(key)
    async with CosmosClient(server.endpoint, server.key, connection_verify=False) as client:
        container = client.get_database_client("bench-growth").get_container_client("memory")
        record = await container.read_item(RECORD_ITEM_ID, partition_key=partition)
        archive = [
            item
            async for item in container.query_items(
                "SELECT * FROM c WHERE c.pk = @pk AND c.kind = 'message'",
                parameters=[{"name": "@pk", "value": partition}],
                partition_key=partition,
            )
        ]
    sizes = sorted(len(json.dumps(item, ensure_ascii=False).encode()) for item in archive)
    return {
        "record_bytes": len(json.dumps(record, ensure_ascii=False).encode()),
        "record_messages": len(record["messages"]),
        "archive_items": len(archive),
        "archive_item_median_bytes": statistics.median(sizes),
    }


async def main_async(arguments: argparse.Namespace) -> None:
    server = CosmosServer(keep_alive=not arguments.close_connections)
    server.start()
    try:
        print(
            f"{arguments.turns} turns per store over {arguments.people} people, after "
            f"{WARM_UP_TURNS} "
            f"warm-up turns; Cosmos DB connections "
            f"{'closed after each request' if arguments.close_connections else 'kept alive'}"
        )

        async def open_cosmos() -> MemoryStore:
            store = CosmosStore(
                server.endpoint,
                key=server.key,
                database="bench",
                container="memory",
                verify_tls=False,
                create_if_missing=True,
            )
            await store.open()
            server.clear_requests()
            return store

        with tempfile.TemporaryDirectory() as scratch:

            async def open_sqlite() -> MemoryStore:
                store = SQLiteStore(Path(scratch) / "memory.db")
                await store.open()
                return store

            await measured("cosmos", open_cosmos, arguments.turns, arguments.people)
            requests = server.requests()
            await measured("sqlite", open_sqlite, arguments.turns, arguments.people)

        turns = WARM_UP_TURNS + arguments.turns
        kinds: dict[str, int] = {}
        for request in requests:
            kind = request["method"] + (" record" if "/docs/record" in request["path"] else "")
            kinds[kind] = kinds.get(kind, 0) + 1
        per_turn = ", ".join(f"{kind} {count / turns:.2f}" for kind, count in sorted(kinds.items()))
        print(f"cosmos requests per turn: {len(requests) / turns:.2f} ({per_turn})")

        growth = await cosmos_growth(server)
        print(
            f"after {GROWTH_TURNS} turns of one person: record item {growth['record_bytes']:,} "
            f"bytes ({growth['record_messages']} messages kept), "
            f"{growth['archive_items']:,} archive items of "
            f"{growth['archive_item_median_bytes']:,.0f} bytes (median)"
        )
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--turns", type=int, default=500, help="measured turns per store")
    parser.add_argument("--people", type=int, default=10, help="memory keys the turns go round")
    parser.add_argument(
        "--close-connections",
        action="store_true",
        help="reopen a connection per Cosmos DB request, as the test suite's server does",
    )
    arguments = parser.parse_args()
    if arguments.turns < 20 or arguments.people < 1:
        parser.error("--turns must be at least 20 and --people at least 1")
    asyncio.run(main_async(arguments))


if __name__ == "__main__":
    main()
