"""Shared fixtures: store backends for the shared suite, and the fake servers tests talk to."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable
from pathlib import Path
from typing import Protocol

import pytest

from memory import MemoryStore
from memory.sqlite_store import SQLiteStore


class StoreFactory(Protocol):
    def __call__(self, *, reopen: bool = False) -> Awaitable[MemoryStore]: ...


@pytest.fixture(params=["sqlite"])
async def store_factory(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[StoreFactory]:
    """Opens stores of one backend; `reopen=True` opens the same storage again."""
    opened: list[MemoryStore] = []

    async def open_store(*, reopen: bool = False) -> MemoryStore:
        store = SQLiteStore(tmp_path / "memory.db")
        await store.open()
        opened.append(store)
        return store

    yield open_store
    for store in opened:
        await store.close()
