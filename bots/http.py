"""The `/api/messages` endpoint: each request authenticated, checked, then handed to the bot.

Authentication comes first and costs a caller without a valid token as little as possible: when
tokens are required, a request without a bearer token is refused from its headers, before its
body is read; one with a token has its body parsed as JSON (C, fast) and the token checked
against the few fields it is bound to (channel and service URL) before the activity is
validated and deserialized (the expensive part). `CloudAdapter.process` would answer malformed
JSON, a missing Content-Type or an ill-typed field with a 500: here each is a 4xx with a sentence
saying what is wrong (for the developer calling the endpoint), and nothing reaches the bot or
the store. The adapter itself is made in `bots.adapter`.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlparse

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestPayloadError
from botbuilder.core import Bot
from botbuilder.core.serializer_helper import serializer_helper
from botbuilder.integration.aiohttp import CloudAdapter
from botbuilder.schema import Activity, ChannelAccount

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def messages_handler(adapter: CloudAdapter, bot: Bot, *, tokens_required: bool) -> Handler:
    """The aiohttp handler for `POST /api/messages`; `tokens_required` when an app id is set."""

    async def handle(request: web.Request) -> web.StreamResponse:
        if request.content_type != "application/json":
            return _problem(415, "Send the activity as JSON (Content-Type: application/json).")
        # Without an app id (local mode) no token is checked, whatever a client sends.
        header = (request.headers.get("Authorization") or None) if tokens_required else None
        if tokens_required and not (header and header[:7].lower() == "bearer "):
            return _problem(401, "The request's Bot Framework token is missing or not valid.")
        try:
            body = json.loads(await request.text())
        except (ValueError, RecursionError):
            return _problem(400, "The body is not valid JSON.")
        except LookupError:  # a charset Python does not know
            return _problem(415, "Send the activity as UTF-8 JSON (an unknown charset was named).")
        except (HttpProcessingError, RequestPayloadError):  # its encoding, length or framing
            # The rest of the body is not read (aiohttp would log the same error again), and the
            # connection is not used again.
            request.content.feed_eof()
            refused = _problem(400, "The body could not be read as its headers describe it.")
            refused.force_close()
            return refused
        except ConnectionResetError:  # the caller went away mid-body: nobody to answer
            log.debug("a request's body was cut off")
            return web.Response(status=400)
        if not isinstance(body, dict):
            return _problem(400, "The body must be a JSON object (a Bot Framework activity).")

        try:
            # Authenticated here, apart from the turn: botbuilder refuses a bad token with
            # PermissionError, PyJWT's errors, IndexError (unknown key id) or a bare Exception
            # (endorsements), and treats an empty header differently from a missing one.
            authentication = await adapter.bot_framework_authentication.authenticate_request(
                _bound_fields(body), header
            )
        except PermissionError as error:
            log.info("refused a request: %s", error)
            return _problem(401, "The request's Bot Framework token is missing or not valid.")
        except OSError as error:  # requests' errors: the signing keys could not be fetched
            log.error("could not check a Bot Framework token: %s", type(error).__name__)
            return _problem(503, "The bot cannot check Bot Framework tokens right now.")
        except Exception as error:
            log.info("refused a request: %s", type(error).__name__)
            return _problem(401, "The request's Bot Framework token is missing or not valid.")
        problem = activity_problem(body)
        if problem:
            return _problem(400, problem)
        try:
            activity = Activity().deserialize(body)
        except Exception:
            return _problem(400, "The body is not a Bot Framework activity.")
        response = await adapter.process_activity(authentication, activity, bot.on_turn)
        if response:
            body = response.body
            if not isinstance(body, dict | list):  # a botbuilder model (plain JSON goes as it is)
                body = serializer_helper(body)
            return web.json_response(data=body, status=response.status)
        return web.Response(status=201)

    return handle


def _bound_fields(body: dict[str, Any]) -> Activity:
    """Only what botbuilder checks a token against, read from the raw JSON: the channel, the
    service URL and the recipient's role (skills in the Emulator)."""
    recipient = body.get("recipient")
    role = recipient.get("role") if isinstance(recipient, dict) else None
    service_url = body.get("serviceUrl")
    return Activity(
        channel_id=authentication_channel(body),
        service_url=service_url if isinstance(service_url, str) else None,
        recipient=ChannelAccount(role=role if isinstance(role, str) else None),
    )


