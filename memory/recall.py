"""Recall policy: which archived messages are worth showing the model for a new message.

The one place that ranks, for every store. Stores find candidates (SQLite through FTS5, Cosmos
DB through an indexed term list) and say which of the question's terms each holds; here they are
ranked by BM25, judged among the candidates. Where an embeddings model is configured, messages
are also ranked by cosine similarity to the question, and the rankings are fused, so that a
question worded differently from the fact can still find it.
"""

from __future__ import annotations

import functools
import math
import re
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import numpy as np

from memory.records import Candidate, Match, MemoryItem, Message
from memory.terms import content_words, terms_of

MAX_QUERY_TERMS = 12
# The usual BM25 constants (FTS5 uses the same).
BM25_K1 = 1.2
BM25_B = 0.75
WORDS_LENGTH_B = 0.3
FUSION_K = 60  # the usual reciprocal-rank-fusion constant: later ranks still count, a little

# The embeddings call memory is given (the model client's `embed`), for semantic recall.
Embed = Callable[[Sequence[str]], Awaitable[list[list[float]]]]
Vectors = np.ndarray[Any, np.dtype[np.float32]]


# A transcript's speaker label at the start of a message ("Priya: ", "Dr. Sam Li: "): up to three
# words that start with a letter, then a colon and a space (so "https://…" and "10: 30" are not).
_LABEL_CHARS = 120  # a label is looked for in a message's first characters only
_SPEAKER_LABEL = re.compile(r"\s*([^\W\d_][\w.'’-]*(?: [^\W\d_][\w.'’-]*){0,2}):\s+")
# A label is a speaker's when it starts at least this many of a transcript's messages, and at
# least this share of them.
_SPEAKER_MESSAGES = 3
_SPEAKER_SHARE = 0.2
# A question that names one of the speakers ("What does Priya do on Saturdays?") is most often
# answered by what that speaker said: word by word, their messages count this much more. On the
# recall benchmark, 0.5 found 0.579 at 2,000 tokens against 0.526 without, and 1.0 found 0.601;
# there every question that names a speaker is answered by that speaker, in real conversations
# not always (the other's question, or one telling about the other), hence the lesser weight.
SPEAKER_BOOST = 0.5
QUESTION_CHARS = 1000  # where a question's named speaker is looked for


def speaker_labels(texts: Iterable[str]) -> frozenset[str]:
    """The labels that name who speaks in a transcript of `texts` ("Priya: …", "Sam: …"): those
    that start at least a fifth of the messages (and three). A label that starts one message
    ("Wifi password: hunter2") is what the message says, not who says it."""
    counts: dict[str, int] = {}
    total = 0
    for text in texts:
        total += 1
        label = _SPEAKER_LABEL.match(text[:_LABEL_CHARS])
        if label is not None:
            counts[label.group(1)] = counts.get(label.group(1), 0) + 1
    least = max(_SPEAKER_MESSAGES, _SPEAKER_SHARE * total)
    return frozenset(label for label, count in counts.items() if count >= least)


def meaning_of(text: str, speakers: frozenset[str] = frozenset()) -> str:
    """What `text` says, for comparing meanings by embeddings: without a leading label that
    names one of `speakers` (`speaker_labels`).

    A speaker's label names who speaks, not what is said; in a replayed transcript it starts
    every message, and embedded with them it pulls every message of that speaker towards any
    question that names them (on the recall benchmark it cut what semantic recall found in its
    best 60 by more than half)."""
    label = _speaker_label(text, speakers)
    if label is None or label.end() == len(text):
        return text
    return text[label.end() :]


def _speaker_label(text: str, speakers: frozenset[str]) -> re.Match[str] | None:
    """`text`'s leading label, when it names one of `speakers`."""
    if not speakers:
        return None
    label = _SPEAKER_LABEL.match(text[:_LABEL_CHARS])
    return label if label is not None and label.group(1) in speakers else None


def speaker_of(message: Message, speakers: frozenset[str] = frozenset()) -> str:
    """Who said `message`, where memory knows: its author (in a memory several people share),
    else its leading label when that names one of `speakers`; "" otherwise."""
    if message.author:
        return message.author
    label = _speaker_label(message.content, speakers)
    return "" if label is None else label.group(1)


def named_speaker(question: str, names: Iterable[str]) -> str:
    """The one of `names` that `question` names, as whole words, whatever their case; "" when it
    names none or several.

    A name that is all lower case ("someone", for a sender with no name) is not one. A longer
    name wins over one inside it ("Sam Li" over "Sam"), and a display name's first word stands
    for it when no other name starts so ("Priya" for "Priya Shah"). Where the question writes
    one of the names with a capital, a name written in lower case is the word it also is ("What
    will Sam do?" names Sam, not a Will). Only the question's first QUESTION_CHARS characters
    are read."""
    aliases = {_name_key(name): name for name in names if name and not name.islower()}
    firsts: dict[str, list[str]] = {}
    for name in aliases.values():
        if " " in name.strip():
            firsts.setdefault(_name_key(name.split()[0]), []).append(name)
    for first, full in firsts.items():
        if len(full) == 1:
            aliases.setdefault(first, full[0])
    if not aliases:
        return ""
    text = question[:QUESTION_CHARS]
    key, origin = _keyed(text)
    found = [
        (aliases[match.group(1)], text[origin[match.start()]].isupper())
        for match in _names_pattern(tuple(sorted(aliases, key=len, reverse=True))).finditer(key)
    ]
    if any(capital for _, capital in found):  # the writer capitalises names: "What will Sam do?"
        found = [(name, capital) for name, capital in found if capital or name[:1].islower()]
    named = {name for name, _ in found}
    return named.pop() if len(named) == 1 else ""


