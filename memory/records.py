"""The data memory keeps: messages and the per-key record, and their stored JSON form."""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, TypedDict

Role = Literal["user", "assistant"]
ROLES: tuple[Role, ...] = ("user", "assistant")
RECORD_SCHEMA_VERSION = 1


class ChatMessage(TypedDict):
    """One message as chat models take it."""

    role: str
    content: str


def utc_now() -> datetime:
    return datetime.now(UTC)


# Ids only need to be unique, not secret: a generator seeded once from the system's entropy
# makes them in a microsecond, where uuid4 reads the system's random source for each one (about
# 0.1 ms here, two or three times a turn).
_IDS = random.Random()


def new_message_id() -> str:
    return f"{_IDS.getrandbits(128):032x}"


def new_item_id() -> str:
    return f"{_IDS.getrandbits(48):012x}"


@dataclass(frozen=True, slots=True)
class Message:
    role: Role
    content: str
    at: datetime = field(default_factory=utc_now)
    id: str = field(default_factory=new_message_id)
    author: str = ""
    """Who said it, where several people share one memory (a group chat); empty otherwise."""

    def to_json(self) -> dict[str, str]:
        data = {
            "id": self.id,
            "role": self.role,
            "content": self.content,
            "at": self.at.isoformat(),
        }
        if self.author:
            data["author"] = self.author
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Message:
        role = data["role"]
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}")
        return cls(
            role=role,
            content=str(data["content"]),
            at=datetime.fromisoformat(data["at"]),
            id=str(data.get("id") or new_message_id()),
            author=str(data.get("author") or ""),
        )


ItemKind = Literal["fact", "preference", "decision"]
ITEM_KINDS: tuple[ItemKind, ...] = ("fact", "preference", "decision")


@dataclass(frozen=True, slots=True)
class MemoryItem:
    """One short thing remembered about a person: a fact, a preference or a decision.

    `sources` are the ids of the messages it came from (none when the person dictated it with
    `remember`). An item a newer message contradicts is kept, superseded, until retention
    removes it: `superseded_by` names the item that replaced it.
    """

    text: str
    kind: ItemKind = "fact"
    at: datetime = field(default_factory=utc_now)
    id: str = field(default_factory=new_item_id)
    sources: tuple[str, ...] = ()
    superseded_by: str = ""
    superseded_at: datetime | None = None

    @property
    def current(self) -> bool:
        return not self.superseded_by

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.id,
            "kind": self.kind,
            "text": self.text,
            "at": self.at.isoformat(),
            "sources": list(self.sources),
        }
        if self.superseded_by:
            data["superseded_by"] = self.superseded_by
            data["superseded_at"] = self.superseded_at.isoformat() if self.superseded_at else None
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> MemoryItem:
        kind = data.get("kind", "fact")
        if kind not in ITEM_KINDS:
            raise ValueError(f"unknown item kind {kind!r}")
        return cls(
            text=str(data["text"]),
            kind=kind,
            at=datetime.fromisoformat(data["at"]),
            id=str(data["id"]),
            sources=tuple(str(source) for source in data.get("sources", ())),
            superseded_by=str(data.get("superseded_by") or ""),
            superseded_at=_optional_time(data.get("superseded_at")),
        )


