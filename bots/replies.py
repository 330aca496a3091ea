"""What the bot sends: AI-labelled answers, streamed in Teams personal chat, and cards.

Teams streaming (personal chat only): an informative `typing` update, `typing` updates carrying
the text so far, then the final `message` with the whole text. Updates go out at most about once
a second. Teams answers an update with 403 once the stream has ended on its side: the person
pressed Stop (or the two minutes a stream may last are up). Then the model's stream is closed at
once, so no more tokens are generated or billed, and the message is finalised with what the
person saw. Any other refusal stops the updates only: the answer is sent whole as the final
message.
"""

from __future__ import annotations

import json
import logging
import time
import unicodedata
from collections.abc import AsyncGenerator, Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, ClassVar

from botbuilder.core import CardFactory, TurnContext
from botbuilder.schema import Activity, ActivityTypes, Entity

from bots.wording import (
    CUT_OFF,
    FORGET_BUTTON,
    FORGET_ITEM_BUTTON,
    INFORMATIVE_TEXT,
    KEEP_BUTTON,
    NEWER_ITEMS_BUTTON,
    OLDER_ITEMS_BUTTON,
    REPLY_YES_TO_CONFIRM,
)
from model_client import ModelError

log = logging.getLogger(__name__)

AI_LABEL = {
    "type": "https://schema.org/Message",
    "@type": "Message",
    "@context": "https://schema.org",
    "@id": "",
    "additionalType": ["AIGeneratedContent"],
}
STREAM_UPDATE_SECONDS = 1.0
MAX_MESSAGE_BYTES = 20_000  # of text in one message; Teams refuses a message much over ~28 KB
# The data of the cards' buttons, as they come back in a message's `value`.
CONFIRM_FORGET = "memorybot.forget.confirm"
CANCEL_FORGET = "memorybot.forget.cancel"
FORGET_ITEM = "memorybot.item.forget"
ITEMS_PAGE = "memorybot.items.page"
CARD_ACTIONS = frozenset({CONFIRM_FORGET, CANCEL_FORGET, FORGET_ITEM, ITEMS_PAGE})
ADAPTIVE_CARD_VERSION = "1.5"  # what Teams renders on desktop, web and mobile


class FreeFormEntity(Entity):  # type: ignore[misc]
    """An entity whose extra fields survive serialisation (botbuilder's keeps `type` only)."""

    _attribute_map: ClassVar[dict[str, dict[str, str]]] = {
        "type": {"key": "type", "type": "str"},
        "additional_properties": {"key": "", "type": "{object}"},
    }

    def __init__(self, fields: dict[str, Any]) -> None:
        super().__init__(type=fields["type"])
        self.additional_properties = {k: v for k, v in fields.items() if k != "type"}


Cite = Callable[[str], list[dict[str, Any]]]
"""The Teams citation claims for a part of an answer (`bots.citations.citations`)."""


def no_citations(_: str) -> list[dict[str, Any]]:
    return []


def answer_activity(
    text: str, stream_id: str | None = None, citations: Sequence[dict[str, Any]] = ()
) -> Activity:
    """The model's answer: labelled as AI-generated, with Teams' feedback buttons enabled, and
    the citations of what it cites."""
    label = {**AI_LABEL, "citation": list(citations)} if citations else AI_LABEL
    entities = [FreeFormEntity(label)]
    if stream_id is not None:
        entities.append(
            FreeFormEntity({"type": "streaminfo", "streamId": stream_id, "streamType": "final"})
        )
    return Activity(
        type=ActivityTypes.message,
        text=text,
        entities=entities,
        channel_data={"feedbackLoopEnabled": True},
    )


class StreamedAnswerFailed(Exception):
    """The model gave no text to stream; `stream_id` is the stream the person sees open."""

    def __init__(self, error: ModelError, stream_id: str | None) -> None:
        super().__init__(str(error))
        self.error = error
        self.stream_id = stream_id


