"""The data memory keeps: messages and the per-key record, and their stored JSON form."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal, TypedDict

Role = Literal["user", "assistant"]
RECORD_SCHEMA_VERSION = 1


class ChatMessage(TypedDict):
    """One message as chat models take it."""

    role: str
    content: str


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Message:
    role: Role
    content: str
    at: datetime = field(default_factory=utc_now)

    def to_json(self) -> dict[str, str]:
        return {"role": self.role, "content": self.content, "at": self.at.isoformat()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Message:
        role = data["role"]
        if role not in ("user", "assistant"):
            raise ValueError(f"unknown role {role!r}")
        return cls(role=role, content=str(data["content"]), at=datetime.fromisoformat(data["at"]))


@dataclass(frozen=True, slots=True)
class ConversationRecord:
    """What is remembered under one memory key: the recent messages and a running summary."""

    key: str
    messages: tuple[Message, ...] = ()
    summary: str = ""
    updated_at: datetime | None = None

    @property
    def is_empty(self) -> bool:
        return not self.messages and not self.summary

    def with_messages(self, messages: tuple[Message, ...], at: datetime) -> ConversationRecord:
        return replace(self, messages=messages, updated_at=at)

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": RECORD_SCHEMA_VERSION,
            "key": self.key,
            "summary": self.summary,
            "messages": [m.to_json() for m in self.messages],
            "updated_at": self.updated_at.isoformat() if self.updated_at else None,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ConversationRecord:
        updated = data.get("updated_at")
        return cls(
            key=str(data["key"]),
            messages=tuple(Message.from_json(m) for m in data.get("messages", [])),
            summary=str(data.get("summary", "")),
            updated_at=datetime.fromisoformat(updated) if updated else None,
        )
