"""Recall's rankings with the real local model: word-by-word matching and the speaker label."""

from datetime import UTC, datetime

import pytest

from memory.recall import (
    MAX_QUERY_TERMS,
    meaning_of,
    named_speaker,
    rank_by_words,
    search_words,
    speaker_labels,
)
from memory.records import Candidate, Message
from memory.terms import content_words
from wiring import local_embeddings

pytestmark = pytest.mark.unit

AT = datetime(2026, 5, 3, 18, 0, tzinfo=UTC)


def candidates(*texts: str) -> list[Candidate]:
    return [Candidate(Message("user", text, AT), order=n) for n, text in enumerate(texts)]


def test_a_word_buried_in_a_long_message_still_matches() -> None:
    # The message's mean vector is about the weekend; its one word about the animal is what
    # the question asks for.
    found = candidates(
        "How was your weekend?",
        "Busy! We drove out to the coast on Saturday, the traffic was awful, had fish and chips "
        "on the pier, then on Sunday we picked up a rescue greyhound from the shelter, and the "
        "kids stayed up far too late",
        "The weekend flew by, we just cleaned the flat and watched films",
        "Did you have a good weekend in the end?",
    )
    ranked = rank_by_words("What kind of animal did they take in?", found, local_embeddings().words)
    assert "greyhound" in ranked[0].message.content


def test_nothing_to_compare_keeps_the_order() -> None:
    words = local_embeddings().words
    found = candidates("ok", "Hi!", "we booked Porto")
    assert rank_by_words("what?", found, words) == found  # the question has no content words
    assert rank_by_words("anything", [], words) == []
    ranked = rank_by_words("Which city did they book?", found, words)
    assert ranked[0].message.content == "we booked Porto"  # "ok" and "Hi!" have no words at all


def test_a_transcripts_speaker_labels_are_not_what_its_messages_say() -> None:
    transcript = [
        "Priya: we adopted a greyhound",
        "Sam: no way!",
        "Priya: called Pixie",
        "Wifi password: hunter2",  # once: what the message says, not who says it
        "Sam: love it",
        "Dr. Sam Li: the results are in",
        "Priya: so shy though",
        "Sam: aww",
    ]
    speakers = speaker_labels(transcript)
    assert speakers == {"Priya", "Sam"}
    assert meaning_of("Priya: we adopted a greyhound", speakers) == "we adopted a greyhound"
    assert meaning_of("Wifi password: hunter2", speakers) == "Wifi password: hunter2"
    assert meaning_of("Priya: we adopted a greyhound") == "Priya: we adopted a greyhound"
    assert meaning_of("Priya:", speakers) == "Priya:"  # nothing after the label: kept
    assert speaker_labels(["https://example.com/a: b"] * 5 + ["10: 30 works"] * 5) == set()
    long = "Sam: " + "word " * 100_000
    assert meaning_of(long, speakers) == long[5:]
    assert content_words(long, 3) == ("Sam", "word", "word")  # read no further than asked
    assert content_words("a " + "x" * 41 + " greyhound") == ("greyhound",)  # no such word


def test_a_question_that_names_a_speaker_favours_what_they_said() -> None:
    speakers = frozenset({"Priya", "Sam"})
    found = candidates("Sam: we adopted a greyhound", "Priya: we adopted a greyhound")
    words = local_embeddings().words

    def first(question: str, among: list[Candidate] = found) -> str:
        return rank_by_words(question, among, words, speakers)[0].message.content

    assert first("Which animal did Priya adopt?") == "Priya: we adopted a greyhound"
    assert first("which animal did priya adopt?") == "Priya: we adopted a greyhound"
    assert first("Which animal did Sam adopt?") == "Sam: we adopted a greyhound"
    # Named by both, or by neither: as close as each other, so in the order they came.
    assert first("Did Sam or Priya adopt an animal?") == "Sam: we adopted a greyhound"
    assert first("Which animal did Samantha adopt?") == "Sam: we adopted a greyhound"
    # The boost only reorders close matches: a speaker's message about something else stays
    # behind the other speaker's answer.
    unrelated = candidates("Sam: we adopted a greyhound", "Priya: the budget is due Friday")
    assert first("Which animal did Priya adopt?", unrelated) == "Sam: we adopted a greyhound"
    # In a memory several people share, the author says who spoke.
    shared = [
        Candidate(Message("user", "we adopted a greyhound", AT, author=name), order=n)
        for n, name in enumerate(("Sam Li", "Priya Shah"))
    ]
    assert rank_by_words("Did Priya Shah adopt one?", shared, words)[0].message.author == (
        "Priya Shah"
    )