@dataclass(frozen=True, slots=True)
class StreamedAnswer:
    text: str
    """What the person got: the whole answer, or, if they stopped it, what they saw of it."""
    stopped: bool = False
    """The person pressed Stop (or the stream's time ran out) before the answer was done."""


async def send_streamed(
    turn_context: TurnContext,
    pieces: AsyncGenerator[str, None],
    *,
    cite: Cite = no_citations,
    clock: Any = time.monotonic,
) -> StreamedAnswer:
    """Streams `pieces` into the chat as Teams does; returns what the person got.

    If the model fails before any text, StreamedAnswerFailed carries the open stream, so that
    the sentence saying what happened can close it (`closing_activity`).
    """
    stream_id: str | None = None
    sequence = 1
    text = shown = ""
    streaming = stopped = cut_off = False
    try:
        first = await turn_context.send_activity(_stream_update(INFORMATIVE_TEXT, None, 1, True))
        stream_id = first.id if first else None
        streaming = stream_id is not None
    except Exception as error:
        log.info("Teams refused the stream (%s); sending the answer whole", type(error).__name__)
    last_update = clock()
    try:
        async for piece in pieces:
            text += piece
            if streaming and clock() - last_update >= STREAM_UPDATE_SECONDS:
                sequence += 1
                try:
                    await turn_context.send_activity(
                        _stream_update(text, stream_id, sequence, False)
                    )
                    shown = text
                except Exception as error:
                    status = _status_of(error)
                    log.info("stream update refused (%s)", status or type(error).__name__)
                    streaming, stopped = False, status == 403
                    if stopped:
                        break
                last_update = clock()
    except ModelError as error:
        if not text:
            raise StreamedAnswerFailed(error, stream_id) from error
        log.info("the model stopped mid-answer (%s); what it said is sent", type(error).__name__)
        cut_off = True
    finally:
        await pieces.aclose()  # after Stop, at once: no more tokens generated, none billed
        if stopped:
            await _finalise_stopped(turn_context, shown, stream_id, cite)
        elif text:
            first, *rest = split_for_teams(text)
            await turn_context.send_activity(answer_activity(first, stream_id, cite(first)))
            for part in rest:
                await turn_context.send_activity(answer_activity(part, citations=cite(part)))
            if cut_off:  # the bot's own sentence, after the answer: it is not the model's
                await turn_context.send_activity(Activity(type=ActivityTypes.message, text=CUT_OFF))
    return StreamedAnswer(shown, stopped=True) if stopped else StreamedAnswer(text)


async def _finalise_stopped(
    turn_context: TurnContext, shown: str, stream_id: str | None, cite: Cite
) -> None:
    """Ends a stopped stream with what the person saw of it. Teams may already have closed it
    on its side, and refuse this too: what they saw then stays as it is."""
    if not shown:
        return
    try:
        await turn_context.send_activity(answer_activity(shown, stream_id, cite(shown)))
    except Exception as error:
        log.info("the stopped stream's final message was refused (%s)", type(error).__name__)


def _status_of(error: Exception) -> int | None:
    """The HTTP status of a refused send: msrest's error carries the response, aiohttp's
    (`status`) through the connector's aiohttp session, a requests-style one elsewhere."""
    response = getattr(error, "response", None)
    for name in ("status", "status_code"):
        status = getattr(response, name, None)
        if isinstance(status, int):
            return status
    return None


def closing_activity(text: str, stream_id: str | None) -> Activity:
    """A sentence from the bot (not the model) that ends an open stream, if there is one."""
    if stream_id is None:
        return Activity(type=ActivityTypes.message, text=text)
    info = FreeFormEntity({"type": "streaminfo", "streamId": stream_id, "streamType": "final"})
    return Activity(type=ActivityTypes.message, text=text, entities=[info])