def _keyed(text: str) -> tuple[str, Sequence[int]]:
    """`text` as names are matched in it, and where in `text` each of its characters comes from
    (casefolding makes some characters longer: "ß" is "ss")."""
    key = _name_key(text)
    if len(key) == len(text):
        return key, range(len(text))
    origin: list[int] = []
    for at, character in enumerate(text):
        origin.extend([at] * len(_name_key(character)))
    return key, origin


def _name_key(text: str) -> str:
    return text.replace("\u2019", "'").casefold()


@functools.lru_cache(maxsize=256)
def _names_pattern(keys: tuple[str, ...]) -> re.Pattern[str]:
    """Any of `keys` as whole words, the longest first (so that the longest wins)."""
    return re.compile(r"(?<!\w)(" + "|".join(re.escape(key) for key in keys) + r")(?!\w)")


Indexes = np.ndarray[Any, np.dtype[np.int64]]


@dataclass(frozen=True, slots=True)
class Words:
    """The content words of several texts, as unit vectors of the distinct words."""

    vectors: Vectors
    """One row per distinct word."""
    ids: Indexes
    """Each row's word, whatever its case: rows with equal ids are the same word."""
    rows: Indexes
    """The texts' words as they come, the texts one after another: each one's row."""
    counts: Indexes
    """How many of `rows` each text has."""


# Word vectors from a local static model (`local_embeddings.LocalEmbeddings.words`): cheap and
# synchronous, so that a turn's candidates can be compared word by word.
WordVectors = Callable[[Sequence[str]], Words]


def query_terms(text: str) -> list[str]:
    """The terms to search the archive for when the person says `text`."""
    return search_terms([text])


def search_terms(texts: Iterable[str]) -> list[str]:
    """`texts` read as the archive reads messages: distinct terms, in order, at most
    MAX_QUERY_TERMS (the words of a long message that come first are kept)."""
    terms = dict.fromkeys(term for text in texts for term in terms_of(text))
    return list(terms)[:MAX_QUERY_TERMS]


def search_words(texts: Iterable[str]) -> list[str]:
    """`texts`' own words, lower-cased, distinct, without stop words, at most MAX_QUERY_TERMS:
    for a search that analyses text itself (Cosmos DB's full-text search stems with its own
    analyser, and a stem stemmed again can be another word: "agreed", "agre", "agr")."""
    words = dict.fromkeys(word.lower() for text in texts for word in content_words(text))
    return list(words)[:MAX_QUERY_TERMS]


class Scored(Protocol):
    """What BM25 reads of a candidate (`memory.records.Match` or `Candidate`)."""

    @property
    def order(self) -> int: ...
    @property
    def matched(self) -> frozenset[str]: ...
    @property
    def length(self) -> int: ...


S = TypeVar("S", bound=Scored)


def rank_candidates(candidates: Sequence[S], terms: Sequence[str]) -> list[S]:
    """Candidates best first by BM25 over `terms`, rarity judged among the candidates; ties go
    to the newer message.

    A message's length is its number of distinct terms: a short message that holds a rare term
    outranks a long one that holds it among many others.
    """
    count = len(candidates)
    if not count:
        return []
    # Candidates share a few sets of matched terms (there are at most MAX_QUERY_TERMS terms):
    # each set is counted and weighed once.
    sets = Counter(c.matched for c in candidates)
    holders: Counter[str] = Counter()
    for matched, times in sets.items():
        for term in matched:
            holders[term] += times
    idf = {t: math.log(1 + (count - held + 0.5) / (held + 0.5)) for t, held in holders.items()}
    weight = {matched: sum(idf[t] for t in matched) * (BM25_K1 + 1) for matched in sets}
    # BM25's saturation for a term found once: (k1 + 1) / (1 + k1 * (1 - b + b * length / avg)).
    average = sum(c.length for c in candidates) / count or 1.0
    constant = 1 + BM25_K1 * (1 - BM25_B)
    per_length = BM25_K1 * BM25_B / average
    scored = [(weight[c.matched] / (constant + per_length * c.length), c) for c in candidates]
    scored.sort(key=lambda pair: (pair[0], pair[1].order), reverse=True)
    return [candidate for _, candidate in scored]


