"""The original design, as the seed article builds it, for the side-by-side run in `bench.load`.

    PORT=3980 OPENAI_BASE_URL=http://127.0.0.1:8000/v1 OPENAI_MODEL=m \\
        .venv/bin/python -m bench.original_bot

For every message it makes a new Cosmos DB client (on SQLite: a new connection) and a new OpenAI
client, reads the person's record, calls the model with the last 20 messages, replies, and
upserts the last 20 messages blindly: no ETag, so of two turns of one person at once, the later
write silently drops the other's messages. Everything else (activity handling, record format,
reply, model settings) is `bench/minimal_bot.py`'s, so the two differ only in what the original
design did. The clients are the async ones (`azure.cosmos.aio`, `openai.AsyncOpenAI`): the
kinder reading of the article, since synchronous clients would also block the event loop.
"""

from __future__ import annotations

import sys
from typing import Any

import aiohttp
from aiohttp import web

from bench.minimal_bot import BotConfig, base_app, new_model_client, records_for, run_turn, serve


def create_app(config: BotConfig) -> web.Application:
    sessions: list[aiohttp.ClientSession] = []

    async def run(activity: dict[str, Any]) -> None:
        records = records_for(config)  # a new store client for this message
        model = new_model_client(config)  # and a new model client
        try:
            await records.open(prepare=False)
            await run_turn(config, activity, records, model, sessions[0])
        finally:
            await records.close()
            await model.close()

    async def start(_: web.Application) -> None:
        # The reply session is shared, as in the minimal bot: only the store and model clients
        # are made per message, which is what the comparison is about.
        sessions.append(aiohttp.ClientSession())
        records = records_for(config)
        try:
            await records.open(prepare=True)
        finally:
            await records.close()

    async def stop(_: web.Application) -> None:
        for session in sessions:
            await session.close()

    app = base_app(run)
    app.on_startup.append(start)
    app.on_cleanup.append(stop)
    return app


if __name__ == "__main__":
    sys.exit(serve(create_app))
