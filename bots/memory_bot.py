"""MemoryBot: the Teams activity handler, a router. Each activity goes to one small handler.

Personal chat: the person's own memory, answers streamed. Group chats and channels: answers only
when @mentioned, from a memory of that conversation, never anyone's private memory.

The handlers: `TenantGate` (which organisations may use the bot), `Commands` (help, memory,
export, forget), `Forgetting` (the forget question and its answer) and `ChatTurn` (everything
else). A memory store failure in any of them is answered in one place, `_handle`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable

from botbuilder.core import InvokeResponse, TurnContext
from botbuilder.core.teams import TeamsActivityHandler
from botbuilder.schema import Activity, ChannelAccount

from bots.chat_turn import ChatTurn
from bots.commands import Commands, card_action_in, command_in, is_yes
from bots.forgetting import Forgetting, sender_of
from bots.identity import is_group_conversation, memory_key_for, mentions_bot, sender_key_for
from bots.limits import RateLimiter
from bots.replies import CONFIRM_FORGET
from bots.tenant_gate import TenantGate
from bots.wording import (
    FORGET_BUTTON_EXPIRED,
    NOT_TEXT,
    PERSONAL_CHAT,
    RATE_LIMITED,
    STORE_DOWN_WHILE_ANSWERING,
    STORE_DOWN_WHILE_FORGETTING,
    STORE_DOWN_WHILE_RUNNING_A_COMMAND,
    UNKNOWN_SENDER,
    wording_for,
)
from memory import ConversationMemory, StoreError
from model_client import ChatModel

log = logging.getLogger(__name__)


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
        self.tenant_gate = TenantGate(allowed_tenant_ids)
        self.forgetting = Forgetting(memory)
        self.commands = Commands(memory, self.forgetting)
        self.rate_limiter = RateLimiter(0) if rate_limiter is None else rate_limiter
        self.chat = ChatTurn(
            memory,
            model,
            typing_after_seconds=typing_after_seconds,
            typing_every_seconds=typing_every_seconds,
        )

    async def on_turn(self, turn_context: TurnContext) -> None:
        if await self.tenant_gate.admits(turn_context):
            await super().on_turn(turn_context)

    async def on_message_activity(self, turn_context: TurnContext) -> None:
        activity = turn_context.activity
        group = is_group_conversation(activity)
        action = card_action_in(activity.value)
        if group and action is None and not mentions_bot(activity):
            return  # in groups the bot speaks only when spoken to
        key = memory_key_for(activity)
        sender = sender_key_for(activity)
        if key is None or sender is None:
            await turn_context.send_activity(UNKNOWN_SENDER)
            return
        if not self.rate_limiter.allow(sender):  # commands and buttons count too
            limit = self.rate_limiter.per_minute
            await turn_context.send_activity(RATE_LIMITED.format(limit=limit))
            return
        if action is not None:
            confirmed = action == CONFIRM_FORGET
            asker = sender_of(turn_context)
            if confirmed and not self.forgetting.answers_the_question(key, asker, activity.value):
                await turn_context.send_activity(FORGET_BUTTON_EXPIRED)  # "keep" needs no check
                return
            answer = self.forgetting.answer(turn_context, key, group, confirmed)
            await _handle(turn_context, answer, if_store_down=STORE_DOWN_WHILE_FORGETTING)
            return
        text = message_text(activity)
        if not text:
            await turn_context.send_activity(NOT_TEXT)
            return
        command = command_in(text)
        if command is not None:
            run = self.commands.run(turn_context, key, command, group)
            await _handle(turn_context, run, if_store_down=STORE_DOWN_WHILE_RUNNING_A_COMMAND)
            return
        if self.forgetting.pending(key, sender_of(turn_context)) and is_yes(text):
            answer = self.forgetting.answer(turn_context, key, group, True)
            await _handle(turn_context, answer, if_store_down=STORE_DOWN_WHILE_FORGETTING)
            return
        self.forgetting.drop_question(key)
        chat = self.chat.run(turn_context, key, text)
        await _handle(turn_context, chat, if_store_down=STORE_DOWN_WHILE_ANSWERING)

    async def on_installation_update_add(self, turn_context: TurnContext) -> None:
        group = is_group_conversation(turn_context.activity)
        await turn_context.send_activity(wording_for(group).welcome)

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
            await turn_context.send_activity(PERSONAL_CHAT.welcome)

    async def on_invoke_activity(self, turn_context: TurnContext) -> InvokeResponse:
        activity = turn_context.activity
        if activity.name == "message/submitAction":
            value = activity.value if isinstance(activity.value, dict) else {}
            action_value = value.get("actionValue")
            reaction = action_value.get("reaction") if isinstance(action_value, dict) else None
            # Which reply was rated and how; never the feedback text, which is chat content. Both
            # values come from outside: only Teams' two reactions are named, the id is cut short
            # and kept to one line, so no caller can forge a log line or flood the log.
            log.info(
                "feedback: reaction=%s reply=%s",
                reaction if reaction in ("like", "dislike") else "other",
                _loggable(activity.reply_to_id),
            )
            return InvokeResponse(status=200)
        # botbuilder's handlers parse payloads for features this bot lacks, and crash on bad ones.
        return InvokeResponse(status=501)


def _loggable(value: object, limit: int = 64) -> str:
    """An outside value for a log line: printable characters only, on one line, cut short."""
    text = "".join(c if c.isprintable() else "?" for c in str(value)[:limit])
    return text + ("…" if len(str(value)) > limit else "")


async def _handle(
    turn_context: TurnContext, handling: Awaitable[None], *, if_store_down: str
) -> None:
    """Runs one handler; the one place a memory store failure in any handler is answered."""
    try:
        await handling
    except StoreError as error:
        log.error("memory store failed: %s: %s", type(error).__name__, error)
        await turn_context.send_activity(if_store_down)


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
