"""Long-term recall: which archived messages are worth showing the model for a new message.

Lexical, so it works offline: the new message's distinctive words are looked up in the person's
archive (SQLite FTS5, or an indexed term list in Cosmos DB) and the best matches come back. Where
an embeddings model is configured, the closest messages by meaning are found too, and the two
rankings are fused, so a question worded differently from the fact still finds it.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Awaitable, Callable, Sequence

from memory.records import Message

# Words that carry no memory: asking "what is my manager's name?" should search for
# "manager" and "name", not "what" and "is".
STOPWORDS = frozenset(
    """
    a about above after again against all am an and any are aren't as at be because been before
    being below between both but by can can't cannot could couldn't did didn't do does doesn't
    doing don't down during each few for from further had hadn't has hasn't have haven't having
    he he'd he'll he's her here here's hers herself him himself his how how's i i'd i'll i'm
    i've if in into is isn't it it's its itself let's me more most mustn't my myself no nor not
    of off on once only or other ought our ours ourselves out over own same shan't she she'd
    she'll she's should shouldn't so some such than that that's the their theirs them
    themselves then there there's these they they'd they'll they're they've this those through
    to too under until up very was wasn't we we'd we'll we're we've were weren't what what's
    when when's where where's which while who who's whom why why's with won't would wouldn't you
    you'd you'll you're you've your yours yourself yourselves
    tell know remember remind recall again please thanks thank okay ok yes yeah hi hello hey
    also just like get got said say says told
    """.split()
)
MAX_QUERY_TERMS = 12
_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)?", re.UNICODE)


def terms_of(text: str) -> list[str]:
    """The distinctive words of `text`, lower-cased and normalised, in order, without repeats."""
    normalised = unicodedata.normalize("NFKC", text).lower()
    seen: dict[str, None] = {}
    for word in _WORD.findall(normalised):
        word = word.removesuffix("'s")
        if len(word) < 2 or word in STOPWORDS or word in seen:
            continue
        seen[word] = None
    return list(seen)


def query_terms(text: str) -> list[str]:
    """The terms to search the archive for when the person says `text`."""
    return terms_of(text)[:MAX_QUERY_TERMS]


# The embeddings call memory is given (the model client's `embed`), for semantic recall.
Embed = Callable[[Sequence[str]], Awaitable[list[list[float]]]]
_FUSION_K = 60  # the usual reciprocal-rank-fusion constant: later ranks still count, a little


def fuse(rankings: Sequence[Sequence[Message]], limit: int) -> list[Message]:
    """Reciprocal rank fusion of several best-first lists: found by both beats found by one."""
    scores: dict[str, float] = {}
    messages: dict[str, Message] = {}
    for ranking in rankings:
        for rank, message in enumerate(ranking):
            scores[message.id] = scores.get(message.id, 0.0) + 1.0 / (_FUSION_K + rank)
            messages[message.id] = message
    best = sorted(scores, key=lambda id_: -scores[id_])[:limit]
    return [messages[id_] for id_ in best]
