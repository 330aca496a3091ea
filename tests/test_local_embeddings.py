"""The local static embeddings model: what semantic recall uses when nothing is configured."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import local_embeddings
from local_embeddings import LocalEmbeddings, LocalEmbeddingsUnavailable
from memory.terms import content_words

pytestmark = pytest.mark.unit

GREYHOUND = "We adopted a rescue greyhound"
DOG = "We got a new dog"
BUDGET = "The quarterly budget is due"


@pytest.fixture(scope="module")
def model() -> LocalEmbeddings:
    loaded = LocalEmbeddings()
    loaded.load()
    return loaded


def cosine(a: list[float], b: list[float]) -> float:
    return float(np.dot(a, b))  # the vectors are unit length


async def test_a_paraphrase_is_closer_than_an_unrelated_sentence(model: LocalEmbeddings) -> None:
    greyhound, dog, budget = await model.embed([GREYHOUND, DOG, BUDGET])

    assert cosine(greyhound, dog) > cosine(greyhound, budget) + 0.2
    assert cosine(greyhound, dog) > cosine(dog, budget) + 0.2


async def test_a_question_is_closest_to_the_message_that_answers_it(
    model: LocalEmbeddings,
) -> None:
    question, *messages = await model.embed(
        [
            "Where does Anna live now?",
            "My sister Anna moved to Lisbon last spring",
            "The quarterly budget is due on Friday",
            "I fixed the flaky login test this morning",
        ]
    )

    scores = [cosine(question, message) for message in messages]
    assert scores.index(max(scores)) == 0


async def test_vectors_are_unit_length_and_the_same_every_time(model: LocalEmbeddings) -> None:
    texts = [GREYHOUND, DOG, BUDGET, "ok", "Ünïcödé, emoji 🐕 and 数字 123"]

    first = await model.embed(texts)
    again = await model.embed(list(reversed(texts)))
    fresh = await LocalEmbeddings().embed(texts)

    assert len(first) == len(texts)
    assert all(len(vector) == model.dimensions == 256 for vector in first)
    assert np.allclose(np.linalg.norm(first, axis=1), 1.0, atol=1e-5)
    assert first == list(reversed(again))
    assert first == fresh


async def test_a_text_is_embedded_the_same_alone_or_in_a_batch(model: LocalEmbeddings) -> None:
    batch = await model.embed([GREYHOUND, DOG])

    assert batch[1] == (await model.embed([DOG]))[0]


async def test_empty_input_does_not_crash(model: LocalEmbeddings) -> None:
    assert await model.embed([]) == []
    empty, blank, dog = await model.embed(["", "   ", DOG])

    assert empty == [0.0] * model.dimensions  # no tokens: similar to nothing
    assert np.all(np.isfinite(blank))
    assert np.linalg.norm(blank) in (0.0, pytest.approx(1.0))
    assert np.linalg.norm(dog) == pytest.approx(1.0)


async def test_only_the_first_tokens_of_a_very_long_text_count(model: LocalEmbeddings) -> None:
    # The cost of one message is bounded: past MAX_TOKENS, more text changes nothing.
    long_text = " ".join([GREYHOUND, DOG, BUDGET] * 2000)
    longer_still = long_text + " " + " ".join([BUDGET] * 5000)

    [vector, same] = await model.embed([long_text, longer_still])

    assert np.linalg.norm(vector) == pytest.approx(1.0)
    assert vector == pytest.approx(same)


async def test_it_loads_and_embeds_with_no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    opened: list[Any] = []

    def refuse(self: socket.socket, address: Any) -> None:
        opened.append(address)
        raise OSError("no network in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)

    [vector] = await LocalEmbeddings().embed([GREYHOUND])

    assert np.linalg.norm(vector) == pytest.approx(1.0)
    assert opened == []


THREADS_AFTER_NEW_WORDS = """
import os
from local_embeddings import LocalEmbeddings
model = LocalEmbeddings()
model.load()
before = len(os.listdir("/proc/self/task"))
for n in range(20):
    model.words([" ".join(f"wordling{n}x{m} greyhound{m}" for m in range(40))])
    model.embed_sync([f"We adopted a rescue greyhound number {n}"])
print(before, len(os.listdir("/proc/self/task")))
"""


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="counts threads in /proc")
def test_embedding_starts_no_thread_pool() -> None:
    """The tokenizer's batch calls start a thread pool whose threads spin for more work on the
    bot's core; new words are tokenized one at a time instead, on the calling thread."""
    counted = subprocess.run(  # noqa: S603 - our own interpreter and a fixed script
        [sys.executable, "-c", THREADS_AFTER_NEW_WORDS],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[1],
        env={**os.environ, "TOKENIZERS_PARALLELISM": "true"},
    )
    before, after = map(int, counted.stdout.split())

    assert after == before


def test_the_model_package_is_read_not_imported() -> None:
    """Importing wordllama would reset the bot's logging (logging.basicConfig)."""
    LocalEmbeddings().load()

    assert local_embeddings.PACKAGE not in sys.modules


def test_describe_names_the_model() -> None:
    described = LocalEmbeddings().describe()

    assert "local" in described
    assert "WordLlama" in described


async def test_a_missing_package_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(local_embeddings, "PACKAGE", "no_such_embeddings_package")

    with pytest.raises(LocalEmbeddingsUnavailable, match="not installed"):
        await LocalEmbeddings().embed([DOG])


async def test_missing_model_files_are_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(local_embeddings, "_package_folder", lambda: tmp_path)

    with pytest.raises(LocalEmbeddingsUnavailable, match="missing"):
        await LocalEmbeddings().embed([DOG])


async def test_a_corrupt_weights_file_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    real = local_embeddings._package_folder()
    (tmp_path / "weights").mkdir()
    (tmp_path / "tokenizers").mkdir()
    (tmp_path / local_embeddings.WEIGHTS).write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    tokenizer = (real / local_embeddings.TOKENIZER).read_bytes()
    (tmp_path / local_embeddings.TOKENIZER).write_bytes(tokenizer)
    monkeypatch.setattr(local_embeddings, "_package_folder", lambda: tmp_path)

    with pytest.raises(LocalEmbeddingsUnavailable, match="cannot read"):
        await LocalEmbeddings().embed([DOG])


async def test_grammar_words_do_not_make_a_question_resemble_small_talk(
    model: LocalEmbeddings,
) -> None:
    # A plain mean of every token weighs "what", "did" and "the" as much as the words that
    # carry the meaning; only content words are embedded.
    # Embedding every token, each of these questions was closer to the small talk.
    for question, fact, small_talk in [
        ("Where did he move to?", "moved into a flat in Leeds last month", "where did you go?"),
        (
            "Which band is he going to see?",
            "got tickets to see Arctic Monkeys at the arena",
            "what did they say?",
        ),
    ]:
        asked, answer, chat = await model.embed([question, fact, small_talk])
        assert np.dot(asked, answer) > np.dot(asked, chat), question
    assert content_words("What kind of animal did Priya's family take in?") == (
        "kind",
        "animal",
        "Priya's",
        "family",
        "take",
    )
    # Nothing but stop words: embedded as it is, not as nothing.
    [hi] = await model.embed(["Hi!"])
    assert np.linalg.norm(hi) == pytest.approx(1.0)
