"""MemoryBot: the Teams activity handler, a router. Each activity goes to one small handler.

Personal chat: the person's own memory, answers streamed. Group chats and channels: answers only
when @mentioned, from a memory of that conversation, never anyone's private memory.

The handlers: `TenantGate` (which organisations may use the bot), `Commands` (help, memory,
export, forget), `Forgetting` (the forget question and its answer), `Exporting` (the export, and
the answer to its file consent card) and `ChatTurn` (everything else). A memory store failure in
any of them is answered in one place, `_handle`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from typing import TypeVar

from botbuilder.core import InvokeResponse, TurnContext
from botbuilder.core.teams import TeamsActivityHandler
from botbuilder.schema import Activity, ChannelAccount

from bots.chat_turn import MAX_MESSAGE_CHARS, ChatTurn
from bots.commands import Command, Commands, card_action_in, command_in, is_yes
from bots.exporting import Exporting
from bots.forgetting import Forgetting, sender_of
from bots.identity import (
    delivery_id_for,
    is_group_conversation,
    memory_key_for,
    mentions_bot,
    sender_key_for,
)
from bots.limits import RateLimiter
from bots.replies import CANCEL_FORGET, CONFIRM_FORGET, FORGET_ITEM, ITEMS_PAGE
from bots.tenant_gate import TenantGate
from bots.wording import (
    FORGET_BUTTON_EXPIRED,
    FORGET_CANCELLED,
    JUST_MENTIONED,
    NOT_TEXT,
    PERSONAL_CHAT,
    RATE_LIMITED,
    STORE_DOWN_WHILE_ANSWERING,
    STORE_DOWN_WHILE_FORGETTING,
    STORE_DOWN_WHILE_RUNNING_A_COMMAND,
    TOO_LONG,
    UNKNOWN_SENDER,
    wording_for,
)
from memory import ConversationMemory, Ledger, StoreError
from model_client import ChatModel
from telemetry import measure_turn

log = logging.getLogger(__name__)
T = TypeVar("T")


class MemoryBot(TeamsActivityHandler):  # type: ignore[misc]
    def __init__(
        self,
        memory: ConversationMemory,
        model: ChatModel,
        *,
        ledger: Ledger,
        allowed_tenant_ids: frozenset[str] = frozenset(),
        rate_limiter: RateLimiter | None = None,
        typing_after_seconds: float = 0.5,
        typing_every_seconds: float = 3.0,
        trust_env: bool = False,
    ) -> None:
        """`trust_env`: outgoing HTTP of the bot's own (an export's upload) takes a proxy from
        the environment."""
        super().__init__()
        self.tenant_gate = TenantGate(allowed_tenant_ids)
        self.ledger = ledger
        self.forgetting = Forgetting(memory, ledger)
        self.exporting = Exporting(memory, ledger, trust_env=trust_env)
        self.commands = Commands(memory, self.forgetting, self.exporting)
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
        who = await _who(turn_context)
        if who is None:
            return
        key, sender = who
        delivery = delivery_id_for(activity)
        said = action is None  # typed, not a card's button
        if not self.rate_limiter.allow(sender):  # this instance's own count: costs no request
            redelivered = await _checked(self.ledger.taken(sender, delivery, said=said))
            if not redelivered and self.rate_limiter.first_refusal(sender):
                await turn_context.send_activity(self._rate_limited)
            return
        with measure_turn():  # a chat turn's figures count the ledger's requests too
            if not await self._admit(turn_context, sender, delivery, said):
                return
            try:
                await self._route(turn_context, key, sender, group, action)
            except BaseException:
                if not turn_context.responded:  # not handled after all: the next delivery is
                    await self._give_back(sender, delivery, said)
                raise

    async def _admit(
        self, turn_context: TurnContext, sender: str, delivery: str, said: bool
    ) -> bool:
        """Takes the delivery in the ledger, once for every instance, and applies the limit
        across instances: False when the message was handled already or is over the limit. A
        ledger that cannot be reached lets the message through (its handler then says what
        failed, if it needs the store too)."""
        try:
            if not await self.ledger.take(sender, delivery, said=said):
                log.info("a message delivered again was not handled again")
                return False
            limit = self.rate_limiter.per_minute
            if limit > 0 and await self.ledger.taken_within(sender, 60) > limit:
                if self.rate_limiter.first_refusal(sender):
                    await turn_context.send_activity(self._rate_limited)
                return False
        except StoreError as error:
            log.warning("ledger unavailable, message handled without it: %s", type(error).__name__)
        return True

    async def _give_back(self, sender: str, delivery: str, said: bool) -> None:
        try:
            await self.ledger.give_back(sender, delivery, said=said)
        except StoreError as error:
            log.warning("could not release a delivery: %s", type(error).__name__)

    @property
    def _rate_limited(self) -> str:
        return RATE_LIMITED.format(limit=self.rate_limiter.per_minute)

    async def _route(
        self, turn_context: TurnContext, key: str, sender: str, group: bool, action: str | None
    ) -> None:
        activity = turn_context.activity
        asker = sender_of(turn_context)
        if action in (CONFIRM_FORGET, CANCEL_FORGET):
            press = self._press(turn_context, key, sender, group, action == CONFIRM_FORGET)
            await _handle(turn_context, press, if_store_down=STORE_DOWN_WHILE_FORGETTING)
            return
        if action == FORGET_ITEM:
            item = activity.value.get("item")
            forget = self.commands.forget_item(turn_context, key, item)
            await _handle(turn_context, forget, if_store_down=STORE_DOWN_WHILE_FORGETTING)
            return
        if action == ITEMS_PAGE:
            page = activity.value.get("page")
            show = self.commands.show_memory(
                turn_context, key, group, page if isinstance(page, int) else 1
            )
            await _handle(turn_context, show, if_store_down=STORE_DOWN_WHILE_RUNNING_A_COMMAND)
            return
        text = message_text(activity)
        if not text:
            # In a group, a bare @mention is someone calling the bot; Teams sends a message's
            # own text as text/html too, any other attachment is something it cannot read.
            unreadable = any(
                (a.content_type or "") != "text/html" for a in activity.attachments or []
            )
            await turn_context.send_activity(
                JUST_MENTIONED if group and not unreadable else NOT_TEXT
            )
            return
        if len(text) > MAX_MESSAGE_CHARS:  # commands too: none is read past this
            await turn_context.send_activity(
                TOO_LONG.format(length=len(text), limit=MAX_MESSAGE_CHARS)
            )
            return
        asked = command_in(text)
        if asked is not None:
            command, words = asked
            run = self.commands.run(turn_context, key, command, words, group)
            down = STORE_DOWN_WHILE_RUNNING_A_COMMAND
            if command is Command.FORGET:  # asking is the first step of forgetting
                down = STORE_DOWN_WHILE_FORGETTING
            await _handle(turn_context, run, if_store_down=down)
            return
        question = (
            await _checked(self.forgetting.pending(key, asker, sender)) if is_yes(text) else None
        )
        if question is not None:
            answer = self.forgetting.answer(turn_context, key, group, True, question)
            await _handle(turn_context, answer, if_store_down=STORE_DOWN_WHILE_FORGETTING)
            return
        chat = self.chat.run(turn_context, key, text)
        await _handle(turn_context, chat, if_store_down=STORE_DOWN_WHILE_ANSWERING)

    async def _press(
        self, turn_context: TurnContext, key: str, sender: str, group: bool, confirmed: bool
    ) -> None:
        """A forget card's button. "Forget" must answer the question that stands, pressed by
        who asked it. "Keep" forgets nothing either way, but drops only that question, so
        that another member's press cannot void someone else's."""
        question = await self.forgetting.answered_question(
            key, sender_of(turn_context), sender, turn_context.activity.value
        )
        if question is None:
            await turn_context.send_activity(
                FORGET_BUTTON_EXPIRED if confirmed else FORGET_CANCELLED
            )
            return
        await self.forgetting.answer(turn_context, key, group, confirmed, question)

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
            # An empty object, not null: the Agents Playground reads the answer's fields and
            # told the person "Unable to reach app" when there was none.
            return InvokeResponse(status=200, body={})
        if activity.name == "fileConsent/invoke":
            await self._file_consent(turn_context)
            return InvokeResponse(status=200)
        # botbuilder's handlers parse payloads for features this bot lacks, and crash on bad ones.
        return InvokeResponse(status=501)

    async def _file_consent(self, turn_context: TurnContext) -> None:
        """Allow or Decline on an export's file consent card: taken once, like a message, and
        answered by `Exporting` for the memory of whoever pressed it. The invoke is answered
        200 whatever happened; the person reads what did."""
        activity = turn_context.activity
        who = await _who(turn_context)
        if who is None:
            return
        key, sender = who
        if not self.rate_limiter.allow(sender):  # as messages are: a flood posts one notice
            if self.rate_limiter.first_refusal(sender):
                await turn_context.send_activity(self._rate_limited)
            return
        delivery = delivery_id_for(activity)
        try:
            if not await self.ledger.take(sender, delivery, said=False):
                log.info("a file consent delivered again was not handled again")
                return
        except StoreError as error:
            log.warning("ledger unavailable, consent handled without it: %s", type(error).__name__)
        try:
            answer = self.exporting.answer_consent(turn_context, key)
            await _handle(turn_context, answer, if_store_down=STORE_DOWN_WHILE_RUNNING_A_COMMAND)
        except BaseException:
            if not turn_context.responded:
                await self._give_back(sender, delivery, said=False)
            raise

    async def on_message_update_activity(self, turn_context: TurnContext) -> None:
        return  # an edited message is not read again (botbuilder's parsing of it can crash)

    async def on_message_delete_activity(self, turn_context: TurnContext) -> None:
        return  # nor a deleted one: `forget …` forgets what was said


async def _who(turn_context: TurnContext) -> tuple[str, str] | None:
    """The activity's memory key and sender; None, once the person has been told, when either
    cannot be told."""
    key = memory_key_for(turn_context.activity)
    sender = sender_key_for(turn_context.activity)
    if key is None or sender is None:
        await turn_context.send_activity(UNKNOWN_SENDER)
        return None
    return key, sender


def _loggable(value: object, limit: int = 64) -> str:
    """An outside value for a log line: printable characters only, on one line, cut short."""
    text = "".join(c if c.isprintable() else "?" for c in str(value)[:limit])
    return text + ("…" if len(str(value)) > limit else "")


async def _checked(check: Awaitable[T]) -> T | None:
    """A check that reads the store; a store that cannot be reached makes it None (what the
    message is then taken for says what failed, if it needs the store too)."""
    try:
        return await check
    except StoreError as error:
        log.error("memory store failed: %s: %s", type(error).__name__, error)
        return None


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
