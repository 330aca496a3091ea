"""MemoryBot under load, beside a minimal bot and the original design, on SQLite and Cosmos DB.

    .venv/bin/python -m bench.load [--people 50] [--turns 20] [--model-latency 0]
        [--backends sqlite,cosmos] [--bots ours,minimal,original]
        [--conversation-turns 1000] [--concurrent-turns 20] [--window 10]
        [--json bench/results/load.json]

Each bot runs as its own process (`python app.py`; `python -m bench.minimal_bot`;
`python -m bench.original_bot`) with the same environment, the same fake OpenAI-compatible
model server (fixed `--model-latency`), the same fake Bot Framework connector and the same store
backend, and is driven over HTTP with Emulator activities. Per backend and bot:

1. load: `--people` simulated people at once, `--turns` turns each (each waits for its answer
   before the next message): turns per second, latency median / p95 / p99 of POST /api/messages,
   peak resident memory of the bot process (VmHWM), store requests per turn (Cosmos DB: counted
   by the server; SQLite: in-process, not counted), CPU per turn of each process;
2. one conversation: one person, `--conversation-turns` turns in a row: the prompt tokens the
   model received at turns 10, 100, 1,000 and 10,000 (counted with `memory.tokens`), and the
   latency, CPU (the bot's, and its event loop's thread's) and store requests per turn over the
   `--window` turns up to each (10; with 100, turn 10 is left out);
3. lost messages: `--concurrent-turns` turns of one person sent at once to a fresh bot whose
   window is raised to 100 messages (MEMORY_MAX_MESSAGES=100), then the store is read: a turn is
   lost when its user message is not in the stored record afterwards.

The table shows each figure for the three bots and the ratios ours ÷ minimal and ours ÷
original, then MemoryBot's targets. A warm-up of 20 turns precedes the load phase. MEMORY_*
settings in this environment reach the bots of the load phase (say, MEMORY_EXTRACT_EVERY=0 to
measure without memory items); one conversation also reports turn 10,000 when it is that long.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from botbuilder.schema import Activity

from bench.minimal_bot import BotConfig, memory_key, records_for
from bench.support import (
    BACKENDS,
    BOT_NAMES,
    Backend,
    BotName,
    BotProcess,
    Fakes,
    Outcome,
    Person,
    Talk,
    Traffic,
    bot_environment,
    cpu_seconds,
    is_model_answer,
    latency_figures,
    machine,
    machine_busy_seconds,
    precise_cpu_seconds,
    scratch_directory,
    split_cores,
)
from bots.identity import memory_key_for
from config import Settings, settings_from
from memory.records import ChatMessage
from memory.tokens import prompt_tokens
from tests.support.activities import emulator_message
from wiring import create_store

CHECKPOINTS = (10, 100, 1000, 10_000)
CHECKPOINT_WINDOW = 10  # turns up to each checkpoint that its figures cover (--window)
WARM_UP_TURNS = 20
TARGET_MEDIAN_RATIO = 1.25
TARGET_THROUGHPUT_RATIO = 0.9


@dataclass
class Checkpoint:
    """Turn `turn` of one person's conversation, and the `--window` turns up to it."""

    turn: int
    prompt_tokens: int | None
    prompt_messages: int | None
    latency_p50_ms: float
    store_requests_per_turn: float | None
    bot_cpu_ms_per_turn: float | None = None
    loop_cpu_ms_per_turn: float | None = None  # the bot's main thread's (its event loop's)
    server_cpu_ms_per_turn: float | None = None  # the local Cosmos DB API server's


@dataclass
class LostMessages:
    turns: int
    expected_messages: int
    kept_messages: int
    lost_turns: int
    errors: int


