"""Builders for incoming Bot Framework activities, shaped like the real senders' JSON.

Tests POST these dicts to the bot's ``/api/messages``; the bot answers to ``serviceUrl``
(point it at ``FakeConnector.url``).

* ``emulator_message`` — what Bot Framework Emulator v4 sends ("emulator" channel,
  ``role`` on from/recipient, ``ClientCapabilities`` entity, ``<uuid>|livechat`` conversation).
* ``teams_message`` — what Microsoft Teams sends for personal, group-chat and channel
  messages ("msteams" channel, ``29:`` user ids with ``aadObjectId``, ``28:<appId>`` bot id,
  ``conversationType``/``tenantId``, ``channelData.tenant`` and team/channel for channels,
  ``<at>MemoryBot</at>`` mention entity, ``clientInfo`` entity).
* ``conversation_update`` / ``installation_update`` — membership and install events.
* ``file_consent_invoke`` — Allow or Decline on a file consent card.

IDs are derived deterministically from tenant/user/bot so repeated calls with the same
arguments land in the same conversation (what a memory bot needs for multi-turn tests).
"""

from __future__ import annotations

import hashlib
import itertools
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Literal

Activity = dict[str, Any]
ConversationType = Literal["personal", "groupChat", "channel"]
Member = str | dict[str, Any]

BOT_APP_ID = "00000000-0000-4000-8000-00000000b071"
BOT_ID = f"28:{BOT_APP_ID}"
BOT_NAME = "MemoryBot"
TENANT_ID = "72f988bf-86f1-41af-91ab-2d7cd011db47"
USER_AAD_OBJECT_ID = "6d0b7f8e-3c1a-4e2b-9f4d-1a2b3c4d5e6f"
USER_NAME = "Megan Bowen"
TEAMS_SERVICE_URL = "https://smba.trafficmanager.net/amer/"

_TEAMS_MESSAGE_IDS = itertools.count(int(datetime(2024, 1, 1, tzinfo=UTC).timestamp() * 1000))


def _digest(*parts: str, length: int = 32) -> str:
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:length]


def _timestamps(at: datetime | None) -> dict[str, str]:
    """``timestamp`` (UTC, ms, ``Z``) and ``localTimestamp`` (same instant at UTC-07:00)."""
    moment = (at or datetime.now(UTC)).astimezone(UTC)
    local = moment.astimezone(timezone(timedelta(hours=-7)))
    return {
        "timestamp": moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "localTimestamp": local.isoformat(timespec="milliseconds"),
    }


def _member(member: Member) -> dict[str, Any]:
    return {"id": member} if isinstance(member, str) else dict(member)


# --------------------------------------------------------------------------- Emulator


def emulator_message(
    text: str,
    *,
    service_url: str,
    user_id: str = "emulator-user-1",
    conversation_id: str | None = None,
    user_name: str = "User",
    bot_id: str = "emulator-bot",
    bot_name: str = "Bot",
    activity_id: str | None = None,
    locale: str = "en-US",
    at: datetime | None = None,
) -> Activity:
    """A message typed into Bot Framework Emulator v4's chat (no attachments)."""
    stamps = _timestamps(at)
    return {
        "type": "message",
        "id": activity_id or str(uuid.uuid4()),
        "channelId": "emulator",
        "serviceUrl": service_url,
        "from": {"id": user_id, "name": user_name, "role": "user"},
        "recipient": {"id": bot_id, "name": bot_name, "role": "bot"},
        "conversation": {"id": conversation_id or f"{_digest(user_id, bot_id)}|livechat"},
        "text": text,
        "textFormat": "plain",
        "locale": locale,
        **stamps,
        "localTimezone": "America/Los_Angeles",
        "attachments": [],
        "entities": [
            {
                "type": "ClientCapabilities",
                "requiresBotState": True,
                "supportsListening": True,
                "supportsTts": True,
            }
        ],
        "channelData": {"clientActivityID": _digest(text, stamps["timestamp"], length=20)},
    }


# --------------------------------------------------------------------------- Teams


def teams_user_id(aad_object_id: str = USER_AAD_OBJECT_ID) -> str:
    """The opaque per-bot ``29:...`` id Teams uses for a user (stable for a given AAD id)."""
    return "29:1" + _digest("user", aad_object_id, length=60)


def teams_conversation_id(
    conversation_type: ConversationType = "personal",
    *,
    tenant_id: str = TENANT_ID,
    aad_object_id: str = USER_AAD_OBJECT_ID,
    bot_app_id: str = BOT_APP_ID,
    team_id: str | None = None,
    thread_id: str | None = None,
) -> str:
    """Conversation id as Teams forms it for each scope.

    personal: ``a:1...``; groupChat: ``19:<hex>@thread.v2``; channel:
    ``19:<channel>@thread.tacv2;messageid=<thread root id>`` (without ``;messageid`` when
    ``thread_id`` is None).
    """
    if conversation_type == "personal":
        return "a:1" + _digest("personal", tenant_id, aad_object_id, bot_app_id, length=60)
    if conversation_type == "groupChat":
        return f"19:{_digest('group', tenant_id, aad_object_id)}@thread.v2"
    channel = f"19:{_digest('channel', tenant_id, team_id or '')}@thread.tacv2"
    return f"{channel};messageid={thread_id}" if thread_id else channel


