"""A bounded soak: steady load on one bot for a fixed time, sampled, to show memory and latency
stay flat as memories grow.

    .venv/bin/python -m bench.soak [--seconds 600] [--sample-seconds 30] [--backend sqlite]
        [--bot ours] [--people 50] [--rate 20] [--model-latency 0] [--json bench/results/soak.json]

The bot runs as its own process, as in `bench.load`. `--people` people take turns at a steady
`--rate` turns per second in all (person n speaks at n / rate, n + people / rate, ...; each waits
for the answer to their previous turn, so a slow bot is never sent more than one turn per person
at once). Every `--sample-seconds` it prints one row: the turns finished in that window and their
latency, failures, the bot's resident memory (VmRSS) and peak (VmHWM), CPU use, and on Cosmos DB
the store requests per turn. It stops by itself after `--seconds`, then sums up the drift from
the second sample to the last (the first holds start-up and cache warming).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.support import (
    BACKENDS,
    BOT_NAMES,
    Backend,
    BotProcess,
    Fakes,
    Outcome,
    Person,
    Talk,
    Traffic,
    answered_activity_ids,
    bot_environment,
    cpu_seconds,
    latency_figures,
    machine,
    machine_busy_seconds,
    memory_kib,
    scratch_directory,
    split_cores,
)

WARM_UP_TURNS = 20


@dataclass
class Sample:
    """One window of the soak."""

    ended_at_s: float
    turns: int
    turns_per_second: float
    failed: int
    latency_ms: dict[str, float]
    rss_mib: float
    peak_rss_mib: float
    bench_rss_mib: float
    cpu_percent_of_one_core: dict[str, float]
    bot_cpu_ms_per_turn: float
    store_requests_per_turn: float | None


@dataclass
class Soak:
    bot: str
    backend: str
    seconds: float
    people: int
    rate: float
    model_latency: float
    samples: list[Sample] = field(default_factory=list)
    total_turns: int = 0
    total_failed: int = 0
    exit_code: int | None = None


class Window:
    """What finished since the last sample."""

    def __init__(self) -> None:
        self.outcomes: list[Outcome] = []

    def take(self) -> list[Outcome]:
        taken, self.outcomes = self.outcomes, []
        return taken


async def speak_steadily(
    traffic: Traffic,
    person: Person,
    talk: Talk,
    position: int,
    people: int,
    rate: float,
    started: float,
    seconds: float,
    window: Window,
) -> None:
    """One person's turns at their slots in the schedule, until the soak's time is up."""
    for round_ in range(math.ceil(seconds * rate / people) + 1):
        due = started + (round_ * people + position) / rate
        if due >= started + seconds:
            return
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        window.outcomes.append(await traffic.say(person, talk.user_text()))


class Sampler:
    """Turns one window's outcomes and the processes' counters into a `Sample`."""

    def __init__(self, soak: Soak, process: BotProcess, backend: Backend, fakes: Fakes) -> None:
        self.soak = soak
        self.process = process
        self.backend = backend
        self.fakes = fakes
        self.server_pid = backend.server_pid()
        self.last = self._cpu()
        self.last_time = time.perf_counter()
        self.answered: set[str] = set()

    def _cpu(self) -> dict[str, float]:
        snapshot = {"bot": self.process.cpu_seconds(), "bench": time.process_time()}
        if self.server_pid is not None:
            snapshot["cosmos server"] = cpu_seconds(self.server_pid)
        snapshot["machine"] = machine_busy_seconds()
        return snapshot

    async def sample(self, outcomes: list[Outcome], started: float) -> Sample:
        now = time.perf_counter()
        cpu = self._cpu()
        elapsed = now - self.last_time
        used = {name: cpu[name] - self.last[name] for name in cpu}
        ours = sum(seconds for name, seconds in used.items() if name != "machine")
        used["elsewhere"] = max(used.pop("machine") - ours, 0.0)
        self.last, self.last_time = cpu, now
        requests = await self.backend.requests_served()
        await self.backend.clear_requests()
        # A reply reaches the connector before its POST is answered, so it may have been seen in
        # the previous window: answers wait here until their turn is counted.
        self.answered |= answered_activity_ids(self.fakes.connector)
        self.fakes.forget()
        failed = 0
        for outcome in outcomes:
            if outcome.ok and outcome.activity_id in self.answered:
                self.answered.discard(outcome.activity_id)
            else:
                failed += 1
        ok = [o.seconds for o in outcomes if o.ok]
        sample = Sample(
            ended_at_s=now - started,
            turns=len(outcomes),
            turns_per_second=len(outcomes) / elapsed,
            failed=failed,
            latency_ms=latency_figures(ok),
            rss_mib=self.process.rss_mib(),
            peak_rss_mib=self.process.peak_rss_mib(),
            bench_rss_mib=memory_kib(os.getpid(), "VmRSS") / 1024,
            cpu_percent_of_one_core={k: v * 100 / elapsed for k, v in used.items()},
            bot_cpu_ms_per_turn=used["bot"] * 1000 / max(len(outcomes), 1),
            store_requests_per_turn=None if requests is None else requests / max(len(outcomes), 1),
        )
        self.soak.samples.append(sample)
        self.soak.total_turns += sample.turns
        self.soak.total_failed += sample.failed
        return sample


def header(cosmos: bool) -> str:
    columns = ["t (s)", "turns", "turns/s", "p50 ms", "p95 ms", "p99 ms", "failed", "RSS MiB"]
    columns += ["peak MiB", "bot CPU ms/turn"]
    if cosmos:
        columns += ["server CPU%", "store req/turn"]
    columns += ["other CPU%", "bench MiB"]
    return "  ".join(f"{c:>9}" for c in columns)


def row(sample: Sample, cosmos: bool) -> str:
    cells = [
        f"{sample.ended_at_s:.0f}",
        f"{sample.turns}",
        f"{sample.turns_per_second:.1f}",
        f"{sample.latency_ms['p50_ms']:.1f}",
        f"{sample.latency_ms['p95_ms']:.1f}",
        f"{sample.latency_ms['p99_ms']:.1f}",
        f"{sample.failed}",
        f"{sample.rss_mib:.1f}",
        f"{sample.peak_rss_mib:.1f}",
        f"{sample.bot_cpu_ms_per_turn:.1f}",
    ]
    if cosmos:
        cells.append(f"{sample.cpu_percent_of_one_core.get('cosmos server', 0.0):.0f}")
        requests = sample.store_requests_per_turn
        cells.append("n/a" if requests is None else f"{requests:.2f}")
    cells.append(f"{sample.cpu_percent_of_one_core['elsewhere']:.0f}")
    cells.append(f"{sample.bench_rss_mib:.0f}")
    return "  ".join(f"{c:>9}" for c in cells)


def typical(samples: list[Sample], pick: Callable[[Sample], float]) -> float:
    """The median of a figure over a few samples: one noisy window does not decide."""
    return statistics.median(pick(s) for s in samples)


def drift(soak: Soak) -> list[str]:
    """Early against late: the median of the first three samples after the first (which holds
    start-up and cache warming) against the median of the last three."""
    steady = [s for s in soak.samples[1:] if s.turns]
    if len(steady) < 4:
        return ["too few samples to judge drift; run longer or sample more often"]
    early, late = steady[:3], steady[-3:]
    lines = [
        f"early = samples ending at {early[0].ended_at_s:.0f}-{early[-1].ended_at_s:.0f} s, "
        f"late = {late[0].ended_at_s:.0f}-{late[-1].ended_at_s:.0f} s (the median of each)"
    ]
    figures: list[tuple[str, Callable[[Sample], float], str]] = [
        ("resident memory", lambda s: s.rss_mib, "MiB"),
        ("latency median", lambda s: s.latency_ms["p50_ms"], "ms"),
        ("latency p95", lambda s: s.latency_ms["p95_ms"], "ms"),
        ("latency p99", lambda s: s.latency_ms["p99_ms"], "ms"),
        ("bot CPU per turn", lambda s: s.bot_cpu_ms_per_turn, "ms"),
    ]
    for label, pick, unit in figures:
        before, after = typical(early, pick), typical(late, pick)
        change = f"{after / before:.2f}×" if before else "-"
        lines.append(f"{label}: {before:.1f} → {after:.1f} {unit} ({change})")
    lines.append(
        f"peak resident memory {soak.samples[-1].peak_rss_mib:.1f} MiB; "
        f"{soak.total_turns:,} turns, {soak.total_failed} without the model's answer"
    )
    return lines


async def run(options: argparse.Namespace) -> Soak:
    soak = Soak(
        bot=options.bot,
        backend=options.backend,
        seconds=options.seconds,
        people=options.people,
        rate=options.rate,
        model_latency=options.model_latency,
    )
    bot_cpus = split_cores(options.shared_cores)  # before the Cosmos DB server starts
    with (
        scratch_directory() as scratch,
        Backend(options.backend, scratch) as backend,
    ):
        async with Fakes(options.model_latency) as fakes:
            env = bot_environment(
                fakes.model.base_url, scratch, **backend.environment(f"soak-{options.bot}")
            )
            process = BotProcess(options.bot, env, scratch, cpus=bot_cpus)
            await process.start()
            try:
                async with Traffic(process.url, fakes.connector.url) as traffic:
                    warm = Person("soak-warm-up")
                    talk = Talk(999)
                    await traffic.conversation(warm, [talk.user_text() for _ in range(20)])
                    fakes.forget()
                    await sample_while_speaking(soak, options, process, backend, fakes, traffic)
            finally:
                soak.exit_code = await process.stop()
            print("\n".join(drift(soak)))
            if soak.exit_code not in (0, None):
                print(f"the bot exited with {soak.exit_code}:\n{process.log_tail()}")
    return soak


async def sample_while_speaking(
    soak: Soak,
    options: argparse.Namespace,
    process: BotProcess,
    backend: Backend,
    fakes: Fakes,
    traffic: Traffic,
) -> None:
    cosmos = backend.name == "cosmos"
    window = Window()
    sampler = Sampler(soak, process, backend, fakes)
    await backend.clear_requests()
    about = machine()
    print(
        f"{about['cpus']} cores ({about['cpu_model']}), Python {about['python']}, "
        f"code {about['code']}"
    )
    print(
        f"soak: {options.bot} on {options.backend}, {options.people} people, "
        f"{options.rate:g} turns/s, model latency {options.model_latency:g} s, "
        f"{options.seconds:g} s, a sample every {options.sample_seconds:g} s"
    )
    print(header(cosmos), flush=True)
    started = time.perf_counter()
    speakers = asyncio.gather(
        *(
            speak_steadily(
                traffic,
                Person(f"soak-person-{n}"),
                Talk(n),
                n,
                options.people,
                options.rate,
                started,
                options.seconds,
                window,
            )
            for n in range(options.people)
        )
    )
    samples = math.ceil(options.seconds / options.sample_seconds)
    try:
        for n in range(1, samples + 1):
            due = started + min(n * options.sample_seconds, options.seconds)
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            if n == samples:
                await speakers  # the last turns finish inside the last sample
            print(row(await sampler.sample(window.take(), started), cosmos), flush=True)
    finally:
        if not speakers.done():
            speakers.cancel()
            await asyncio.gather(speakers, return_exceptions=True)


def main() -> None:
    parser = argparse.ArgumentParser(description="Steady load on one bot, sampled over time.")
    parser.add_argument("--seconds", type=float, default=600.0, help="how long the soak runs")
    parser.add_argument("--sample-seconds", type=float, default=30.0, help="one row this often")
    parser.add_argument("--backend", choices=BACKENDS, default="sqlite")
    parser.add_argument("--bot", choices=BOT_NAMES, default="ours")
    parser.add_argument("--people", type=int, default=50, help="people taking turns")
    parser.add_argument("--rate", type=float, default=20.0, help="turns per second in all")
    parser.add_argument(
        "--model-latency", type=float, default=0.0, help="seconds the fake model takes to answer"
    )
    parser.add_argument("--json", type=Path, help="also write the samples to this file")
    parser.add_argument(
        "--shared-cores",
        action="store_true",
        help="let the bot share every core with the load generator (by default it gets a core "
        "of its own: steadier figures, see bench/support.py split_cores)",
    )
    options = parser.parse_args()
    if not 10 <= options.seconds <= 24 * 3600:
        parser.error("--seconds must be 10 to 86400")
    if not 1 <= options.sample_seconds <= options.seconds:
        parser.error("--sample-seconds must be at least 1 and at most --seconds")
    if not 1 <= options.people <= 1000 or not 0.1 <= options.rate <= 1000:
        parser.error("--people must be 1 to 1000 and --rate 0.1 to 1000")
    if not 0 <= options.model_latency <= 60:
        parser.error("--model-latency must be 0 to 60 seconds")
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    soak = asyncio.run(run(options))
    if options.json:
        options.json.parent.mkdir(parents=True, exist_ok=True)
        report: dict[str, Any] = {
            "started_at": started_at,
            "machine": machine(),
            "soak": asdict(soak),
        }
        options.json.write_text(json.dumps(report, indent=2) + "\n")
        print(f"raw figures written to {options.json}", file=sys.stderr)


if __name__ == "__main__":
    main()