def most_similar(matrix: Vectors, query: Sequence[float], limit: int) -> list[int]:
    """Indexes of the `limit` rows of `matrix` most cosine-similar to `query`, best first."""
    if len(matrix) == 0 or limit <= 0:
        return []
    wanted = np.asarray(query, dtype=np.float32)
    # einsum, not `@`: a matrix-vector product through BLAS wakes its thread pool, whose
    # threads then spin on the other core for longer than the product takes.
    dots = np.einsum("ij,j->i", matrix, wanted)
    norms = np.sqrt(np.einsum("ij,ij->i", matrix, matrix)) * float(np.sqrt(wanted @ wanted) or 1)
    scores = dots / np.where(norms == 0, 1.0, norms)
    if len(scores) > limit:
        best = np.argpartition(-scores, limit - 1)[:limit]
        return [int(i) for i in best[np.argsort(-scores[best], kind="stable")]]
    return [int(i) for i in np.argsort(-scores, kind="stable")]


def rank_by_words(
    question: str,
    candidates: Sequence[Candidate],
    words: WordVectors,
    speakers: frozenset[str] = frozenset(),
) -> list[Candidate]:
    """Candidates best first by how closely their words match the question's, word by word.

    Each of the question's content words is matched with the candidate's closest word (cosine
    of their vectors), weighted by the word's rarity among the candidates (BM25's idf), and the
    matches are summed: "animal" finds "greyhound" inside a message about a weekend, where the
    message's mean vector is mostly about the weekend. Late interaction, as ColBERT scores, with
    a static model's word vectors. When the question names one of the candidates' speakers
    (`speaker_of`), that speaker's messages count SPEAKER_BOOST more.
    """
    if not candidates:
        return []
    # One call, so that a word has the same id in the question and in the candidates.
    every = words(
        [
            meaning_of(question, speakers),
            *(meaning_of(c.message.content, speakers) for c in candidates),
        ]
    )
    asked = int(every.counts[0])
    counts = every.counts[1:]
    # A message with no content words ("ok thanks!") says nothing: it comes last.
    scores = np.full(len(candidates), -1.0, dtype=np.float32)
    present = counts > 0
    if asked and present.any():
        starts = (np.cumsum(counts) - counts)[present]
        asked_rows, found_rows = every.rows[:asked], every.rows[asked:]
        asked_ids, found_ids = every.ids[asked_rows], every.ids[found_rows]
        # Each distinct word compared once (einsum, not `@`: see most_similar), then looked up.
        distinct = np.einsum("ij,kj->ik", every.vectors[asked_rows], every.vectors)
        similarity = distinct[:, found_rows]
        # Unrelated words can be a little opposed: no closer than unrelated counts as unrelated.
        closest = np.maximum(np.maximum.reduceat(similarity, starts, axis=1), 0.0)
        holds = np.add.reduceat(found_ids[None, :] == asked_ids[:, None], starts, axis=1) > 0
        held = holds.sum(axis=1)
        count = len(candidates)
        idf = np.log(1 + (count - held + 0.5) / (held + 0.5)).astype(np.float32)
        # A long message holds a close word for almost anything: as in BM25, its length counts
        # against it, more softly (b 0.3; BM25's 0.75 found less on the recall benchmark).
        lengths = counts[present] / counts[present].mean()
        scores[present] = idf @ closest / (1 - WORDS_LENGTH_B + WORDS_LENGTH_B * lengths)
    said_by = [speaker_of(c.message, speakers) for c in candidates]
    named = named_speaker(question, set(said_by))
    if named:  # what matches nothing (a score of 0 or less) stays where it is
        theirs = np.array([speaker == named for speaker in said_by]) & (scores > 0)
        scores[theirs] *= 1 + SPEAKER_BOOST
    best = np.argsort(-scores, kind="stable")
    return [candidates[int(i)] for i in best]


def fuse(
    rankings: Sequence[Sequence[Candidate]], limit: int, weights: Sequence[float] | None = None
) -> list[Candidate]:
    """Weighted reciprocal rank fusion of several best-first lists: found by both beats found by
    one; a ranking's weight says how much its ranks count."""
    scores: dict[str, float] = {}
    found: dict[str, Candidate] = {}
    for ranking, weight in zip(rankings, weights or [1.0] * len(rankings), strict=True):
        for rank, candidate in enumerate(ranking):
            id_ = candidate.message.id
            scores[id_] = scores.get(id_, 0.0) + weight / (FUSION_K + rank)
            if id_ not in found or found[id_].around is None:  # keep what was read around it
                found[id_] = candidate
    best = sorted(scores, key=lambda id_: -scores[id_])[:limit]
    return [found[id_] for id_ in best]


def rank_items(items: Sequence[MemoryItem], text: str) -> list[MemoryItem]:
    """`items` best first for `text`: BM25 over the terms they share with it, rarity judged
    among the items; those that share none follow, newest first."""
    terms = query_terms(text)
    wanted = set(terms)
    matches = []
    for order, item in enumerate(items):
        held = _item_terms(item.text)
        matches.append(Match(order=order, matched=frozenset(held & wanted), length=len(held)))
    return [items[match.order] for match in rank_candidates(matches, terms)]


@functools.lru_cache(maxsize=4096)
def _item_terms(text: str) -> frozenset[str]:
    return frozenset(terms_of(text))
