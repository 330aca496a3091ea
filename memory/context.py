"""Prompt assembly: what the model is shown for one new message."""

from __future__ import annotations

from memory.records import ChatMessage, ConversationRecord


def build_context(system_prompt: str, record: ConversationRecord, text: str) -> list[ChatMessage]:
    """System prompt, then the remembered messages oldest first, then the new message."""
    messages: list[ChatMessage] = [{"role": "system", "content": system_prompt}]
    if record.summary:
        messages.append(
            {"role": "system", "content": f"Summary of earlier conversations: {record.summary}"}
        )
    messages.extend({"role": m.role, "content": m.content} for m in record.messages)
    messages.append({"role": "user", "content": text})
    return messages
