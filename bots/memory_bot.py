"""MemoryBot: the Teams activity handler. Thin: identify, recall, ask the model, reply, remember.

Personal chat: the person's own memory, answers streamed. Group chats and channels: answers only
when @mentioned, from a memory of that conversation, never anyone's private memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from botbuilder.core import InvokeResponse, TurnContext
from botbuilder.core.teams import TeamsActivityHandler
from botbuilder.schema import Activity, ActivityTypes, ChannelAccount

from bots.commands import (
    CONFIRM_FORGET,
    GROUP_FORGET,
    GROUP_HELP,
    PERSONAL_HELP,
    Command,
    card_action_in,
    command_in,
    is_yes,
)
from bots.identity import is_group_conversation, memory_key_for, mentions_bot, tenant_id_of
from bots.limits import RateLimiter
from bots.replies import answer_activity, export_activity, forget_confirmation, send_streamed
from memory import ConversationMemory, StoreError
from model_client import ChatModel, ModelError
from telemetry import log_turn, measure_turn

log = logging.getLogger(__name__)

MAX_MESSAGE_CHARS = 16_000
TEAMS_EXPORT_BYTES = 24_000  # Teams refuses messages much over ~28 KB
FORGET_CONFIRMATION_SECONDS = 300

WELCOME_PERSONAL = (
    "Hi, I'm MemoryBot. I remember what you tell me in this chat across conversations, so you "
    "don't have to repeat your context. Nothing you say here appears in group chats. Type "
    "**memory** to see what I keep, **forget** to make me forget everything, **help** for more."
)
WELCOME_GROUP = (
    "Hi, I'm MemoryBot. @mention me to ask something. In this chat I remember the "
    "conversation, never anyone's private chat with me. @MemoryBot **forget** explains how to "
    "clear it; **help** for more."
)
NOT_TEXT = "I can only read text messages for now. Please type your message."
TOO_LONG = (
    "That message is too long for me ({length:,} characters; the limit is {limit:,}). "
    "Please shorten it or split it up."
)
UNKNOWN_SENDER = "I can't tell who sent this message, so I can't keep a memory for it."
TENANT_REFUSED = "Sorry, MemoryBot isn't available to your organisation."
RATE_LIMITED = (
    "You're sending messages faster than I can take them (the limit is {limit} a minute). "
    "Please wait a moment; your message was not saved."
)
STORE_DOWN = (
    "I can't reach my memory right now, so I couldn't answer. Please try again in a minute."
)
KEPT = "Your message was kept, so you can carry on where you left off."
NOT_KEPT = "I couldn't save your message either; please send it again in a minute."
REPLY_NOT_SAVED = "(I answered, but couldn't save this exchange to my memory.)"
FORGET_QUESTION_PERSONAL = "Forget everything I remember about you? This can't be undone."
FORGET_QUESTION_GROUP = "Forget everything I remember from this conversation?"
FORGOTTEN = "Done: I've forgotten everything I remembered {whom}."
FORGET_CANCELLED = "OK, I'll keep what I remember."
NOTHING_REMEMBERED = "I don't remember anything {whom} yet."


class MemoryBot(TeamsActivityHandler):  # type: ignore[misc]
    def __init__(
        self,
        memory: ConversationMemory,
        model: ChatModel,
        *,
        allowed_tenant_ids: frozenset[str] = frozenset(),
        rate_limiter: RateLimiter | None = None,
        typing_after_seconds: float = 0.5,
        typing_every_seconds: float = 3.0,
    ) -> None:
        super().__init__()
        self.memory = memory
        self.model = model
        self.allowed_tenant_ids = allowed_tenant_ids
        self.rate_limiter = rate_limiter or RateLimiter(0)
        self.typing_after_seconds = typing_after_seconds
        self.typing_every_seconds = typing_every_seconds
        self._forget_asked: dict[str, float] = {}

    async def on_turn(self, turn_context: TurnContext) -> None:
        activity = turn_context.activity
        if self.allowed_tenant_ids:
            tenant = (tenant_id_of(activity) or "").lower()
            if tenant not in self.allowed_tenant_ids:
                log.info("refused a %s activity from a tenant not allowed", activity.type)
                if activity.type == ActivityTypes.message:
                    await turn_context.send_activity(TENANT_REFUSED)
                elif activity.type == ActivityTypes.invoke:
                    await _send_invoke_response(turn_context, 403)
                return
        await super().on_turn(turn_context)

    async def on_message_activity(self, turn_context: TurnContext) -> None:
        activity = turn_context.activity
        group = is_group_conversation(activity)
        action = card_action_in(activity.value)
        if group and action is None and not mentions_bot(activity):
            return  # in groups the bot speaks only when spoken to
        key = memory_key_for(activity)
        if key is None:
            await turn_context.send_activity(UNKNOWN_SENDER)
            return
        if action is not None:
            await self._answer_forget(turn_context, key, group, action == CONFIRM_FORGET)
            return
        text = message_text(activity)
        if not text:
            await turn_context.send_activity(NOT_TEXT)
            return
        command = command_in(text)
        if command is not None:
            await self._command(turn_context, key, command, group)
            return
        if self._forget_pending(key) and is_yes(text):
            await self._answer_forget(turn_context, key, group, True)
            return
        self._forget_asked.pop(key, None)
        if len(text) > MAX_MESSAGE_CHARS:
            await turn_context.send_activity(
                TOO_LONG.format(length=len(text), limit=MAX_MESSAGE_CHARS)
            )
            return
        if not self.rate_limiter.allow(key):
            await turn_context.send_activity(
                RATE_LIMITED.format(limit=self.rate_limiter.per_minute)
            )
            return
        started = time.perf_counter()
        with measure_turn() as metrics:
            outcome = await self._chat(turn_context, key, text, stream=streams_in(activity))
        log_turn(metrics, (time.perf_counter() - started) * 1000, outcome)

    async def _chat(self, turn_context: TurnContext, key: str, text: str, stream: bool) -> str:
        """One chat turn; returns its outcome for the turn's log line."""
        prompt = None
        try:
            if stream:
                prompt = await self.memory.prompt_for(key, text)
                reply = await send_streamed(turn_context, self.model.stream(prompt))
            else:
                async with self._typing(turn_context):
                    prompt = await self.memory.prompt_for(key, text)
                    reply = await self.model.complete(prompt)
                await turn_context.send_activity(answer_activity(reply))
        except StoreError as error:
            log.error("memory load failed: %s: %s", type(error).__name__, error)
            await turn_context.send_activity(STORE_DOWN)
            return "store-unavailable"
        except ModelError as error:
            log.warning("model call failed: %s (%s)", type(error).__name__, error)
            kept = await self._remember(key, text, None)
            await turn_context.send_activity(f"{error.user_message} {KEPT if kept else NOT_KEPT}")
            return "model-failed"
        except Exception as error:
            if prompt is None:
                raise  # not even the prompt was built: the adapter's turn-error handler answers
            # The person never saw the reply: keep their message, not an answer they did not get.
            log.error("sending the reply failed: %s", type(error).__name__, exc_info=True)
            await self._remember(key, text, None)
            return "reply-failed"
        if not await self._remember(key, text, reply):
            await turn_context.send_activity(REPLY_NOT_SAVED)
            return "not-saved"
        return "answered"

    async def _command(
        self, turn_context: TurnContext, key: str, command: Command, group: bool
    ) -> None:
        whom = "from this conversation" if group else "about you"
        try:
            if command is Command.HELP:
                await turn_context.send_activity(GROUP_HELP if group else PERSONAL_HELP)
            elif command is Command.MEMORY:
                await turn_context.send_activity(await self._describe_memory(key, whom))
            elif command is Command.EXPORT:
                teams = turn_context.activity.channel_id == "msteams"
                export = await self.memory.export(key)
                await turn_context.send_activity(export_activity(_fit(export, teams), teams))
            elif command is Command.FORGET:
                self._forget_asked[key] = time.monotonic()
                if group:
                    await turn_context.send_activity(GROUP_FORGET)
                question = FORGET_QUESTION_GROUP if group else FORGET_QUESTION_PERSONAL
                await turn_context.send_activity(forget_confirmation(question))
        except StoreError as error:
            log.error("memory command failed: %s: %s", type(error).__name__, error)
            await turn_context.send_activity(STORE_DOWN.replace("answer", "do that"))

    async def _describe_memory(self, key: str, whom: str) -> str:
        record = await self.memory.recall(key)
        if record.message_count == 0:
            return NOTHING_REMEMBERED.format(whom=whom)
        since = f" since {record.since:%d %B %Y}" if record.since else ""
        lines = [
            f"I remember {record.message_count} messages {whom}{since}: the latest "
            f"{len(record.unsummarised)} word for word, and all of them in a searchable archive."
        ]
        lines.append(
            f"Summary of older messages: {record.summary}"
            if record.summary
            else "There is no summary of older messages yet."
        )
        return "\n\n".join(lines)

    async def _answer_forget(
        self, turn_context: TurnContext, key: str, group: bool, confirmed: bool
    ) -> None:
        self._forget_asked.pop(key, None)
        if not confirmed:
            await turn_context.send_activity(FORGET_CANCELLED)
            return
        try:
            await self.memory.forget(key)
        except StoreError as error:
            log.error("forget failed: %s: %s", type(error).__name__, error)
            await turn_context.send_activity(STORE_DOWN.replace("answer", "forget"))
            return
        log.info("memory forgotten at the person's request")
        whom = "from this conversation" if group else "about you"
        await turn_context.send_activity(FORGOTTEN.format(whom=whom))

    def _forget_pending(self, key: str) -> bool:
        asked = self._forget_asked.get(key)
        return asked is not None and time.monotonic() - asked < FORGET_CONFIRMATION_SECONDS

    async def on_installation_update_add(self, turn_context: TurnContext) -> None:
        group = is_group_conversation(turn_context.activity)
        await turn_context.send_activity(WELCOME_GROUP if group else WELCOME_PERSONAL)

    async def on_conversation_update_activity(self, turn_context: TurnContext) -> None:
        if turn_context.activity.channel_id == "msteams":
            return  # welcomed on installationUpdate; botbuilder would look up every new member
        await super().on_conversation_update_activity(turn_context)

    async def on_members_added_activity(
        self, members_added: list[ChannelAccount], turn_context: TurnContext
    ) -> None:
        activity = turn_context.activity
        if activity.channel_id == "msteams":
            return  # Teams sends installationUpdate on install; welcome once, there
        bot_id = activity.recipient.id if activity.recipient else None
        if any(member.id != bot_id for member in members_added):
            await turn_context.send_activity(WELCOME_PERSONAL)

    async def on_invoke_activity(self, turn_context: TurnContext) -> InvokeResponse:
        activity = turn_context.activity
        if activity.name == "message/submitAction":
            value = activity.value if isinstance(activity.value, dict) else {}
            action_value = value.get("actionValue")
            reaction = action_value.get("reaction") if isinstance(action_value, dict) else None
            # Which reply was rated and how; never the feedback text, which is chat content.
            log.info("feedback: reaction=%s reply=%s", reaction, activity.reply_to_id)
            return InvokeResponse(status=200)
        # botbuilder's handlers parse payloads for features this bot lacks, and crash on bad ones.
        return InvokeResponse(status=501)

    async def _remember(self, key: str, text: str, reply: str | None) -> bool:
        try:
            await self.memory.remember(key, text, reply)
        except StoreError as error:
            log.error("memory save failed: %s: %s", type(error).__name__, error)
            return False
        return True

    @contextlib.asynccontextmanager
    async def _typing(self, turn_context: TurnContext) -> AsyncIterator[None]:
        """Show the typing indicator while the answer takes a while, until it is ready.

        Not at once: an answer within `typing_after_seconds` needs no indicator, and each one
        is a request to the connector (botbuilder's ShowTypingMiddleware waits 0.5 s too).
        """

        async def keep_typing() -> None:
            await asyncio.sleep(self.typing_after_seconds)
            while True:
                await _send_typing(turn_context)
                await asyncio.sleep(self.typing_every_seconds)

        task = asyncio.create_task(keep_typing())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def streams_in(activity: Activity) -> bool:
    """Teams streams bot messages in personal chat only."""
    conversation_type = activity.conversation.conversation_type if activity.conversation else None
    return activity.channel_id == "msteams" and conversation_type == "personal"


