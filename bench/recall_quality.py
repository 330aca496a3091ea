"""How often a fact told early reaches the prompt when asked about much later.

    .venv/bin/python -m bench.recall_quality [--people 20] [--turns 300] [--seed 7]
        [--semantic] [--store sqlite|cosmos]

Builds long synthetic conversations (realistic filler that shares words with the questions),
plants facts in the first turns, asks about them at the end, and reports the share of questions
whose planted answer is in the prompt, at budgets of 1,000, 2,000 and 4,000 tokens, for:
last-20 trimming (the original design), summary + recall, and recall alone.

With --semantic it adds recall with embeddings from all-MiniLM-L6-v2 run offline in numpy
(bench/minilm.py; install bench/requirements.txt first), standing in for an embeddings deployment.

Summaries here come from a stand-in extractive summariser (it keeps the latest first-person
statements, up to 250 words), because no language model runs on this machine; a real model's
summary should do at least as well. Recall is the product's real mechanism: SQLite FTS5 ranked
by BM25 by default, or with `--store cosmos` the Cosmos DB store's query and ranking (terms
indexed per message, candidates ranked by rarer terms first), on the local Cosmos DB API server
the tests use (Node.js and `npm ci` needed).
"""

from __future__ import annotations

import os

# Tiny matrices: BLAS threads only fight over the two cores (set before numpy is imported).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import asyncio
import random
import re
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.minilm import cached_embedder
from memory import ChatMessage, MemoryStore
from memory.recall import Embed
from memory.sqlite_store import SQLiteStore
from memory.summary import Complete
from tests.conftest import conversation_memory, cosmos_store_on, new_database_name
from tests.support.cosmos_server import CosmosServer

BUDGETS = (1000, 2000, 4000)
FACTS_PER_PERSON = 6
PLANTED_WITHIN_TURNS = 30

FACTS = [
    (
        "My manager's name is {}.",
        "Who is my manager?",
        "Who do I report to?",
        ["Grace Hopper", "Alan Turing", "Ada Lovelace", "Barbara Liskov", "Ken Thompson"],
    ),
    (
        "I'm leading Project {} this year.",
        "Which project am I leading?",
        "What's the initiative I run called?",
        ["Falcon", "Bluebird", "Nimbus", "Kestrel", "Orion"],
    ),
    (
        "My favourite programming language is {}.",
        "What's my favourite programming language?",
        "What do I like to code in most?",
        ["Haskell", "Rust", "OCaml", "Elixir", "Kotlin"],
    ),
    (
        "We decided to launch on {}.",
        "When did we decide to launch?",
        "What date did we pick for going live?",
        ["March 3rd", "June 14th", "September 9th", "November 30th", "January 21st"],
    ),
    (
        "My office is in {}.",
        "Where is my office?",
        "Which city do I work from?",
        ["Lisbon", "Nairobi", "Osaka", "Montreal", "Tallinn"],
    ),
    (
        "My dog is called {}.",
        "What is my dog called?",
        "What's my pet's name?",
        ["Biscuit", "Pepper", "Juniper", "Mochi", "Waffles"],
    ),
    (
        "The migration budget is {}.",
        "What is the migration budget?",
        "How much money do we have for moving systems?",
        ["40,000 euros", "75,000 dollars", "12,500 pounds", "90,000 francs", "3 million yen"],
    ),
    (
        "I prefer meetings {}.",
        "When do I prefer meetings?",
        "What time suits me for calls?",
        ["before 10am", "on Tuesday afternoons", "after lunch", "only on Mondays", "at 4pm"],
    ),
]

FILLER = [
    "I'm reviewing the quarterly numbers today, can you help me structure the summary?",
    "The weekly meeting moved to Thursday, please draft a short note for the team.",
    "Our project tracker is slow again; how should I phrase the ticket?",
    "I need a title for the onboarding presentation next week.",
    "Can you rewrite this paragraph so it sounds less formal?",
    "The budget spreadsheet has a formula error somewhere in column F.",
    "I'm preparing questions for tomorrow's interview with a backend candidate.",
    "What's a good agenda for a one-hour retrospective?",
    "My calendar is packed, help me decide which meetings to decline.",
    "Please summarise the main risks of moving the launch by a month.",
    "I'm writing release notes for the mobile app, make them friendlier.",
    "The office coffee machine broke again, write a funny message for the channel.",
    "Suggest three ways to make our stand-ups shorter.",
    "I'm travelling next week; remind me what to prepare for the client visit.",
    "How do I explain technical debt to the finance team?",
]


@dataclass(frozen=True)
class Person:
    turns: list[str]
    # (question in the fact's own words, paraphrased question, answer that must reach the prompt)
    questions: list[tuple[str, str, str]]


def build_people(count: int, turns: int, seed: int) -> list[Person]:
    rng = random.Random(seed)
    people = []
    for _ in range(count):
        facts = rng.sample(FACTS, FACTS_PER_PERSON)
        talk = [f"{rng.choice(FILLER)} (note {n})" for n in range(turns)]
        slots = rng.sample(range(PLANTED_WITHIN_TURNS), FACTS_PER_PERSON)
        questions = []
        for (statement, direct, paraphrase, answers), slot in zip(facts, slots, strict=True):
            answer = rng.choice(answers)
            talk[slot] = statement.format(answer)
            questions.append((direct, paraphrase, answer))
        people.append(Person(talk, questions))
    return people


