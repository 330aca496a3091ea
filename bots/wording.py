"""Every sentence a person reads in a chat with MemoryBot, whole, one per situation.

To change what the bot says, change it here. Other modules choose a sentence and fill in figures
(`{length}`, `{limit}`, `{count}`...), never words. Where two sentences go out together (a model
failure and whether the message was kept) they are joined whole, side by side.

Not here: the 4xx details `/api/messages` answers a malformed request with, which are for the
developer calling the endpoint and stay beside the checks in `bots.http`; and the offline
model's answers, which are the model's (`model_client.OfflineModel`).
"""

from __future__ import annotations

from dataclasses import dataclass

from model_client import (
    ModelBadAnswer,
    ModelBusy,
    ModelError,
    ModelMisconfigured,
    ModelRefused,
    ModelTimeout,
    ModelUnavailable,
)


@dataclass(frozen=True)
class ChatWording:
    """The sentences that differ between a personal chat and a group chat or channel."""

    welcome: str
    help: str
    forget_question: str
    forgotten: str
    nothing_remembered: str
    remembered: str  # {count}, {recent}
    remembered_since: str  # {count}, {recent}, {since}: a datetime
    citation_source: str  # {day}: a date; where a cited memory comes from
    items_title: str  # the `memory` card's heading
    forget_matching_question: str  # {words}: asks to forget what mentions them


PERSONAL_CHAT = ChatWording(
    welcome=(
        "Hi, I'm MemoryBot. I remember what you tell me in this chat across conversations, so "
        "you don't have to repeat your context. Nothing you say here appears in group chats. "
        "Type **memory** to see what I keep, **forget** to make me forget everything, **help** "
        "for more."
    ),
    help="""\
I'm MemoryBot. I remember what you tell me in this chat across conversations, so you don't \
have to repeat your context.

What I keep: our messages (the recent ones word for word, older ones as a short summary and in \
a searchable archive), kept where your organisation runs me. What you tell me here \
never appears in group chats or channels.

Commands:
- **memory**: what I remember about you, each thing with a button to forget it
- **remember** …: keep something, as you say it (or just say "remember that …")
- **forget** …: forget what mentions those words (I show you what first)
- **forget**: delete everything I remember about you (I ask first)
- **export**: everything I keep about you, as a JSON file saved to your OneDrive
- **help**: this message""",
    forget_question="Forget everything I remember about you? This can't be undone.",
    forgotten="Done: I've forgotten everything I remembered about you.",
    nothing_remembered="I don't remember anything about you yet.",
    remembered=(
        "I remember {count} messages about you: the latest {recent} word for word, and all of "
        "them in a searchable archive."
    ),
    remembered_since=(
        "I remember {count} messages about you since {since:%d %B %Y}: the latest {recent} "
        "word for word, and all of them in a searchable archive."
    ),
    citation_source="Our chat on {day.day} {day:%B %Y}",
    items_title="What I remember about you",
    forget_matching_question=(
        "Forget what I remember about you that mentions “{words}”? This can't be undone."
    ),
)

GROUP_CHAT = ChatWording(
    welcome=(
        "Hi, I'm MemoryBot. @mention me to ask something. In this chat I remember the "
        "conversation, never anyone's private chat with me. @MemoryBot **forget** explains how "
        "to clear it; **help** for more."
    ),
    help="""\
I'm MemoryBot. In this chat I answer when you @mention me, and I keep a memory of this \
conversation only, never anyone's private chat with me.

Commands (after @MemoryBot):
- **memory**: what I remember from this conversation, each thing with a button to forget it
- **remember** …: keep something for this conversation, as you say it
- **forget** …: forget what mentions those words (I show you what first)
- **forget**: clear this conversation's memory (I ask first)
- **export**: everything I keep for this conversation, as JSON, in as many messages as it takes
- **help**: this message""",
    forget_question="Forget everything I remember from this conversation?",
    forgotten="Done: I've forgotten everything I remembered from this conversation.",
    nothing_remembered="I don't remember anything from this conversation yet.",
    remembered=(
        "I remember {count} messages from this conversation: the latest {recent} word for "
        "word, and all of them in a searchable archive."
    ),
    remembered_since=(
        "I remember {count} messages from this conversation since {since:%d %B %Y}: the latest "
        "{recent} word for word, and all of them in a searchable archive."
    ),
    citation_source="This chat on {day.day} {day:%B %Y}",
    items_title="What I remember from this conversation",
    forget_matching_question=(
        "Forget what I remember from this conversation that mentions “{words}”? This can't be "
        "undone."
    ),
)


