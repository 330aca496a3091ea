"""The `/api/messages` endpoint and the Bot Framework adapter behind it.

Requests are checked before botbuilder sees them: `CloudAdapter.process` answers malformed JSON,
a missing Content-Type or an ill-typed field with a 500. Here each of those is a 4xx with a
sentence saying what is wrong, and nothing reaches the bot or the store.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlparse

from aiohttp import web
from botbuilder.core import Bot, TurnContext
from botbuilder.core.serializer_helper import serializer_helper
from botbuilder.integration.aiohttp import (
    CloudAdapter,
    ConfigurationBotFrameworkAuthentication,
)
from botbuilder.schema import Activity

from config import Settings

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

TURN_FAILED = "Sorry, something went wrong on my side. Please try again."


def create_adapter(
    settings: Settings, auth_overrides: Mapping[str, Any] | None = None
) -> CloudAdapter:
    """A CloudAdapter that checks Bot Framework tokens whenever an app id is configured.

    `auth_overrides` sets more of botbuilder's configuration attributes, such as
    TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL (tests point it at a local identity server).
    """
    configuration = SimpleNamespace(
        APP_ID=settings.app_id,
        APP_PASSWORD=settings.app_password,
        APP_TYPE=settings.app_type,
        APP_TENANTID=settings.app_tenant_id,
        **(auth_overrides or {}),
    )
    adapter = CloudAdapter(ConfigurationBotFrameworkAuthentication(configuration))

    async def on_turn_error(turn_context: TurnContext, error: Exception) -> None:
        log.error("turn failed: %s", type(error).__name__, exc_info=error)
        try:
            await turn_context.send_activity(TURN_FAILED)
        except Exception as send_error:
            log.error("could not tell the person either: %s", type(send_error).__name__)

    adapter.on_turn_error = on_turn_error
    return adapter


def messages_handler(adapter: CloudAdapter, bot: Bot) -> Handler:
    """The aiohttp handler for `POST /api/messages`."""

    async def handle(request: web.Request) -> web.StreamResponse:
        if request.content_type != "application/json":
            return _problem(415, "Send the activity as JSON (Content-Type: application/json).")
        try:
            body = json.loads(await request.text())
        except (ValueError, RecursionError):
            return _problem(400, "The body is not valid JSON.")
        problem = activity_problem(body)
        if problem:
            return _problem(400, problem)
        try:
            activity = Activity().deserialize(body)
        except Exception:
            return _problem(400, "The body is not a Bot Framework activity.")

        try:
            response = await adapter.process_activity(
                request.headers.get("Authorization", ""), activity, bot.on_turn
            )
        except PermissionError:
            return _problem(401, "The request's Bot Framework token is missing or not valid.")
        if response:
            return web.json_response(data=serializer_helper(response.body), status=response.status)
        return web.Response(status=201)

    return handle


def activity_problem(body: Any) -> str | None:
    """What makes `body` unusable as an incoming activity, in one sentence, or None."""
    if not isinstance(body, dict):
        return "The body must be a JSON object (a Bot Framework activity)."
    if not isinstance(body.get("type"), str) or not body["type"]:
        return 'The activity needs a "type" such as "message".'
    service_url = body.get("serviceUrl")
    if not isinstance(service_url, str) or urlparse(service_url).scheme not in ("http", "https"):
        return 'The activity needs a "serviceUrl" (the http(s) URL replies are sent to).'
    for field in ("conversation", "from", "recipient"):
        value = body.get(field)
        if not isinstance(value, dict) or not isinstance(value.get("id"), str):
            return f'The activity needs "{field}" with a string "id".'
    for field in ("text", "channelId", "id", "locale", "replyToId"):
        if body.get(field) is not None and not isinstance(body[field], str):
            return f'The activity\'s "{field}" must be a string.'
    for field in ("entities", "attachments", "membersAdded", "membersRemoved"):
        if body.get(field) is not None and not isinstance(body[field], list):
            return f'The activity\'s "{field}" must be a list.'
    return None


def _problem(status: int, detail: str) -> web.Response:
    return web.json_response({"error": detail}, status=status)
