"""`export`: everything kept for a memory, as JSON, never cut (the format: docs/export.md).

**In a Teams personal chat, a file.** The bot sends a file consent card naming the file and its
size; when the person chooses Allow, Teams invokes the bot (`fileConsent/invoke`) with an upload
URL in their OneDrive. The bot then makes the export again, from the store as it is at that
moment, uploads it there (in chunks past UPLOAD_CHUNK_BYTES) and sends a card that opens the
file. What the card carries back (`acceptContext`) comes from the client, so it holds only the
id of a question in the ledger: that question is asked of one person about one memory, stands
for EXPORT_CONSENT_SECONDS and is answered once. An old, forged or someone else's context
uploads nothing. No one's data waits anywhere between the offer and the upload.

**Everywhere else, in parts.** Group chats, channels and other channels (the Emulator, Web Chat)
get as many messages as it takes, each under EXPORT_PART_BYTES as actually sent and each one
JSON object saying which part it is of how many: in Teams in the message's text (a code block),
elsewhere as a JSON attachment. Part 1 holds the summary and the counts; the lists (items,
recent messages, archive) run on from part to part, and a text too long for one part goes on in
the next, the piece before marked `"continued": true`. Joined, the parts are the whole export.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import urlsplit

import aiohttp
from botbuilder.core import TurnContext
from botbuilder.schema import Activity, ActivityTypes, Attachment, InputHints

from bots.forgetting import sender_of
from bots.identity import TEAMS_CHANNEL
from bots.replies import payload_bytes
from bots.wording import (
    EXPORT_FILE_DECLINED,
    EXPORT_FILE_DESCRIPTION,
    EXPORT_FILE_EXPIRED,
    EXPORT_FILE_FAILED,
    EXPORT_FILE_OFFER,
    EXPORT_FILE_SAVED,
    EXPORT_FILE_TOO_LARGE,
    EXPORT_INTRO,
    EXPORT_PART,
    EXPORT_PARTS_FAILED,
    EXPORT_TOO_MANY_PARTS,
)
from memory import ConversationMemory, Ledger

log = logging.getLogger(__name__)

EXPORT_PART_BYTES = 24_000  # each part, as sent; Teams refuses a message much over ~28 KB
EXPORT_MAX_PARTS = 50  # Teams takes at most 60 messages a bot sends one chat in 30 seconds
PART_PAUSE_SECONDS = 0.3  # between two parts in Teams: at most 7 a second and 8 in 2 seconds
EXPORT_CONSENT_SECONDS = 900  # how long a file offer stands
EXPORT_FILE_MAX_BYTES = 64 * 1024 * 1024
# OneDrive upload sessions take a file in fragments of a multiple of 320 KiB (at most 60 MiB).
UPLOAD_CHUNK_BYTES = 12 * 320 * 1024
UPLOAD_TIMEOUT_SECONDS = 60.0  # for each chunk
FILE_CONSENT = "application/vnd.microsoft.teams.card.file.consent"
FILE_INFO = "application/vnd.microsoft.teams.card.file.info"
_TOPIC = "export"
_LISTS = ("items", "recent_messages", "archive")
_TEXT_OF = {"items": "text", "recent_messages": "content", "archive": "content"}
_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


class UploadFailed(Exception):
    """The file could not be put at the upload URL; the reason is for the log only."""


class Exporting:
    def __init__(self, memory: ConversationMemory, ledger: Ledger, *, trust_env: bool) -> None:
        """`trust_env`: uploads take a proxy from the environment (set only when one is)."""
        self.memory = memory
        self.ledger = ledger
        self.trust_env = trust_env

    async def send(self, turn_context: TurnContext, key: str) -> None:
        """Offers the file in a Teams personal chat, else sends the parts. Raises StoreError
        if the store fails."""
        export = await self.memory.export(key)
        if is_teams_personal_chat(turn_context.activity):
            await self._offer_file(turn_context, key, export)
        else:
            await self._send_parts(turn_context, export)

    async def _offer_file(
        self, turn_context: TurnContext, key: str, export: dict[str, Any]
    ) -> None:
        size = len(await asyncio.to_thread(export_file, export))
        if size > EXPORT_FILE_MAX_BYTES:
            await turn_context.send_activity(
                EXPORT_FILE_TOO_LARGE.format(
                    size=readable_size(size), limit=readable_size(EXPORT_FILE_MAX_BYTES)
                )
            )
            return
        asked = await self.ledger.ask(key, _TOPIC, sender_of(turn_context), EXPORT_CONSENT_SECONDS)
        await turn_context.send_activity(file_consent_card(export_file_name(), size, asked.id))

    async def _send_parts(self, turn_context: TurnContext, export: dict[str, Any]) -> None:
        teams = turn_context.activity.channel_id == TEAMS_CHANNEL
        reference = TurnContext.get_conversation_reference(turn_context.activity)

        def addressed(activity: Activity) -> Activity:
            """As `send_activity` will send it: the conversation's addresses filled in."""
            activity.input_hint = activity.input_hint or InputHints.accepting_input
            sent: Activity = TurnContext.apply_conversation_reference(activity, reference)
            return sent

        parts = await asyncio.to_thread(export_parts, export, teams, addressed=addressed)
        if len(parts) > EXPORT_MAX_PARTS:
            await turn_context.send_activity(
                EXPORT_TOO_MANY_PARTS.format(parts=len(parts), limit=EXPORT_MAX_PARTS)
            )
            return
        for sent, part in enumerate(parts):
            if teams and sent:
                await asyncio.sleep(PART_PAUSE_SECONDS)
            try:
                await turn_context.send_activity(part)
            except Exception as error:
                log.warning(
                    "export part %d of %d not sent: %s", sent + 1, len(parts), type(error).__name__
                )
                await turn_context.send_activity(
                    EXPORT_PARTS_FAILED.format(sent=sent, parts=len(parts))
                )
                return

    async def answer_consent(self, turn_context: TurnContext, key: str) -> None:
        """The person's answer to a file consent card (`fileConsent/invoke`): on Allow, for
        the offer that stands for them, the export made now, uploaded, and a card opening it.
        Raises StoreError if the store fails."""
        value = turn_context.activity.value if isinstance(turn_context.activity.value, dict) else {}
        context = value.get("context")
        offer = context.get("export") if isinstance(context, dict) else None
        question = await self.ledger.question(key, _TOPIC)
        standing = (
            question is not None
            and question.asker == sender_of(turn_context)
            and isinstance(offer, str)
            and secrets.compare_digest(offer, question.id)
        )
        if value.get("action") != "accept":
            if standing:
                await self.ledger.drop_question(key, _TOPIC)
            await turn_context.send_activity(EXPORT_FILE_DECLINED)
            return
        upload = value.get("uploadInfo")
        # Answered once: of two presses at once (two instances), the one that drops it uploads.
        if (
            not standing
            or not isinstance(upload, dict)
            or not await self.ledger.drop_question(key, _TOPIC)
        ):
            await turn_context.send_activity(EXPORT_FILE_EXPIRED)
            return
        body = await asyncio.to_thread(export_file, await self.memory.export(key))
        if len(body) > EXPORT_FILE_MAX_BYTES:
            await turn_context.send_activity(
                EXPORT_FILE_TOO_LARGE.format(
                    size=readable_size(len(body)), limit=readable_size(EXPORT_FILE_MAX_BYTES)
                )
            )
            return
        try:
            await self._upload(str(upload.get("uploadUrl") or ""), body)
        except UploadFailed as error:
            log.warning("export upload failed: %s", error)
            await turn_context.send_activity(EXPORT_FILE_FAILED)
            return
        log.info("export uploaded (%d bytes)", len(body))
        await turn_context.send_activity(file_info_card(upload))

    async def _upload(self, url: str, body: bytes) -> None:
        """PUTs `body` to a OneDrive upload session: in one request, or in chunks of
        UPLOAD_CHUNK_BYTES, each with its Content-Range. No redirect is followed."""
        if not upload_url_allowed(url):
            raise UploadFailed("the upload URL is not https")
        timeout = aiohttp.ClientTimeout(total=UPLOAD_TIMEOUT_SECONDS, connect=10.0)
        total = len(body)
        try:
            async with aiohttp.ClientSession(trust_env=self.trust_env, timeout=timeout) as session:
                for start in range(0, total, UPLOAD_CHUNK_BYTES):
                    chunk = body[start : start + UPLOAD_CHUNK_BYTES]
                    headers = {
                        "Content-Length": str(len(chunk)),
                        "Content-Range": f"bytes {start}-{start + len(chunk) - 1}/{total}",
                    }
                    async with session.put(
                        url, data=chunk, headers=headers, allow_redirects=False
                    ) as response:
                        if response.status // 100 != 2:
                            raise UploadFailed(f"HTTP {response.status}")
        except (aiohttp.ClientError, TimeoutError) as error:
            raise UploadFailed(type(error).__name__) from error