@dataclass
class BotFigures:
    bot: str
    backend: str
    turns: int = 0
    errors: int = 0
    replies_delivered: int = 0
    answered: int = 0
    wall_seconds: float = 0.0
    turns_per_second: float = 0.0
    latency_ms: dict[str, float] = field(default_factory=dict)
    peak_rss_mib: float = 0.0
    peak_rss_after_conversation_mib: float = 0.0
    store_requests_per_turn: float | None = None
    cpu_ms_per_turn: dict[str, float] = field(default_factory=dict)
    cpu_percent_of_one_core: dict[str, float] = field(default_factory=dict)
    conversation_errors: int = 0
    checkpoints: list[Checkpoint] = field(default_factory=list)
    lost: LostMessages | None = None
    exit_code: int | None = None


# --------------------------------------------------------------------------- phases


def texts_for(seed: int, count: int) -> list[str]:
    talk = Talk(seed)
    return [talk.user_text() for _ in range(count)]


async def warm_up(traffic: Traffic, tag: str) -> None:
    """Lazy imports, token tables, connection pools: paid before anything is timed."""
    people = [Person(f"{tag}-warm-{n}") for n in range(2)]
    turns = WARM_UP_TURNS // len(people)
    await asyncio.gather(
        *(traffic.conversation(p, texts_for(900 + n, turns)) for n, p in enumerate(people))
    )


def cpu_snapshot(process: BotProcess, backend: Backend) -> dict[str, float]:
    """CPU seconds so far of each process taking part, and of the whole machine."""
    snapshot = {"bot": process.cpu_seconds(), "bench": time.process_time()}
    server = backend.server_pid()
    if server is not None:
        snapshot["cosmos server"] = cpu_seconds(server)
    snapshot["machine"] = machine_busy_seconds()
    return snapshot


