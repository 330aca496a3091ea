"""Replaying a transcript: live through it, then show exactly what the model would be sent.

The transcript (one JSON object a line: `role` user|assistant, `content`, optional `timestamp`
ISO-8601) goes turn by turn into a memory under a fresh key; then each question (one JSON object
a line with `question`) prints one JSON line: {"question": ..., "messages": [...]}. The command
line that builds the memory from the settings is `replay_tool.py` (`python -m memory replay`).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from memory.conversation import ConversationMemory
from memory.recall import speaker_labels


class ReplayInputError(Exception):
    """A transcript or questions file that cannot be read; the message names file and line."""


@dataclass(frozen=True)
class Turn:
    user: str
    reply: str | None
    at: datetime | None


def read_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as error:
        raise ReplayInputError(f"{path}: cannot read it ({error.strerror})") from error
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except ValueError as error:
            raise ReplayInputError(f"{path}, line {number}: not JSON ({error})") from error
        if not isinstance(value, dict):
            raise ReplayInputError(f"{path}, line {number}: expected a JSON object")
        yield number, value


def read_turns(path: Path) -> list[Turn]:
    """Pairs each user message with the assistant message that follows it, if any."""
    turns: list[Turn] = []
    for number, entry in read_jsonl(path):
        role, content = entry.get("role"), entry.get("content")
        if role not in ("user", "assistant") or not isinstance(content, str):
            raise ReplayInputError(
                f'{path}, line {number}: needs "role" (user or assistant) and "content" (text)'
            )
        at = _timestamp(entry.get("timestamp"), path, number)
        if role == "user":
            turns.append(Turn(content, None, at))
        elif turns and turns[-1].reply is None:
            turns[-1] = Turn(turns[-1].user, content, turns[-1].at)
        else:
            raise ReplayInputError(f"{path}, line {number}: an assistant message with no question")
    return turns


def read_questions(path: Path) -> list[str]:
    questions = []
    for number, entry in read_jsonl(path):
        question = entry.get("question")
        if not isinstance(question, str):
            raise ReplayInputError(f'{path}, line {number}: needs "question" (text)')
        questions.append(question)
    return questions


async def replay(
    memory: ConversationMemory, turns: Sequence[Turn], questions: Sequence[str], out: TextIO
) -> None:
    key = f"replay/{uuid.uuid4().hex}"
    # Who speaks, where the transcript says so at the start of messages ("Priya: …").
    said = (text for turn in turns for text in (turn.user, turn.reply) if text is not None)
    memory.speaker_labels = speaker_labels(said)
    try:
        for turn in turns:
            await memory.remember(key, turn.user, turn.reply, at=turn.at)
            await memory.drain()  # as if the summary had finished before the next message
        for question in questions:
            messages = await memory.prompt_for(key, question)
            out.write(json.dumps({"question": question, "messages": messages}, ensure_ascii=False))
            out.write("\n")
    finally:
        await memory.forget(key)


def _timestamp(value: Any, path: Path, number: int) -> datetime | None:
    if value is None:
        return None
    try:
        at = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError as error:
        raise ReplayInputError(f"{path}, line {number}: timestamp is not ISO-8601") from error
    if at.tzinfo is None:
        raise ReplayInputError(f"{path}, line {number}: timestamp needs a time zone")
    return at
