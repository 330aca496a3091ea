"""Run the local Cosmos DB API server (tests/support/cosmos_server.js) from Python tests.

The server is ``@vercel/cosmosdb-server`` (installed with ``npm ci``), spoken to
over HTTPS with a self-signed certificate: clients must pass
``connection_verify=False``. It keeps all data in memory, so a restarted
server starts empty; ``inject(...)`` simulates throttling, errors, resets and
slow answers without losing data, and ``requests()`` shows what the SDK sent.
"""

from __future__ import annotations

import http.client
import json
import os
import select
import shutil
import ssl
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Any, TypedDict

REPO_ROOT = Path(__file__).resolve().parents[2]
SERVER_SCRIPT = REPO_ROOT / "tests" / "support" / "cosmos_server.js"
PACKAGE_JSON = REPO_ROOT / "node_modules" / "@vercel" / "cosmosdb-server" / "package.json"

EMULATOR_KEY = (
    "C2y6yDjf5/R+ob0N8A7Cgv30VRDJIWEHLM+4QDU5DE2nQ9nDuVTqobD4b8mGGyPMbIZnqyMsEcaGQy67XIw/Jw=="
)


class CosmosServerError(RuntimeError):
    """The local Cosmos DB server could not be started, or refused a control request."""


class ServedRequest(TypedDict):
    """One Cosmos DB API request the server took (status 0: reset; -1: served, answer dropped)."""

    method: str
    path: str
    status: int
    priority: str
    """The request's x-ms-cosmos-priority-level ("Low", "High"), or "" when it sent none."""


