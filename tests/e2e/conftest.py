"""End-to-end fixtures: the real app on a real port, a fake connector, a local model server."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

from config import settings_from
from model_client import create_chat_model
from tests.support.app_server import AppServer
from tests.support.cosmos_server import CosmosServer
from tests.support.fake_connector import FakeConnector
from tests.support.fake_openai import FakeOpenAI
from wiring import create_store

AppFactory = Callable[..., Coroutine[Any, Any, AppServer]]


@pytest.fixture
async def model_server() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI() as server:
        yield server


@pytest.fixture
async def connector() -> AsyncIterator[FakeConnector]:
    async with FakeConnector() as server:
        yield server


@pytest.fixture
def base_env(model_server: FakeOpenAI, tmp_path: Path) -> dict[str, str]:
    """Settings for a bot that talks to the local model server and keeps memory in tmp_path."""
    return {
        "OPENAI_BASE_URL": model_server.base_url,
        "OPENAI_API_KEY": "test-key",
        "OPENAI_MODEL": "test-model",
        "MODEL_MAX_RETRIES": "0",
        "MODEL_TIMEOUT_SECONDS": "5",
        # Item extraction asks the model in the background; the tests of items turn it on.
        "MEMORY_EXTRACT_EVERY": "0",
        "SQLITE_PATH": str(tmp_path / "memory.db"),
    }


@pytest.fixture
async def make_app(base_env: dict[str, str]) -> AsyncIterator[AppFactory]:
    """Starts the real app with `base_env` plus overrides; every app is stopped afterwards."""
    started: list[AppServer] = []

    async def start(**overrides: str) -> AppServer:
        settings = settings_from({**base_env, **overrides})
        server = AppServer(settings, create_store, create_chat_model)
        await server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        await server.stop()


@pytest.fixture
async def bot(make_app: AppFactory) -> AppServer:
    return await make_app()


@pytest.fixture
def cosmos_env(cosmos: CosmosServer, cosmos_database: str) -> dict[str, str]:
    """Settings that put the app's memory in a fresh database on the local Cosmos DB server."""
    return {
        "MEMORY_STORE": "cosmos",
        "COSMOS_ENDPOINT": cosmos.endpoint,
        "COSMOS_KEY": cosmos.key,
        "COSMOS_VERIFY_TLS": "false",
        "COSMOS_CREATE_IF_MISSING": "true",
        "COSMOS_DATABASE": cosmos_database,
    }