def _teams_envelope(
    activity_type: str,
    *,
    conversation_type: ConversationType,
    tenant_id: str,
    aad_object_id: str,
    user_name: str | None,
    conversation_id: str | None,
    team_id: str | None,
    thread_id: str | None,
    activity_id: str,
    service_url: str,
    bot_app_id: str,
    bot_name: str,
    locale: str,
    at: datetime | None,
) -> Activity:
    """Fields shared by every activity Teams posts to a bot."""
    sender: dict[str, Any] = {"id": teams_user_id(aad_object_id), "aadObjectId": aad_object_id}
    if user_name is not None:
        sender["name"] = user_name
    conversation: dict[str, Any] = {"conversationType": conversation_type, "tenantId": tenant_id}
    if conversation_type != "personal":
        conversation["isGroup"] = True
    conversation["id"] = conversation_id or teams_conversation_id(
        conversation_type,
        tenant_id=tenant_id,
        aad_object_id=aad_object_id,
        bot_app_id=bot_app_id,
        team_id=team_id,
        thread_id=thread_id,
    )
    channel_data: dict[str, Any] = {"tenant": {"id": tenant_id}}
    if conversation_type == "channel":
        channel = teams_conversation_id("channel", tenant_id=tenant_id, team_id=team_id)
        team = team_id or f"19:{_digest('team', tenant_id)}@thread.tacv2"
        channel_data = {
            "teamsChannelId": channel,
            "teamsTeamId": team,
            "channel": {"id": channel},
            "team": {"id": team},
            "tenant": {"id": tenant_id},
        }
    return {
        "type": activity_type,
        "id": activity_id,
        **_timestamps(at),
        "serviceUrl": service_url,
        "channelId": "msteams",
        "from": sender,
        "conversation": conversation,
        "recipient": {"id": f"28:{bot_app_id}", "name": bot_name},
        "entities": [
            {
                "type": "clientInfo",
                "locale": locale,
                "country": "US",
                "platform": "Web",
                "timezone": "America/Los_Angeles",
            }
        ],
        "channelData": channel_data,
        "locale": locale,
        "localTimezone": "America/Los_Angeles",
    }


def teams_message(
    text: str,
    *,
    tenant_id: str = TENANT_ID,
    aad_object_id: str = USER_AAD_OBJECT_ID,
    conversation_type: ConversationType = "personal",
    mention_bot: bool = False,
    user_name: str = USER_NAME,
    conversation_id: str | None = None,
    team_id: str | None = None,
    thread_id: str | None = None,
    activity_id: str | None = None,
    service_url: str = TEAMS_SERVICE_URL,
    bot_app_id: str = BOT_APP_ID,
    bot_name: str = BOT_NAME,
    locale: str = "en-US",
    at: datetime | None = None,
) -> Activity:
    """A user's message to the bot in Teams.

    With ``mention_bot`` the text starts with ``<at>{bot_name}</at> `` and a ``mention``
    entity for the bot is added, plus the ``text/html`` attachment Teams sends alongside.
    In a channel the conversation id carries ``;messageid=`` of the thread root
    (``thread_id``, default: this message's own id, i.e. a new top-level post).
    """
    activity_id = activity_id or str(next(_TEAMS_MESSAGE_IDS))
    if conversation_type == "channel" and thread_id is None:
        thread_id = activity_id
    activity = _teams_envelope(
        "message",
        conversation_type=conversation_type,
        tenant_id=tenant_id,
        aad_object_id=aad_object_id,
        user_name=user_name,
        conversation_id=conversation_id,
        team_id=team_id,
        thread_id=thread_id,
        activity_id=activity_id,
        service_url=service_url,
        bot_app_id=bot_app_id,
        bot_name=bot_name,
        locale=locale,
        at=at,
    )
    activity["textFormat"] = "plain"
    activity["text"] = text
    if mention_bot:
        mention = f"<at>{bot_name}</at>"
        activity["text"] = f"{mention} {text}"
        activity["entities"].append(
            {
                "type": "mention",
                "text": mention,
                "mentioned": {"id": f"28:{bot_app_id}", "name": bot_name},
            }
        )
        html = (
            '<p><span itemscope="" itemtype="http://schema.skype.com/Mention" itemid="0">'
            f"{bot_name}</span>&nbsp;{text}</p>"
        )
        activity["attachments"] = [{"contentType": "text/html", "content": html}]
    return activity


