"""Recall quality on fixed data: the quick version of bench.recall_evidence (two long two-person
conversations, 160 questions asked the way people ask, 206 evidence messages) as a regression
threshold. The full benchmark and its figures are in docs/memory.md."""

import re
from pathlib import Path

import pytest

from bench.dialogues import build_dialogues
from bench.recall_evidence import (
    BUDGETS,
    DEFAULT,
    LEXICAL,
    WITH_ITEMS,
    Results,
    Tally,
    measure_memory,
    naming_the_other,
    select,
)
from memory import MemoryStore
from memory.sqlite_store import SQLiteStore
from wiring import SemanticRecall, local_recall

pytestmark = pytest.mark.integration


async def test_the_prompt_holds_the_evidence_of_questions_asked_in_other_words(
    tmp_path: Path,
) -> None:
    conversations = select(build_dialogues(), quick=True)
    results: Results = {name: {b: Tally() for b in BUDGETS} for name in (LEXICAL, DEFAULT)}

    def open_store(name: str) -> MemoryStore:
        return SQLiteStore(tmp_path / f"{name}.db")

    # As the bot runs with nothing configured (lexical recall and the local embeddings), and
    # with lexical recall alone.
    variants: list[tuple[str, SemanticRecall]] = [(LEXICAL, {}), (DEFAULT, local_recall())]
    await measure_memory(conversations, results, open_store, variants)
    found = {budget: results[DEFAULT][budget].share() for budget in BUDGETS}
    lexical = {budget: results[LEXICAL][budget].share() for budget in BUDGETS}
    # Measured 0.374 / 0.573 / 0.825 (lexical alone 0.189 / 0.238 / 0.500): a change that loses
    # evidence fails here.
    assert found[1000] >= 0.35
    assert found[2000] >= 0.54
    assert found[4000] >= 0.79
    assert all(found[budget] >= lexical[budget] for budget in BUDGETS)


async def test_oracle_items_bring_the_evidence_into_a_small_prompt(tmp_path: Path) -> None:
    conversations = select(build_dialogues(), quick=True)
    with_items = WITH_ITEMS[DEFAULT]
    results: Results = {name: {b: Tally() for b in BUDGETS} for name in (DEFAULT, with_items)}

    def open_store(name: str) -> MemoryStore:
        return SQLiteStore(tmp_path / f"{name}.db")

    # As the bot runs with nothing configured, without items and with the items a careful model
    # would extract (the dialogues' oracle items, through memory's own extraction path).
    recall = local_recall()
    await measure_memory(conversations, results, open_store, [(DEFAULT, recall)])
    await measure_memory(conversations, results, open_store, [(with_items, recall)], items=True)
    found = {budget: results[with_items][budget].share() for budget in BUDGETS}
    without = {budget: results[DEFAULT][budget].share() for budget in BUDGETS}
    # Measured 0.636 / 0.820 / 0.985 (without items 0.374 / 0.573 / 0.825): a change that stops
    # items being extracted, replaced, ranked or shown fails here.
    assert found[1000] >= 0.61
    assert found[2000] >= 0.78
    assert found[4000] >= 0.95
    assert all(found[budget] > without[budget] for budget in BUDGETS)


def test_the_worst_case_asks_each_question_of_the_other_speaker() -> None:
    [conversation] = select(build_dialogues(conversations=1), quick=True)
    first, second = conversation.speakers

    def names(text: str) -> set[str]:
        return {name for name in (first, second) if re.search(rf"\b{name}\b", text)}

    naming_one = [q for q in conversation.questions if len(names(q.question)) == 1]
    [again] = naming_the_other([conversation])

    assert 0 < len(again.questions) == len(naming_one) <= len(conversation.questions)
    for before, after in zip(naming_one, again.questions, strict=True):
        assert names(after.question) == {first, second} - names(before.question)
        assert after.evidence == before.evidence
        assert re.sub(rf"\b({first}|{second})\b", "X", after.question) == re.sub(
            rf"\b({first}|{second})\b", "X", before.question
        )
