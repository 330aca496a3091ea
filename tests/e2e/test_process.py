"""`python app.py` as an operator runs it: nothing configured, one start-up line, clean shutdown."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support.app_server import free_port
from tests.support.bot_process import REPO, BotProcess
from tests.support.fake_connector import FakeConnector

pytestmark = pytest.mark.integration


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