def split_for_teams(text: str, limit: int = MAX_MESSAGE_BYTES) -> list[str]:
    """`text` in parts of at most `limit` bytes as sent (JSON, every character past ASCII
    escaped: an emoji takes 12 bytes), cut at a line break or a space where one is near: Teams
    refuses a message much over 28 KB, and the person would get nothing."""
    parts: list[str] = []
    while _sent_bytes(text) > limit:
        head = _longest_prefix_within(text, limit)
        cut = max(head.rfind("\n"), head.rfind(" "))
        if cut < len(head) // 2:
            cut = len(head)
        parts.append(head[:cut])
        text = text[cut:].lstrip("\n ")
    return [*parts, text] if text or not parts else parts


def _sent_bytes(text: str) -> int:
    return len(json.dumps(text)) - 2  # as msrest writes it, less the quotes


def _longest_prefix_within(text: str, limit: int) -> str:
    """The longest start of `text` that takes at most `limit` bytes as sent (at least one
    character)."""
    low, high = 1, len(text)
    while low < high:  # binary search: the size as sent grows with the length
        middle = (low + high + 1) // 2
        if _sent_bytes(text[:middle]) <= limit:
            low = middle
        else:
            high = middle - 1
    return text[:low]


def _stream_update(text: str, stream_id: str | None, sequence: int, informative: bool) -> Activity:
    info: dict[str, Any] = {
        "type": "streaminfo",
        "streamType": "informative" if informative else "streaming",
        "streamSequence": sequence,
    }
    if stream_id is not None:
        info["streamId"] = stream_id
    return Activity(type=ActivityTypes.typing, text=text, entities=[FreeFormEntity(info)])


def forget_confirmation(question: str, question_id: str, listing: Sequence[str] = ()) -> Activity:
    """A card asking to confirm `forget` (with what it would forget, `listing`, where that is
    not everything); typing `yes` works too, as its summary says (the text for clients that
    show no cards: a text beside the card would show it twice). Its buttons name the question
    they answer, so that only that question, while it stands, can be confirmed."""
    body: list[dict[str, Any]] = [{"type": "TextBlock", "text": question, "wrap": True}]
    body += [
        {"type": "TextBlock", "text": line, "wrap": True, "spacing": "Small"} for line in listing
    ]
    card = {
        "type": "AdaptiveCard",
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "version": ADAPTIVE_CARD_VERSION,
        "body": body,
        "actions": [
            {
                "type": "Action.Submit",
                "title": FORGET_BUTTON,
                "data": {"action": CONFIRM_FORGET, "question": question_id},
            },
            {
                "type": "Action.Submit",
                "title": KEEP_BUTTON,
                "data": {"action": CANCEL_FORGET, "question": question_id},
            },
        ],
    }
    text = "\n".join([question, *listing, REPLY_YES_TO_CONFIRM])
    return Activity(
        type=ActivityTypes.message,
        summary=_plain_text(text if listing else f"{question} {REPLY_YES_TO_CONFIRM}"),
        attachments=[CardFactory.adaptive_card(card)],
    )


@dataclass(frozen=True, slots=True)
class ItemLine:
    """One kept thing as the `memory` card shows it."""

    id: str
    text: str
    detail: str  # its kind and date


def items_card(
    title: str,
    lines: Sequence[ItemLine],
    also_kept: str,
    older_page: int | None,
    newer_page: int | None = None,
) -> Activity:
    """The `memory` card: a page of kept things, each with a button that forgets it, then what
    else is kept; buttons for the pages of older and newer ones where there are some. The
    message's summary (not its text, which Teams would show beside the card) says the same for
    clients that show no cards and for notifications. Each thing shows at most CARD_ITEM_CHARS
    of its text, as plain text (no markdown link or invisible character of its own), and the
    page holds as many of `lines` as fit a message Teams takes."""
    lines = [replace(line, text=card_text(line.text)) for line in lines]
    pages = (older_page, newer_page)
    while len(lines) > 1 and payload_bytes(_items_card(title, lines, also_kept, *pages)) > (
        MAX_CARD_BYTES
    ):
        lines = lines[:-1]
    return _items_card(title, lines, also_kept, *pages)


MAX_CARD_BYTES = 24_000  # a card as sent; Teams refuses a message much over ~28 KB
CARD_ITEM_CHARS = 200


