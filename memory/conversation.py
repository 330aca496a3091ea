"""ConversationMemory: what the bot calls to remember, recall and forget."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from memory.context import build_context
from memory.records import ChatMessage, ConversationRecord, Message, utc_now
from memory.store import MemoryStore
from memory.trimming import recent_window


class ConversationMemory:
    """Memory behind one store: builds prompts from what is kept, and keeps each turn."""

    def __init__(
        self,
        store: MemoryStore,
        *,
        system_prompt: str,
        max_messages: int = 20,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.store = store
        self.system_prompt = system_prompt
        self.max_messages = max_messages
        self.clock = clock

    async def prompt_for(self, key: str, text: str) -> list[ChatMessage]:
        """The messages to send the model when the person behind `key` says `text`."""
        record = await self.store.load(key)
        return build_context(self.system_prompt, record, text)

    async def remember(self, key: str, user_text: str, reply: str | None = None) -> None:
        """Keep the person's message and, when there is one, the bot's reply, as one turn."""
        now = self.clock()
        turn = [Message("user", user_text, now)]
        if reply is not None:
            turn.append(Message("assistant", reply, now))

        def append_turn(record: ConversationRecord) -> ConversationRecord:
            return record.with_messages(
                recent_window([*record.messages, *turn], self.max_messages), now
            )

        await self.store.update(key, append_turn)

    async def recall(self, key: str) -> ConversationRecord:
        return await self.store.load(key)

    async def forget(self, key: str) -> None:
        await self.store.delete(key)
