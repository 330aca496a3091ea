"""Memory keys: who is speaking, and never a key shared by two people."""

from typing import Any

import pytest
from botbuilder.schema import Activity

from bots.identity import is_group_conversation, memory_key_for, tenant_id_of

pytestmark = pytest.mark.unit

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
AAD = "6f1d2f3a-0b8e-4c4e-9f6a-1c2b3d4e5f60"


def activity(**fields: Any) -> Activity:
    base: dict[str, Any] = {
        "type": "message",
        "channelId": "msteams",
        "from": {"id": "29:1abc", "aadObjectId": AAD, "name": "Ada"},
        "conversation": {"id": "a:1xyz", "conversationType": "personal", "tenantId": TENANT},
    }
    base.update(fields)
    return Activity().deserialize(base)


def test_personal_chat_key_is_tenant_plus_aad_object_id() -> None:
    assert memory_key_for(activity()) == f"user/{TENANT}/{AAD}"


def test_the_same_person_in_a_new_conversation_has_the_same_key() -> None:
    later = activity(
        conversation={"id": "a:other", "conversationType": "personal", "tenantId": TENANT.upper()}
    )
    assert memory_key_for(later) == memory_key_for(activity())


def test_tenant_can_come_from_channel_data() -> None:
    teams = activity(
        conversation={"id": "a:1", "conversationType": "personal"},
        channelData={"tenant": {"id": TENANT}},
    )
    assert memory_key_for(teams) == f"user/{TENANT}/{AAD}"


def test_display_name_is_never_used() -> None:
    one = activity(
        channelId="emulator", **{"from": {"id": "u1", "name": "Ada"}}, conversation={"id": "c1"}
    )
    two = activity(
        channelId="emulator", **{"from": {"id": "u2", "name": "Ada"}}, conversation={"id": "c1"}
    )
    assert memory_key_for(one) == "channel/emulator/u1"
    assert memory_key_for(one) != memory_key_for(two)


def test_separator_characters_in_ids_cannot_forge_another_key() -> None:
    sneaky = activity(channelId="emulator", **{"from": {"id": "a/b"}}, conversation={"id": "c"})
    plain = activity(channelId="emulator/a", **{"from": {"id": "b"}}, conversation={"id": "c"})
    assert memory_key_for(sneaky) != memory_key_for(plain)


def test_group_chats_and_channels_have_a_conversation_memory() -> None:
    group = activity(
        conversation={"id": "19:abc@thread.v2", "conversationType": "groupChat", "tenantId": TENANT}
    )
    thread = activity(
        conversation={
            "id": "19:chan@thread.skype;messageid=1700000",
            "conversationType": "channel",
            "tenantId": TENANT,
        }
    )
    assert memory_key_for(group) == "conversation/msteams/19%3Aabc%40thread.v2"
    assert memory_key_for(thread) == "conversation/msteams/19%3Achan%40thread.skype"
    assert not (memory_key_for(group) or "").startswith("user/")


def test_no_sender_means_no_key() -> None:
    anonymous = activity(channelId="emulator", **{"from": {"id": ""}}, conversation={"id": "c"})
    assert memory_key_for(anonymous) is None


def test_another_channel_never_gets_a_teams_persons_key_whatever_its_body_claims() -> None:
    forged = activity(channelId="webchat", channelData={"tenant": {"id": TENANT}})
    assert memory_key_for(forged) == "channel/webchat/29%3A1abc"
    assert tenant_id_of(forged) is None
    assert tenant_id_of(activity()) == TENANT


def test_is_group_counts_where_no_conversation_type_is_sent() -> None:
    group = activity(channelId="directline", conversation={"id": "c9", "isGroup": True})
    assert is_group_conversation(group)
    assert memory_key_for(group) == "conversation/directline/c9"
    assert not is_group_conversation(activity(conversation={"id": "c9", "isGroup": False}))