def cpu_used(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """Seconds each used between two snapshots; "elsewhere" is the rest of the machine (other
    people's processes on a shared machine)."""
    used = {name: after[name] - before[name] for name in after}
    ours = sum(seconds for name, seconds in used.items() if name != "machine")
    used["elsewhere"] = max(used.pop("machine") - ours, 0.0)
    return used


async def settle(process: BotProcess, limit_seconds: float = 20.0) -> None:
    """Wait until the bot is idle (its background work, such as summaries, done), so that one
    phase's leftovers are not measured in the next."""
    deadline = time.monotonic() + limit_seconds
    before = process.precise_cpu_seconds()
    while time.monotonic() < deadline:
        await asyncio.sleep(0.25)
        now = process.precise_cpu_seconds()
        if now - before < 0.005:  # under 2% of a core
            return
        before = now
    say(f"{process.name}: still busy after {limit_seconds:g} s; measuring anyway")


def window_cpu(process: BotProcess, backend: Backend) -> tuple[float, float, float | None]:
    """Precise CPU seconds so far of the bot, of its event loop's thread (the rest is its other
    threads', on SQLite almost all the store's), and of the local Cosmos DB server, if any."""
    server = backend.server_pid()
    return (
        process.precise_cpu_seconds(),
        process.precise_cpu_seconds(main_thread_only=True),
        None if server is None else precise_cpu_seconds(server),
    )


async def load_phase(
    figures: BotFigures,
    process: BotProcess,
    backend: Backend,
    fakes: Fakes,
    traffic: Traffic,
    people: int,
    turns: int,
    tag: str,
) -> None:
    crowd = [Person(f"{tag}-person-{n}") for n in range(people)]
    scripts = [texts_for(n, turns) for n in range(people)]
    await settle(process)
    fakes.forget()
    await backend.clear_requests()
    before = cpu_snapshot(process, backend)
    started = time.perf_counter()
    results = await asyncio.gather(
        *(traffic.conversation(p, script) for p, script in zip(crowd, scripts, strict=True))
    )
    wall = time.perf_counter() - started
    after = cpu_snapshot(process, backend)
    requests = await backend.requests_served()

    outcomes = [outcome for result in results for outcome in result]
    figures.turns = len(outcomes)
    figures.errors = sum(not o.ok for o in outcomes)
    figures.replies_delivered = len(fakes.connector.messages())
    figures.answered = sum(is_model_answer(text) for text in fakes.connector.texts())
    figures.wall_seconds = wall
    figures.turns_per_second = len(outcomes) / wall
    figures.latency_ms = latency_figures([o.seconds for o in outcomes if o.ok])
    figures.peak_rss_mib = process.peak_rss_mib()
    figures.store_requests_per_turn = None if requests is None else requests / len(outcomes)
    for name, used in cpu_used(before, after).items():
        figures.cpu_ms_per_turn[name] = used * 1000 / len(outcomes)
        figures.cpu_percent_of_one_core[name] = used * 100 / wall
    fakes.forget()


def checkpoints_of(turns: int, window: int) -> list[int]:
    """The one-person checkpoints a conversation of `turns` reaches with a whole `window`."""
    return [c for c in CHECKPOINTS if window <= c <= turns]


async def conversation_phase(
    figures: BotFigures,
    process: BotProcess,
    backend: Backend,
    fakes: Fakes,
    traffic: Traffic,
    turns: int,
    tag: str,
    window: int = CHECKPOINT_WINDOW,
) -> None:
    person = Person(f"{tag}-one-person")
    script = texts_for(7, turns)
    checkpoints = checkpoints_of(turns, window)
    await settle(process)
    fakes.forget()
    await backend.clear_requests()
    served_before: dict[int, int | None] = {}
    served_after: dict[int, int | None] = {}
    cpu_before: dict[int, tuple[float, float, float | None]] = {}
    cpu_after: dict[int, tuple[float, float, float | None]] = {}
    outcomes: list[Outcome] = []
    for turn, text in enumerate(script, start=1):
        for checkpoint in checkpoints:
            if turn == checkpoint - window + 1:
                served_before[checkpoint] = await backend.requests_served()
                cpu_before[checkpoint] = window_cpu(process, backend)
        outcomes.append(await traffic.say(person, text))
        if turn in checkpoints:
            cpu_after[turn] = window_cpu(process, backend)
            served_after[turn] = await backend.requests_served()

    prompts: dict[str, list[ChatMessage]] = {}
    for request in fakes.model.chat_requests():
        messages = request["body"].get("messages", [])
        if messages and messages[-1].get("role") == "user":
            prompts[str(messages[-1].get("content"))] = [
                ChatMessage(role=str(m["role"]), content=str(m["content"])) for m in messages
            ]
    figures.conversation_errors = sum(not o.ok for o in outcomes)
    for checkpoint in checkpoints:
        prompt = prompts.get(person.said[checkpoint - 1])
        turns_in = outcomes[checkpoint - window : checkpoint]
        before, after = served_before.get(checkpoint), served_after.get(checkpoint)
        (bot_before, loop_before, server_before), (bot_after, loop_after, server_after) = (
            cpu_before[checkpoint],
            cpu_after[checkpoint],
        )
        figures.checkpoints.append(
            Checkpoint(
                turn=checkpoint,
                prompt_tokens=None if prompt is None else prompt_tokens(prompt),
                prompt_messages=None if prompt is None else len(prompt),
                latency_p50_ms=latency_figures([o.seconds for o in turns_in])["p50_ms"],
                store_requests_per_turn=(
                    None if before is None or after is None else (after - before) / len(turns_in)
                ),
                bot_cpu_ms_per_turn=(bot_after - bot_before) * 1000 / len(turns_in),
                loop_cpu_ms_per_turn=(loop_after - loop_before) * 1000 / len(turns_in),
                server_cpu_ms_per_turn=(
                    None
                    if server_before is None or server_after is None
                    else (server_after - server_before) * 1000 / len(turns_in)
                ),
            )
        )
    figures.peak_rss_after_conversation_mib = process.peak_rss_mib()
    fakes.forget()


async def lost_phase(
    bot: BotName,
    env: dict[str, str],
    scratch: Path,
    fakes: Fakes,
    turns: int,
    tag: str,
    cpus: set[int] | None,
) -> LostMessages:
    process = BotProcess(bot, env, scratch, cpus=cpus)
    person = Person(f"{tag}-concurrent-person")
    talk = Talk(31)
    script = [f"Message {n} of {turns}: {talk.user_text()}" for n in range(1, turns + 1)]
    await process.start()
    try:
        async with Traffic(process.url, fakes.connector.url) as traffic:
            outcomes = await asyncio.gather(*(traffic.say(person, text) for text in script))
    finally:
        await process.stop()
    activity = emulator_message("", service_url=fakes.connector.url, user_id=person.user_id)
    stored = await stored_messages(bot, env, activity)
    kept_user = {content for role, content in stored if role == "user"} & set(script)
    replies = sum(role == "assistant" for role, _ in stored)
    fakes.forget()
    return LostMessages(
        turns=turns,
        expected_messages=2 * turns,
        kept_messages=len(kept_user) + replies,
        lost_turns=turns - len(kept_user),
        errors=sum(not o.ok for o in outcomes),
    )


async def stored_messages(
    bot: BotName, env: dict[str, str], activity: dict[str, Any]
) -> list[tuple[str, str]]:
    """(role, text) of every message the bot's record holds for the activity's sender."""
    if bot == "ours":
        store = create_store(settings_from(env))
        key = memory_key_for(Activity().deserialize(activity))
        if key is None:
            raise RuntimeError("no memory key for the concurrent person")
        await store.open()
        try:
            record = await store.load(key)
        finally:
            await store.close()
        return [(m.role, m.content) for m in record.unsummarised]
    records = records_for(BotConfig.from_environment(env))
    await records.open(prepare=False)
    try:
        return [(m["role"], m["content"]) for m in await records.load(memory_key(activity))]
    finally:
        await records.close()


async def measure(
    bot: BotName, backend: Backend, fakes: Fakes, options: argparse.Namespace, scratch: Path
) -> BotFigures:
    figures = BotFigures(bot=bot, backend=backend.name)
    tag = f"{backend.name}-{bot}"
    env = bot_environment(
        fakes.model.base_url,
        scratch,
        **backend.environment(f"bench-{bot}-load"),
        **memory_settings(),
    )
    profile = options.profile / f"{tag}.prof" if options.profile else None
    process = BotProcess(bot, env, scratch, profile_to=profile, cpus=options.bot_cpus)
    await process.start()
    try:
        async with Traffic(process.url, fakes.connector.url) as traffic:
            await warm_up(traffic, tag)
            await load_phase(
                figures, process, backend, fakes, traffic, options.people, options.turns, tag
            )
            say(
                f"{tag}: {figures.turns} turns in {figures.wall_seconds:.1f} s, "
                f"median {figures.latency_ms['p50_ms']:.0f} ms, "
                f"{figures.turns - figures.answered} without the model's answer"
            )
            if options.conversation_turns:
                await conversation_phase(
                    figures,
                    process,
                    backend,
                    fakes,
                    traffic,
                    options.conversation_turns,
                    tag,
                    options.window,
                )
                say(f"{tag}: one conversation of {options.conversation_turns} turns done")
    finally:
        figures.exit_code = await process.stop()
    if figures.exit_code not in (0, None):
        say(f"{tag}: exited with {figures.exit_code}:\n{process.log_tail()}")
    if profile is not None:
        say(
            f"{tag}: profile in {profile} (.venv/bin/python -m pstats {profile}), "
            f"the SQLite store's thread's beside it if it ran any (-store.prof)"
        )
    if options.concurrent_turns:
        lost_env = bot_environment(
            fakes.model.base_url,
            scratch,
            MEMORY_MAX_MESSAGES="100",
            **backend.environment(f"bench-{bot}-lost"),
        )
        figures.lost = await lost_phase(
            bot, lost_env, scratch, fakes, options.concurrent_turns, tag, options.bot_cpus
        )
        say(
            f"{tag}: {figures.lost.kept_messages} of {figures.lost.expected_messages} "
            "messages kept under concurrent turns"
        )
    return figures


# --------------------------------------------------------------------------- report


def say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def ratio(ours: float | None, other: float | None) -> str:
    if ours is None or other is None or other == 0:
        return "-"
    return f"{ours / other:.2f}×"


def number(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "n/a"
    return f"{value:,.{digits}f}"


def table(backend: str, figures: dict[str, BotFigures], options: argparse.Namespace) -> str:
    bots = [b for b in ("ours", "minimal", "original") if b in figures]
    header = f"{'':<50}" + "".join(f"{b:>11}" for b in bots)
    comparisons = [b for b in ("minimal", "original") if b in figures and "ours" in figures]
    header += "".join(f"{'ours÷' + b[:4]:>11}" for b in comparisons)
    rows: list[tuple[str, dict[str, float | None], int, bool]] = []

    def row(
        label: str, values: dict[str, float | None], digits: int = 1, ratios: bool = True
    ) -> None:
        rows.append((label, values, digits, ratios))

    def each(pick: Callable[[BotFigures], float | None]) -> dict[str, float | None]:
        return {b: pick(figures[b]) for b in bots}

    def at(turn: int, attribute: str) -> dict[str, float | None]:
        """One figure of the one-person conversation at `turn`, for each bot."""
        found = {b: next((p for p in figures[b].checkpoints if p.turn == turn), None) for b in bots}
        return {b: getattr(point, attribute, None) for b, point in found.items()}

    row("turns per second", each(lambda f: f.turns_per_second))
    for key, label in (("p50_ms", "median"), ("p95_ms", "p95"), ("p99_ms", "p99")):
        row(f"latency {label} (ms)", {b: figures[b].latency_ms.get(key) for b in bots})
    row("peak memory of the bot process (MiB)", each(lambda f: f.peak_rss_mib))
    row("store requests per turn", each(lambda f: f.store_requests_per_turn), 2)
    row("CPU per turn: bot process (ms)", each(lambda f: f.cpu_ms_per_turn.get("bot")), 2)
    row("CPU per turn: bench process (ms)", each(lambda f: f.cpu_ms_per_turn.get("bench")), 2)
    if backend == "cosmos":
        row(
            "CPU per turn: Cosmos DB server (ms)",
            each(lambda f: f.cpu_ms_per_turn.get("cosmos server")),
            2,
        )
    row(
        "CPU used by other processes (% of a core)",
        each(lambda f: f.cpu_percent_of_one_core.get("elsewhere")),
        0,
        ratios=False,
    )
    row("turns without the model's answer", each(lambda f: f.turns - f.answered), 0, False)
    checkpoints = checkpoints_of(options.conversation_turns, options.window)
    first = options.window - 1
    for c in checkpoints:
        row(
            f"one person, turn {c:,}: prompt tokens",
            at(c, "prompt_tokens"),
            0,
        )
    for c in checkpoints:
        row(
            f"one person, turns {c - first:,}-{c:,}: median ms",
            at(c, "latency_p50_ms"),
        )
    for c in checkpoints:
        row(
            f"one person, turns {c - first:,}-{c:,}: bot CPU ms/turn",
            at(c, "bot_cpu_ms_per_turn"),
            2,
        )
    for c in checkpoints:
        row(
            f"one person, turns {c - first:,}-{c:,}: event-loop CPU ms",
            at(c, "loop_cpu_ms_per_turn"),
            2,
        )
    if any(p.server_cpu_ms_per_turn is not None for f in figures.values() for p in f.checkpoints):
        for c in checkpoints:
            row(
                f"one person, turns {c - first:,}-{c:,}: server CPU ms/turn",
                at(c, "server_cpu_ms_per_turn"),
                2,
            )
    for c in checkpoints:
        row(
            f"one person, turns {c - first:,}-{c:,}: store req/turn",
            at(c, "store_requests_per_turn"),
            2,
        )
    if options.concurrent_turns:
        n = options.concurrent_turns
        row(
            f"{n} turns of one person at once: kept of {2 * n}",
            each(lambda f: f.lost.kept_messages if f.lost else None),
            0,
            False,
        )
        row(
            f"{n} turns of one person at once: lost turns",
            each(lambda f: f.lost.lost_turns if f.lost else None),
            0,
            False,
        )

    lines = [header]
    for label, values, digits, ratios in rows:
        line = f"{label:<50}" + "".join(f"{number(values[b], digits):>11}" for b in bots)
        if ratios:
            line += "".join(f"{ratio(values.get('ours'), values.get(b)):>11}" for b in comparisons)
        lines.append(line)
    return "\n".join(lines)


def verdicts(figures: dict[str, BotFigures], options: argparse.Namespace) -> list[str]:
    ours, minimal = figures.get("ours"), figures.get("minimal")
    lines: list[str] = []
    if ours is not None and minimal is not None:
        median = ours.latency_ms["p50_ms"] / minimal.latency_ms["p50_ms"]
        throughput = ours.turns_per_second / minimal.turns_per_second
        lines.append(
            f"target: median turn within {TARGET_MEDIAN_RATIO}× the minimal bot's: "
            f"{median:.2f}× — {'met' if median <= TARGET_MEDIAN_RATIO else 'MISSED'}"
        )
        lines.append(
            f"target: at least {TARGET_THROUGHPUT_RATIO}× the minimal bot's throughput: "
            f"{throughput:.2f}× — {'met' if throughput >= TARGET_THROUGHPUT_RATIO else 'MISSED'}"
        )
    if ours is not None and len(ours.checkpoints) >= 2:
        points = ours.checkpoints
        turns = " / ".join(f"{p.turn:,}" for p in points)

        def series(pick: Callable[[Checkpoint], float | None], digits: int) -> str:
            values = [pick(p) for p in points]
            return " / ".join(number(v, digits) for v in values) + (
                f" ({ratio(values[-1], values[0])} first to last)"
            )

        parts = [
            f"median ms {series(lambda p: p.latency_p50_ms, 1)}",
            f"bot CPU ms/turn {series(lambda p: p.bot_cpu_ms_per_turn, 2)}",
            f"of which the event loop's thread {series(lambda p: p.loop_cpu_ms_per_turn, 2)}",
            f"prompt tokens {series(lambda p: p.prompt_tokens, 0)}",
        ]
        if points[0].store_requests_per_turn is not None:
            parts.append(f"store requests {series(lambda p: p.store_requests_per_turn, 2)}")
        lines.append(f"ours, one person at turns {turns}: " + "; ".join(parts))
        budget = Settings().memory_context_tokens  # the bench leaves the app's default
        biggest = max((p.prompt_tokens or 0) for p in points)
        lines.append(
            f"ours: largest prompt {biggest:,} tokens; the budget (MEMORY_CONTEXT_TOKENS) is "
            f"{budget:,}: {'within' if biggest <= budget else 'OVER'}"
        )
    for name, f in figures.items():
        if f.lost is not None:
            lines.append(
                f"{name}: {f.lost.turns} turns of one person at once: lost "
                f"{f.lost.lost_turns} turns, kept {f.lost.kept_messages} of "
                f"{f.lost.expected_messages} messages"
            )
    return lines


# --------------------------------------------------------------------------- main


async def run(options: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, dict[str, BotFigures]] = {}
    about = machine()
    options.bot_cpus = split_cores(options.shared_cores)
    print(
        f"{about['cpus']} cores ({about['cpu_model']}), Python {about['python']}, "
        f"code {about['code']}; "
        + (
            f"the bot on core {sorted(options.bot_cpus)}, everything else on the others"
            if options.bot_cpus
            else "the bot shares every core with the load generator"
        )
    )
    with scratch_directory() as scratch:
        for name in options.backends:
            with Backend(name, scratch) as backend:
                async with Fakes(options.model_latency) as fakes:
                    results[name] = {}
                    for bot in options.bots:
                        results[name][bot] = await measure(bot, backend, fakes, options, scratch)
            print(
                f"\n{name}: {options.people} people × {options.turns} turns at once, model "
                f"latency {options.model_latency:g} s, {len(options.bots)} bots one after another"
            )
            print(table(name, results[name], options))
            for line in verdicts(results[name], options):
                print(line)
            sys.stdout.flush()
    return {
        "started_at": options.started_at,
        "machine": about,
        "options": {
            k: v
            for k, v in vars(options).items()
            if k not in ("json", "started_at", "profile", "bot_cpus")
        },
        "results": {
            backend: {bot: asdict(f) for bot, f in by_bot.items()}
            for backend, by_bot in results.items()
        },
    }


def names(raw: str, allowed: Sequence[str], what: str) -> list[str]:
    chosen = [part.strip() for part in raw.split(",") if part.strip()]
    unknown = [c for c in chosen if c not in allowed]
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(f"{what}: choose from {', '.join(allowed)}")
    return chosen


def memory_settings() -> dict[str, str]:
    """MEMORY_* settings from this environment, for the bots under load (say, to measure with
    MEMORY_EXTRACT_EVERY=0)."""
    return {name: value for name, value in os.environ.items() if name.startswith("MEMORY_")}


def main() -> None:
    parser = argparse.ArgumentParser(
        description="MemoryBot under load, beside a minimal bot and the original design."
    )
    parser.add_argument("--people", type=int, default=50, help="simulated people at once")
    parser.add_argument("--turns", type=int, default=20, help="turns per person")
    parser.add_argument(
        "--model-latency", type=float, default=0.0, help="seconds the fake model takes to answer"
    )
    parser.add_argument(
        "--backends",
        type=lambda raw: names(raw, BACKENDS, "--backends"),
        default=list(BACKENDS),
        help="comma-separated: sqlite,cosmos",
    )
    parser.add_argument(
        "--bots",
        type=lambda raw: names(raw, BOT_NAMES, "--bots"),
        default=list(BOT_NAMES),
        help="comma-separated: ours,minimal,original",
    )
    parser.add_argument(
        "--conversation-turns",
        type=int,
        default=1000,
        help="turns of the one-person conversation (0 skips it)",
    )
    parser.add_argument(
        "--concurrent-turns",
        type=int,
        default=20,
        help="turns of one person sent at once, for lost messages (0 skips it)",
    )
    parser.add_argument(
        "--window",
        type=int,
        default=CHECKPOINT_WINDOW,
        help="turns up to each one-person checkpoint that its figures cover (more: steadier)",
    )
    parser.add_argument("--json", type=Path, help="also write the raw figures to this file")
    parser.add_argument(
        "--profile",
        type=Path,
        help="run each bot under cProfile, writing DIR/<backend>-<bot>.prof (its event loop's "
        "thread) and DIR/<backend>-<bot>-store.prof (the SQLite store's thread); slower: for "
        "finding where time goes, not for figures",
    )
    parser.add_argument(
        "--shared-cores",
        action="store_true",
        help="let the bot share every core with the load generator (by default it gets a core "
        "of its own: steadier figures, see bench/support.py split_cores)",
    )
    options = parser.parse_args()
    if not 1 <= options.people <= 1000 or not 1 <= options.turns <= 10_000:
        parser.error("--people must be 1 to 1000 and --turns 1 to 10000")
    if not 0 <= options.model_latency <= 60:
        parser.error("--model-latency must be 0 to 60 seconds")
    if not 0 <= options.conversation_turns <= 100_000 or not 0 <= options.concurrent_turns <= 100:
        parser.error("--conversation-turns must be 0 to 100000, --concurrent-turns 0 to 100")
    if not 1 <= options.window <= min(CHECKPOINTS[1:]):
        parser.error(f"--window must be 1 to {min(CHECKPOINTS[1:])}")
    options.started_at = datetime.now(UTC).isoformat(timespec="seconds")
    if options.profile:
        options.profile = options.profile.resolve()
        options.profile.mkdir(parents=True, exist_ok=True)
    report = asyncio.run(run(options))
    if options.json:
        options.json.parent.mkdir(parents=True, exist_ok=True)
        options.json.write_text(json.dumps(report, indent=2) + "\n")
        say(f"raw figures written to {options.json}")


if __name__ == "__main__":
    main()
