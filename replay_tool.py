"""The command line of the replay tool: `python -m memory replay`.

    python -m memory replay TRANSCRIPT.jsonl --questions QUESTIONS.jsonl [--budget TOKENS]
        [--store sqlite|cosmos] [--no-summary]

Builds memory from the settings exactly as the bot does (`wiring.create_memory`: the same
budget, window, summaries and embeddings), on a temporary SQLite file, or with `--store cosmos`
on the configured account under a random key deleted afterwards; then replays the transcript
(`memory.replay`). Summaries use the configured model unless --no-summary.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from config import ConfigError, load_settings
from memory import MemoryStore
from memory.replay import ReplayInputError, read_questions, read_turns, replay
from memory.sqlite_store import SQLiteStore
from model_client import create_chat_model
from wiring import create_memory, create_store


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
    settings = load_settings()
    turns = read_turns(arguments.transcript)
    questions = read_questions(arguments.questions)
    model = create_chat_model(settings)
    try:
        with tempfile.TemporaryDirectory(prefix="memorybot-replay-") as scratch:
            store: MemoryStore = (
                create_store(settings)
                if arguments.store == "cosmos"
                else SQLiteStore(Path(scratch) / "replay.db")
            )
            await store.open()
            memory = create_memory(
                settings,
                store,
                model,
                context_tokens=arguments.budget,
                summaries=not arguments.no_summary,
            )
            try:
                await replay(memory, turns, questions, out)
            finally:
                await memory.close()
                await store.close()
    finally:
        await model.close()


def main(argv: Sequence[str] | None = None) -> int:
    arguments = parse_arguments(sys.argv[1:] if argv is None else argv)
    try:
        asyncio.run(run_replay(arguments, sys.stdout))
    except (ReplayInputError, ConfigError) as error:
        print(f"replay: {error}", file=sys.stderr)
        return 2
    return 0