@dataclass(frozen=True, slots=True)
class ConversationRecord:
    """What is remembered under one memory key, besides the archive of every message.

    `messages` is the recent window. `pending` holds messages that left the window but are not
    yet folded into `summary`; they stay until a summary succeeds, so a failed summary drops
    nothing. `message_count` and `since` describe the whole history.
    """

    key: str
    messages: tuple[Message, ...] = ()
    pending: tuple[Message, ...] = ()
    summary: str = ""
    message_count: int = 0
    since: datetime | None = None
    updated_at: datetime | None = None
    items: tuple[MemoryItem, ...] = ()
    """Short things remembered (`memory.items`), oldest first, superseded ones included."""
    unextracted: int = 0
    """How many of the newest messages no item extraction has read yet."""
    forgets: int = 0
    """Raised by each forget of what was said (`forget <words>`, and before forgetting
    everything), before and again after its deletions: see `lineage`."""
    items_forgotten: int = 0
    """How many items were forgotten by their own button (work under way that read them, an
    extraction, is not written back)."""

    @property
    def lineage(self) -> Lineage:
        """Which history this is: work begun on a record (a summary, an extraction, a turn under
        way) is written back only while it is the same (`Lineage`)."""
        return Lineage(self.since, self.forgets)

    @property
    def is_empty(self) -> bool:
        return not self.messages and not self.pending and not self.summary and not self.items

    @property
    def current_items(self) -> tuple[MemoryItem, ...]:
        """The items that stand (not superseded), oldest first."""
        return tuple(item for item in self.items if item.current)

    @property
    def unsummarised(self) -> tuple[Message, ...]:
        """Everything kept word for word, oldest first."""
        return self.pending + self.messages

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": RECORD_SCHEMA_VERSION,
            "key": self.key,
            "summary": self.summary,
            "messages": [m.to_json() for m in self.messages],
            "pending": [m.to_json() for m in self.pending],
            "message_count": self.message_count,
            "since": self.since.isoformat() if self.since else None,
            "updated_at": self.updated_at.isoformat() if self.updated_at else None,
            "items": [item.to_json() for item in self.items],
            "unextracted": self.unextracted,
            "forgets": self.forgets,
            "items_forgotten": self.items_forgotten,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ConversationRecord:
        return cls(
            key=str(data["key"]),
            messages=tuple(Message.from_json(m) for m in data.get("messages", [])),
            pending=tuple(Message.from_json(m) for m in data.get("pending", [])),
            summary=str(data.get("summary", "")),
            message_count=int(data.get("message_count", len(data.get("messages", [])))),
            since=_optional_time(data.get("since")),
            updated_at=_optional_time(data.get("updated_at")),
            items=tuple(MemoryItem.from_json(item) for item in data.get("items") or ()),
            unextracted=int(data.get("unextracted") or 0),
            forgets=int(data.get("forgets") or 0),
            items_forgotten=int(data.get("items_forgotten") or 0),
        )


@dataclass(frozen=True, slots=True)
class Lineage:
    """Which history a record holds: when it began, and how many forgets it has been through.

    A forget changes it (forgetting everything deletes the record, and the next one begins
    anew), so that what was read before the forget is not written back after it."""

    since: datetime | None
    forgets: int

    def goes_on_in(self, later: Lineage) -> bool:
        """Whether `later` is the same history with nothing forgotten since (a record that had
        not begun yet may have begun since: another turn wrote first)."""
        return later.forgets == self.forgets and self.since in (None, later.since)


def _optional_time(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


Around = tuple["Message | None", "Message | None"]
"""The messages said just before and just after an archived one (None at either end)."""


@dataclass(frozen=True, slots=True)
class Match:
    """What ranking needs to know of an archived message a search found (not its text)."""

    order: int
    """Its place in the archive: higher is newer."""
    matched: frozenset[str] = frozenset()
    """The search's terms the message holds."""
    length: int = 0
    """How many distinct terms the message holds in all."""


@dataclass(frozen=True, slots=True)
class Candidate:
    """An archived message a store found for a search, with what ranking needs to know of it."""

    message: Message
    order: int
    """Its place in the archive: higher is newer."""
    matched: frozenset[str] = frozenset()
    """The search's terms the message holds."""
    length: int = 0
    """How many distinct terms the message holds in all."""
    around: Around | None = None
    """The messages said just before and after it, where the store was asked for them."""


@dataclass(frozen=True, slots=True)
class Embeddings:
    """A person's newest embedded messages: row n of `matrix` is the embedding of `ids[n]`."""

    ids: tuple[str, ...]
    orders: tuple[int, ...]
    """Each one's place in the archive, -1 where the store does not know it."""
    matrix: Any  # float32 numpy array, one row per id
    messages: Mapping[str, Message] = field(default_factory=dict)
    """Those the store read along with their embeddings, by id."""
