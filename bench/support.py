"""What `bench.load` and `bench.soak` share: bot processes, store backends, fakes, traffic.

Every bot (MemoryBot's `app.py`, `bench/minimal_bot.py`, `bench/original_bot.py`) runs as a
process of its own, started with one environment of the app's variable names, so its peak memory
and CPU can be read from `/proc/<pid>` (Linux). The fake model server, the fake connector and the
simulated people run in the benchmark's own process; the Cosmos DB API server is a `node` child.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import aiohttp

from tests.support.activities import emulator_message
from tests.support.cosmos_server import CosmosServer, CosmosServerError
from tests.support.fake_connector import FakeConnector
from tests.support.fake_openai import FakeOpenAI, message_text

REPO = Path(__file__).resolve().parents[1]
BotName = Literal["ours", "minimal", "original"]
BOT_NAMES: tuple[BotName, ...] = ("ours", "minimal", "original")
BOT_COMMANDS: dict[BotName, list[str]] = {
    "ours": [sys.executable, str(REPO / "app.py")],
    "minimal": [sys.executable, "-m", "bench.minimal_bot"],
    "original": [sys.executable, "-m", "bench.original_bot"],
}
BACKENDS = ("sqlite", "cosmos")
MODEL_NAME = "bench-model"
START_TIMEOUT_SECONDS = 90.0
STOP_TIMEOUT_SECONDS = 30.0
REQUEST_TIMEOUT_SECONDS = 120.0
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# --------------------------------------------------------------------------- what people say

_SYLLABLES = "ka lo mi ne ra to su vi be da go hu ji ke li mo nu pa re sa ti vo we ya zu".split()
_STOPWORDS = "the a to and I we is it of for on that this with at my can you".split()
_REPLY = (
    "Thanks, I have noted that. Based on what you told me earlier, the next step is to check "
    "the plan with the people involved, agree on the dates, and write down who owns each open "
    "item so that nothing falls between the cracks. If anything changes, tell me and I will "
    "keep it in mind for our next conversation. Is there anything else you want me to remember?"
)


class Vocabulary:
    """One language everyone shares: pseudo-words from syllables, Zipf-distributed, so that
    archive searches meet realistic word frequencies (a few words in most messages, most words
    rare, the same common words for every person)."""

    def __init__(self, size: int = 3000, seed: int = 1) -> None:
        rng = random.Random(seed)
        words: dict[str, None] = {}
        while len(words) < size:
            words["".join(rng.choices(_SYLLABLES, k=rng.randint(2, 4)))] = None
        self.words = list(words)
        self.cumulative: list[float] = []
        total = 0.0
        for rank in range(size):
            total += 1.0 / (rank + 1) ** 1.07
            self.cumulative.append(total)


_VOCABULARY = Vocabulary()


class Talk:
    """What one person says: chat-sized messages (about 100 characters), deterministic for a
    seed, over the shared vocabulary with stop words mixed in."""

    def __init__(self, seed: int, vocabulary: Vocabulary = _VOCABULARY) -> None:
        self.rng = random.Random(seed)
        self.vocabulary = vocabulary

    def _word(self) -> str:
        if self.rng.random() < 0.35:
            return self.rng.choice(_STOPWORDS)
        words, cumulative = self.vocabulary.words, self.vocabulary.cumulative
        index = bisect.bisect(cumulative, self.rng.random() * cumulative[-1])
        return words[min(index, len(words) - 1)]

    def user_text(self) -> str:
        text = " ".join(self._word() for _ in range(self.rng.randint(14, 20)))
        return text[0].upper() + text[1:] + "."


REPLY_MARK = "About “"


def model_reply(messages: list[dict[str, Any]]) -> str:
    """The fake model's answer: about 400 characters, quoting the start of the question."""
    question = message_text(messages[-1]) if messages else ""
    return f"{REPLY_MARK}{' '.join(question.split()[:4])}”: {_REPLY}"


