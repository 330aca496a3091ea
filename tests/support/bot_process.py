"""`python app.py` as its own process, as an operator runs it, for end-to-end tests."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path
from typing import Any

import aiohttp

from tests.support.activities import emulator_message
from tests.support.fake_connector import FakeConnector

REPO = Path(__file__).resolve().parents[2]


class BotProcess:
    def __init__(self, workdir: Path, env: dict[str, str]) -> None:
        self.workdir = workdir
        self.env = env
        self.port = int(env["PORT"])
        self.process: asyncio.subprocess.Process | None = None
        self.log = ""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> str:
        """Starts the bot and returns its start-up line."""
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            str(REPO / "app.py"),
            cwd=self.workdir,
            env=self.env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        assert self.process.stdout is not None
        line = (await asyncio.wait_for(self.process.stdout.readline(), 30)).decode()
        self.log += line
        async with aiohttp.ClientSession() as session:
            for _ in range(100):
                try:
                    async with session.get(f"{self.url}/healthz") as response:
                        if response.status == 200:
                            return line
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.1)
        raise AssertionError(f"the bot did not start serving: {line}")

    async def say(self, text: str, connector: FakeConnector) -> str:
        assert await self.post(emulator_message(text, service_url=connector.url)) in (200, 201)
        return connector.texts()[-1]

    async def post(self, activity: dict[str, Any]) -> int:
        """POSTs `activity` to /api/messages; its status."""
        async with (
            aiohttp.ClientSession() as session,
            session.post(f"{self.url}/api/messages", json=activity) as response,
        ):
            return response.status

    async def terminate(self) -> int:
        assert self.process is not None
        assert self.process.stdout is not None
        self.process.send_signal(signal.SIGTERM)
        rest = await asyncio.wait_for(self.process.stdout.read(), 30)
        self.log += rest.decode()
        return await self.process.wait()