def is_teams_personal_chat(activity: Activity) -> bool:
    conversation = activity.conversation
    return (
        activity.channel_id == TEAMS_CHANNEL
        and conversation is not None
        and conversation.conversation_type == "personal"
    )


def upload_url_allowed(url: str) -> bool:
    """https anywhere (Teams hands out OneDrive's); plain http only to this machine (tests)."""
    parts = urlsplit(url)
    if not parts.hostname:
        return False
    return parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in _LOOPBACK)


def export_file(export: dict[str, Any]) -> bytes:
    """The export as the file holds it: indented JSON, UTF-8."""
    return json.dumps(export, ensure_ascii=False, indent=2).encode()


def export_file_name(now: datetime | None = None) -> str:
    return f"memorybot-export-{(now or datetime.now(UTC)):%Y-%m-%d}.json"


def readable_size(size: int) -> str:
    if size < 1000 * 1000:
        return f"{max(size // 1000, 1)} KB"
    return f"{size / 1000 / 1000:.1f} MB"


def file_consent_card(name: str, size: int, offer: str) -> Activity:
    """Asks Teams' permission to put a file of `size` bytes in the person's OneDrive. The
    contexts hold only the offer's id (the ledger's question): they come back from the
    client."""
    context = {"export": offer}
    card = Attachment(
        content_type=FILE_CONSENT,
        name=name,
        content={
            "description": EXPORT_FILE_DESCRIPTION,
            "sizeInBytes": size,
            "acceptContext": context,
            "declineContext": context,
        },
    )
    return Activity(
        type=ActivityTypes.message,
        text=EXPORT_FILE_OFFER.format(size=readable_size(size)),
        attachments=[card],
    )