def is_model_answer(text: str) -> bool:
    """Whether a reply carries the fake model's answer (not an apology or an error)."""
    return text.startswith(REPLY_MARK) and _REPLY in text


def answered_activity_ids(connector: FakeConnector) -> set[str]:
    """Ids of the incoming activities that got the model's answer, as the connector saw them."""
    return {
        str(a.get("_activity_id"))
        for a in connector.messages()
        if is_model_answer(str(a.get("text") or ""))
    }


# --------------------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process so far."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS  # utime, stime


def split_cores(shared: bool) -> set[int] | None:
    """Give the bot under test a core of its own and keep this process (the simulated people,
    the fake model and connector, and the Cosmos DB server it starts) on the others, as if they
    ran on separate machines. Sharing all cores, the bot's CPU per turn varies by ±10% from run
    to run with where the scheduler puts its threads. Returns the bot's cores, or None (shared,
    or a single core)."""
    cores = sorted(os.sched_getaffinity(0))
    if shared or len(cores) < 2:
        return None
    os.sched_setaffinity(0, set(cores[:-1]))
    return {cores[-1]}


def pin(pid: int, cpus: set[int]) -> None:
    """Run every thread of `pid` on `cpus`; threads it starts later inherit it from theirs."""
    for task in Path(f"/proc/{pid}/task").iterdir():
        os.sched_setaffinity(int(task.name), cpus)


def precise_cpu_seconds(pid: int, *, main_thread_only: bool = False) -> float:
    """CPU time so far of the live threads of a process, to the nanosecond (the scheduler's own
    count in /proc/<pid>/task/*/schedstat, where /proc/<pid>/stat counts 10 ms ticks): for
    windows of a few turns. Threads that have exited are not counted. With `main_thread_only`,
    only the thread that started the process (a bot's event loop)."""
    tasks = (
        [Path(f"/proc/{pid}/task/{pid}")]
        if main_thread_only
        else Path(f"/proc/{pid}/task").iterdir()
    )
    total = 0
    for task in tasks:
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            continue  # the thread ended meanwhile
    return total / 1e9


def machine_busy_seconds() -> float:
    """CPU time all processes on the machine have used, summed over the cores (/proc/stat)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    idle = fields[3] + fields[4]  # idle, iowait
    return (sum(fields) - idle) / _CLOCK_TICKS


def memory_kib(pid: int, field_name: str) -> int:
    """A size from /proc/<pid>/status: VmHWM is the peak resident set, VmRSS the current one."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1])
    raise ValueError(f"{field_name} not in /proc/{pid}/status")


def child_pid(command_part: str) -> int | None:
    """The pid of this process's child whose command line holds `command_part`."""
    me = os.getpid()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        parent = int(stat[stat.rindex(")") + 2 :].split()[1])
        if parent == me and command_part in command:
            return int(entry.name)
    return None


