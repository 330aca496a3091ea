"""No person ever receives another's memory, for any two people Hypothesis can think of.

Person A tells the bot a secret; person B then asks for theirs; B's prompt at the model (and
everything sent back to B, `export` included) never holds A's secret, while A's prompt does.
The pairs are random, and also deliberately close: ids that differ only in case, in Unicode
normalisation (NFC/NFD/NFKC), by the characters Cosmos DB forbids in ids (/ \\ ? #), by a percent
escape of themselves, by a trailing space or NUL, the same user id on another channel, the same
AAD object id in another tenant. Whether two ids are one person follows the design: a GUID AAD
object id (and tenant) is the same person in any letter case; every other id is exact.

One app per test serves every example (each example's secret is new, so earlier examples cannot
make a later one pass or fail); runs against SQLite and, through the local Cosmos DB API server,
Cosmos DB.
"""

from __future__ import annotations

import json
import re
import unicodedata
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, assume, given, note, settings
from hypothesis import strategies as st

from tests.e2e.conftest import AppFactory
from tests.support.activities import emulator_message, teams_message
from tests.support.app_server import AppServer
from tests.support.fake_connector import FakeConnector
from tests.support.fake_openai import FakeOpenAI

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class EmulatorUser:
    channel: str
    user_id: str

    def says(self, text: str, url: str) -> dict[str, Any]:
        return {
            **emulator_message(text, user_id=self.user_id, service_url=url),
            "channelId": self.channel,
        }


@dataclass(frozen=True)
class TeamsUser:
    tenant: str
    aad_object_id: str

    def says(self, text: str, url: str) -> dict[str, Any]:
        return teams_message(
            text, tenant_id=self.tenant, aad_object_id=self.aad_object_id, service_url=url
        )


@dataclass(frozen=True)
class TeamsGroup:
    conversation_id: str

    def says(self, text: str, url: str) -> dict[str, Any]:
        return teams_message(
            text,
            conversation_type="groupChat",
            conversation_id=self.conversation_id,
            mention_bot=True,
            service_url=url,
        )


Speaker = EmulatorUser | TeamsUser | TeamsGroup


def whose_memory(speaker: Speaker) -> tuple[str, ...]:
    """The design's rule for who is the same person (or conversation), written independently."""
    if isinstance(speaker, EmulatorUser):
        return ("channel", speaker.channel, speaker.user_id)
    if isinstance(speaker, TeamsUser):
        return ("user", _guid_or_exact(speaker.tenant), _guid_or_exact(speaker.aad_object_id))
    return ("conversation", speaker.conversation_id.split(";messageid=")[0])


def _guid_or_exact(identifier: str) -> str:
    try:
        return str(uuid.UUID(identifier))
    except ValueError:
        return identifier


# Letters whose case or normalisation forms are tricky, Cosmos DB's forbidden id characters,
# percent and the escape characters a key or a store might use, and anything else Unicode has.
CONTROL = re.compile(r"[\x00-\x1f\x7f]")
TRICKY = "aAzZ09/\\?#%_~-.:;=| \x00\u00e9e\u0301\u212b\u00c5\ufb01\u0130\u0131\u00df\u03a3\u03c2"
tricky = st.sampled_from(TRICKY)
id_text = st.text(
    alphabet=st.one_of(tricky, tricky, st.characters(codec="utf-8")), min_size=1, max_size=40
)
channels = st.sampled_from(["emulator", "webchat", "directline", "Emulator"])
# A conversation id with a control character is refused (400): no reply could reach it.
conversation_id_text = id_text.filter(lambda text: not CONTROL.search(text))
speakers: st.SearchStrategy[Speaker] = st.one_of(
    st.builds(EmulatorUser, channels, id_text),
    st.builds(TeamsUser, st.one_of(id_text, st.uuids().map(str)), id_text),
    st.builds(TeamsGroup, conversation_id_text),
)

Twist = Callable[[str], str]
TWISTS: dict[str, Twist] = {
    "swapcase": str.swapcase,
    "upper": str.upper,
    "nfc": lambda s: unicodedata.normalize("NFC", s),
    "nfd": lambda s: unicodedata.normalize("NFD", s),
    "nfkc": lambda s: unicodedata.normalize("NFKC", s),
    "slash-to-backslash": lambda s: s.replace("/", "\\") + "/",
    "question-to-hash": lambda s: s.replace("?", "#") + "?",
    "percent-encoded": lambda s: quote(s, safe=""),
    "percent-decoded-slash": lambda s: s.replace("%2F", "/").replace("/", "%2F") + "%2F",
    "trailing-space": lambda s: s + " ",
    "trailing-nul": lambda s: s + "\x00",
    "without-last": lambda s: s[:-1] or s + s,
    "doubled": lambda s: s + s,
    "punctuation-to-underscore": lambda s: re.sub(r"[^0-9A-Za-z-]", "_", s),
    "hex-escaped": lambda s: re.sub(
        r"[^0-9A-Za-z-]", lambda m: "".join(f"_{b:02X}" for b in m[0].encode()), s
    ),
}


def twist(draw: st.DrawFn, value: str) -> str:
    """`value` changed by one twist that does change it (case and normalisation often do not)."""
    name = draw(st.sampled_from(sorted(n for n, f in TWISTS.items() if f(value) != value)))
    twisted = TWISTS[name](value)
    note(f"twist {name}: {value!r} -> {twisted!r}")
    return twisted


