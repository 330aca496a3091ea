"""The minimal bot: the yardstick `bench.load` holds MemoryBot against.

    PORT=3979 OPENAI_BASE_URL=http://127.0.0.1:8000/v1 OPENAI_MODEL=m \\
        .venv/bin/python -m bench.minimal_bot

It only loads, calls and saves, with clients made once and reused: one `openai.AsyncOpenAI`, one
store client (an aiosqlite connection, or an async `CosmosClient`), one aiohttp session for
replies. A turn: load the person's record, call the model with the system prompt, the last
`MEMORY_MAX_MESSAGES` (20) messages and the new one, reply to the activity's `serviceUrl`, then
save the record with a blind upsert (no ETag: two turns of one person at once can lose messages).

No botbuilder: activities are plain JSON (Emulator mode, no auth, replies only to a loopback
`serviceUrl`), replies a plain `POST {serviceUrl}/v3/conversations/{id}/activities/{activityId}`.
It reads the app's own variables (PORT, OPENAI_*, MEMORY_STORE, SQLITE_PATH, COSMOS_*,
MEMORY_MAX_MESSAGES, SYSTEM_PROMPT), so the benchmark starts every bot with one environment.
`bench/original_bot.py` shares the parts here and changes only what the original design did.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote, urlparse

import aiohttp
import aiosqlite
import openai
from aiohttp import web
from azure.cosmos import PartitionKey
from azure.cosmos.aio import ContainerProxy, CosmosClient
from azure.cosmos.exceptions import CosmosResourceNotFoundError
from openai.types.chat import ChatCompletionMessageParam

from config import DEFAULT_SYSTEM_PROMPT

Turn = dict[str, str]  # {"role": "user" | "assistant", "content": "..."}
ANSWERED = 201
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


@dataclass(frozen=True, slots=True)
class BotConfig:
    """What the bench bots read from the environment (the app's variable names)."""

    port: int
    model_base_url: str
    model: str
    model_api_key: str
    store: str
    sqlite_path: Path
    cosmos_endpoint: str
    cosmos_key: str
    cosmos_database: str
    cosmos_container: str
    cosmos_verify_tls: bool
    window: int
    system_prompt: str

    @classmethod
    def from_environment(cls, env: Mapping[str, str] | None = None) -> BotConfig:
        env = os.environ if env is None else env
        endpoint = env.get("COSMOS_ENDPOINT", "")
        return cls(
            port=int(env.get("PORT", "3979")),
            model_base_url=env["OPENAI_BASE_URL"],
            model=env.get("OPENAI_MODEL", "bench-model"),
            model_api_key=env.get("OPENAI_API_KEY", "not-needed"),
            store=env.get("MEMORY_STORE", "cosmos" if endpoint else "sqlite"),
            sqlite_path=Path(env.get("SQLITE_PATH", "data/bench-bot.db")),
            cosmos_endpoint=endpoint,
            cosmos_key=env.get("COSMOS_KEY", ""),
            cosmos_database=env.get("COSMOS_DATABASE", "memorybot"),
            cosmos_container=env.get("COSMOS_CONTAINER", "memory"),
            cosmos_verify_tls=env.get("COSMOS_VERIFY_TLS", "true").lower() not in ("false", "0"),
            window=int(env.get("MEMORY_MAX_MESSAGES", "20")),
            system_prompt=env.get("SYSTEM_PROMPT", DEFAULT_SYSTEM_PROMPT),
        )


class Records(Protocol):
    """A person's last messages, read and written whole."""

    async def open(self, *, prepare: bool) -> None:
        """Connect; with `prepare`, create the table or container first."""

    async def load(self, key: str) -> list[Turn]: ...

    async def save(self, key: str, messages: list[Turn]) -> None:
        """A blind upsert: whatever was stored is replaced, whoever wrote it."""

    async def close(self) -> None: ...


class SQLiteRecords:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._db: aiosqlite.Connection | None = None

    async def open(self, *, prepare: bool) -> None:
        if prepare:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = await aiosqlite.connect(self.path, isolation_level=None, timeout=5.0)
        if prepare:
            await self._db.execute("PRAGMA journal_mode=WAL")
            await self._db.execute(
                "CREATE TABLE IF NOT EXISTS conversations (key TEXT PRIMARY KEY, body TEXT)"
            )
        # Per connection, as MemoryBot's store sets it: the fair comparison.
        await self._db.execute("PRAGMA synchronous=NORMAL")

    def _connection(self) -> aiosqlite.Connection:
        if self._db is None:
            raise RuntimeError("SQLiteRecords is not open")
        return self._db

    async def load(self, key: str) -> list[Turn]:
        async with self._connection().execute(
            "SELECT body FROM conversations WHERE key = ?", (key,)
        ) as cursor:
            row = await cursor.fetchone()
        return list(json.loads(row[0])) if row else []

    async def save(self, key: str, messages: list[Turn]) -> None:
        await self._connection().execute(
            "INSERT OR REPLACE INTO conversations (key, body) VALUES (?, ?)",
            (key, json.dumps(messages)),
        )

    async def close(self) -> None:
        db, self._db = self._db, None
        if db is not None:
            await db.close()


class CosmosRecords:
    """One item per person, partitioned by its id."""

    def __init__(self, config: BotConfig) -> None:
        self.config = config
        self._client: CosmosClient | None = None
        self._container: ContainerProxy | None = None

    async def open(self, *, prepare: bool) -> None:
        config = self.config
        client = CosmosClient(
            config.cosmos_endpoint,
            config.cosmos_key,
            connection_verify=config.cosmos_verify_tls,
        )
        self._client = client  # closed by close() even when the first request fails
        await client.__aenter__()
        if prepare:
            database = await client.create_database_if_not_exists(config.cosmos_database)
            self._container = await database.create_container_if_not_exists(
                config.cosmos_container, partition_key=PartitionKey(path="/id")
            )
        else:
            database_client = client.get_database_client(config.cosmos_database)
            self._container = database_client.get_container_client(config.cosmos_container)

    def _opened(self) -> ContainerProxy:
        if self._container is None:
            raise RuntimeError("CosmosRecords is not open")
        return self._container

    async def load(self, key: str) -> list[Turn]:
        item_id = cosmos_id(key)
        try:
            item = await self._opened().read_item(item_id, partition_key=item_id)
        except CosmosResourceNotFoundError:
            return []
        return list(item["messages"])

    async def save(self, key: str, messages: list[Turn]) -> None:
        await self._opened().upsert_item({"id": cosmos_id(key), "key": key, "messages": messages})

    async def close(self) -> None:
        client, self._client, self._container = self._client, None, None
        if client is not None:
            await client.close()


def cosmos_id(key: str) -> str:
    """Cosmos DB ids may not hold / \\ ? #; the bench's keys hold none of them otherwise."""
    return "".join("_" if c in "/\\?#" else c for c in key)


def records_for(config: BotConfig) -> Records:
    if config.store == "cosmos":
        return CosmosRecords(config)
    return SQLiteRecords(config.sqlite_path)


def new_model_client(config: BotConfig) -> openai.AsyncOpenAI:
    """Configured as MemoryBot's: same timeout and retries."""
    return openai.AsyncOpenAI(
        base_url=config.model_base_url,
        api_key=config.model_api_key,
        timeout=openai.Timeout(30.0, connect=10.0),
        max_retries=2,
    )


def memory_key(activity: dict[str, Any]) -> str:
    """Channel and sender, as MemoryBot keys the Emulator (never a display name)."""
    return f"{activity['channelId']}:{activity['from']['id']}"


def problem_with(activity: Any) -> str | None:
    if not isinstance(activity, dict):
        return "not an activity"
    service_url = activity.get("serviceUrl")
    if not isinstance(service_url, str) or urlparse(service_url).hostname not in LOOPBACK_HOSTS:
        return "serviceUrl must be a loopback http(s) URL (the bench bots reply nowhere else)"
    for field in ("conversation", "from", "recipient"):
        if not isinstance(activity.get(field), dict) or not activity[field].get("id"):
            return f"{field}.id is missing"
    if not isinstance(activity.get("id"), str) or not isinstance(activity.get("channelId"), str):
        return "id and channelId are needed"
    return None


async def run_turn(
    config: BotConfig,
    activity: dict[str, Any],
    records: Records,
    model: openai.AsyncOpenAI,
    replies: aiohttp.ClientSession,
) -> None:
    """Load, call the model, reply, save: the whole of a turn."""
    key = memory_key(activity)
    text = str(activity["text"])
    history = await records.load(key)
    recent = history[-config.window :]
    messages: list[ChatCompletionMessageParam] = [
        {"role": "system", "content": config.system_prompt}
    ]
    for message in recent:
        if message["role"] == "assistant":
            messages.append({"role": "assistant", "content": message["content"]})
        else:
            messages.append({"role": "user", "content": message["content"]})
    messages.append({"role": "user", "content": text})
    completion = await model.chat.completions.create(model=config.model, messages=messages)
    answer = completion.choices[0].message.content or ""
    await send_reply(replies, activity, answer)
    turn = [{"role": "user", "content": text}, {"role": "assistant", "content": answer}]
    await records.save(key, [*recent, *turn][-config.window :])


async def send_reply(session: aiohttp.ClientSession, activity: dict[str, Any], text: str) -> None:
    conversation = activity["conversation"]
    url = (
        f"{activity['serviceUrl'].rstrip('/')}/v3/conversations/"
        f"{quote(conversation['id'], safe='')}/activities/{quote(activity['id'], safe='')}"
    )
    reply = {
        "type": "message",
        "text": text,
        "channelId": activity["channelId"],
        "serviceUrl": activity["serviceUrl"],
        "from": activity["recipient"],
        "recipient": activity["from"],
        "conversation": conversation,
        "replyToId": activity["id"],
    }
    async with session.post(url, json=reply) as response:
        response.raise_for_status()


TurnRunner = Callable[[dict[str, Any]], Awaitable[None]]


def messages_endpoint(run: TurnRunner) -> Callable[[web.Request], Awaitable[web.Response]]:
    """POST /api/messages: message activities with text run a turn; others are acknowledged."""

    async def handle(request: web.Request) -> web.Response:
        try:
            activity = json.loads(await request.read())
        except ValueError:
            return web.json_response({"error": "not JSON"}, status=400)
        problem = problem_with(activity)
        if problem:
            return web.json_response({"error": problem}, status=400)
        if activity.get("type") == "message" and isinstance(activity.get("text"), str):
            await run(activity)
        return web.Response(status=ANSWERED)

    return handle


async def healthz(_: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def base_app(run: TurnRunner) -> web.Application:
    app = web.Application()
    app.router.add_post("/api/messages", messages_endpoint(run))
    app.router.add_get("/healthz", healthz)
    return app


def create_app(config: BotConfig) -> web.Application:
    """The minimal bot: every client made at start-up, reused by every turn."""
    records = records_for(config)
    model = new_model_client(config)
    sessions: list[aiohttp.ClientSession] = []

    async def run(activity: dict[str, Any]) -> None:
        await run_turn(config, activity, records, model, sessions[0])

    async def start(_: web.Application) -> None:
        sessions.append(aiohttp.ClientSession())
        await records.open(prepare=True)

    async def stop(_: web.Application) -> None:
        await records.close()
        await model.close()
        for session in sessions:
            await session.close()

    app = base_app(run)
    app.on_startup.append(start)
    app.on_cleanup.append(stop)
    return app


def serve(make_app: Callable[[BotConfig], web.Application]) -> int:
    try:
        config = BotConfig.from_environment()
    except (KeyError, ValueError) as error:
        print(f"bench bot cannot start: bad or missing setting {error}", file=sys.stderr)
        return 2
    web.run_app(make_app(config), host="127.0.0.1", port=config.port, print=None, access_log=None)
    return 0


if __name__ == "__main__":
    sys.exit(serve(create_app))
