"""Bots: everything that knows about Teams and Bot Framework activities.

Knows nothing of Cosmos DB or SQLite: it talks to memory through `ConversationMemory` and to the
model through `ChatModel`. botbuilder stays inside this room and `app.py`.
"""

from bots.adapter import close_adapter, create_adapter
from bots.http import messages_handler
from bots.identity import memory_key_for
from bots.memory_bot import MemoryBot

__all__ = ["MemoryBot", "close_adapter", "create_adapter", "memory_key_for", "messages_handler"]
