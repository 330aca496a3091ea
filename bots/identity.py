"""Who is speaking: the memory key for an activity.

Personal chat in Teams: the tenant id plus the user's AAD object id, which stay the same across
devices and conversations. Only Teams vouches for those two fields: on every other channel (the
Emulator, Web Chat, Direct Line) a caller can write any tenant and object id into the body, so
there the key is channel id plus `from.id`, never a display name, whatever the body claims, and
no tenant is read. Group chats and channels get a memory of the conversation, so what someone
told the bot in private never surfaces in front of a group.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Any
from urllib.parse import quote

from botbuilder.schema import Activity

GROUP_CONVERSATION_TYPES = frozenset({"groupChat", "channel"})
TEAMS_CHANNEL = "msteams"


def memory_key_for(activity: Activity) -> str | None:
    """The memory key for whoever (or whichever conversation) sent `activity`, if it can be told."""
    conversation = activity.conversation
    sender = activity.from_property
    channel = activity.channel_id or ""
    if conversation is None or not conversation.id:
        return None
    if is_group_conversation(activity):
        # Teams gives every channel thread its own ";messageid=" suffix; the channel is one memory.
        conversation_id = conversation.id.split(";messageid=")[0]
        return _key("conversation", channel, conversation_id)
    tenant = tenant_id_of(activity)
    aad_object_id = getattr(sender, "aad_object_id", None) if sender else None
    if tenant and aad_object_id:  # Teams only: `tenant_id_of` reads no other channel's tenant
        return _key("user", _canonical(tenant), _canonical(aad_object_id))
    if sender is None or not sender.id:
        return None
    return _key("channel", channel, sender.id)


def sender_key_for(activity: Activity) -> str | None:
    """Who sent `activity`, the same in every chat they are in (a group's members each their
    own): the personal memory key on Teams, channel id plus `from.id` elsewhere."""
    sender = activity.from_property
    tenant = tenant_id_of(activity)
    aad_object_id = getattr(sender, "aad_object_id", None) if sender else None
    if tenant and aad_object_id:
        return _key("user", _canonical(tenant), _canonical(aad_object_id))
    if sender is None or not sender.id:
        return None
    return _key("channel", activity.channel_id or "", sender.id)


def delivery_id_for(activity: Activity) -> str:
    """The channel's name for this one message, the same each time it is delivered again: a
    digest of the conversation id and the activity id (a message without an id gets a name of
    its own, so it is never taken for another)."""
    conversation = activity.conversation.id if activity.conversation else None
    if not activity.id or not conversation:
        return uuid.uuid4().hex
    named = f"{activity.channel_id}\n{conversation}\n{activity.id}".encode("utf-8", "replace")
    return hashlib.sha256(named).hexdigest()[:32]


def tenant_id_of(activity: Activity) -> str | None:
    """The Teams tenant, from the conversation or, failing that, from channelData; None on any
    other channel, where nothing vouches for a tenant the body names."""
    if activity.channel_id != TEAMS_CHANNEL:
        return None
    conversation = activity.conversation
    if conversation is not None:
        # Teams spells it "tenantId"; botbuilder's schema maps only "tenantID".
        extra = conversation.additional_properties or {}
        tenant = conversation.tenant_id or extra.get("tenantId")
        if isinstance(tenant, str) and tenant:
            return tenant
    channel_data: Any = activity.channel_data
    if isinstance(channel_data, dict):
        tenant = channel_data.get("tenant")
        if isinstance(tenant, dict) and isinstance(tenant.get("id"), str) and tenant["id"]:
            return str(tenant["id"])
    return None


def _canonical(identifier: str) -> str:
    """GUIDs compare case-insensitively; anything else is kept exactly as sent."""
    try:
        return str(uuid.UUID(identifier))
    except ValueError:
        return identifier


def _key(kind: str, *parts: str) -> str:
    # Percent-encoding each part keeps the separator unambiguous: no two sources share a key.
    return "/".join([kind, *(quote(part, safe="") for part in parts)])


def is_group_conversation(activity: Activity) -> bool:
    """A group chat or a channel: by Teams' conversation type, or `isGroup` where a channel
    sends no type (Direct Line and Web Chat groups)."""
    conversation = activity.conversation
    if conversation is None:
        return False
    return (
        conversation.conversation_type in GROUP_CONVERSATION_TYPES or conversation.is_group is True
    )


def mentions_bot(activity: Activity) -> bool:
    """Whether the message @mentions this bot (Teams puts mentions in `entities`)."""
    bot_id = activity.recipient.id if activity.recipient else None
    for entity in activity.entities or []:
        if (entity.type or "").lower() != "mention":
            continue
        mentioned = (entity.additional_properties or {}).get("mentioned")
        if isinstance(mentioned, dict) and mentioned.get("id") == bot_id:
            return True
    return False
