"""How text becomes search terms: one analyser for what the archive indexes and what a question
asks for, so that both sides of a lookup always read words the same way.

Lower-cased, NFKC-normalised words without stop words, a possessive's "'s" dropped, each reduced
to its stem by the Snowball English stemmer (PyStemmer), so that "researching", "researched" and
"research" are one term. The stores index each archived message's terms with it; ranking
(`memory.recall`) compares them. Changing what this returns changes what the stores have indexed:
the SQLite store re-indexes its archive when its schema version says the terms changed; Cosmos DB
items keep the terms they were written with.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections.abc import Iterator
from functools import lru_cache

import Stemmer

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
_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)?", re.UNICODE)
_WRITTEN_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)?")
_STEMMER = Stemmer.Stemmer("english")


def terms_of(text: str) -> list[str]:
    """The distinctive words of `text`, lower-cased and normalised, in order, without repeats."""
    normalised = unicodedata.normalize("NFKC", text).lower()
    seen: dict[str, None] = {}
    for word in _WORD.findall(normalised):
        word = word.removesuffix("'s")
        if len(word) < 2 or word in STOPWORDS:
            continue
        seen[_stem(word)] = None
    return list(seen)


@lru_cache(maxsize=65_536)
def _stem(word: str) -> str:
    return str(_STEMMER.stemWord(word))


def content_words(text: str, limit: int | None = None) -> tuple[str, ...]:
    """`text`'s words as written, in order, without stop words, single letters and runs too long
    to be a word: what a static embeddings model should read of it (`terms_of` gives the stems
    that search reads); at most the first `limit`. Remembered for short texts, which recur from
    turn to turn; a long text is read only as far as `limit` words."""
    if len(text) <= _CACHED_CHARS:
        words = _cached_content_words(text)
        return words if limit is None else words[:limit]
    return tuple(itertools.islice(_content_words(text), limit))


_CACHED_CHARS = 2000
_LONGEST_WORD = 40  # longer runs of letters are not words anyone looks for


@lru_cache(maxsize=8192)
def _cached_content_words(text: str) -> tuple[str, ...]:
    return tuple(word for word in _WRITTEN_WORD.findall(text) if _is_content(word))


def _content_words(text: str) -> Iterator[str]:
    for found in _WRITTEN_WORD.finditer(text):
        word = found.group()
        if _is_content(word):
            yield word


def _is_content(word: str) -> bool:
    """Whether a word as written is one a reader would look for."""
    return 1 < len(word) <= _LONGEST_WORD and not _is_stop_word(word)


@lru_cache(maxsize=65_536)
def _is_stop_word(word: str) -> bool:
    """Judged once a word (people reuse their words); only words of a bounded length come."""
    return word.lower().replace("’", "'").removesuffix("'s") in STOPWORDS