class BotProcess:
    """One bot as a process on a free loopback port, logging to a file in `workdir`."""

    def __init__(
        self,
        name: BotName,
        env: dict[str, str],
        workdir: Path,
        profile_to: Path | None = None,
        cpus: set[int] | None = None,
    ) -> None:
        """With `profile_to`, the bot runs under cProfile (`bench.profiled`: the SQLite store's
        thread apart, beside it), which writes there when it stops;
        with `cpus`, it runs on those cores only (see `split_cores`)."""
        self.name = name
        self.profile_to = profile_to
        self.cpus = cpus
        self.port = free_port()
        self.env = {**env, "PORT": str(self.port)}
        self.workdir = workdir
        self.log_path = workdir / f"{name}-{self.port}.log"
        self._process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        if self._process is None:
            raise RuntimeError(f"{self.name} is not running")
        return self._process.pid

    def command(self) -> list[str]:
        python, *arguments = BOT_COMMANDS[self.name]
        if self.profile_to is None:
            return [python, *arguments]
        return [python, "-m", "bench.profiled", str(self.profile_to), *arguments]

    async def start(self) -> None:
        with self.log_path.open("wb") as log:
            self._process = await asyncio.create_subprocess_exec(
                *self.command(),
                cwd=self.workdir,
                env=self.env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
            )
        if self.cpus:
            pin(self._process.pid, self.cpus)
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        async with aiohttp.ClientSession() as session:
            while time.monotonic() < deadline:
                if self._process.returncode is not None:
                    break
                try:
                    async with session.get(f"{self.url}/healthz") as response:
                        if response.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
        await self.stop()
        raise RuntimeError(f"{self.name} did not start serving:\n{self.log_tail()}")

    async def stop(self) -> int | None:
        """SIGTERM, as an operator stops it; SIGKILL if it has not exited in time."""
        process, self._process = self._process, None
        if process is None:
            return None
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), STOP_TIMEOUT_SECONDS)
            except TimeoutError:
                process.kill()
                await process.wait()
        return process.returncode

    def peak_rss_mib(self) -> float:
        return memory_kib(self.pid, "VmHWM") / 1024

    def rss_mib(self) -> float:
        return memory_kib(self.pid, "VmRSS") / 1024

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.pid)

    def precise_cpu_seconds(self, *, main_thread_only: bool = False) -> float:
        return precise_cpu_seconds(self.pid, main_thread_only=main_thread_only)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


# --------------------------------------------------------------------------- store backends


class Backend:
    """Where the bots keep memory: SQLite files in a scratch directory, or the local Cosmos DB
    API server (`@vercel/cosmosdb-server`, connections kept alive as Cosmos DB's gateway does)."""

    def __init__(self, name: str, scratch: Path) -> None:
        if name not in BACKENDS:
            raise ValueError(f"unknown backend {name!r}; choose from {', '.join(BACKENDS)}")
        self.name = name
        self.scratch = scratch
        self.server: CosmosServer | None = None

    def __enter__(self) -> Backend:
        if self.name == "cosmos":
            self.server = CosmosServer(keep_alive=True)
            self.server.start()
        return self

    def __exit__(self, *_: object) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None

    def environment(self, storage: str) -> dict[str, str]:
        """Variables that give a bot its own, empty storage named `storage`."""
        if self.server is None:
            return {"MEMORY_STORE": "sqlite", "SQLITE_PATH": str(self.scratch / f"{storage}.db")}
        return {
            "MEMORY_STORE": "cosmos",
            "COSMOS_ENDPOINT": self.server.endpoint,
            "COSMOS_KEY": self.server.key,
            "COSMOS_VERIFY_TLS": "false",
            "COSMOS_CREATE_IF_MISSING": "true",
            "COSMOS_DATABASE": storage,
            "COSMOS_CONTAINER": "memory",
        }

    async def requests_served(self) -> int | None:
        """Cosmos DB requests the server has taken since the last clear; None on SQLite, or when
        the server is too busy to answer its control endpoint in time."""
        server = self.server
        if server is None:
            return None
        try:
            return len(await asyncio.to_thread(server.requests))
        except (CosmosServerError, OSError, TimeoutError):
            return None

    async def clear_requests(self) -> None:
        if self.server is not None:
            with contextlib.suppress(CosmosServerError, OSError, TimeoutError):
                await asyncio.to_thread(self.server.clear_requests)

    def server_pid(self) -> int | None:
        return child_pid("cosmos_server.js") if self.server is not None else None


def bot_environment(model_url: str, workdir: Path, **extra: str) -> dict[str, str]:
    """The one environment every bot gets (only the storage and window vary)."""
    return {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(workdir),
        "PYTHONPATH": str(REPO),
        "OPENAI_BASE_URL": model_url,
        "OPENAI_MODEL": MODEL_NAME,
        "OPENAI_API_KEY": "bench-key",
        "RATE_LIMIT_PER_MINUTE": "0",
        "LOG_LEVEL": "WARNING",
        **extra,
    }


