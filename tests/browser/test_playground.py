"""Conversations with MemoryBot in the Agents Playground's page, read as a person reads them.

The model is `remembering_model` (conftest): it answers "what is my cat called?" only from what
the bot put in its prompt, so what the page shows is what the bot remembered for that chat.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from playwright.async_api import expect

from bots.wording import FORGET_BUTTON, FORGET_CANCELLED, GROUP_CHAT, KEEP_BUTTON, PERSONAL_CHAT
from tests.browser.playground import WAIT_SECONDS, PlaygroundPage, Shown, as_shown
from tests.support.bot_process import BotProcess
from tests.support.fake_openai import FakeOpenAI, message_text

pytestmark = pytest.mark.browser

FACT = "My cat is called Biscuit"
QUESTION = "What is my cat called?"
KNOWN = "Your cat is called Biscuit."
UNKNOWN = "I don't know what your cat is called."


def answer_prompts(model_server: FakeOpenAI, question: str) -> list[list[str]]:
    """The prompts of the answers to `question` (the bot's background calls, such as memory
    item extraction, come and go on their own time and are left out)."""
    prompts = [
        [message_text(message) for message in request["body"]["messages"]]
        for request in model_server.chat_requests()
    ]
    return [prompt for prompt in prompts if prompt[-1].endswith(question)]


async def test_personal_chat_remembers_a_fact_across_a_restart_of_the_bot(
    chat: PlaygroundPage, bot: BotProcess, model_server: FakeOpenAI
) -> None:
    told = await chat.ask(FACT)
    assert told.text == f"echo: {FACT}"

    assert await bot.terminate() == 0
    await bot.start()  # the same SQLite file
    answer = await chat.ask(QUESTION)

    assert answer.text == KNOWN
    assert answer.ai_label
    assert answer.feedback
    [prompt] = answer_prompts(model_server, QUESTION)
    assert any(FACT in text for text in prompt[:-1])


async def test_a_group_chat_answers_only_when_mentioned_and_never_shows_personal_memory(
    chat: PlaygroundPage, model_server: FakeOpenAI
) -> None:
    await chat.ask(FACT)  # in the personal chat
    await chat.open_chat("Group Chat", as_shown(GROUP_CHAT.welcome))

    unmentioned = "what is my cat called, anyone?"
    before = await chat.send(unmentioned)
    answer = await chat.ask(QUESTION, mention=True)

    assert answer.text == UNKNOWN
    assert answer.ai_label
    shown = await chat.messages()
    assert [m.text for m in shown[before:] if m.by_bot] == [UNKNOWN]  # one answer, to the mention
    assert not any("Biscuit" in message.text for message in shown)
    assert answer_prompts(model_server, unmentioned) == []
    [prompt] = answer_prompts(model_server, QUESTION)
    assert not any("Biscuit" in text for text in prompt)


async def test_a_channel_answers_a_mention_in_the_thread_without_personal_memory(
    chat: PlaygroundPage, model_server: FakeOpenAI
) -> None:
    await chat.ask(FACT)

    post = await chat.post_in_channel("My Team - General", as_shown(GROUP_CHAT.welcome), QUESTION)

    await expect(post).to_contain_text(UNKNOWN, timeout=WAIT_SECONDS * 1000)
    await expect(post.get_by_text("AI generated")).to_be_visible()
    assert "Biscuit" not in await post.inner_text()
    [prompt] = answer_prompts(model_server, QUESTION)
    assert not any("Biscuit" in text for text in prompt)


async def test_feedback_on_an_answer_is_taken(chat: PlaygroundPage) -> None:
    await chat.ask(FACT)
    await chat.page.get_by_role("button", name="Like").last.click()
    dialog = chat.page.get_by_role("dialog")
    await dialog.get_by_role("textbox").fill("Just what I needed")
    await dialog.get_by_role("button", name="Submit").click()
    # The Playground's own thanks, shown when the bot took the invoke; else "Unable to reach app".
    await expect(dialog).to_contain_text("Thank you", timeout=WAIT_SECONDS * 1000)


async def test_the_forget_cards_buttons_keep_and_then_forget(chat: PlaygroundPage) -> None:
    await chat.ask(FACT)

    card = await chat.command("forget", KEEP_BUTTON)
    assert PERSONAL_CHAT.forget_question in card.text
    assert FORGET_BUTTON in card.text
    before = len(await chat.messages())
    await chat.press(KEEP_BUTTON)
    await chat.reply_after(before, lambda message: message.text == FORGET_CANCELLED)
    before = await chat.send("memory")
    kept = await chat.reply_after(before, lambda message: "I remember" in message.text)
    assert "2 messages" in kept.text
    # One message, the card: a text beside it (for clients without cards) shows it twice.
    assert [m.text for m in (await chat.messages())[before:] if m.by_bot] == [kept.text]

    await chat.command("forget", KEEP_BUTTON)
    before = len(await chat.messages())
    await chat.press(FORGET_BUTTON)
    await chat.reply_after(before, lambda message: message.text == PERSONAL_CHAT.forgotten)
    await chat.command("memory", PERSONAL_CHAT.nothing_remembered)
    assert (await chat.ask(QUESTION)).text == UNKNOWN


async def test_a_streamed_answer_shows_partial_text_before_the_final_message(
    chat: PlaygroundPage, model_server: FakeOpenAI
) -> None:
    model_server.chunk_delay = 0.3  # about five seconds for the answer below
    question = "tell me about the quiet lighthouses along the northern coast in winter please"
    final = f"echo: {question}"
    before = await chat.send(question)

    seen: list[Shown] = []  # each new state of the answer, in the order the page showed them
    deadline = time.monotonic() + WAIT_SECONDS
    while not (seen and seen[-1].ai_label):
        assert time.monotonic() < deadline, f"no final answer; seen: {seen}"
        answers = [message for message in (await chat.messages())[before:] if message.by_bot]
        if answers and (not seen or answers[-1] != seen[-1]):
            seen.append(answers[-1])
        await asyncio.sleep(0.05)

    assert seen[-1].text == final
    assert seen[-1].feedback
    assert not seen[-1].streaming
    partial = [shown.text for shown in seen[:-1] if shown.text.startswith("echo:")]
    assert partial, f"only the final message was shown: {seen}"
    assert all(final.startswith(text) and len(text) < len(final) for text in partial)
    assert any(shown.streaming for shown in seen[:-1])
    assert not any(shown.ai_label or shown.feedback for shown in seen[:-1])