def wording_for(group: bool) -> ChatWording:
    return GROUP_CHAT if group else PERSONAL_CHAT


# Sent before the forget question in a group, where the memory belongs to no one person.
GROUP_FORGET = """\
In this chat I keep a memory of the conversation, not of any one person, and your private \
chat with me is never used here. Any member of this chat may clear it, since everyone here has \
seen what it holds: I'll ask for confirmation first. To clear what I remember about you \
personally, say **forget** in a 1:1 chat with me."""

SUMMARY = "Summary of older messages: {summary}"

# The `memory` card: the items, newest first, a page at a time, then what else is kept.
ITEM_LINE = "{kind} · {day.day} {day:%B %Y}"
ITEM_KINDS = {"fact": "Fact", "preference": "Preference", "decision": "Decision"}
NO_ITEMS = "No facts, preferences or decisions kept yet."
FORGET_ITEM_BUTTON = "Forget this"
OLDER_ITEMS_BUTTON = "Show older"
NEWER_ITEMS_BUTTON = "Show newer"
ITEMS_PAGE_OF = "Page {page} of {pages}, newest first."
ITEM_FORGOTTEN = "Forgotten: “{text}”"
ITEM_ALREADY_GONE = "That was already forgotten."
# `remember`
REMEMBERED_ITEM = "I'll remember that: “{text}”"
ITEM_ALREADY_KEPT = "I remember that already."
REMEMBER_WHAT = "Tell me what to keep, like: **remember** my daughter's name is Maya."
# `forget <words>`
NOTHING_MENTIONS = "I don't remember anything that mentions “{words}”."
MENTIONS = "What mentions it (kept things: {items}, messages: {messages}), for example:"
SUMMARY_MENTIONS = "- The summary of older messages mentions it too, so it goes as well."
NO_MESSAGES_KEPT = "I keep no messages of ours yet, only what you asked me to remember."
MATCHES_FORGOTTEN = (
    "Done: I've forgotten what mentioned it (kept things: {items}, messages: {messages})."
)

# What a citation of a remembered message shows of it: who said it, then what was said.
CITED_PERSON = "You said: {text}"
CITED_MEMBER = "{author} said: {text}"
CITED_BOT = "I answered: {text}"
NO_SUMMARY = "There is no summary of older messages yet."

# The forget confirmation card; typing the word works as well as the button.
REPLY_YES_TO_CONFIRM = "(Reply **yes** to confirm.)"
FORGET_BUTTON = "Yes, forget"
KEEP_BUTTON = "No, keep it"
FORGET_BUTTON_EXPIRED = (
    "That button no longer works: it has expired (something was said since, or it is old), or "
    "it answered someone else's question. Nothing was forgotten. Ask me to **forget** again to "
    "start over."
)
FORGET_CANCELLED = "OK, I'll keep what I remember."