def file_consent_invoke(
    action: Literal["accept", "decline"],
    context: Any,
    upload_info: dict[str, Any] | None = None,
    *,
    tenant_id: str = TENANT_ID,
    aad_object_id: str = USER_AAD_OBJECT_ID,
    conversation_type: ConversationType = "personal",
    activity_id: str | None = None,
    service_url: str = TEAMS_SERVICE_URL,
    bot_app_id: str = BOT_APP_ID,
    bot_name: str = BOT_NAME,
    at: datetime | None = None,
) -> Activity:
    """Teams' ``fileConsent/invoke``: the person chose Allow (``accept``, with ``uploadInfo``:
    the upload session Teams made in their OneDrive) or Decline on a file consent card;
    ``context`` is the card's acceptContext or declineContext, as the client sends it back."""
    activity = _teams_envelope(
        "invoke",
        conversation_type=conversation_type,
        tenant_id=tenant_id,
        aad_object_id=aad_object_id,
        user_name=USER_NAME,
        conversation_id=None,
        team_id=None,
        thread_id=None,
        activity_id=activity_id or f"f:{_digest('consent', str(uuid.uuid4()), length=19)}",
        service_url=service_url,
        bot_app_id=bot_app_id,
        bot_name=bot_name,
        locale="en-US",
        at=at,
    )
    activity["name"] = "fileConsent/invoke"
    activity["value"] = {"type": "fileUpload", "action": action, "context": context}
    if upload_info is not None:
        activity["value"]["uploadInfo"] = upload_info
    return activity


def conversation_update(
    members_added: Sequence[Member] | None = None,
    members_removed: Sequence[Member] = (),
    *,
    channel: Literal["msteams", "emulator"] = "msteams",
    service_url: str = TEAMS_SERVICE_URL,
    conversation_type: ConversationType = "personal",
    tenant_id: str = TENANT_ID,
    aad_object_id: str = USER_AAD_OBJECT_ID,
    conversation_id: str | None = None,
    team_id: str | None = None,
    bot_app_id: str = BOT_APP_ID,
    bot_name: str = BOT_NAME,
    user_id: str = "emulator-user-1",
    at: datetime | None = None,
) -> Activity:
    """Members joined/left. Default ``members_added``: the bot itself (bot was installed).

    Members are ids or full account dicts. For Teams channels ``channelData.eventType`` is
    ``teamMemberAdded``/``teamMemberRemoved`` as Teams sends it. ``channel="emulator"`` gives the
    update the Emulator posts when a conversation opens (default members: bot and user).
    """
    if channel == "emulator":
        bot = {"id": "emulator-bot", "name": "Bot"}
        user = {"id": user_id, "name": "User"}
        added = [_member(m) for m in members_added] if members_added is not None else [bot, user]
        return {
            "type": "conversationUpdate",
            "id": str(uuid.uuid4()),
            "channelId": "emulator",
            "serviceUrl": service_url,
            "from": {**user, "role": "user"},
            "recipient": {**bot, "role": "bot"},
            "conversation": {"id": conversation_id or f"{_digest(user_id, bot['id'])}|livechat"},
            "membersAdded": added,
            "membersRemoved": [_member(m) for m in members_removed],
            "locale": "en-US",
            **_timestamps(at),
        }

    activity = _teams_envelope(
        "conversationUpdate",
        conversation_type=conversation_type,
        tenant_id=tenant_id,
        aad_object_id=aad_object_id,
        user_name=None,
        conversation_id=conversation_id,
        team_id=team_id,
        thread_id=None,
        activity_id=f"f:{_digest('update', str(uuid.uuid4()), length=19)}",
        service_url=service_url,
        bot_app_id=bot_app_id,
        bot_name=bot_name,
        locale="en-US",
        at=at,
    )
    added = (
        [_member(m) for m in members_added]
        if members_added is not None
        else [{"id": f"28:{bot_app_id}"}]
    )
    removed = [_member(m) for m in members_removed]
    if added:
        activity["membersAdded"] = added
    if removed:
        activity["membersRemoved"] = removed
    if conversation_type == "channel":
        activity["channelData"]["eventType"] = "teamMemberAdded" if added else "teamMemberRemoved"
    return activity


def installation_update(
    action: Literal["add", "remove", "add-upgrade", "remove-upgrade"] = "add",
    *,
    conversation_type: ConversationType = "personal",
    service_url: str = TEAMS_SERVICE_URL,
    tenant_id: str = TENANT_ID,
    aad_object_id: str = USER_AAD_OBJECT_ID,
    conversation_id: str | None = None,
    team_id: str | None = None,
    bot_app_id: str = BOT_APP_ID,
    bot_name: str = BOT_NAME,
    at: datetime | None = None,
) -> Activity:
    """Teams ``installationUpdate``: the app was installed into / removed from a scope."""
    activity = _teams_envelope(
        "installationUpdate",
        conversation_type=conversation_type,
        tenant_id=tenant_id,
        aad_object_id=aad_object_id,
        user_name=None,
        conversation_id=conversation_id,
        team_id=team_id,
        thread_id=None,
        activity_id=f"f:{_digest('install', str(uuid.uuid4()), length=19)}",
        service_url=service_url,
        bot_app_id=bot_app_id,
        bot_name=bot_name,
        locale="en-US",
        at=at,
    )
    activity["action"] = action
    activity["channelData"]["source"] = {"name": "message"}
    if conversation_type == "channel":
        activity["channelData"]["settings"] = {
            "selectedChannel": {"id": activity["channelData"]["teamsChannelId"]}
        }
    return activity
