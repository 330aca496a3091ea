"""The replay tool: live through a transcript, then show exactly what the model would be sent.

    python -m memory replay TRANSCRIPT.jsonl --questions QUESTIONS.jsonl [--budget TOKENS]
        [--store sqlite|cosmos] [--no-summary]

The transcript (one JSON object a line: `role` user|assistant, `content`, optional `timestamp`
ISO-8601) goes turn by turn into a fresh, temporary memory for one person; summaries use the
configured model unless --no-summary. Then each question (one JSON object a line with
`question`) prints one JSON line: {"question": ..., "messages": [...]}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from memory.conversation import ConversationMemory
from memory.sqlite_store import SQLiteStore
from memory.store import MemoryStore
from memory.summary import Complete


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


def parse_arguments(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m memory", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("replay", help="show what the bot would send the model")
    run.add_argument("transcript", type=Path)
    run.add_argument("--questions", type=Path, required=True)
    run.add_argument("--budget", type=int, help="token budget (default MEMORY_CONTEXT_TOKENS)")
    run.add_argument("--store", choices=["sqlite", "cosmos"], default="sqlite")
    run.add_argument("--no-summary", action="store_true", help="do not call a model for summaries")
    return parser.parse_args(argv)


async def run_replay(arguments: argparse.Namespace, out: TextIO) -> None:
    # Configuration and the model client are wiring, as in app.py; imported here, not above,
    # so that the memory package itself never depends on them.
    from app import create_store
    from config import load_settings
    from model_client import create_chat_model

    settings = load_settings()
    turns = read_turns(arguments.transcript)
    questions = read_questions(arguments.questions)
    model = (
        None
        if arguments.no_summary or settings.model_kind == "offline"
        else (create_chat_model(settings))
    )
    summarise: Complete | None = model.complete if model else None
    with tempfile.TemporaryDirectory(prefix="memorybot-replay-") as scratch:
        store: MemoryStore = (
            create_store(settings)
            if arguments.store == "cosmos"
            else SQLiteStore(Path(scratch) / "replay.db")
        )
        await store.open()
        memory = ConversationMemory(
            store,
            system_prompt=settings.system_prompt,
            max_messages=settings.memory_max_messages,
            context_tokens=arguments.budget or settings.memory_context_tokens,
            summary_every=settings.memory_summary_every,
            summary_concurrency=settings.memory_summary_concurrency,
            summarise=summarise,
        )
        try:
            await replay(memory, turns, questions, out)
        finally:
            await memory.close()
            await store.close()
            if model is not None:
                await model.close()


def main(argv: Sequence[str] | None = None) -> int:
    arguments = parse_arguments(sys.argv[1:] if argv is None else argv)
    try:
        asyncio.run(run_replay(arguments, sys.stdout))
    except ReplayInputError as error:
        print(f"replay: {error}", file=sys.stderr)
        return 2
    return 0


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
