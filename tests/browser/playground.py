"""The Microsoft 365 Agents Playground (npm) as its own process, and its page as a person sees it.

`PlaygroundProcess` runs `node_modules/.bin/agentsplayground` against the bot's endpoint on the
msteams channel; it acts as the Bot Framework connector and serves a Teams-like page.
`PlaygroundPage` drives that page with Playwright: it reads the messages shown, types, @mentions
the bot, switches between personal chat, group chat and channel, and presses card buttons.

What the page is read by (checked against 0.2.28; a new version may rename any of it):
- the message box: the only `role=textbox` of a chat (a Lexical editor); send: the button named
  "Send Message"; in a channel, the first textbox is "Start a new post", sent with "Post";
- a message: the element holding a `[aria-label="Message header"]`; a bot's header has a
  `[aria-label="Message author"]`, the person's own has none; a bot's text is in `.fai-OutputCard`
  (Fluent AI), while it streams followed by a `|` cursor;
- the AI label: `.fai-AiGeneratedDisclaimer`; feedback: the buttons named "Like" and "Dislike";
- conversations: `role=treeitem` named "Personal Chat", "Group Chat", "My Team - General";
- @mention: typing `@` opens a `role=listbox` of `role=menuitem`s, the bot's named "Test Bot";
- card buttons: Adaptive Cards' `button`s, named by their titles.

In a group chat or channel the Playground sends the bot only the messages that @mention it, as
Teams does: the bot's own check for a mention is tested in tests/e2e, not here.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from playwright.async_api import Locator, Page, Route, expect

from tests.support.bot_process import REPO

PLAYGROUND = REPO / "node_modules" / ".bin" / "agentsplayground"
BOT_NAME = "Test Bot"  # the Playground's name for the bot it talks to (its default config)
WAIT_SECONDS = 20.0

T = TypeVar("T")


class PlaygroundProcess:
    """`agentsplayground -e <bot>/api/messages -c msteams -p <port>`, no browser, no telemetry."""

    def __init__(self, workdir: Path, bot_url: str, port: int) -> None:
        self.workdir = workdir
        self.endpoint = f"{bot_url}/api/messages"
        self.port = port
        self.output = workdir / "playground.out"
        self.log = workdir / "playground.log"
        self.process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        if not PLAYGROUND.exists():
            raise RuntimeError(f"{PLAYGROUND} is missing: run `npm ci` in {REPO}")
        self.workdir.mkdir(parents=True, exist_ok=True)
        env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(self.workdir),
            "TEAMSAPPTESTER_BROWSER": "none",  # it would open the page in a browser otherwise
            "M365_AGENTS_PLAYGROUND_LOGFILE": str(self.log),  # default: ./devTools/
        }
        with self.output.open("wb") as output:
            self.process = await asyncio.create_subprocess_exec(
                str(PLAYGROUND),
                *("-e", self.endpoint, "-c", "msteams", "-p", str(self.port)),
                "--disable-telemetry",
                cwd=self.workdir,
                env=env,
                stdout=output,
                stderr=asyncio.subprocess.STDOUT,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            # It takes another port when the one asked for is taken, and says which.
            listening = re.search(r"Listening on (\d+)", self.output.read_text(errors="replace"))
            if listening:
                self.port = int(listening.group(1))
                return
            if self.process.returncode is not None:
                break
            await asyncio.sleep(0.1)
        raise RuntimeError(f"the Playground did not start: {self.output.read_text()}")

    async def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.returncode is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), 10)
        except TimeoutError:
            process.kill()
            await process.wait()


@dataclass(frozen=True)
class Shown:
    """One message on the page, as a person sees it."""

    by_bot: bool
    text: str
    streaming: bool  # the text is still coming (the cursor is shown)
    ai_label: bool  # "AI generated"
    feedback: bool  # the Like and Dislike buttons


# One snapshot of every message in the open chat, read in one go so that a streaming message
# is never read half-updated.
_READ_MESSAGES = r"""
() => [...document.querySelectorAll('[aria-label="Message header"]')].map((header) => {
  const item = header.parentElement;
  const card = item.querySelector('.fai-OutputCard');
  const raw = (card ?? item.lastElementChild).innerText.trim();
  const streaming = /\n*\|$/.test(raw);
  return {
    by_bot: header.querySelector('[aria-label="Message author"]') !== null,
    text: raw.replace(/\s*\|$/, '').trim(),
    streaming,
    ai_label: item.querySelector('.fai-AiGeneratedDisclaimer') !== null,
    feedback: item.querySelector('button[aria-label="Like"]') !== null,
  };
})
"""


class PlaygroundPage:
    def __init__(self, page: Page) -> None:
        self.page = page

    async def open(self, url: str, welcome: str) -> None:
        """Opens the Playground at its personal chat and waits for the bot's `welcome`."""
        # The page asks a CDN for its fonts; tests stay on this machine.
        await self.page.route(re.compile(r"^https?://(?!127\.0\.0\.1[:/])"), _refuse)
        await self.page.goto(url)
        await self.wait_for(lambda shown: _any_bot(shown, welcome) or None, "the welcome")

    async def open_chat(self, name: str, welcome: str) -> None:
        """Switches to "Personal Chat" or "Group Chat"; waits for the `welcome` the bot sends
        each time the Playground opens a conversation."""
        await self.page.get_by_role("treeitem", name=name).click()
        await self.wait_for(
            lambda shown: _any_bot(shown, welcome) or None, f"the welcome in {name}"
        )

    async def post_in_channel(self, channel: str, welcome: str, text: str) -> Locator:
        """Opens a channel ("My Team - General"), waits for the `welcome`, and starts a new post
        that @mentions the bot; returns the post with its thread."""
        await self.page.get_by_role("treeitem", name=channel).click()
        await expect(self.page.get_by_text(welcome)).to_be_visible(timeout=WAIT_SECONDS * 1000)
        await self.page.get_by_role("textbox").first.click()  # "Start a new post"
        await self.mention()
        await self.page.keyboard.type(text)
        await self.page.get_by_role("button", name="Post", exact=True).click()
        return self.page.get_by_role("group").filter(has_text=text)

    async def messages(self) -> list[Shown]:
        return [Shown(**message) for message in await self.page.evaluate(_READ_MESSAGES)]

    async def send(self, text: str, *, mention: bool = False) -> int:
        """Types `text` (after an @mention of the bot) and sends it; returns how many messages
        were shown before."""
        before = len(await self.messages())
        box = self.page.get_by_role("textbox")
        await box.click()
        if mention:
            await self.mention()
        await self.page.keyboard.type(text)
        await self.page.get_by_role("button", name="Send Message").click()
        # The bot's reply is sometimes shown above the message it answers.
        await self.wait_for(
            lambda shown: any(not m.by_bot and text in m.text for m in shown[before:]) or None,
            f"{text!r} shown",
        )
        return before

    async def mention(self) -> None:
        await self.page.keyboard.type("@")
        await self.page.get_by_role("menuitem", name=BOT_NAME).click()
        await self.page.keyboard.type(" ")

    async def ask(self, text: str, *, mention: bool = False) -> Shown:
        """Sends `text` and waits for the model's whole answer (it carries the AI label)."""
        before = await self.send(text, mention=mention)
        return await self.reply_after(before, lambda message: message.ai_label)

    async def command(self, text: str, expected: str) -> Shown:
        """Sends a command and waits for the bot's reply containing `expected`."""
        before = await self.send(text)
        return await self.reply_after(before, lambda message: expected in message.text)

    async def reply_after(self, before: int, done: Callable[[Shown], bool]) -> Shown:
        """The first bot message after the first `before` messages for which `done` holds."""

        def found(shown: list[Shown]) -> Shown | None:
            return next((m for m in shown[before:] if m.by_bot and done(m)), None)

        return await self.wait_for(found, "the bot's reply")

    async def press(self, button: str) -> None:
        """Presses the newest card button titled `button`."""
        await self.page.get_by_role("button", name=button, exact=True).last.click()

    async def wait_for(self, check: Callable[[list[Shown]], T | None], what: str) -> T:
        """Polls the messages until `check` returns something other than None, and returns it."""
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            shown = await self.messages()
            result = check(shown)
            if result is not None:
                return result
            if time.monotonic() > deadline:
                texts = "\n".join(f"{'bot' if m.by_bot else 'me '}: {m.text}" for m in shown)
                raise AssertionError(f"waited {WAIT_SECONDS:g} s for {what}; shown:\n{texts}")
            await asyncio.sleep(0.1)


def as_shown(markdown: str) -> str:
    """The text a person reads for the bot's `markdown` (bold only)."""
    return markdown.replace("**", "")


def _any_bot(shown: list[Shown], text: str) -> bool:
    return any(message.by_bot and text in message.text for message in shown)


async def _refuse(route: Route) -> None:
    await route.abort()
