"""Memory items: the short facts, preferences and decisions kept about a person, and how they
change.

Items come two ways:
- **Extracted.** Every few new messages, off the reply path (with the summaries, under the same
  concurrency limit), the configured model reads them beside the items that stand and answers in
  JSON which items to add, each with the messages it came from and the standing items it
  replaces. A failed or unreadable answer drops nothing: the same messages are read again next
  time. The offline model extracts nothing.
- **Dictated.** "remember that …" or "…, remember that" in a message (with any model), or the
  bot's `remember` command, adds the item as said.

An item that a newer one replaces is kept, superseded, until retention removes it; an item
whose text a standing one already says is not added twice. A person's items are kept in their
record (at most MAX_CURRENT_ITEMS standing, MAX_SUPERSEDED_ITEMS superseded), so a turn reads
them with the record, in the same request.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from memory.recall import rank_items
from memory.records import (
    ITEM_KINDS,
    ChatMessage,
    ConversationRecord,
    ItemKind,
    MemoryItem,
    Message,
)
from memory.summary import CUT_MARKER, FRAMING_TOKENS, LINE_TOKENS
from memory.tokens import count_tokens, fit_oldest

MAX_CURRENT_ITEMS = 200
MAX_SUPERSEDED_ITEMS = 100
MAX_ITEM_CHARS = 300
MAX_NEW_ITEMS = 20  # read from one extraction answer
# What chooses the standing items an extraction lists: the start of its first messages (the
# ranking reads a dozen terms at most, and reading more would only cost time).
_READ_FOR_ITEMS = 300
_MESSAGES_FOR_ITEMS = 10

EXTRACTION_INSTRUCTIONS = (
    "You keep a list of short memory items about the people talking with an assistant, so the "
    "assistant remembers them later. Read the new messages, each numbered and dated, beside "
    "the items already kept, each with its id. Answer with JSON only, in this form: "
    '{"items": [{"kind": "fact", "text": "...", "sources": [1], "replaces": ["id"]}]}. '
    "kind is fact, preference or decision. Add an item only for something durable a message "
    "says: names of people and how they relate, places, work and projects, plans and "
    "decisions, preferences. Write each as one short plain sentence about the person, with a "
    "date (YYYY-MM-DD) where one is said; turn relative times into dates, counting from the "
    "message's date. sources lists the numbers of the messages it comes from. When a new "
    "message changes or contradicts a kept item, add the new item and put the old item's id "
    "in replaces. Never repeat a kept item, never add small talk, never invent anything. "
    'With nothing new to keep, answer {"items": []}.'
)

# "remember that …" at the start of the message or of a sentence or clause in its first line
# ("By the way, please remember that …"), never after other words ("I remember that day").
# (One whitespace run at each place: two side by side made long runs of spaces take seconds.)
_DICTATED = re.compile(
    r"^(?:[^\n]*?[,.;:!?]\s+|\s*)(?:please\s+)?(?P<polite>can you\s+|could you\s+)?"
    r"remember(?:\s+that)?\s*[:,-]?\s+(?P<text>.+)$",
    re.IGNORECASE | re.DOTALL,
)
# "… remember that" at the end of a message, after a clause boundary ("I prefer tea, remember
# that", "We moved the launch. Please remember that!", "(remember that)"), never after a subject
# or auxiliary ("I can't remember that", "Do you remember that?"). It is searched for only in
# the message's last _REQUEST_TAIL characters, the closing marks stripped first: a pattern over
# the whole message took seconds on a long run of spaces.
_REQUEST_AT_END = re.compile(
    r"[,.;!\n(\-\u2013\u2014\u2026]\s*(?:please\s+)?"
    r"(?P<polite>(?:can|could|would|will)\s+you\s+(?:please\s+)?)?remember\s+(?:that|this)"
    r"(?:[\s,]{1,3}(?:please|pls|thanks|thank you))?\Z",
    re.IGNORECASE,
)
_REQUEST_TAIL = 80
# In chat, what follows "remember that" when the request ends the message ("I prefer tea,
# remember that please"): nothing to keep, so what came before it is kept.
_NOTHING_SAID = frozenset({"that", "this", "that please", "please", "pls", "thanks", "thank you"})
_SENTENCE_END = re.compile(r"[.!?]\s+")
_CLOSING_MARKS = " \t\r\n.!?)]\"'\u201d\u2019\u2026"
_CLAUSE_MARKS = " .!,;:-(\u2013\u2014\u2026"
# What leads into a request without saying anything to keep: "By the way, remember that" and
# "OK Sam, remember that" point at something said before, not in the message.
_ONLY_A_LEAD_IN = re.compile(
    r"(?:(?:by the way|btw|oh|ok|okay|so|and|also|anyway|hey|hi|hello|thanks|thank you|well"
    r"|please)\b\W*)*(?:\w+\W*)?",
    re.IGNORECASE,
)
# "remember that, and then we went home": the sentence goes on; nothing is dictated.
_GOES_ON = re.compile(r"(?:and|but|or|so|then)\b", re.IGNORECASE)
_FIRST_SENTENCE_END = re.compile(r"[.!?](?=\s|$)")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")  # not the line breaks and tabs


# What a dictated item is, from its words (the model says so itself for what it extracts):
# someone saying they decided or prefer something, not the everyday words alone ("looks like").
_SOMEONE = r"\b(?:i|we|they|he|she|you)(?:'ve|'re|'d| have| are| had| would)?\s+"
_DECISION = re.compile(
    _SOMEONE + r"(?:(?:just|finally|now|all)\s+)?(?:decided|agreed|chose|settled on|going with)\b",
    re.IGNORECASE,
)
_PREFERENCE = re.compile(
    _SOMEONE + r"(?:(?:really|much|always|usually|do|don't|do not)\s+)?"
    r"(?:prefers?|likes?|loves?|hates?|dislikes?|enjoys?|rather)\b|\b(?:my|our|their|his|her)"
    r"\s+favou?rite\b",
    re.IGNORECASE,
)


def kind_of(text: str) -> ItemKind:
    """A dictated item's kind: a decision where it says one was made ("we decided to use
    Postgres"), a preference where it says what someone likes ("I prefer dark mode"), else a
    fact."""
    if _DECISION.search(text):
        return "decision"
    if _PREFERENCE.search(text):
        return "preference"
    return "fact"


@dataclass(frozen=True, slots=True)
class NewItem:
    text: str
    kind: ItemKind = "fact"
    sources: tuple[str, ...] = ()
    replaces: tuple[str, ...] = ()
    said_at: datetime | None = None
    """When its newest source was said (the item's date); None: when it is added."""


def dictated(text: str, *, command: bool = False) -> str | None:
    """What "remember that …" or "…, remember that" asks to keep, if `text` asks that
    (`command`: the `remember` command, which keeps what follows it and is never a question)."""
    match = _DICTATED.match(text)
    said = _tidy(match.group("text")).rstrip(" .!") if match else ""
    # "remember that" alone, or nothing but marks, is no thing to keep: ask what to keep, or
    # in chat keep what came before it ("I prefer tea, can you remember that?"). (The command
    # keeps "this" and "that?" as it always has.)
    word = said.casefold()
    said_nothing = word == "that" or (not command and word.rstrip("?") in _NOTHING_SAID)
    if match is None or said_nothing or not any(c.isalnum() for c in said):
        return None if command else _said_before(text)
    if not command and text[: match.start("text")].rstrip().endswith(",") and _GOES_ON.match(said):
        return None
    # "Remember that class I told you about? I made a bowl" asks something; "Can you remember
    # that my son is Sam?" asks to keep it; a "?" inside a word (a URL) ends no sentence.
    end = _FIRST_SENTENCE_END.search(said)
    if not command and match.group("polite") is None and end is not None and end[0] == "?":
        return None
    return said.rstrip("?") if match.group("polite") else said


def _said_before(text: str) -> str | None:
    """What a message that ends asking to remember it keeps: the statement before the request
    ("I prefer tea over coffee, remember that" keeps "I prefer tea over coffee")."""
    body = text.rstrip(_CLOSING_MARKS)
    request = _REQUEST_AT_END.search(body, max(0, len(body) - _REQUEST_TAIL))
    if request is None:
        return None
    # "We met in Paris, remember that?" asks whether they recall it; "…, can you remember
    # that?" asks to keep it.
    if request.group("polite") is None and "?" in text[len(body) :]:
        return None
    said = _tidy(body[: request.start()]).rstrip(_CLAUSE_MARKS)
    # A question is no thing to keep ("Is it Friday? Remember that"), nor a lead-in alone.
    if said.endswith("?") or (len(said) <= _REQUEST_TAIL and _ONLY_A_LEAD_IN.fullmatch(said)):
        return None
    if len(said) > MAX_ITEM_CHARS:  # what is asked to be kept is what was said last
        tail = said[-MAX_ITEM_CHARS:]
        sentence = _SENTENCE_END.search(tail)
        said = tail[sentence.end() :] if sentence and sentence.end() < len(tail) else tail
    return said


def with_items(
    record: ConversationRecord, new: Iterable[NewItem], now: datetime
) -> ConversationRecord:
    """`record` with `new` added: those a standing item already says are skipped; those each
    replaces are superseded; the oldest go past the caps."""
    items = list(record.items)
    said = {_normalised(item.text) for item in items if item.current}
    for wanted in new:
        text = _tidy(wanted.text)[:MAX_ITEM_CHARS]
        if not text or _normalised(text) in said:
            continue
        added = MemoryItem(text, wanted.kind, wanted.said_at or now, sources=wanted.sources)
        replaced = set(wanted.replaces)
        items = [
            replace(item, superseded_by=added.id, superseded_at=now)
            if item.id in replaced and item.current
            else item
            for item in items
        ]
        items.append(added)
        said.add(_normalised(text))
    current = [item for item in items if item.current][-MAX_CURRENT_ITEMS:]
    superseded = [item for item in items if not item.current][-MAX_SUPERSEDED_ITEMS:]
    kept = {item.id for item in (*current, *superseded)}
    return replace(record, items=tuple(item for item in items if item.id in kept))


def unexpired(
    record: ConversationRecord, now: datetime, ttl: timedelta | None
) -> ConversationRecord:
    """`record` without the items older than `ttl` (from the date each was said), as the
    archive's messages expire from theirs."""
    if ttl is None or not any(now - item.at >= ttl for item in record.items):
        return record
    return replace(record, items=tuple(item for item in record.items if now - item.at < ttl))


def without_items(record: ConversationRecord, ids: Iterable[str]) -> ConversationRecord:
    """`record` with the items of `ids` gone, superseded or not."""
    gone = set(ids)
    return replace(record, items=tuple(item for item in record.items if item.id not in gone))


def extraction_prompt(
    standing: Sequence[MemoryItem], messages: Sequence[Message], budget: int
) -> tuple[list[ChatMessage], int]:
    """The prompt that asks for items in the oldest of `messages` beside the `standing` ones,
    within about `budget` tokens, and how many of the messages it holds (the others are read
    next time): the standing items that fit a third of the budget, those the messages are most
    about first, then the newest, and the messages in the rest, whole (`fit_oldest`)."""
    # The standing items the new messages are most about first (those a new item may replace),
    # then the newest; listed oldest first.
    listed: dict[str, str] = {}
    room = budget // 3
    about = " ".join(m.content[:_READ_FOR_ITEMS] for m in messages[:_MESSAGES_FOR_ITEMS])
    for item in rank_items(standing, about):
        line = f"- id {item.id} ({item.at.date().isoformat()}, {item.kind}): {item.text}"
        room -= count_tokens(line) + 1
        if room < 0:
            break
        listed[item.id] = line
    kept = "\n".join(listed[item.id] for item in standing if item.id in listed)
    room = budget - FRAMING_TOKENS - count_tokens(EXTRACTION_INSTRUCTIONS) - count_tokens(kept)
    texts = fit_oldest([_tidy(m.content) for m in messages], room, CUT_MARKER, LINE_TOKENS)
    new = "\n".join(
        f"[{number}] ({message.at.date().isoformat()}) {_speaker(message)}: {text}"
        for number, (message, text) in enumerate(zip(messages, texts, strict=False), 1)
    )
    return [
        ChatMessage(role="system", content=EXTRACTION_INSTRUCTIONS),
        ChatMessage(
            role="user",
            content=f"Items already kept:\n{kept or '(none yet)'}\n\nNew messages:\n{new}",
        ),
    ], len(texts)


def read_extraction(
    answer: str, standing: Sequence[MemoryItem], messages: Sequence[Message]
) -> list[NewItem]:
    """The items an extraction answer adds. ValueError when it is not the JSON asked for; an
    entry that is not an item is skipped, as are sources and replaced ids it made up."""
    start, end = answer.find("{"), answer.rfind("}")
    if start < 0 or end < start:
        raise ValueError("no JSON object in the answer")
    found = json.loads(answer[start : end + 1])
    entries = found.get("items") if isinstance(found, dict) else None
    if not isinstance(entries, list):
        raise ValueError('the answer has no "items" list')
    standing_ids = {item.id for item in standing}
    items: list[NewItem] = []
    for entry in entries[:MAX_NEW_ITEMS]:
        if not isinstance(entry, dict) or not isinstance(entry.get("text"), str):
            continue
        kind = entry.get("kind")
        said = [
            messages[number - 1]
            for number in _list(entry.get("sources"))
            if isinstance(number, int) and 1 <= number <= len(messages)
        ]
        replaces = [i for i in _list(entry.get("replaces")) if i in standing_ids]
        items.append(
            NewItem(
                entry["text"],
                kind if kind in ITEM_KINDS else "fact",
                tuple(dict.fromkeys(message.id for message in said)),
                tuple(dict.fromkeys(str(i) for i in replaces)),
                max((message.at for message in said), default=None),
            )
        )
    return items


def _list(value: object) -> list[object]:
    return value if isinstance(value, list) else []


def _speaker(message: Message) -> str:
    if message.role == "assistant":
        return "Assistant"
    return _tidy(message.author) if message.author else "Person"


def _tidy(text: str) -> str:
    """On one line, spaces collapsed, control characters gone."""
    # (split() breaks on the same whitespace as a regex's \s, several times faster.)
    return " ".join(_CONTROL.sub("", text).split())


def _normalised(text: str) -> str:
    return _tidy(text).casefold().rstrip(" .!")