def test_a_speaker_is_named_by_a_whole_word_once() -> None:
    assert named_speaker("What did Priya say?", {"Priya", "Sam", ""}) == "Priya"
    assert named_speaker("What did Priyanka say?", {"Priya"}) == ""
    assert named_speaker("Did Sam tell Priya?", {"Priya", "Sam"}) == ""
    assert named_speaker("What did Dr. Li say?", {"Dr. Li", "C++"}) == "Dr. Li"
    assert named_speaker("Any news from C++?", {"Dr. Li", "C++"}) == "C++"  # not a word's end
    assert named_speaker("anything", set()) == ""
    # The longer name wins over one inside it; a display name's first word stands for it when
    # no other name starts so.
    assert named_speaker("What did Sam Li say?", {"Sam", "Sam Li"}) == "Sam Li"
    assert named_speaker("What did Sam say?", {"Sam", "Sam Li"}) == "Sam"
    assert named_speaker("What did priya say?", {"Priya Shah", "Sam Li"}) == "Priya Shah"
    assert named_speaker("What did Sam say?", {"Sam Li", "Sam Ward"}) == ""
    assert named_speaker("Did O’Brien reply?", {"O'Brien", "Sam"}) == "O'Brien"
    # A sender with no name is recorded as "someone": not a name.
    assert named_speaker("Did someone mention the budget?", {"someone", "Priya"}) == ""
    assert named_speaker("x" * 5000 + " Priya", {"Priya"}) == ""  # past the part that is read


def test_a_name_that_is_also_a_word_is_the_word_where_the_question_capitalises_names() -> None:
    group = {"Will Hart", "Sam Li", "Priya Shah"}
    # A name written with a capital shows how this writer writes names: "will" is the word.
    assert named_speaker("What will Sam do in May?", group) == "Sam Li"
    assert named_speaker("At the Straße, what will Sam do?", group) == "Sam Li"  # ß: ss
    assert named_speaker("What did Will say? Will Sam come?", group) == ""  # two, as written
    assert named_speaker("So I asked. What did Will say?", group) == "Will Hart"
    # Otherwise case cannot tell: capitals elsewhere (acronyms, places, days) say nothing.
    assert named_speaker("What did will say about Paris?", group) == "Will Hart"
    assert named_speaker("what did priya say about the API?", group) == "Priya Shah"
    assert named_speaker('"Did sam approve the PR on Monday?"', group) == "Sam Li"
    assert named_speaker("what will sam do", group) == ""  # will, and sam: two names


def test_the_boost_never_sinks_a_speakers_messages() -> None:
    # "What did B say?" has no content words: every message matches nothing, and the order they
    # came in stands, B's messages included.
    found = candidates("B: I started at the food bank", "A: we adopted a greyhound", "B: ok")
    words = local_embeddings().words
    assert rank_by_words("What did B say?", found, words, frozenset({"A", "B"})) == found


def test_a_message_that_says_nothing_comes_after_one_that_says_something_else() -> None:
    found = candidates("ok thanks!", "", "we went hiking", "I adopted a greyhound")
    ranked = rank_by_words("what animal did I adopt?", found, local_embeddings().words)
    assert [c.message.content for c in ranked[:2]] == ["I adopted a greyhound", "we went hiking"]


def test_the_word_cache_starting_over_changes_no_ranking(monkeypatch: pytest.MonkeyPatch) -> None:
    import local_embeddings as module

    model = module.LocalEmbeddings()
    found = candidates(*(f"message {n} about topic{n} and greyhound{n % 7}" for n in range(40)))
    found.append(Candidate(Message("user", "we adopted a dog", AT), order=40))
    expected = rank_by_words("Which pet did they adopt?", found, model.words)
    monkeypatch.setattr(module, "WORD_CACHE", 16)  # far fewer than the words of one call
    fresh = module.LocalEmbeddings()
    assert rank_by_words("Which pet did they adopt?", found, fresh.words) == expected
    monkeypatch.setattr(module, "WORD_CACHE", 100)  # room for one call's words, not two
    cached = module.LocalEmbeddings()
    others = candidates(*(f"unrelated{n} words{n}" for n in range(30)))
    for _ in range(2):
        assert rank_by_words("Which pet did they adopt?", found, cached.words) == expected
        rank_by_words("Something else entirely?", others, cached.words)  # starts over
    monkeypatch.setattr(module, "WORD_CACHE", 16_384)
    monkeypatch.setattr(module, "TEXT_CACHE", 8)  # fewer texts kept than one call has
    monkeypatch.setattr(module, "TEXT_CHARS", 30)  # and only the shortest of them
    few = module.LocalEmbeddings()
    for _ in range(2):
        assert rank_by_words("Which pet did they adopt?", found, few.words) == expected


def test_a_search_that_analyses_text_itself_gets_the_questions_own_words() -> None:
    # Not stems: "agreed" stemmed is "agre", and "agre" stemmed again is "agr".
    assert search_words(["Have we Agreed on Priya’s plan?", "the PLAN"]) == [
        "agreed",
        "priya’s",
        "plan",
    ]
    many = " ".join(f"word{n}" for n in range(30))
    assert len(search_words([many])) == MAX_QUERY_TERMS
    assert search_words(["what is it?"]) == []
