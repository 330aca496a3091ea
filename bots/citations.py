"""Teams citations for an answer that used recalled memories.

The prompt numbers each recalled message (`memory.Source`) and asks the model to cite what it
relies on as [n]. An answer's markers that name a source become Teams citations: claims in the
AI label entity, each naming where it came from ("Our chat on 3 May 2026") with an extract of
what was said. Teams' limits: at most 20 citations a message, a name of at most 80 characters,
an extract of at most 160. A marker that names no source is left as the model wrote it. What is
remembered of the answer has no markers: the numbers mean nothing outside this one prompt.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from bots.wording import CITED_BOT, CITED_MEMBER, CITED_PERSON, wording_for
from memory import Source

MAX_CITATIONS = 20
MAX_NAME_CHARS = 80
MAX_ABSTRACT_CHARS = 160
# A citation marker: [n], n from 1 to 999 in ASCII digits with no leading zero, standing on its
# own: not glued to a word, a URL or another bracket (code's `a[1]`, `m[1][2]`, `/a[3]`), and
# not the text of a markdown link (`[2](...)`). Markers inside `code` are not markers.
_MARKERS = re.compile(r"(?<![\w/\]\[\\])(?:\[[1-9][0-9]{0,2}\])+(?![\[(\w])")  # [2] or [3][1]
_NUMBER = re.compile(r"\[([0-9]+)\]")
_CODE = re.compile(r"```.*?(?:```|$)|`[^`\n]*`", re.DOTALL)


def cited(text: str, sources: Sequence[Source]) -> list[Source]:
    """The sources `text` cites, in the order first cited, at most MAX_CITATIONS."""
    by_number = {source.number: source for source in sources}
    found: dict[int, Source] = {}
    for match in _markers(text):
        source = by_number.get(int(match.group(1)))
        if source is not None and len(found) < MAX_CITATIONS:
            found.setdefault(source.number, source)
    return list(found.values())


def citations(text: str, sources: Sequence[Source], group: bool) -> list[dict[str, Any]]:
    """The Teams citation claims for the sources `text` cites."""
    return [_claim(source, group) for source in cited(text, sources)]


def without_markers(text: str, sources: Sequence[Source]) -> str:
    """`text` without its markers that name a source (and the space before each)."""
    numbers = {source.number for source in sources}
    kept, end = [], 0
    for match in _markers(text):
        if int(match.group(1)) not in numbers:
            continue
        start = match.start()
        if start > end and text[start - 1] == " ":
            start -= 1  # the space before it goes too
        kept.append(text[end:start])
        end = match.end()
    return "".join(kept) + text[end:]


def _markers(text: str) -> list[re.Match[str]]:
    """The citation markers of `text`, one match each (group 1 its number), outside code."""
    code = [span.span() for span in _CODE.finditer(text)]
    return [
        number
        for run in _MARKERS.finditer(text)
        if not any(start <= run.start() < end for start, end in code)
        for number in _NUMBER.finditer(text, run.start(), run.end())
    ]


def _claim(source: Source, group: bool) -> dict[str, Any]:
    message = source.message
    if message.role == "assistant":
        template = CITED_BOT
    elif group and message.author:
        template = CITED_MEMBER
    else:
        template = CITED_PERSON
    extract = template.format(author=message.author, text=" ".join(message.content.split()))
    return {
        "@type": "Claim",
        "position": source.number,
        "appearance": {
            "@type": "DigitalDocument",
            "name": _cut(wording_for(group).citation_source.format(day=message.at), MAX_NAME_CHARS),
            "abstract": _cut(extract, MAX_ABSTRACT_CHARS),
        },
    }


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