def file_info_card(upload: dict[str, Any]) -> Activity:
    """The uploaded file, as Teams shows a file in the chat (from the consent's uploadInfo)."""
    card = Attachment(
        content_type=FILE_INFO,
        name=str(upload.get("name") or export_file_name()),
        content_url=str(upload.get("contentUrl") or ""),
        content={
            "uniqueId": str(upload.get("uniqueId") or ""),
            "fileType": str(upload.get("fileType") or "json"),
        },
    )
    return Activity(type=ActivityTypes.message, text=EXPORT_FILE_SAVED, attachments=[card])


# ------------------------------------------------------------------------------------ parts


class _Transport(Protocol):
    def render(self, part: dict[str, Any]) -> Activity:
        """The message carrying `part` (which holds its `part` and `parts` numbers)."""

    def entry_bytes(self, entry: dict[str, Any]) -> int:
        """About how many bytes one more list entry adds to the message, as sent."""

    def summary_bytes(self, piece: str) -> int:
        """About how many bytes a summary (or a piece of one) adds to the message, as sent."""


def _sentence(part: dict[str, Any]) -> str:
    if part["parts"] == 1:
        return EXPORT_INTRO
    return EXPORT_PART.format(part=part["part"], parts=part["parts"])


def _markdown_safe(text: str) -> str:
    """JSON text that Teams shows as it is inside a code block: these four characters occur in
    JSON only inside strings, where their escapes mean the same."""
    for character in "`<>&":
        text = text.replace(character, f"\\u{ord(character):04x}")
    return text


def _wire_bytes(text: str) -> int:
    """The bytes `text` takes inside the JSON the connector is sent (msrest: ASCII escapes)."""
    return len(json.dumps(_markdown_safe(text))) - 2


class _InTeamsText:
    """In Teams, the part is a code block in the message's text (Teams shows no JSON
    attachment, and a card's code block is Teams' own, outside the Adaptive Card schema)."""

    def render(self, part: dict[str, Any]) -> Activity:
        code = _markdown_safe(json.dumps(part, ensure_ascii=False, indent=2))
        return Activity(
            type=ActivityTypes.message, text=f"{_sentence(part)}\n\n```json\n{code}\n```"
        )

    def entry_bytes(self, entry: dict[str, Any]) -> int:
        lines = json.dumps(entry, ensure_ascii=False, indent=2).replace("\n", "\n    ")
        return _wire_bytes(f"    {lines},\n")

    def summary_bytes(self, piece: str) -> int:
        return _wire_bytes(f'  "summary": {json.dumps(piece, ensure_ascii=False)},\n')


class _Attached:
    """Elsewhere, the part is the message's JSON attachment (the Emulator shows it)."""

    def render(self, part: dict[str, Any]) -> Activity:
        name = "memorybot-export.json"
        if part["parts"] > 1:
            name = f"memorybot-export-part-{part['part']}-of-{part['parts']}.json"
        attachment = Attachment(content_type="application/json", name=name, content=part)
        return Activity(type=ActivityTypes.message, text=_sentence(part), attachments=[attachment])

    def entry_bytes(self, entry: dict[str, Any]) -> int:
        return len(json.dumps(entry)) + 2

    def summary_bytes(self, piece: str) -> int:
        return len(json.dumps(piece)) + len('"summary": , ')