class CosmosServer:
    """A local Cosmos DB API server in a ``node`` child process.

    The first ``start()`` binds an ephemeral port unless ``port`` is given;
    later ``start()`` calls reuse that port, so a test can ``stop()`` the
    server to simulate an outage and ``start()`` it again at the same
    endpoint (with no data).
    """

    def __init__(
        self,
        port: int = 0,
        host: str = "127.0.0.1",
        start_timeout: float = 30.0,
        *,
        keep_alive: bool = False,
    ) -> None:
        """``keep_alive`` keeps connections open between requests, as Cosmos DB does (for
        benchmarks); by default every answer closes its connection."""
        self._port = port
        self._keep_alive = keep_alive
        self._host = host
        self._start_timeout = start_timeout
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._last_log = ""

    @property
    def port(self) -> int:
        """The bound port; 0 until the server has started once."""
        return self._port

    @property
    def endpoint(self) -> str:
        """The account endpoint to give ``CosmosClient``."""
        if not self._port:
            raise CosmosServerError("the server has not been started yet")
        return f"https://{self._host}:{self._port}/"

    @property
    def key(self) -> str:
        """The emulator's well-known key: the server checks none, but the SDK needs valid base64."""
        return EMULATOR_KEY

    @property
    def running(self) -> bool:
        """Whether the server process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        """Spawn the server and block until it accepts connections; a no-op if it is running."""
        if self.running:
            return
        self._reap()
        node = shutil.which("node")
        if node is None:
            raise CosmosServerError(
                "`node` is not on PATH; Node.js 20+ is needed to run the Cosmos DB test server"
            )
        if not PACKAGE_JSON.is_file():
            raise CosmosServerError(
                f"@vercel/cosmosdb-server is not installed under {REPO_ROOT / 'node_modules'}; "
                f"run `npm ci` in {REPO_ROOT}"
            )
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - closed by stop()
        self._proc = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
            [
                node,
                str(SERVER_SCRIPT),
                "--port",
                str(self._port),
                "--host",
                self._host,
                "--exit-on-stdin-close",
                *(["--keep-alive"] if self._keep_alive else []),
            ],
            cwd=REPO_ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
        )
        try:
            self._port = self._wait_for_port()
        except BaseException:
            self.stop()
            raise

    def stop(self, timeout: float = 10.0) -> None:
        """Terminate the server (SIGTERM, SIGKILL after ``timeout``) and wait for it to exit."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._reap()

    def inject(
        self,
        *,
        status: int | None = None,
        count: int | None = None,
        retry_after_ms: int | None = None,
        substatus: int | None = None,
        reset: bool = False,
        drop: bool = False,
        delay_ms: int | None = None,
        method: str | None = None,
        path: str | None = None,
    ) -> None:
        """Make the next ``count`` matching requests fail (all of them, until cleared, if None).

        ``status`` answers with that HTTP status (429 with ``retry_after_ms`` is throttling);
        ``reset`` destroys the connection instead of answering; ``drop`` serves the request (a
        write lands) and then destroys the connection instead of answering; ``delay_ms`` holds
        the request before serving it (or before the fault). ``method`` and ``path`` (a
        substring of the URL, e.g. ``"/docs"``) limit which requests the rule takes. Rules
        apply in order.
        """
        rule: dict[str, Any] = {"reset": reset, "drop": drop}
        for name, value in (
            ("status", status),
            ("count", count),
            ("retryAfterMs", retry_after_ms),
            ("substatus", substatus),
            ("delayMs", delay_ms),
            ("method", method),
            ("path", path),
        ):
            if value is not None:
                rule[name] = value
        self._control("POST", "/_faults", rule)

    def clear_faults(self) -> None:
        """Drop every pending fault rule: the server answers normally again."""
        self._control("POST", "/_faults", {"clear": True})

    def requests(self) -> list[ServedRequest]:
        """The Cosmos DB API requests served since start (or ``clear_requests``), in order."""
        answer = self._control("GET", "/_requests")
        served: list[ServedRequest] = answer["requests"]
        return served

    def clear_requests(self) -> None:
        """Forget the requests served so far, so that a test counts only its own."""
        self._control("DELETE", "/_requests")

    def log(self) -> str:
        """The server's stderr output since the last ``start()`` (it logs every 500 it answers)."""
        if self._log is None:
            return self._last_log
        fd = self._log.fileno()
        return os.pread(fd, os.fstat(fd).st_size, 0).decode(errors="replace")

    def __enter__(self) -> CosmosServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _control(self, method: str, path: str, body: object = None) -> dict[str, Any]:
        """Send one request to the server's test-only control endpoints and return its JSON."""
        if not self.running:
            raise CosmosServerError("the Cosmos DB test server is not running")
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        connection = http.client.HTTPSConnection(
            self._host, self._port, timeout=10, context=context
        )
        try:
            payload = None if body is None else json.dumps(body)
            headers = {"content-type": "application/json"} if payload is not None else {}
            connection.request(method, path, body=payload, headers=headers)
            response = connection.getresponse()
            answer: dict[str, Any] = json.loads(response.read() or b"{}")
        finally:
            connection.close()
        if response.status != 200:
            raise CosmosServerError(f"{method} {path} failed ({response.status}): {answer}")
        return answer

    def _wait_for_port(self) -> int:
        """Read the child's stdout until its ``LISTENING <port>`` line, within the start timeout."""
        proc = self._proc
        assert proc is not None
        assert proc.stdout is not None
        fd = proc.stdout.fileno()
        deadline = time.monotonic() + self._start_timeout
        buffer = b""
        while b"\n" not in buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise CosmosServerError(
                    f"Cosmos DB test server silent after {self._start_timeout}s\n{self.log()}"
                )
            ready, _, _ = select.select([fd], [], [], remaining)
            if not ready:
                continue
            chunk = os.read(fd, 4096)
            if not chunk:
                raise CosmosServerError(
                    f"Cosmos DB test server exited ({proc.wait()}) before listening\n{self.log()}"
                )
            buffer += chunk
        line = buffer.split(b"\n", 1)[0].decode(errors="replace").strip()
        word, _, port = line.partition(" ")
        if word != "LISTENING" or not port.isdigit():
            raise CosmosServerError(
                f"unexpected output from the Cosmos DB test server: {line!r}\n{self.log()}"
            )
        return int(port)

    def _reap(self) -> None:
        """Release the pipes and log file of an exited server process, keeping its log text."""
        if self._proc is not None:
            for stream in (self._proc.stdin, self._proc.stdout):
                if stream is not None:
                    stream.close()
            self._proc = None
        if self._log is not None:
            self._last_log = self.log()
            self._log.close()
            self._log = None