def message_text(activity: Activity) -> str:
    """The message's text without the @mention of the bot, or "" when there is none."""
    if not isinstance(activity.text, str):
        return ""
    text: str = activity.text
    bot_id = activity.recipient.id if activity.recipient else None
    for entity in activity.entities or []:
        properties = entity.additional_properties or {}
        mentioned, mention = properties.get("mentioned"), properties.get("text")
        if (
            (entity.type or "").lower() == "mention"
            and isinstance(mentioned, dict)
            and mentioned.get("id") == bot_id
            and isinstance(mention, str)
            and mention
        ):
            text = text.replace(mention, "")  # literally: a bot's name may hold ( + * [
    return text.strip()


def _fit(export: dict[str, Any], teams: bool) -> dict[str, Any]:
    """In Teams, drop the oldest archived messages until the export fits in one message."""
    if not teams:
        return export
    archive = list(export["archive"])
    while archive and len(json.dumps({**export, "archive": archive}, default=str)) > (
        TEAMS_EXPORT_BYTES
    ):
        archive = archive[len(archive) // 4 or 1 :]
    if len(archive) < len(export["archive"]):
        return {**export, "archive": archive, "archive_complete": False}
    return export


async def _send_typing(turn_context: TurnContext) -> None:
    try:
        await turn_context.send_activity(Activity(type=ActivityTypes.typing))
    except Exception as error:
        log.debug("typing indicator not sent: %s", type(error).__name__)


async def _send_invoke_response(turn_context: TurnContext, status: int) -> None:
    await turn_context.send_activity(
        Activity(type=ActivityTypes.invoke_response, value=InvokeResponse(status=status))
    )
