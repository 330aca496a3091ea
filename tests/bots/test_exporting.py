"""`export` in parts and as a file offer, without servers: every part small enough for Teams as
sent, valid against docs/export.schema.json, and the parts joined (as docs/export.md joins them)
are the whole export, whatever the texts hold."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bots.exporting import (
    EXPORT_PART_BYTES,
    FILE_CONSENT,
    FILE_INFO,
    export_file,
    export_file_name,
    export_parts,
    file_consent_card,
    file_info_card,
    readable_size,
    upload_url_allowed,
)
from bots.replies import payload_bytes
from bots.wording import EXPORT_FILE_DESCRIPTION, EXPORT_INTRO, EXPORT_PART
from memory.conversation import EXPORT_FORMAT
from tests.support.export_format import check, join_parts, part_in

pytestmark = pytest.mark.unit

START = datetime(2026, 1, 5, 9, tzinfo=UTC)
AWKWARD_TEXTS = [
    "short",
    "x" * 20_000,  # longer than a part: cut, and continued in the next
    "日本語のメッセージ" * 2_000,  # three UTF-8 bytes each, six once escaped as msrest sends them
    '"quoted" <b>bold</b> `code` ```fence``` & \\ back\\slash\n' * 300,
    "emoji 😀 and more 🧠" * 1_500,
    "",
]


def message(n: int, text: str, author: str = "") -> dict[str, Any]:
    entry = {
        "id": f"m{n}",
        "role": "user" if n % 2 == 0 else "assistant",
        "content": text,
        "at": (START + timedelta(seconds=n)).isoformat(),
    }
    return entry | ({"author": author} if author else {})


def an_export(archived: int, summary: str = "", seed: int = 7) -> dict[str, Any]:
    chosen = random.Random(seed)
    archive = [
        message(n, chosen.choice(AWKWARD_TEXTS), chosen.choice(["", "Megan Bowen"]))
        for n in range(archived)
    ]
    items = [
        {
            "id": "i1",
            "kind": "fact",
            "text": "Leads the Falcon budget review ü" * 900,
            "at": START.isoformat(),
            "sources": ["m0"],
        },
        {
            "id": "i2",
            "kind": "preference",
            "text": "Coffee, black",
            "at": START.isoformat(),
            "sources": [],
            "superseded_by": "i3",
            "superseded_at": START.isoformat(),
        },
    ]
    export = {
        "format": EXPORT_FORMAT,
        "exported_at": START.isoformat(),
        "summary": summary,
        "message_count": archived,
        "since": START.isoformat() if archived else None,
        "item_count": len(items),
        "recent_count": min(archived, 4),
        "archive_count": archived,
        "items": items,
        "recent_messages": archive[-4:],
        "archive": archive,
    }
    check(export, "export")
    return export


def as_sent(activity: Any) -> dict[str, Any]:
    sent: dict[str, Any] = activity.serialize()
    return sent


@pytest.mark.parametrize("teams", [True, False], ids=["teams", "elsewhere"])
def test_the_parts_are_small_enough_and_join_into_the_whole_export(teams: bool) -> None:
    export = an_export(260, summary="They lead the budget review. <b>" * 2_500)
    messages = export_parts(export, teams)
    assert len(messages) > 10
    parts = []
    for n, sent in enumerate(messages, start=1):
        assert payload_bytes(sent) <= EXPORT_PART_BYTES
        body = as_sent(sent)
        assert body["text"].startswith(EXPORT_PART.format(part=n, parts=len(messages)))
        part = part_in(body)
        check(part, "part")
        assert (part["part"], part["parts"]) == (n, len(messages))
        parts.append(part)
    assert any(entry.get("continued") for part in parts for entry in part["archive"])
    assert sum(bool(part.get("summary")) for part in parts) > 1  # the summary went on
    whole = join_parts(parts)
    check(whole, "export")
    assert whole == export


@pytest.mark.parametrize("teams", [True, False], ids=["teams", "elsewhere"])
def test_a_small_export_is_one_message(teams: bool) -> None:
    export = an_export(0)
    export = export | {"items": export["items"][1:], "item_count": 1}
    (sent,) = [as_sent(m) for m in export_parts(export, teams)]
    assert sent["text"].startswith(EXPORT_INTRO)
    part = part_in(sent)
    check(part, "part")
    assert join_parts([part]) == export
    if not teams:
        assert sent["attachments"][0]["name"] == "memorybot-export.json"


def test_every_part_is_measured_as_msrest_sends_it() -> None:
    """Past ASCII, the wire form is larger than UTF-8 (msrest escapes): the measure is the
    wire's, so a part of Japanese or emoji stays under the limit as Teams receives it."""
    export = an_export(40, seed=3)
    for sent in export_parts(export, teams=True):
        body = as_sent(sent)
        assert len(json.dumps(body).encode()) == payload_bytes(sent) <= EXPORT_PART_BYTES
        assert len(json.dumps(body, ensure_ascii=False).encode()) <= payload_bytes(sent)


def test_the_file_is_the_whole_export_as_indented_json() -> None:
    export = an_export(30)
    assert json.loads(export_file(export)) == export
    assert export_file_name(datetime(2026, 3, 7, 23, 59, tzinfo=UTC)) == (
        "memorybot-export-2026-03-07.json"
    )


def test_the_file_consent_card_carries_back_only_the_offer() -> None:
    sent = as_sent(file_consent_card("memorybot-export-2026-03-07.json", 123_456, "offer-id"))
    (card,) = sent["attachments"]
    assert card["contentType"] == FILE_CONSENT
    assert card["name"] == "memorybot-export-2026-03-07.json"
    assert card["content"] == {
        "description": EXPORT_FILE_DESCRIPTION,
        "sizeInBytes": 123_456,
        "acceptContext": {"export": "offer-id"},
        "declineContext": {"export": "offer-id"},
    }
    assert "123 KB" in sent["text"]


def test_the_file_info_card_names_the_uploaded_file() -> None:
    upload = {
        "contentUrl": "https://contoso-my.sharepoint.com/personal/megan/Documents/x.json",
        "name": "x.json",
        "uploadUrl": "https://upload.example/session",
        "uniqueId": "1150D938-8870-4044-9F2C-5BBDEBA70C9D",
        "fileType": "json",
    }
    (card,) = as_sent(file_info_card(upload))["attachments"]
    assert card == {
        "contentType": FILE_INFO,
        "contentUrl": upload["contentUrl"],
        "name": "x.json",
        "content": {"uniqueId": upload["uniqueId"], "fileType": "json"},
    }


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://contoso-my.sharepoint.com/personal/upload?session=1", True),
        ("http://127.0.0.1:8080/upload/1", True),
        ("http://localhost/upload/1", True),
        ("http://contoso-my.sharepoint.com/upload", False),
        ("http://169.254.169.254/metadata", False),
        ("file:///etc/passwd", False),
        ("https://", False),
        ("", False),
    ],
)
def test_an_upload_goes_over_https_or_to_this_machine_only(url: str, allowed: bool) -> None:
    assert upload_url_allowed(url) is allowed


@pytest.mark.parametrize(
    ("size", "readable"), [(10, "1 KB"), (24_500, "24 KB"), (3_456_789, "3.5 MB")]
)
def test_sizes_read_as_people_read_them(size: int, readable: str) -> None:
    assert readable_size(size) == readable