def card_text(text: str) -> str:
    """Text a person stored, to show on a card (`as_written`), at most CARD_ITEM_CHARS."""
    shown = as_written(text)
    return shown if len(shown) <= CARD_ITEM_CHARS else shown[: CARD_ITEM_CHARS - 1] + "…"


def as_written(text: str) -> str:
    """Text someone wrote, to show in the bot's own message or card as they wrote it: control
    and format characters (bidi overrides, zero-width spaces, tag characters) dropped, but not
    the joiners that emoji sequences and some scripts need (ZWJ, ZWNJ); and a markdown link's
    `](` broken, so that "[Sign in again](https://…)" never becomes a link in the bot's voice."""
    shown = "".join(
        c for c in text if c in _KEPT_INVISIBLE or unicodedata.category(c) not in ("Cc", "Cf")
    )
    return shown.replace("](", "] (")


_KEPT_INVISIBLE = frozenset("\n\u200c\u200d")  # a line break; ZWNJ and ZWJ


def in_message(text: str) -> str:
    """Text someone wrote, for the bot's own text message (not a card): `as_written`, and its
    angle brackets made look-alikes, since Teams renders some HTML in a text message, a link
    among it ("<a href=…>Sign in again</a>")."""
    return as_written(text).translate(_LOOK_ALIKE_ANGLES)


_LOOK_ALIKE_ANGLES = str.maketrans("<>", "‹›")


def _items_card(
    title: str,
    lines: Sequence[ItemLine],
    also_kept: str,
    older_page: int | None,
    newer_page: int | None,
) -> Activity:
    body: list[dict[str, Any]] = [
        {"type": "TextBlock", "text": title, "weight": "Bolder", "size": "Medium", "wrap": True}
    ]
    for line in lines:
        body.append(
            {
                "type": "ColumnSet",
                "separator": True,
                "columns": [
                    {
                        "type": "Column",
                        "width": "stretch",
                        "items": [
                            {"type": "TextBlock", "text": line.text, "wrap": True},
                            {
                                "type": "TextBlock",
                                "text": line.detail,
                                "isSubtle": True,
                                "size": "Small",
                                "spacing": "None",
                                "wrap": True,
                            },
                        ],
                    },
                    {
                        "type": "Column",
                        "width": "auto",
                        "verticalContentAlignment": "Center",
                        "items": [
                            {
                                "type": "ActionSet",
                                "actions": [
                                    {
                                        "type": "Action.Submit",
                                        "title": FORGET_ITEM_BUTTON,
                                        "data": {"action": FORGET_ITEM, "item": line.id},
                                    }
                                ],
                            }
                        ],
                    },
                ],
            }
        )
    body.append({"type": "TextBlock", "text": also_kept, "wrap": True, "separator": True})
    card: dict[str, Any] = {
        "type": "AdaptiveCard",
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "version": ADAPTIVE_CARD_VERSION,
        "body": body,
    }
    actions = [
        {"type": "Action.Submit", "title": button, "data": {"action": ITEMS_PAGE, "page": page}}
        for button, page in ((NEWER_ITEMS_BUTTON, newer_page), (OLDER_ITEMS_BUTTON, older_page))
        if page is not None
    ]
    if actions:
        card["actions"] = actions
    text = "\n".join([title, *(f"- {line.text} ({line.detail})" for line in lines), "", also_kept])
    return Activity(
        type=ActivityTypes.message,
        summary=_plain_text(text),
        attachments=[CardFactory.adaptive_card(card)],
    )


def _plain_text(markdown: str) -> str:
    """A summary as plain text (notifications and previews show it as written): no bold marks."""
    return markdown.replace("**", "")


def payload_bytes(activity: Activity) -> int:
    """How many bytes `activity` takes as the JSON sent to the channel: as msrest writes the
    body, every character past ASCII escaped (`\\u00e9`), so never less than its UTF-8."""
    return len(json.dumps(activity.serialize(), default=str).encode())