def export_parts(
    export: dict[str, Any],
    teams: bool,
    budget: int = EXPORT_PART_BYTES,
    *,
    addressed: Callable[[Activity], Activity] = lambda activity: activity,
) -> list[Activity]:
    """The messages that carry `export`, each at most `budget` bytes as sent (payload_bytes),
    once `addressed` (given the conversation's addresses, as sending does).

    Sizes are reckoned entry by entry, then every message is measured as it will be sent; should
    one be over (the reckoning is an estimate), all are made again under a smaller budget."""
    transport: _Transport = _InTeamsText() if teams else _Attached()
    target = budget
    for _ in range(4):
        parts = _pack(export, transport, target, addressed)
        numbered = [
            {"format": export["format"], "part": n, "parts": len(parts), **part}
            for n, part in enumerate(parts, start=1)
        ]
        messages = [addressed(transport.render(part)) for part in numbered]
        largest = max(payload_bytes(message) for message in messages)
        if largest <= budget:
            return messages
        target -= largest - budget + 256
    raise ValueError(f"an export does not fit in parts of {budget} bytes")


@dataclass
class _Packing:
    transport: _Transport
    addressed: Callable[[Activity], Activity]
    budget: int
    header: dict[str, Any]
    parts: list[dict[str, Any]]
    used: int = 0
    _overheads: dict[bool, int] = field(default_factory=dict)

    def overhead(self, first: bool) -> int:
        """The bytes of a part with nothing in it yet (numbered with the widest numbers)."""
        if first in self._overheads:
            return self._overheads[first]
        skeleton = {
            "format": self.header["format"],
            "part": 999_999,
            "parts": 999_999,
            **(self.header if first else {}),
            "summary": "",
            **{name: [] for name in _LISTS},
        }
        self._overheads[first] = payload_bytes(self.addressed(self.transport.render(skeleton)))
        return self._overheads[first]

    def room(self) -> int:
        """What an empty part (not the first) has room for."""
        return self.budget - self.overhead(first=False)

    def new_part(self) -> dict[str, Any]:
        part: dict[str, Any] = {name: [] for name in _LISTS}
        self.parts.append(part)
        self.used = self.overhead(first=False)
        return part


def _pack(
    export: dict[str, Any],
    transport: _Transport,
    budget: int,
    addressed: Callable[[Activity], Activity],
) -> list[dict[str, Any]]:
    """The parts' contents, without their numbers."""
    header = {
        name: value
        for name, value in export.items()
        if name not in _LISTS and name not in ("format", "summary")
    }
    first: dict[str, Any] = {**header, "summary": "", **{name: [] for name in _LISTS}}
    packing = _Packing(
        transport, addressed, budget, {"format": export["format"], **header}, [first]
    )
    packing.used = packing.overhead(first=True)
    summary_room = budget - packing.used  # the first part's, the least any part has
    part = first
    summary = str(export.get("summary") or "")
    for n, text in enumerate(_cut(summary, lambda s: transport.summary_bytes(s) <= summary_room)):
        if n:
            part = packing.new_part()
        part["summary"] = text
        packing.used += transport.summary_bytes(text)
    room = packing.room()
    for name in _LISTS:
        for entry in export[name]:
            for piece in _pieces(entry, _TEXT_OF[name], transport, room):
                cost = transport.entry_bytes(piece)
                if packing.used + cost > budget:
                    part = packing.new_part()
                part[name].append(piece)
                packing.used += cost
    return packing.parts


def _pieces(
    entry: dict[str, Any], field: str, transport: _Transport, room: int
) -> Iterator[dict[str, Any]]:
    """`entry` whole if it fits in `room`, else in pieces of its text, all but the last
    marked `"continued": true`."""
    if transport.entry_bytes(entry) <= room:
        yield entry
        return

    def fits(text: str) -> bool:
        return transport.entry_bytes({**entry, field: text, "continued": True}) <= room

    pieces = _cut(str(entry.get(field) or ""), fits)
    for n, piece in enumerate(pieces, start=1):
        yield {**entry, field: piece, **({"continued": True} if n < len(pieces) else {})}


def _cut(text: str, fits: Callable[[str], bool]) -> list[str]:
    """`text` in the longest pieces that fit, in order ("" as one piece)."""
    pieces: list[str] = []
    while True:
        if fits(text):
            return [*pieces, text]
        low, high = 0, len(text)  # fits(text[:low]) holds; fits(text[:high]) does not
        while high - low > 1:
            middle = (low + high) // 2
            if fits(text[:middle]):
                low = middle
            else:
                high = middle
        if low == 0:
            raise ValueError("a part has no room for even one character of a text")
        pieces.append(text[:low])
        text = text[low:]
