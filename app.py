"""MemoryBot's entry point: wiring only.

`create_app` takes its store and model from the caller (tests hand in their own); `main` builds
them from the settings (`wiring`), logs one line naming what is in use, and serves until SIGTERM
or Ctrl-C, when the app's cleanup closes the store and the model client.
"""

from __future__ import annotations

import gc
import logging
import sys
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web

from bots import MemoryBot, close_adapter, create_adapter, messages_handler
from bots.limits import RateLimiter
from config import ConfigError, Settings, load_settings
from memory import Ledger, MemoryStore, StoreError
from model_client import ChatModel, create_chat_model
from telemetry import configure_exporter
from wiring import create_memory, create_store, describe_embeddings

log = logging.getLogger("memorybot")


def create_app(
    settings: Settings,
    store: MemoryStore,
    model: ChatModel,
    *,
    auth_overrides: Mapping[str, Any] | None = None,
) -> web.Application:
    memory = create_memory(settings, store, model)
    bot = MemoryBot(
        memory,
        model,
        ledger=Ledger(store),
        allowed_tenant_ids=settings.allowed_tenant_ids,
        rate_limiter=RateLimiter(settings.rate_limit_per_minute),
        trust_env=settings.proxy_configured,
    )
    adapter = create_adapter(settings, auth_overrides)

    app = web.Application(client_max_size=settings.max_request_bytes)
    handler = messages_handler(adapter, bot, tokens_required=settings.auth_enabled)
    app.router.add_post("/api/messages", handler)
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/readyz", _readiness(store))

    async def open_store(_: web.Application) -> None:
        await store.open()

    async def close_clients(_: web.Application) -> None:
        try:
            await memory.close()
            await model.close()
            await close_adapter(adapter)
        finally:
            await store.close()

    app.on_startup.append(open_store)
    app.on_cleanup.append(close_clients)
    return app


async def _healthz(_: web.Request) -> web.Response:
    """Liveness: the process serves."""
    return web.json_response({"status": "ok"})


READINESS_KEY = "readiness-probe"  # never a person's: keys have a kind prefix (bots/identity.py)


def _readiness(store: MemoryStore) -> Callable[[web.Request], Awaitable[web.Response]]:
    """Readiness: the memory store answers a read (App Service's health check uses it)."""

    async def readyz(_: web.Request) -> web.Response:
        try:
            await store.load(READINESS_KEY)
        except StoreError as error:
            log.warning("readiness: the memory store did not answer: %s", type(error).__name__)
            return web.json_response(
                {"status": "unavailable", "error": "The memory store cannot be reached."},
                status=503,
            )
        return web.json_response({"status": "ready"})

    return readyz


def main() -> int:
    try:
        settings = load_settings()
    except ConfigError as error:
        print(error, file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("azure").setLevel(logging.WARNING)  # SDK request logs: noise, not signal
    exporting = configure_exporter(settings.applicationinsights_connection_string)
    store = create_store(settings)
    model = create_chat_model(settings)
    auth = "Bot Framework tokens required" if settings.auth_enabled else "no auth (Emulator mode)"
    log.info(
        "MemoryBot on http://%s:%d/api/messages; store: %s; model: %s; semantic recall: %s; %s%s",
        settings.host,
        settings.port,
        store.describe(),
        model.describe(),
        describe_embeddings(settings, model),
        auth,
        "; telemetry to Application Insights" if exporting else "",
    )
    app = create_app(settings, store, model)
    # Everything built so far (modules, clients, the app) lives as long as the process: keep it
    # out of the garbage collector's full passes, which otherwise walk it again and again.
    gc.freeze()
    try:
        web.run_app(app, host=settings.host, port=settings.port, print=None)
    except StoreError as error:
        log.error("MemoryBot cannot start: %s", error)
        return 3
    except OSError as error:
        log.error("MemoryBot cannot listen on %s:%d: %s", settings.host, settings.port, error)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
