"""Callers without a token must cost the bot almost nothing.

    .venv/bin/python -m bench.auth_flood [--seconds 20] [--clients 3] [--body-kib 512]

Starts the real app as its own process with an app id set (Bot Framework tokens required), then
measures `GET /healthz` (one request every 10 ms) twice: alone, and while `--clients` looping
clients post `--body-kib` KiB activities with no token to /api/messages. Prints the /healthz
latency (median, p99, max) in both phases, how many flood requests were refused (and with which
status), and the bot's CPU per flood request. The bot gets a core of its own, as in bench.load.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

import aiohttp

from bench.support import (
    BotProcess,
    Fakes,
    bot_environment,
    cpu_seconds,
    latency_figures,
    scratch_directory,
    split_cores,
)


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
        async with Fakes(model_latency=0) as fakes:
            env = bot_environment(
                fakes.model.base_url,
                workdir,
                MicrosoftAppId="00000000-0000-4000-8000-000000000001",
                MicrosoftAppPassword="bench-password",
                SQLITE_PATH=str(workdir / "memory.db"),
            )
            bot = BotProcess("ours", env, workdir, cpus=cores)
            await bot.start()
            try:
                quiet = await health_latencies(bot.url, arguments.seconds)
                stop = asyncio.Event()
                statuses: dict[int, int] = {}
                cpu_before = cpu_seconds(bot.pid)
                clients = [
                    asyncio.create_task(flood(bot.url, body, stop, statuses))
                    for _ in range(arguments.clients)
                ]
                flooded = await health_latencies(bot.url, arguments.seconds)
                stop.set()
                await asyncio.gather(*clients)
                cpu = cpu_seconds(bot.pid) - cpu_before
            finally:
                await bot.stop()
    refused = sum(statuses.values())
    print(f"{arguments.clients} clients posting {len(body) / 1024:.0f} KiB without a token")
    for name, found in (("alone", quiet), ("under the flood", flooded)):
        figures = latency_figures(found)
        print(
            f"/healthz {name}: median {figures['p50_ms']:.1f} ms, "
            f"p99 {figures['p99_ms']:.1f} ms, max {max(found) * 1000:.1f} ms "
            f"({len(found)} requests)"
        )
    print(f"flood requests: {refused} answered, by status {dict(sorted(statuses.items()))}")
    if refused:
        print(f"bot CPU per flood request: {cpu / refused * 1000:.3f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--clients", type=int, default=3)
    parser.add_argument("--body-kib", type=int, default=512)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
