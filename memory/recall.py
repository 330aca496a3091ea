"""Recall policy: which archived messages are worth showing the model for a new message.

The one place that ranks, for every store. Stores find candidates (SQLite through FTS5, Cosmos
DB through an indexed term list) and say which of the question's terms each holds; here they are
ranked by BM25, judged among the candidates. Where an embeddings model is configured, messages
are also ranked by cosine similarity to the question, and the rankings are fused, so that a
question worded differently from the fact can still find it.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

import numpy as np

from memory.records import Candidate, Message
from memory.terms import terms_of

MAX_QUERY_TERMS = 12
# The usual BM25 constants (FTS5 uses the same).
BM25_K1 = 1.2
BM25_B = 0.75
FUSION_K = 60  # the usual reciprocal-rank-fusion constant: later ranks still count, a little

# The embeddings call memory is given (the model client's `embed`), for semantic recall.
Embed = Callable[[Sequence[str]], Awaitable[list[list[float]]]]
Vector = np.ndarray[Any, np.dtype[np.float32]]


def query_terms(text: str) -> list[str]:
    """The terms to search the archive for when the person says `text`."""
    return search_terms([text])


def search_terms(texts: Iterable[str]) -> list[str]:
    """`texts` read as the archive reads messages: distinct terms, in order, at most
    MAX_QUERY_TERMS (the words of a long message that come first are kept)."""
    terms = dict.fromkeys(term for text in texts for term in terms_of(text))
    return list(terms)[:MAX_QUERY_TERMS]


def rank_by_terms(candidates: Sequence[Candidate], terms: Sequence[str]) -> list[Message]:
    """Candidates best first by BM25 over `terms`, rarity judged among the candidates; ties go
    to the newer message.

    A message's length is its number of distinct terms: a short message that holds a rare term
    outranks a long one that holds it among many others.
    """
    if not candidates:
        return []
    count = len(candidates)
    average = sum(c.length for c in candidates) / count or 1.0
    holders = {term: sum(term in c.matched for c in candidates) for term in terms}
    idf = {
        term: math.log(1 + (count - held + 0.5) / (held + 0.5))
        for term, held in holders.items()
        if held
    }

    def score(candidate: Candidate) -> tuple[float, int]:
        norm = 1 - BM25_B + BM25_B * candidate.length / average
        weight = sum(idf.get(term, 0.0) for term in candidate.matched)
        return weight * (BM25_K1 + 1) / (1 + BM25_K1 * norm), candidate.order

    return [c.message for c in sorted(candidates, key=score, reverse=True)]


def most_similar(vectors: Sequence[Vector], query: Sequence[float]) -> list[int]:
    """Indexes of `vectors` of the query's length, most cosine-similar to `query` first."""
    wanted = np.asarray(query, dtype=np.float32)
    usable = [i for i, vector in enumerate(vectors) if vector.shape == wanted.shape]
    if not usable:
        return []
    matrix = np.stack([vectors[i] for i in usable])
    norms = np.linalg.norm(matrix, axis=1) * (np.linalg.norm(wanted) or 1.0)
    scores = matrix @ wanted / np.where(norms == 0, 1.0, norms)
    return [usable[int(i)] for i in np.argsort(-scores, kind="stable")]


def fuse(rankings: Sequence[Sequence[Message]], limit: int) -> list[Message]:
    """Reciprocal rank fusion of several best-first lists: found by both beats found by one."""
    scores: dict[str, float] = {}
    messages: dict[str, Message] = {}
    for ranking in rankings:
        for rank, message in enumerate(ranking):
            scores[message.id] = scores.get(message.id, 0.0) + 1.0 / (FUSION_K + rank)
            messages[message.id] = message
    best = sorted(scores, key=lambda id_: -scores[id_])[:limit]
    return [messages[id_] for id_ in best]
