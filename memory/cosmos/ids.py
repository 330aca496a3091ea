"""Item ids and partition keys: how memory keys and messages become names Cosmos DB accepts.

Cosmos DB item ids may not hold `/ \\ ? #`, and are at most 255 characters; `%` breaks point
operations in the gateway. Each memory key owns one logical partition (path `/pk`).
"""

from __future__ import annotations

import hashlib
import string

from memory.records import Message

PARTITION_KEY_PATH = "/pk"
RECORD_ITEM_ID = "record"
ARCHIVE_ITEM_PREFIX = "m-"
MARK_ITEM_PREFIX = "k-"
MAX_ID_LENGTH = 255

_LITERAL = frozenset(string.ascii_letters + string.digits + "-")
_ESCAPE = "_"
_HASHED = "~"
_DIGEST_LENGTH = 64


def cosmos_safe(text: str, max_length: int = MAX_ID_LENGTH) -> str:
    """`text` in a form Cosmos DB accepts as an item id or partition key, one-to-one.

    Letters, digits and `-` stay as they are; every other UTF-8 byte becomes `_` and two hex
    digits, so the result never holds `/ \\ ? #`, `%` (which breaks point operations in the
    gateway), spaces or dots. A form longer than `max_length`, or an empty one, is cut and
    followed by `~` and the SHA-256 of `text`: `~` never appears in the plain form, so the two
    kinds cannot meet, and two texts share a form only if SHA-256 collides.
    """
    raw = text.encode("utf-8", "surrogatepass")
    escaped = "".join(
        chr(byte) if chr(byte) in _LITERAL else f"{_ESCAPE}{byte:02X}" for byte in raw
    )
    if escaped and len(escaped) <= max_length:
        return escaped
    digest = hashlib.sha256(raw).hexdigest()
    return f"{escaped[: max_length - _DIGEST_LENGTH - 1]}{_HASHED}{digest}"


def partition_key_for(key: str) -> str:
    """The partition key value that holds everything remembered under a memory key."""
    return cosmos_safe(key)


def archive_item_id(message: Message) -> str:
    """The id of a message's archive item; archiving the same message twice writes one item."""
    return archive_item_id_for(message.id)


def archive_item_id_for(message_id: str) -> str:
    """The id of the archive item of the message with this id."""
    return ARCHIVE_ITEM_PREFIX + cosmos_safe(message_id, MAX_ID_LENGTH - len(ARCHIVE_ITEM_PREFIX))


def mark_item_id(name: str) -> str:
    """The id of the item that holds a memory key's mark `name` (`MemoryStore.mark`)."""
    return MARK_ITEM_PREFIX + cosmos_safe(name, MAX_ID_LENGTH - len(MARK_ITEM_PREFIX))


def marks_partition_for(key: str) -> str:
    """The partition that holds a memory key's marks: one of its own, beside the memory's, so
    that forgetting deletes every item of the memory's partition and the marks stay (they hold
    no chat words). No memory key starts with `marks/`, so the two never meet."""
    return partition_key_for(f"marks/{key}")
