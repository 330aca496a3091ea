"""Browser fixtures: a local model server, the bot as its own process, the Agents Playground, and
its page in headless Chromium (Debian's `/usr/bin/chromium`, driven by Playwright for Python).

On a failure, a screenshot of the page, its HTML, the bot's log and the Playground's log are kept
in the test's `tmp_path` (under pytest's base temporary directory; `--basetemp DIR` puts them
in DIR), and the failure report names the directory.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import AsyncIterator, Generator
from pathlib import Path

import pytest
from playwright.async_api import Browser, async_playwright

from bots.wording import PERSONAL_CHAT
from tests.browser.playground import PlaygroundPage, PlaygroundProcess, as_shown
from tests.support.app_server import free_port
from tests.support.bot_process import BotProcess
from tests.support.fake_openai import FakeOpenAI, Message, echo_reply, message_text

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",  # root in a container
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
# Streamed words arrive this far apart unless a test slows them further.
CHUNK_DELAY_SECONDS = 0.05

_REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Keeps each phase's report on the test, so that fixtures can tell that it failed."""
    report = yield
    item.stash.setdefault(_REPORTS, {})[report.when] = report
    return report


def _failed_report(request: pytest.FixtureRequest) -> pytest.TestReport | None:
    reports = request.node.stash.get(_REPORTS, {})
    return next((r for r in reports.values() if r.failed), None)


def _artifacts(request: pytest.FixtureRequest, tmp_path: Path) -> Path | None:
    """The directory for this failed test's screenshot and logs (None while nothing failed),
    named in its failure report."""
    report = _failed_report(request)
    if report is None:
        return None
    directory = _made(tmp_path / "artifacts")
    section = ("browser artifacts", f"screenshot and logs: {directory}")
    if section not in report.sections:
        report.sections.append(section)
    return directory


def _made(directory: Path) -> Path:
    directory.mkdir(exist_ok=True)
    return directory


async def _save_page(page: PlaygroundPage, directory: Path) -> None:
    await page.page.screenshot(path=directory / "page.png", full_page=True)
    (directory / "page.html").write_text(await page.page.content())


_QUESTION = re.compile(r"what is my (\w+) called\??$", re.IGNORECASE)


def remembering_model(messages: list[Message]) -> str:
    """A model that answers a prompt ending in "what is my X called?" from that prompt alone,
    and echoes any other: what it knows is exactly what the bot put in the prompt. (The bot's
    background calls, such as extracting memory items, get an echo they cannot read.)"""
    *earlier, last = messages
    asked = _QUESTION.search(message_text(last))
    if asked is None:
        return echo_reply(messages)
    thing = asked.group(1)
    for message in earlier:
        told = re.search(rf"\bmy {thing} is called (\w+)", message_text(message), re.IGNORECASE)
        if told:
            return f"Your {thing} is called {told.group(1)}."
    return f"I don't know what your {thing} is called."


@pytest.fixture
async def model_server() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI(remembering_model, chunk_delay=CHUNK_DELAY_SECONDS) as server:
        yield server


@pytest.fixture
async def bot(
    model_server: FakeOpenAI, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[BotProcess]:
    """`python app.py` with its memory in tmp_path; a test may terminate and start it again."""
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "PORT": str(free_port()),
        "OPENAI_BASE_URL": model_server.base_url,
        "OPENAI_API_KEY": "test-key",
        "OPENAI_MODEL": "test-model",
        "MODEL_MAX_RETRIES": "0",
        "MODEL_TIMEOUT_SECONDS": "10",
        "SQLITE_PATH": str(tmp_path / "memory.db"),
    }
    process = BotProcess(tmp_path, env)
    await process.start()
    yield process
    if process.process is not None and process.process.returncode is None:
        await process.terminate()
    artifacts = _artifacts(request, tmp_path)
    if artifacts is not None:
        (artifacts / "bot.log").write_text(process.log)


@pytest.fixture
async def playground(
    bot: BotProcess, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[PlaygroundProcess]:
    process = PlaygroundProcess(tmp_path / "playground", bot.url, free_port())
    await process.start()
    yield process
    await process.stop()
    artifacts = _artifacts(request, tmp_path)
    if artifacts is not None:
        for log in (process.output, process.log):
            if log.exists():
                shutil.copy(log, artifacts / log.name)


@pytest.fixture
def chromium() -> Path:
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: apt-get install -y --no-install-recommends chromium",
            pytrace=False,
        )
    return CHROMIUM


@pytest.fixture
async def browser(chromium: Path) -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=chromium,
            args=CHROMIUM_ARGS,
            headless=True,  # adds --headless
        )
        yield launched
        await launched.close()


@pytest.fixture
async def chat(
    browser: Browser,
    playground: PlaygroundProcess,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> AsyncIterator[PlaygroundPage]:
    """The Playground's page, open at the personal chat with the bot's welcome shown."""
    context = await browser.new_context(viewport={"width": 1400, "height": 900})
    page = PlaygroundPage(await context.new_page())
    try:
        await page.open(playground.url, as_shown(PERSONAL_CHAT.welcome))
    except BaseException:
        await _save_page(page, _made(tmp_path / "artifacts"))
        await context.close()
        raise
    yield page
    artifacts = _artifacts(request, tmp_path)
    if artifacts is not None:
        await _save_page(page, artifacts)
    await context.close()
