"""Memory: everything about remembering a person (records, trimming, prompts, stores).

This room knows nothing of Teams or Bot Framework: it takes an opaque memory key and plain
messages, and hands back plain chat messages for the model.
"""

from memory.context import Context, Source
from memory.conversation import ConversationMemory
from memory.errors import StoreConflict, StoreError, StoreUnavailable
from memory.ledger import Ledger
from memory.records import ChatMessage, ConversationRecord, Lineage, MemoryItem, Message
from memory.store import MemoryStore

__all__ = [
    "ChatMessage",
    "Context",
    "ConversationMemory",
    "ConversationRecord",
    "Ledger",
    "Lineage",
    "MemoryItem",
    "MemoryStore",
    "Message",
    "Source",
    "StoreConflict",
    "StoreError",
    "StoreUnavailable",
]
