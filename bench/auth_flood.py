"""Callers without a token must cost the bot almost nothing, and must not slow real turns.

    .venv/bin/python -m bench.auth_flood [--seconds 20] [--clients 3] [--body-kib 512]

Starts the real app as its own process with an app id set (Bot Framework tokens required), its
token checks pointed at a local identity server (tests/support/identity_server.py), then runs
two phases of `--seconds` each: alone, and while `--clients` looping clients post `--body-kib`
KiB activities with no token to /api/messages. In both phases it measures `GET /healthz` (one
request every 10 ms) and, at the same time, real chat turns sent one after another: a Teams
message with a valid channel token, answered by the bot through the fake model and the fake
connector (each from a new person, so every turn costs the same however many came before).
Prints the /healthz latency (median, p99, max) and the turns' latency (median, p95, max) in
both phases, the turns' ratio flood ÷ alone against the requirement (not slowed by more than
20%), how many flood requests were refused (and with which status), and the bot's CPU per flood
request (the flood phase's CPU less what its turns cost alone). The bot gets a core of its own,
as in bench.load.

The app reads botbuilder's identity endpoints from no environment variable: tests hand them to
`create_app(auth_overrides=...)`. So the bot process is `python -m bench.auth_flood
--serve-app`, which runs `app.main()` unchanged except that `create_app` gets the identity
server's `auth_overrides()` (passed as JSON in BENCH_AUTH_OVERRIDES).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
import uuid
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web

import app
from bench.support import (
    BotProcess,
    Fakes,
    answered_activity_ids,
    bot_environment,
    cpu_seconds,
    latency_figures,
    machine_busy_seconds,
    scratch_directory,
    split_cores,
)
from config import Settings
from memory import MemoryStore
from model_client import ChatModel
from tests.support.activities import BOT_APP_ID, teams_message
from tests.support.fake_connector import FakeConnector
from tests.support.identity_server import IdentityServer

APP_PASSWORD = "bench-password"
OVERRIDES_VARIABLE = "BENCH_AUTH_OVERRIDES"
WARM_UP_SECONDS = 1.0
TARGET_TURN_RATIO = 1.2


class CheckedBot(BotProcess):
    """MemoryBot's `app.py`, checking tokens against the identity server (see `serve_app`)."""

    def command(self) -> list[str]:
        return [sys.executable, "-m", "bench.auth_flood", "--serve-app"]


def serve_app() -> int:
    """`app.main()`, with `create_app` given the auth overrides from BENCH_AUTH_OVERRIDES."""
    overrides: dict[str, Any] = json.loads(os.environ[OVERRIDES_VARIABLE])
    real_create_app = app.create_app

    def create_app(
        settings: Settings, store: MemoryStore, model: ChatModel, **_: Any
    ) -> web.Application:
        return real_create_app(settings, store, model, auth_overrides=overrides)

    app.create_app = create_app
    return app.main()


async def health_latencies(url: str, seconds: float) -> list[float]:
    """`GET /healthz` every 10 ms for `seconds`; each one's latency in seconds."""
    found: list[float] = []
    deadline = time.monotonic() + seconds
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            began = time.perf_counter()
            async with session.get(f"{url}/healthz") as answer:
                await answer.read()
            found.append(time.perf_counter() - began)
            await asyncio.sleep(0.01)
    return found


async def turn_latencies(
    url: str, connector: FakeConnector, token: str, seconds: float
) -> tuple[list[float], int]:
    """Real turns one after another for `seconds`, each a Teams message from a new person with
    `token`: the latency of each turn the bot answered with the model's reply (as the fake
    connector saw it), and how many turns it did not answer so."""
    headers = {"Content-Type": "application/json", **IdentityServer.bearer(token)}
    timed: dict[str, float] = {}
    failed = 0
    deadline = time.monotonic() + seconds
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            activity = teams_message(
                "What did I say about the plan for next week?",
                aad_object_id=str(uuid.uuid4()),
                service_url=connector.url,
                bot_app_id=BOT_APP_ID,
            )
            body = json.dumps(activity)
            began = time.perf_counter()
            try:
                async with session.post(f"{url}/api/messages", data=body, headers=headers) as r:
                    await r.read()
                    ok = 200 <= r.status < 300
            except aiohttp.ClientError:
                ok = False
            if ok:
                timed[str(activity["id"])] = time.perf_counter() - began
            else:
                failed += 1
    answered = answered_activity_ids(connector)
    return [s for i, s in timed.items() if i in answered], failed + len(timed.keys() - answered)


@dataclass
class Phase:
    """One phase: /healthz and turn latencies (seconds), unanswered turns, CPU seconds used by
    the bot and by other processes (not the bot, not this one), and its length."""

    health: list[float]
    turns: list[float]
    failed: int
    bot_cpu: float
    elsewhere_cpu: float
    wall: float


async def phase(bot: BotProcess, fakes: Fakes, token: str, seconds: float) -> Phase:
    """/healthz and real turns at once for `seconds`."""
    fakes.forget()
    me = os.getpid()
    bot_before, me_before, busy_before = (
        cpu_seconds(bot.pid),
        cpu_seconds(me),
        machine_busy_seconds(),
    )
    began = time.monotonic()
    health, (turns, failed) = await asyncio.gather(
        health_latencies(bot.url, seconds),
        turn_latencies(bot.url, fakes.connector, token, seconds),
    )
    wall = time.monotonic() - began
    bot_cpu, mine = cpu_seconds(bot.pid) - bot_before, cpu_seconds(me) - me_before
    elsewhere = machine_busy_seconds() - busy_before - bot_cpu - mine
    return Phase(health, turns, failed, bot_cpu, max(elsewhere, 0.0), wall)


