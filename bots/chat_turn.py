"""A chat turn: recall, ask the model, reply, remember.

Personal chat in Teams gets the answer streamed; elsewhere it is sent whole, with the typing
indicator shown while it takes a while. The person's message is remembered even when the model
fails or the reply cannot be delivered; the answer only when they got it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from botbuilder.core import TurnContext
from botbuilder.schema import Activity, ActivityTypes
from botframework.connector.models import ErrorResponseException

from bots.citations import citations, without_markers
from bots.identity import is_group_conversation
from bots.replies import (
    StreamedAnswerFailed,
    answer_activity,
    closing_activity,
    send_streamed,
    split_for_teams,
)
from bots.wording import REPLY_NOT_SAVED, model_failed
from memory import ConversationMemory, Lineage, Source, StoreError
from model_client import ChatModel, ModelError
from telemetry import TurnMetrics, log_turn, measure_turn

log = logging.getLogger(__name__)

# A reply the connector refused, or that could not reach it (the activity's serviceUrl): logged
# as a line, not a traceback, since any caller can cause one.
_DELIVERY_FAILURES = (ErrorResponseException, aiohttp.ClientError, TimeoutError, OSError)

MAX_MESSAGE_CHARS = 16_000
MAX_AUTHOR_CHARS = 64


class ChatTurn:
    def __init__(
        self,
        memory: ConversationMemory,
        model: ChatModel,
        *,
        typing_after_seconds: float,
        typing_every_seconds: float,
    ) -> None:
        self.memory = memory
        self.model = model
        self.typing_after_seconds = typing_after_seconds
        self.typing_every_seconds = typing_every_seconds

    async def run(self, turn_context: TurnContext, key: str, text: str) -> None:
        """Answers `text`. Raises StoreError if the memory cannot be read to answer it."""
        started = time.perf_counter()
        with measure_turn() as metrics:
            try:
                outcome = await self._answer(turn_context, key, text, author_of(turn_context))
            except StoreError:
                _log_turn(metrics, started, "store-unavailable")
                raise
        _log_turn(metrics, started, outcome)

    async def _answer(self, turn_context: TurnContext, key: str, text: str, author: str) -> str:
        """One chat turn; returns its outcome for the turn's log line."""
        prompt = None
        stopped = False
        sources: list[Source] = []
        lineage = None  # what the context was read from: a forget meanwhile keeps nothing
        group = is_group_conversation(turn_context.activity)

        def cite(part: str) -> list[dict[str, Any]]:
            return citations(part, sources, group)

        try:
            if streams_in(turn_context.activity):
                context = await self.memory.context_for(key, text, author=author)
                prompt, sources, lineage = context.messages, context.sources, context.lineage
                streamed = await send_streamed(turn_context, self.model.stream(prompt), cite=cite)
                reply, stopped = streamed.text, streamed.stopped
            else:
                async with self._typing(turn_context):
                    context = await self.memory.context_for(key, text, author=author)
                    prompt, sources, lineage = context.messages, context.sources, context.lineage
                    reply = await self.model.complete(prompt)
                for part in split_for_teams(reply):
                    await turn_context.send_activity(answer_activity(part, citations=cite(part)))
            reply = without_markers(reply, sources)  # remembered without this prompt's numbers
        except StoreError:
            raise  # not read, so nothing to remember either
        except (ModelError, StreamedAnswerFailed) as failure:
            error = failure.error if isinstance(failure, StreamedAnswerFailed) else failure
            stream_id = failure.stream_id if isinstance(failure, StreamedAnswerFailed) else None
            log.warning("model call failed: %s (%s)", type(error).__name__, error)
            kept = await self._remember(key, text, None, author, lineage)
            await turn_context.send_activity(closing_activity(model_failed(error, kept), stream_id))
            return "model-failed"
        except Exception as error:
            if prompt is None:
                raise  # not even the prompt was built: the adapter's turn-error handler answers
            # The person never saw the reply: keep their message, not an answer they did not get.
            if isinstance(error, _DELIVERY_FAILURES):  # the connector's (or serviceUrl's) doing
                status = getattr(getattr(error, "response", None), "status_code", None)
                # The connector's error code (as ContentStreamNotAllowed): the bot's own mistakes
                # show there too. Never its message, which may quote what was sent.
                code = getattr(getattr(getattr(error, "error", None), "error", None), "code", None)
                log.warning(
                    "sending the reply failed: %s%s%s",
                    type(error).__name__,
                    f" (HTTP {status})" if isinstance(status, int) else "",
                    f" {code[:64]!r}" if isinstance(code, str) else "",
                )
            else:
                log.error("sending the reply failed: %s", type(error).__name__, exc_info=True)
            await self._remember(key, text, None, author, lineage)
            return "reply-failed"
        if stopped:
            # What they saw of it, marked as stopped; nothing if they saw none of it.
            await self._remember(key, text, reply or None, author, lineage, stopped=True)
            return "stopped"
        if await self._remember(key, text, reply, author, lineage) is False:
            await turn_context.send_activity(REPLY_NOT_SAVED)
            return "not-saved"
        return "answered"

    async def _remember(
        self,
        key: str,
        text: str,
        reply: str | None,
        author: str,
        lineage: Lineage | None,
        *,
        stopped: bool = False,
    ) -> bool | None:
        """Whether the exchange was saved: True, False when saving failed (told by the caller,
        in context), None when something said was forgotten while it was answered (so it is
        rightly not kept)."""
        try:
            kept = await self.memory.remember(
                key, text, reply, author=author, stopped=stopped, lineage=lineage
            )
        except StoreError as error:
            log.error("memory save failed: %s: %s", type(error).__name__, error)
            return False
        return True if kept else None

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


def author_of(turn_context: TurnContext) -> str:
    """Who is speaking, where several people share the memory (group chats and channels), so
    that remembered lines say who said them; "" in personal chat. The display name, on one line
    and cut short: it is only a label for the model, never an identity."""
    activity = turn_context.activity
    if not is_group_conversation(activity):
        return ""
    sender = activity.from_property
    name = (sender.name or sender.id or "") if sender else ""
    return " ".join(str(name).split())[:MAX_AUTHOR_CHARS] or "someone"


def streams_in(activity: Activity) -> bool:
    """Teams streams bot messages in personal chat only."""
    conversation_type = activity.conversation.conversation_type if activity.conversation else None
    return activity.channel_id == "msteams" and conversation_type == "personal"


def _log_turn(metrics: TurnMetrics, started: float, outcome: str) -> None:
    log_turn(metrics, (time.perf_counter() - started) * 1000, outcome)


async def _send_typing(turn_context: TurnContext) -> None:
    try:
        await turn_context.send_activity(Activity(type=ActivityTypes.typing))
    except Exception as error:
        log.debug("typing indicator not sent: %s", type(error).__name__)