def extractive_summariser() -> Complete:
    """Keeps the newest first-person statements (not questions) from the messages, 250 words."""

    async def summarise(prompt: Sequence[ChatMessage]) -> str:
        text = prompt[-1]["content"]
        previous, _, new = text.partition("\n\nNew messages:\n")
        previous = previous.removeprefix("Current summary:\n").replace("(none yet)", "")
        statements = [s for s in previous.split("\n") if s]
        for line in new.splitlines():
            said = re.sub(r"^\[[^]]*\] Person: ", "", line)
            if said != line and "?" not in said and re.search(r"\b(I'm|My|We|The)\b", said):
                statements.append(said)
        kept: list[str] = []
        words = 0
        for statement in reversed(statements):
            words += len(statement.split())
            if words > 250:
                break
            kept.append(statement)
        return "\n".join(reversed(kept))

    return summarise


STRATEGIES = {
    "last-20 trimming (original)": {"summarise": False, "recall": False},
    "summary + recall": {"summarise": True, "recall": True},
    "recall alone": {"summarise": False, "recall": True},
}
SEMANTIC_STRATEGIES = {
    "recall alone, lexical + semantic (MiniLM)": {"summarise": False, "recall": True},
}


async def share_recalled(
    people: list[Person],
    budget: int,
    summarise: bool,
    recall: bool,
    scratch: Path,
    embed: Embed | None = None,
    cosmos: CosmosServer | None = None,
) -> tuple[float, float]:
    """The share of direct and of paraphrased questions whose answer reaches the prompt."""
    store: MemoryStore
    if cosmos is not None:
        store = cosmos_store_on(cosmos, new_database_name())
    else:
        store = SQLiteStore(scratch / f"bench-{budget}-{summarise}-{recall}-{bool(embed)}.db")
    await store.open()
    memory = conversation_memory(
        store,
        system_prompt="You are MemoryBot, a helpful assistant in Microsoft Teams.",
        max_messages=20,
        context_tokens=budget,
        summary_every=10,
        summarise=extractive_summariser() if summarise else None,
        recall_limit=None if recall else 0,
        embed=embed,
    )
    direct_hits = paraphrase_hits = total = 0
    start = datetime(2026, 1, 5, 9, tzinfo=UTC)
    try:
        for index, person in enumerate(people):
            key = f"person/{index}"
            for turn, text in enumerate(person.turns):
                at = start + timedelta(hours=turn)
                await memory.remember(
                    key, text, f"Sure, here's a suggestion for item {turn}.", at=at
                )
                await memory.drain()
            for direct, paraphrase, answer in person.questions:
                total += 1
                for question in (direct, paraphrase):
                    prompt = await memory.prompt_for(key, question)
                    found = any(answer in m["content"] for m in prompt[:-1])
                    if question is direct:
                        direct_hits += found
                    else:
                        paraphrase_hits += found
    finally:
        await memory.close()
        await store.close()
    return direct_hits / total, paraphrase_hits / total


async def main_async(arguments: argparse.Namespace) -> None:
    people = build_people(arguments.people, arguments.turns, arguments.seed)
    print(
        f"{arguments.people} people x {arguments.turns} turns ({2 * arguments.turns} messages), "
        f"{FACTS_PER_PERSON} facts each planted in the first {PLANTED_WITHIN_TURNS} turns, "
        f"store: {arguments.store}\n"
    )
    print(
        "Share of questions whose planted answer reaches the prompt (asked in the fact's own "
        "words / paraphrased)\n"
    )
    print("| strategy | " + " | ".join(f"{b:,} tokens" for b in BUDGETS) + " |")
    print("|---|" + "---|" * len(BUDGETS))
    began = time.perf_counter()
    strategies: list[tuple[str, dict[str, bool], Embed | None]] = [
        (name, options, None) for name, options in STRATEGIES.items()
    ]
    if arguments.semantic:
        embed = cached_embedder()
        strategies += [(name, options, embed) for name, options in SEMANTIC_STRATEGIES.items()]
    cosmos = CosmosServer(keep_alive=True) if arguments.store == "cosmos" else None
    if cosmos is not None:
        cosmos.start()
    try:
        await run_strategies(strategies, people, cosmos)
    finally:
        if cosmos is not None:
            cosmos.stop()
    print(f"\n({time.perf_counter() - began:.0f} s)")


async def run_strategies(
    strategies: list[tuple[str, dict[str, bool], Embed | None]],
    people: list[Person],
    cosmos: CosmosServer | None,
) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        for name, options, embedder in strategies:
            shares = [
                await share_recalled(
                    people,
                    budget,
                    options["summarise"],
                    options["recall"],
                    Path(scratch),
                    embedder,
                    cosmos,
                )
                for budget in BUDGETS
            ]
            cells = [f"{direct:.0%} / {paraphrase:.0%}" for direct, paraphrase in shares]
            print(f"| {name} | " + " | ".join(cells) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--people", type=int, default=20)
    parser.add_argument("--turns", type=int, default=300)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--semantic", action="store_true", help="add semantic recall (bench/requirements.txt)"
    )
    parser.add_argument("--store", choices=("sqlite", "cosmos"), default="sqlite")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