async def flood(url: str, body: bytes, stop: asyncio.Event, statuses: dict[int, int]) -> None:
    """Post `body` with no token, again and again, until `stop`."""
    headers = {"Content-Type": "application/json"}
    async with aiohttp.ClientSession() as session:
        while not stop.is_set():
            try:
                async with session.post(f"{url}/api/messages", data=body, headers=headers) as r:
                    await r.read()
                    statuses[r.status] = statuses.get(r.status, 0) + 1
            except aiohttp.ClientError:
                statuses[0] = statuses.get(0, 0) + 1  # the bot closed the connection early


def activity_of(size_kib: int) -> bytes:
    """A plausible activity padded with members to about `size_kib` KiB."""
    members = [{"id": f"29:member-{n:08d}", "name": "Someone"} for n in range(size_kib * 20)]
    activity = {
        "type": "conversationUpdate",
        "channelId": "msteams",
        "serviceUrl": "http://127.0.0.1:9/",
        "conversation": {"id": "a:1"},
        "from": {"id": "29:1"},
        "recipient": {"id": "28:bot"},
        "membersAdded": members,
    }
    return json.dumps(activity).encode()


async def run(arguments: argparse.Namespace) -> None:
    body = activity_of(arguments.body_kib)
    cores = split_cores(shared=False)
    with scratch_directory() as workdir:
        async with Fakes(model_latency=0) as fakes, IdentityServer() as identity:
            identity.register_app(BOT_APP_ID, APP_PASSWORD)
            env = bot_environment(
                fakes.model.base_url,
                workdir,
                MicrosoftAppId=BOT_APP_ID,
                MicrosoftAppPassword=APP_PASSWORD,
                SQLITE_PATH=str(workdir / "memory.db"),
                **identity.trust_env(),
                **{OVERRIDES_VARIABLE: json.dumps(identity.auth_overrides())},
            )
            token = identity.token(audience=BOT_APP_ID, service_url=fakes.connector.url)
            bot = CheckedBot("ours", env, workdir, cpus=cores)
            await bot.start()
            try:
                # The first turn fetches the signing keys and the bot's own outbound token.
                warm, failed = await turn_latencies(
                    bot.url, fakes.connector, token, WARM_UP_SECONDS
                )
                if failed or not warm:
                    raise RuntimeError(f"real turns were not answered:\n{bot.log_tail()}")
                alone = await phase(bot, fakes, token, arguments.seconds)
                stop = asyncio.Event()
                statuses: dict[int, int] = {}
                clients = [
                    asyncio.create_task(flood(bot.url, body, stop, statuses))
                    for _ in range(arguments.clients)
                ]
                flooded = await phase(bot, fakes, token, arguments.seconds)
                stop.set()
                await asyncio.gather(*clients)
            finally:
                await bot.stop()
    report(arguments, body, alone, flooded, statuses)


def report(
    arguments: argparse.Namespace,
    body: bytes,
    alone: Phase,
    flooded: Phase,
    statuses: dict[int, int],
) -> None:
    refused = sum(statuses.values())
    print(f"{arguments.clients} clients posting {len(body) / 1024:.0f} KiB without a token")
    for name, found in (("alone", alone), ("under the flood", flooded)):
        figures = latency_figures(found.health)
        print(
            f"/healthz {name}: median {figures['p50_ms']:.1f} ms, "
            f"p99 {figures['p99_ms']:.1f} ms, max {max(found.health) * 1000:.1f} ms "
            f"({len(found.health)} requests)"
        )
        figures = latency_figures(found.turns)
        print(
            f"turns {name}: median {figures['p50_ms']:.1f} ms, "
            f"p95 {figures['p95_ms']:.1f} ms, max {max(found.turns) * 1000:.1f} ms "
            f"({len(found.turns)} answered, {found.failed} not; other processes used "
            f"{found.elsewhere_cpu / found.wall:.0%} of a core)"
        )
    quiet, loud = latency_figures(alone.turns), latency_figures(flooded.turns)
    median, p95 = loud["p50_ms"] / quiet["p50_ms"], loud["p95_ms"] / quiet["p95_ms"]
    met = median <= TARGET_TURN_RATIO and p95 <= TARGET_TURN_RATIO
    print(
        f"target: turns under the flood within {TARGET_TURN_RATIO}× of alone: median "
        f"{median:.2f}×, p95 {p95:.2f}× — {'met' if met else 'MISSED'}"
    )
    print(f"flood requests: {refused} answered, by status {dict(sorted(statuses.items()))}")
    if refused:
        # Less what the flood phase's turns (and /healthz) cost, at the alone phase's rate.
        own = alone.bot_cpu / len(alone.turns) * len(flooded.turns)
        print(f"bot CPU per flood request: {(flooded.bot_cpu - own) / refused * 1000:.3f} ms")


def main() -> None:
    if sys.argv[1:] == ["--serve-app"]:
        sys.exit(serve_app())
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--clients", type=int, default=3)
    parser.add_argument("--body-kib", type=int, default=512)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
