"""`python app.py` as an operator runs it: nothing configured, one start-up line, clean shutdown."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from tests.support.activities import emulator_message
from tests.support.app_server import free_port
from tests.support.fake_connector import FakeConnector

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


class BotProcess:
    def __init__(self, workdir: Path, env: dict[str, str]) -> None:
        self.workdir = workdir
        self.env = env
        self.port = int(env["PORT"])
        self.process: asyncio.subprocess.Process | None = None
        self.log = ""

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
                    async with session.get(f"http://127.0.0.1:{self.port}/healthz") as response:
                        if response.status == 200:
                            return line
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.1)
        raise AssertionError(f"the bot did not start serving: {line}")

    async def say(self, text: str, connector: FakeConnector) -> str:
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                f"http://127.0.0.1:{self.port}/api/messages",
                json=emulator_message(text, service_url=connector.url),
            ) as response,
        ):
            assert response.status in (200, 201)
        return connector.texts()[-1]

    async def terminate(self) -> int:
        assert self.process is not None
        assert self.process.stdout is not None
        self.process.send_signal(signal.SIGTERM)
        rest = await asyncio.wait_for(self.process.stdout.read(), 30)
        self.log += rest.decode()
        return await self.process.wait()


@pytest.fixture
async def bot_process(tmp_path: Path) -> AsyncIterator[BotProcess]:
    env = {"PATH": os.environ.get("PATH", ""), "PORT": str(free_port()), "HOME": str(tmp_path)}
    process = BotProcess(tmp_path, env)
    yield process
    if process.process is not None and process.process.returncode is None:
        process.process.kill()
        await process.process.wait()


async def test_with_nothing_configured_it_runs_offline_on_sqlite_and_remembers_across_restarts(
    bot_process: BotProcess, connector: FakeConnector, tmp_path: Path
) -> None:
    startup = await bot_process.start()
    assert "store: sqlite (data/memory.db)" in startup
    assert "model: offline" in startup

    first = await bot_process.say("I'm planning the Falcon launch", connector)
    assert "Offline model" in first
    assert "OPENAI_BASE_URL" in first
    assert "first message" in first
    assert await bot_process.terminate() == 0
    assert "Traceback" not in bot_process.log

    database = tmp_path / "data" / "memory.db"
    with sqlite3.connect(database) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert not (tmp_path / "data" / "memory.db-wal").exists() or (
        (tmp_path / "data" / "memory.db-wal").stat().st_size == 0
    )

    await bot_process.start()
    second = await bot_process.say("what was I planning?", connector)
    assert "1 earlier message" in second
    assert "I'm planning the Falcon launch" in second
    assert await bot_process.terminate() == 0


async def run_until_exit(workdir: Path, env: dict[str, str]) -> tuple[int, str, str]:
    """Runs `python app.py` expecting it to stop on its own; its exit code, stdout and stderr."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(REPO / "app.py"),
        cwd=workdir,
        env={"PATH": os.environ.get("PATH", ""), **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_a_bad_setting_stops_start_up_with_one_clear_message(tmp_path: Path) -> None:
    code, out, message = await run_until_exit(
        tmp_path, {"PORT": "eighty", "COSMOS_KEY": "s3cr3t-value", "MEMORY_STORE": "cosmos"}
    )
    assert code == 2
    assert "PORT" in message
    assert "COSMOS_ENDPOINT" in message
    assert "Traceback" not in message
    assert "s3cr3t-value" not in message + out


async def test_an_unusable_store_stops_start_up_with_one_clear_line(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    code, out, err = await run_until_exit(
        tmp_path, {"PORT": str(free_port()), "SQLITE_PATH": str(blocker / "memory.db")}
    )
    assert code == 3
    assert "MemoryBot cannot start: cannot open the SQLite file" in out + err
    assert "Traceback" not in out + err
