"""`python -m memory replay`: what the bot would send the model after living through a talk."""

import asyncio
import io
import json
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from memory.context import MEMORY_HEADING, SUMMARY_HEADING
from memory.replay import Turn, replay
from memory.sqlite_store import SQLiteStore
from memory.summary import INSTRUCTIONS
from memory.tokens import prompt_tokens
from tests.conftest import conversation_memory
from tests.support.fake_openai import FakeOpenAI

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


def write_jsonl(path: Path, rows: list[dict[str, str]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def transcript(turns: int) -> list[dict[str, str]]:
    rows = []
    for n in range(turns):
        text = "My manager's name is Grace Hopper." if n == 2 else f"status update {n} on slides"
        at = f"2026-10-{1 + n % 28:02d}T09:00:00+00:00"
        rows.append({"role": "user", "content": text, "timestamp": at})
        rows.append({"role": "assistant", "content": f"noted {n}", "timestamp": at})
    return rows


async def run_replay(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None
) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "memory",
        "replay",
        *args,
        cwd=tmp_path,
        env={"PATH": os.environ["PATH"], "PYTHONPATH": str(REPO), **(env or {})},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_each_question_gets_the_exact_prompt_within_the_budget(tmp_path: Path) -> None:
    talk = write_jsonl(tmp_path / "t.jsonl", transcript(300))
    questions = write_jsonl(
        tmp_path / "q.jsonl",
        [{"question": "Who is my manager?"}, {"question": "What about the slides?"}],
    )
    code, out, err = await run_replay(
        tmp_path, str(talk), "--questions", str(questions), "--budget", "800", "--no-summary"
    )
    assert code == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    assert [line["question"] for line in lines] == ["Who is my manager?", "What about the slides?"]
    first = lines[0]["messages"]
    assert prompt_tokens(first) <= 800
    assert first[-1] == {"role": "user", "content": "Who is my manager?"}
    recall = next(m["content"] for m in first if m["content"].startswith(MEMORY_HEADING))
    # Under the day it was said, numbered in the order shown.
    fact = r"\n2026-10-03:\n\[\d+\] they said: My manager's name is Grace Hopper\."
    assert re.search(fact, recall)
    assert first[-2] == {"role": "assistant", "content": "noted 299"}


async def test_summaries_use_the_configured_model(tmp_path: Path) -> None:
    talk = write_jsonl(tmp_path / "t.jsonl", transcript(30))
    questions = write_jsonl(tmp_path / "q.jsonl", [{"question": "Where are we?"}])
    async with FakeOpenAI(reply=lambda messages: "Summary: slides are in progress.") as model:
        env = {
            "OPENAI_BASE_URL": model.base_url,
            "OPENAI_MODEL": "m",
            "MEMORY_MAX_MESSAGES": "10",
            "MEMORY_SUMMARY_EVERY": "10",
        }
        code, out, err = await run_replay(
            tmp_path, str(talk), "--questions", str(questions), env=env
        )
        assert code == 0, err
        summary_calls = [
            r for r in model.chat_requests() if r["body"]["messages"][0]["content"] == INSTRUCTIONS
        ]
    assert len(summary_calls) >= 4
    messages = json.loads(out)["messages"]
    assert messages[1]["role"] == "user"
    assert messages[1]["content"].startswith(
        MEMORY_HEADING + SUMMARY_HEADING + "Summary: slides are in progress."
    )


async def test_a_bad_transcript_line_is_named_and_nothing_is_printed(tmp_path: Path) -> None:
    talk = tmp_path / "t.jsonl"
    talk.write_text('{"role": "user", "content": "hi"}\n{"role": "robot", "content": 1}\n')
    questions = write_jsonl(tmp_path / "q.jsonl", [{"question": "x"}])
    code, out, err = await run_replay(tmp_path, str(talk), "--questions", str(questions))
    assert code == 2
    assert out == ""
    assert "line 2" in err
    assert "Traceback" not in err


async def test_a_transcripts_speakers_are_compared_by_what_they_say(tmp_path: Path) -> None:
    # Two people replayed as one ("Priya: …", "Sam: …"): their names are left out of what is
    # embedded, and a label that starts one message stays.
    store = SQLiteStore(tmp_path / "m.db")
    await store.open()
    asked: list[str] = []

    async def embed(texts: Sequence[str]) -> list[list[float]]:
        asked.extend(texts)
        return [[1.0, float(len(text))] for text in texts]

    memory = conversation_memory(store, system_prompt="s", max_messages=4, embed=embed)
    lines = ["Priya: we adopted a greyhound", "Sam: no way", "Wifi password: hunter2"] * 2
    turns = [Turn(text, None, None) for text in [*lines, "Priya: ok", "Sam: ok"]]
    # The other person may be replayed as the assistant: their labels count too.
    turns.append(Turn("Priya: and you?", "Sam: we got a cat", None))
    out = io.StringIO()
    try:
        await replay(memory, turns, ["What pet?"], out)
    finally:
        await memory.close()
        await store.close()
    assert "we adopted a greyhound" in asked
    assert "we got a cat" in asked
    assert "Wifi password: hunter2" in asked
    assert not any(text.startswith(("Priya:", "Sam:")) for text in asked)
    assert json.loads(out.getvalue())["question"] == "What pet?"
