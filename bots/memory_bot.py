"""MemoryBot: the Teams activity handler. Thin: identify, recall, ask the model, reply, remember."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from botbuilder.core import MessageFactory, TurnContext
from botbuilder.core.teams import TeamsActivityHandler
from botbuilder.schema import Activity, ActivityTypes, ChannelAccount

from bots.identity import memory_key_for
from memory import ConversationMemory, StoreError
from model_client import ChatModel, ModelError

log = logging.getLogger(__name__)

MAX_MESSAGE_CHARS = 16_000

WELCOME = (
    "Hi, I'm MemoryBot. I remember what you tell me across conversations, so you don't have to "
    "repeat your context. In this personal chat I keep our recent messages; in a group chat or "
    "channel I keep a memory of that conversation only, never of your private chat."
)
NOT_TEXT = "I can only read text messages for now. Please type your message."
TOO_LONG = (
    "That message is too long for me ({length:,} characters; the limit is {limit:,}). "
    "Please shorten it or split it up."
)
UNKNOWN_SENDER = "I can't tell who sent this message, so I can't keep a memory for it."
STORE_DOWN = (
    "I can't reach my memory right now, so I couldn't answer. Please try again in a minute."
)
KEPT = "Your message was kept, so you can carry on where you left off."
NOT_KEPT = "I couldn't save your message either; please send it again in a minute."
REPLY_NOT_SAVED = "(I answered, but couldn't save this exchange to my memory.)"


class MemoryBot(TeamsActivityHandler):  # type: ignore[misc]
    def __init__(
        self, memory: ConversationMemory, model: ChatModel, *, typing_every_seconds: float = 3.0
    ) -> None:
        super().__init__()
        self.memory = memory
        self.model = model
        self.typing_every_seconds = typing_every_seconds

    async def on_message_activity(self, turn_context: TurnContext) -> None:
        activity = turn_context.activity
        text = message_text(activity)
        if not text:
            await turn_context.send_activity(NOT_TEXT)
            return
        if len(text) > MAX_MESSAGE_CHARS:
            await turn_context.send_activity(
                TOO_LONG.format(length=len(text), limit=MAX_MESSAGE_CHARS)
            )
            return
        key = memory_key_for(activity)
        if key is None:
            await turn_context.send_activity(UNKNOWN_SENDER)
            return
        try:
            prompt = await self.memory.prompt_for(key, text)
        except StoreError as error:
            log.error("memory load failed: %s: %s", type(error).__name__, error)
            await turn_context.send_activity(STORE_DOWN)
            return

        try:
            async with self._typing(turn_context):
                reply = await self.model.complete(prompt)
        except ModelError as error:
            log.warning("model call failed: %s (%s)", type(error).__name__, error)
            kept = await self._remember(key, text, None)
            await turn_context.send_activity(f"{error.user_message} {KEPT if kept else NOT_KEPT}")
            return

        try:
            await turn_context.send_activity(MessageFactory.text(reply))
        except Exception as error:
            # The person never saw the reply: keep their message, not an answer they did not get.
            log.error("sending the reply failed: %s", type(error).__name__)
            await self._remember(key, text, None)
            return
        if not await self._remember(key, text, reply):
            await turn_context.send_activity(REPLY_NOT_SAVED)

    async def on_members_added_activity(
        self, members_added: list[ChannelAccount], turn_context: TurnContext
    ) -> None:
        bot_id = turn_context.activity.recipient.id if turn_context.activity.recipient else None
        if any(member.id != bot_id for member in members_added):
            await turn_context.send_activity(WELCOME)

    async def _remember(self, key: str, text: str, reply: str | None) -> bool:
        try:
            await self.memory.remember(key, text, reply)
        except StoreError as error:
            log.error("memory save failed: %s: %s", type(error).__name__, error)
            return False
        return True

    @contextlib.asynccontextmanager
    async def _typing(self, turn_context: TurnContext) -> AsyncIterator[None]:
        """Show the typing indicator now and keep it alive until the answer is ready."""

        async def keep_typing() -> None:
            while True:
                await asyncio.sleep(self.typing_every_seconds)
                await _send_typing(turn_context)

        await _send_typing(turn_context)
        task = asyncio.create_task(keep_typing())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def _send_typing(turn_context: TurnContext) -> None:
    try:
        await turn_context.send_activity(Activity(type=ActivityTypes.typing))
    except Exception as error:
        log.debug("typing indicator not sent: %s", type(error).__name__)


def message_text(activity: Activity) -> str:
    """The message's text without the @mention of the bot, or "" when there is none."""
    if not isinstance(activity.text, str):
        return ""
    text: str = activity.text
    if activity.recipient is not None and activity.entities:
        text = TurnContext.remove_recipient_mention(activity) or ""
    return text.strip()
