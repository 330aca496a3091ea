"""The real MemoryBot app on a real port, restartable, for end-to-end tests and benchmarks."""

from __future__ import annotations

import socket
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp
from aiohttp import web

from app import create_app
from config import Settings
from memory import MemoryStore
from model_client import ChatModel


class AppServer:
    """Runs `create_app` on 127.0.0.1; `restart()` builds a fresh app on the same port."""

    def __init__(
        self,
        settings: Settings,
        make_store: Callable[[Settings], MemoryStore],
        make_model: Callable[[Settings], ChatModel],
        auth_overrides: Mapping[str, Any] | None = None,
    ) -> None:
        self.settings = settings
        self.make_store = make_store
        self.make_model = make_model
        self.auth_overrides = auth_overrides
        self.port = free_port()
        self._runner: web.AppRunner | None = None
        self.store: MemoryStore | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self.store = self.make_store(self.settings)
        app = create_app(
            self.settings,
            self.store,
            self.make_model(self.settings),
            auth_overrides=self.auth_overrides,
        )
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def restart(self) -> None:
        await self.stop()
        await self.start()

    async def post(
        self, body: Any, *, raw: bytes | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        """POST an activity to /api/messages; returns the status and the parsed JSON (or text)."""
        send_headers = {"Content-Type": "application/json", **(headers or {})}
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                f"{self.url}/api/messages",
                json=None if raw is not None else body,
                data=raw,
                headers=send_headers,
            ) as response,
        ):
            text = await response.text()
            try:
                return response.status, await response.json(content_type=None)
            except ValueError:
                return response.status, text


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port