# `export`: elsewhere than a Teams personal chat, in parts, each a message, together everything.
EXPORT_INTRO = "Here is everything I keep for this memory, as JSON."
EXPORT_PART = (
    "Everything I keep for this memory, as JSON: part {part} of {parts}. Together the parts "
    "hold all of it."
)
EXPORT_TOO_MANY_PARTS = (
    "This memory is too large to post here: it would take {parts} messages, and I send at most "
    "{limit}. Nothing was sent, and nothing was lost."
)
EXPORT_PARTS_FAILED = (
    "I couldn't send every part of the export (I sent {sent} of {parts}). Nothing was lost: "
    "type **export** to get it again."
)
# `export` in a Teams personal chat: a file in the person's OneDrive, once they allow it.
EXPORT_FILE_OFFER = (
    "Your export is ready: everything I keep about you, as one JSON file ({size}). Choose "
    "**Allow** to save it to your OneDrive."
)
EXPORT_FILE_DESCRIPTION = "Everything MemoryBot keeps about you, as JSON."
EXPORT_FILE_SAVED = "Here is your export, saved to your OneDrive: everything I keep about you."
EXPORT_FILE_DECLINED = "OK, I didn't save the file. Type **export** whenever you want it."
EXPORT_FILE_FAILED = (
    "I couldn't save the file to your OneDrive. Nothing was lost: type **export** to try again."
)
EXPORT_FILE_EXPIRED = (
    "That file offer no longer works: it has expired, or it was made for someone else. Nothing "
    "was saved. Type **export** for a new one."
)
EXPORT_FILE_TOO_LARGE = (
    "Your export is too large for one file ({size}; the limit is {limit}). Nothing was sent, "
    "and nothing was lost."
)

# Shown while a streamed answer is on its way, before its first words.
INFORMATIVE_TEXT = "Looking through what I remember…"

NOT_TEXT = "I can only read text messages for now. Please type your message."
CUT_OFF = (
    "The AI service stopped before finishing that answer, so it ends where it broke off. Your "
    "message was kept: ask again to get the rest."
)
JUST_MENTIONED = "Yes? @mention me with your question, or with **help** to see what I can do."
TOO_LONG = (
    "That message is too long for me ({length:,} characters; the limit is {limit:,}). "
    "Please shorten it or split it up."
)
UNKNOWN_SENDER = "I can't tell who sent this message, so I can't keep a memory for it."
TENANT_REFUSED = "Sorry, MemoryBot isn't available to your organisation."
RATE_LIMITED = (
    "You're sending messages faster than I can take them (the limit is {limit} a minute). "
    "Please wait up to a minute: until then I don't read or keep what you send."
)

# The memory store failed; one sentence for each thing the bot was doing.
STORE_DOWN_WHILE_ANSWERING = (
    "I can't reach my memory right now, so I couldn't answer. Please try again in a minute."
)
STORE_DOWN_WHILE_RUNNING_A_COMMAND = (
    "I can't reach my memory right now, so I couldn't do that. Please try again in a minute."
)
STORE_DOWN_WHILE_FORGETTING = (
    "I can't reach my memory right now, so I couldn't forget. Please try again in a minute."
)
REPLY_NOT_SAVED = "(I answered, but couldn't save this exchange to my memory.)"

# The model failed: what went wrong, by the `model_client` error raised, then whether the
# person's message was kept (`model_failed` joins the two).
MODEL_FAILED: dict[type[ModelError], str] = {
    ModelError: "I couldn't reach the AI service just now.",
    ModelTimeout: "The AI service took too long to answer.",
    ModelBusy: "The AI service is busy right now (too many requests).",
    ModelUnavailable: "The AI service is unavailable at the moment.",
    ModelRefused: "The AI service's content filter declined to answer that message.",
    ModelMisconfigured: (
        "The AI service rejected the bot's configuration; an administrator needs to check it."
    ),
    ModelBadAnswer: "The AI service sent back an answer I couldn't read.",
}
KEPT = "Your message was kept, so you can carry on where you left off."
NOT_KEPT = "I couldn't save your message either; please send it again in a minute."

# The adapter's last resort, when a turn failed in a way no handler answered.
TURN_FAILED = "Sorry, something went wrong on my side. Please try again."


def model_failed(error: ModelError, kept: bool | None) -> str:
    """What went wrong with the model, and whether the person's message was kept (None: it
    was rightly not, something said having been forgotten meanwhile; nothing more is said)."""
    # The nearest class with a sentence: a ModelError subclass added later still reads well.
    kinds = [kind for kind in type(error).__mro__ if issubclass(kind, ModelError)]
    what_failed = next(MODEL_FAILED[kind] for kind in kinds if kind in MODEL_FAILED)
    if kept is None:
        return what_failed
    return f"{what_failed} {KEPT if kept else NOT_KEPT}"