@st.composite
def close_pairs(draw: st.DrawFn) -> tuple[Speaker, Speaker]:
    """A, and a B made from A's own ids: one of them twisted, or reused in another place."""
    a = draw(speakers)
    how = draw(st.sampled_from(["main id", "main id", "other id", "elsewhere"]))
    b: Speaker
    if isinstance(a, EmulatorUser):
        if how == "elsewhere":
            elsewhere: list[Speaker] = [TeamsUser(a.user_id, a.user_id), TeamsGroup(a.user_id)]
            b = draw(st.sampled_from(elsewhere))
        elif how == "other id":
            b = EmulatorUser(twist(draw, a.channel), a.user_id)
        else:
            b = EmulatorUser(a.channel, twist(draw, a.user_id))
    elif isinstance(a, TeamsUser):
        if how == "elsewhere":
            swapped: list[Speaker] = [
                TeamsUser(a.aad_object_id, a.tenant),
                EmulatorUser("msteams", a.aad_object_id),
                TeamsGroup(a.aad_object_id),
            ]
            b = draw(st.sampled_from(swapped))
        elif how == "other id":
            b = TeamsUser(twist(draw, a.tenant), a.aad_object_id)
        else:
            b = TeamsUser(a.tenant, twist(draw, a.aad_object_id))
    elif how == "elsewhere":
        b = EmulatorUser("msteams", a.conversation_id)
    else:
        b = TeamsGroup(twist(draw, a.conversation_id))
    if isinstance(b, TeamsGroup):
        assume(not CONTROL.search(b.conversation_id))
    return a, b


people_pairs = st.one_of(close_pairs(), close_pairs(), st.tuples(speakers, speakers))


@pytest.fixture
async def turns(make_app: AppFactory, connector: FakeConnector, model_server: FakeOpenAI) -> Turns:
    """One app on SQLite for every example of a test (no rate limit: shrinking repeats people)."""
    return Turns(await make_app(RATE_LIMIT_PER_MINUTE="0"), connector, model_server)


@pytest.fixture
async def cosmos_turns(
    make_app: AppFactory,
    connector: FakeConnector,
    model_server: FakeOpenAI,
    cosmos_env: dict[str, str],
) -> Turns:
    """The same, on Cosmos DB through the local Cosmos DB API server."""
    bot = await make_app(RATE_LIMIT_PER_MINUTE="0", **cosmos_env)
    return Turns(bot, connector, model_server)


class Turns:
    """Posts as a speaker and returns what reached the model and what was sent back."""

    def __init__(self, bot: AppServer, connector: FakeConnector, model: FakeOpenAI) -> None:
        self.bot, self.connector, self.model = bot, connector, model

    async def say(self, speaker: Speaker, text: str) -> tuple[list[str], str]:
        asked = len(self.model.chat_requests())
        seen = len(self.connector.activities)
        status, answer = await self.bot.post(speaker.says(text, self.connector.url))
        assert status in (200, 201), f"{speaker}: {status} {answer!r}"
        requests = self.model.chat_requests()[asked:]
        prompts = [
            str(message.get("content"))
            for request in requests
            for message in request["body"]["messages"]
        ]
        return prompts, json.dumps(self.connector.activities[seen:], ensure_ascii=False)


async def never_receive_each_others_memory(turns: Turns, a: Speaker, b: Speaker) -> None:
    assume(whose_memory(a) != whose_memory(b))
    secret = f"SECRET-{uuid.uuid4().hex}"

    await turns.say(a, f"remember my secret token {secret}")
    prompt, sent = await turns.say(b, "what is my secret token?")
    assert prompt, f"B's question never reached the model: {b}"
    assert not any(secret in part for part in prompt), f"A's memory reached B's prompt: {b}"
    assert secret not in sent, f"A's memory was sent to B: {b}"
    _, exported = await turns.say(b, "export")
    assert secret not in exported, f"B's export holds A's memory: {b}"

    prompt, _ = await turns.say(a, "what is my secret token?")
    assert any(secret in part for part in prompt), f"A lost their own memory: {a}"


# One app serves every example: a function-scoped fixture is what is wanted here.
SHARED_APP = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]


@settings(max_examples=40, deadline=None, database=None, suppress_health_check=SHARED_APP)
@given(pair=people_pairs)
async def test_no_person_ever_receives_another_persons_memory_on_sqlite(
    turns: Turns, pair: tuple[Speaker, Speaker]
) -> None:
    await never_receive_each_others_memory(turns, *pair)


@settings(max_examples=25, deadline=None, database=None, suppress_health_check=SHARED_APP)
@given(pair=people_pairs)
async def test_no_person_ever_receives_another_persons_memory_on_cosmos(
    cosmos_turns: Turns, pair: tuple[Speaker, Speaker]
) -> None:
    await never_receive_each_others_memory(cosmos_turns, *pair)


def recased(guid: uuid.UUID, upper: list[bool]) -> str:
    return "".join(c.upper() if up else c for c, up in zip(str(guid), upper, strict=False))


@settings(max_examples=20, deadline=None, database=None, suppress_health_check=SHARED_APP)
@given(
    tenant=st.uuids(),
    aad=st.uuids(),
    upper=st.lists(st.booleans(), min_size=36, max_size=36),
)
async def test_a_guid_aad_object_id_is_one_person_in_any_letter_case(
    turns: Turns, tenant: uuid.UUID, aad: uuid.UUID, upper: list[bool]
) -> None:
    """The other side of the rule: over-separating would lose people their memory."""
    secret = f"SECRET-{uuid.uuid4().hex}"
    await turns.say(TeamsUser(str(tenant), str(aad)), f"remember my secret token {secret}")
    prompt, _ = await turns.say(
        TeamsUser(recased(tenant, upper), recased(aad, upper[::-1])), "what is my secret token?"
    )
    assert any(secret in part for part in prompt)