def authentication_channel(body: dict[str, Any]) -> str | None:
    channel = body.get("channelId")
    return channel if isinstance(channel, str) else None


def activity_problem(body: Any) -> str | None:
    """What makes `body` unusable as an incoming activity, in one sentence, or None."""
    if not isinstance(body, dict):
        return "The body must be a JSON object (a Bot Framework activity)."
    if not _is_unicode(body):
        return "The activity holds text that is not Unicode (a lone surrogate such as \\ud800)."
    if not isinstance(body.get("type"), str) or not body["type"]:
        return 'The activity needs a "type" such as "message".'
    if not _is_http_url(body.get("serviceUrl")):
        return 'The activity needs a "serviceUrl" (the http(s) URL replies are sent to).'
    for field in ("conversation", "from", "recipient"):
        value = body.get(field)
        if not isinstance(value, dict) or not isinstance(value.get("id"), str):
            return f'The activity needs "{field}" with a string "id".'
    if not body["conversation"]["id"]:
        return 'The activity\'s "conversation" needs a non-empty "id".'
    for field in ("text", "channelId", "id", "locale", "replyToId"):
        if body.get(field) is not None and not isinstance(body[field], str):
            return f'The activity\'s "{field}" must be a string.'
    for field in _LISTS_OF_OBJECTS:
        items = body.get(field)
        if items is not None and (
            not isinstance(items, list) or not all(isinstance(item, dict) for item in items)
        ):
            return f'The activity\'s "{field}" must be a list of objects.'
    if not all(isinstance(entity.get("type"), str) for entity in body.get("entities") or []):
        return 'Each of the activity\'s "entities" needs a string "type".'
    for field in ("membersAdded", "membersRemoved"):
        if not all(isinstance(m.get("id"), str) and m["id"] for m in body.get(field) or []):
            return f'Each of the activity\'s "{field}" needs a string "id".'
    if body.get("channelData") is not None and not isinstance(body["channelData"], dict):
        return 'The activity\'s "channelData" must be an object.'
    too_long = next((name for name, value in _ids_of(body) if len(value) > MAX_ID_CHARS), None)
    if too_long is not None:
        # Ids become memory keys, stored with every message: real ones are under 200 characters.
        return f'The activity\'s "{too_long}" is longer than {MAX_ID_CHARS} characters.'
    if _CONTROL.search(body["conversation"]["id"]):
        # botbuilder sends it in a header of every reply (x-ms-conversation-id), where no HTTP
        # client sends a control character: no reply could ever reach the person.
        return 'The activity\'s "conversation.id" holds a control character.'
    return None


MAX_ID_CHARS = 512
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _ids_of(body: dict[str, Any]) -> list[tuple[str, str]]:
    """The ids an activity carries that the bot keeps (memory keys, delivery names)."""
    tenant = (body.get("channelData") or {}).get("tenant")
    found = [
        ("id", body.get("id")),
        ("channelId", body.get("channelId")),
        ("conversation.id", body["conversation"].get("id")),
        ("conversation.tenantId", body["conversation"].get("tenantId")),
        ("from.id", body["from"].get("id")),
        ("from.aadObjectId", body["from"].get("aadObjectId")),
        ("recipient.id", body["recipient"].get("id")),
        ("channelData.tenant.id", tenant.get("id") if isinstance(tenant, dict) else None),
    ]
    return [(name, value) for name, value in found if isinstance(value, str)]


_LISTS_OF_OBJECTS = (
    "entities",
    "attachments",
    "membersAdded",
    "membersRemoved",
    "reactionsAdded",
    "reactionsRemoved",
)


def _is_unicode(body: Any) -> bool:
    """False when a string holds a lone surrogate: legal JSON escapes, but no text to store."""
    try:
        json.dumps(body, ensure_ascii=False).encode()
    except (UnicodeEncodeError, RecursionError):
        return False
    return True


def _is_http_url(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        parts = urlparse(value)
        return parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:
        return False


def _problem(status: int, detail: str) -> web.Response:
    return web.json_response({"error": detail}, status=status)