@contextmanager
def scratch_directory() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="memorybot-bench-") as name:
        yield Path(name)


class Fakes:
    """The fake model server (fixed latency) and the fake connector, in this process."""

    def __init__(self, model_latency: float) -> None:
        self.model = FakeOpenAI(reply=model_reply, latency=model_latency)
        self.connector = FakeConnector()

    async def __aenter__(self) -> Fakes:
        await self.model.start()
        await self.connector.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.connector.stop()
        await self.model.stop()

    def forget(self) -> None:
        """Drop what the fakes recorded, so a long run does not grow the benchmark's memory."""
        self.model.requests.clear()
        self.connector.reset()


# --------------------------------------------------------------------------- traffic


@dataclass(frozen=True, slots=True)
class Outcome:
    """One POST /api/messages: seconds it took, whether it answered 2xx, when it finished, and the
    activity's id (the connector records replies under it)."""

    seconds: float
    ok: bool
    finished: float
    activity_id: str


@dataclass
class Person:
    """Someone talking to a bot: a stable Emulator user id and what they said, in order."""

    user_id: str
    said: list[str] = field(default_factory=list)


class Traffic:
    """Posts Emulator activities to one bot; the bot replies to the fake connector."""

    def __init__(self, bot_url: str, service_url: str) -> None:
        self.url = f"{bot_url}/api/messages"
        self.service_url = service_url
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Traffic:
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0),
            timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_SECONDS),
        )
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._session is not None:
            await self._session.close()

    async def say(self, person: Person, text: str) -> Outcome:
        if self._session is None:
            raise RuntimeError("Traffic is not open")
        activity = emulator_message(text, service_url=self.service_url, user_id=person.user_id)
        body = json.dumps(activity)
        person.said.append(text)
        started = time.perf_counter()
        try:
            async with self._session.post(
                self.url, data=body, headers={"Content-Type": "application/json"}
            ) as response:
                await response.read()
                ok = 200 <= response.status < 300
        except (aiohttp.ClientError, TimeoutError):
            ok = False
        finished = time.perf_counter()
        return Outcome(finished - started, ok, finished, str(activity["id"]))

    async def conversation(self, person: Person, texts: Sequence[str]) -> list[Outcome]:
        """One person's turns, each sent when the previous one was answered."""
        return [await self.say(person, text) for text in texts]


# --------------------------------------------------------------------------- figures


def percentile(values: Sequence[float], share: float) -> float:
    """The `share` (0..1) quantile, interpolated; the value itself when there is one."""
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    cuts = statistics.quantiles(values, n=1000, method="inclusive")
    return cuts[max(0, min(len(cuts) - 1, round(share * 1000) - 1))]


def latency_figures(seconds: Sequence[float]) -> dict[str, float]:
    """Median, p95 and p99 in milliseconds."""
    return {
        "p50_ms": percentile(seconds, 0.50) * 1000,
        "p95_ms": percentile(seconds, 0.95) * 1000,
        "p99_ms": percentile(seconds, 0.99) * 1000,
    }


def machine() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "python": sys.version.split()[0],
        "platform": sys.platform,
        "code": code_version(),
    }


def code_version() -> str:
    """The commit measured, and whether product files had changes not yet committed."""

    def git(*arguments: str) -> str:
        try:
            done = subprocess.run(  # noqa: S603 - fixed argv, no shell
                ["git", *arguments],  # noqa: S607 - git from PATH, as a developer runs it
                cwd=REPO,
                capture_output=True,
                text=True,
                timeout=10,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            return ""
        return done.stdout

    commit = git("rev-parse", "--short", "HEAD").strip() or "unknown"
    changed = [
        line[3:]
        for line in git("status", "--porcelain").splitlines()
        if not line[3:].startswith(("bench/", "docs/"))
    ]
    return commit + (f" with uncommitted changes to {', '.join(changed)}" if changed else "")
