"""In-process fake of the OpenAI / Azure OpenAI HTTP API for tests and benchmarks.

``FakeOpenAI`` is an aiohttp server on 127.0.0.1 (ephemeral port) that speaks enough of
the chat-completions and embeddings API for the real ``openai`` client to talk to it:

* ``POST /v1/chat/completions``                          (``AsyncOpenAI(base_url=fake.base_url)``)
* ``POST /openai/deployments/{deployment}/chat/completions?api-version=...``
  (``AsyncAzureOpenAI(azure_endpoint=fake.azure_endpoint, azure_deployment=..., api_version=...)``)
* ``POST /openai/v1/chat/completions``                   (Azure "v1" API via ``AsyncOpenAI``)
* the same three shapes for ``/embeddings`` (deterministic hashed bag-of-words vectors).

Every request is recorded in ``requests`` so a test can assert exactly what reached the model.
Faults (rate limits, 5xx, hangs, content filtering, malformed bodies) are scripted per request
with ``script(...)``; after the queue is drained behaviour goes back to normal.

    async with FakeOpenAI(reply=lambda msgs: "hello") as fake:
        fake.script(RateLimited(retry_after=0.01), ServerError(503))
        client = openai.AsyncOpenAI(base_url=fake.base_url, api_key="test")
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import inspect
import itertools
import json
import math
import re
import struct
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from aiohttp import web

Message = dict[str, Any]
Reply = Callable[[list[Message]], str | Awaitable[str]]


# --------------------------------------------------------------------------- faults


@dataclass(frozen=True)
class RateLimited:
    """HTTP 429 with a ``Retry-After`` header (seconds; fractions allowed).

    The openai client only honours 0 < Retry-After <= 120; otherwise it falls back to its
    own backoff (~0.5s, doubling) or, above 120, does not retry at all.
    """

    retry_after: float = 0.01


@dataclass(frozen=True)
class ServerError:
    """HTTP 5xx with an OpenAI-style error body (use ``ServerError(503)`` for overloaded)."""

    status: int = 500


@dataclass(frozen=True)
class Hang:
    """Sleep ``seconds`` before answering normally (longer than the client timeout).

    The sleep is cut short when the server stops, so it never blocks shutdown.
    """

    seconds: float = 30.0


@dataclass(frozen=True)
class Disconnect:
    """Close the connection without answering, as a crashed server or a proxy that gave up."""


@dataclass(frozen=True)
class ContentFilterError:
    """Azure prompt filter: HTTP 400, ``error.code == "content_filter"`` with ``innererror``."""

    category: str = "violence"


@dataclass(frozen=True)
class ContentFilterFinish:
    """Azure completion filter: HTTP 200, ``finish_reason == "content_filter"``.

    ``message.content`` is ``partial`` or ``None`` when ``partial`` is empty (as Azure does).
    """

    category: str = "violence"
    partial: str = ""


@dataclass(frozen=True)
class Malformed:
    """HTTP 200 whose body is not valid JSON (a truncated document by default).

    For ``stream: true`` requests the body is sent as one SSE event (``data: <body>``).
    """

    body: str = '{"id": "chatcmpl-truncated", "choices": [{"mess'
    content_type: str = "application/json"


Fault = (
    RateLimited
    | ServerError
    | Hang
    | Disconnect
    | ContentFilterError
    | ContentFilterFinish
    | Malformed
)

_FILTER_CATEGORIES = ("hate", "self_harm", "sexual", "violence")


def _filter_results(flagged: str | None) -> dict[str, Any]:
    return {
        name: {"filtered": name == flagged, "severity": "medium" if name == flagged else "safe"}
        for name in _FILTER_CATEGORIES
    }


def _error_body(
    message: str, *, type_: str | None, code: str | None, param: str | None = None
) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


# --------------------------------------------------------------------------- helpers


def message_text(message: Message) -> str:
    """Text of a chat message whose content is a string or a list of content parts."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return ""


def echo_reply(messages: list[Message]) -> str:
    """Default reply: ``"echo: <text of the last user message>"``."""
    for message in reversed(messages):
        if message.get("role") == "user":
            return f"echo: {message_text(message)}"
    return "echo: "


def _count_words(text: str) -> int:
    return len(text.split())


def embed(text: str, dimensions: int = 64) -> list[float]:
    """Deterministic, L2-normalised hashed bag-of-words vector (stable across processes)."""
    vector = [0.0] * dimensions
    for word in re.findall(r"\w+", text.lower()):
        digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
        index = int.from_bytes(digest[:4], "little") % dimensions
        vector[index] += 1.0 if digest[4] & 1 else -1.0
    norm = math.sqrt(sum(v * v for v in vector))
    return [v / norm for v in vector] if norm else vector


def _stream_events(completion: dict[str, Any], include_usage: bool) -> list[dict[str, Any]]:
    """The ``chat.completion.chunk`` events that stream ``completion`` word by word."""
    choice = completion["choices"][0]
    common = {k: completion[k] for k in ("id", "created", "model", "system_fingerprint")}

    def chunk(choices: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
        return {**common, "object": "chat.completion.chunk", "choices": choices, **extra}

    def delta(content: dict[str, Any], **extra: Any) -> dict[str, Any]:
        return {"index": 0, "delta": content, "logprobs": None, "finish_reason": None, **extra}

    events: list[dict[str, Any]] = []
    if "prompt_filter_results" in completion:  # Azure opens with a chunk without choices
        events.append(chunk([], prompt_filter_results=completion["prompt_filter_results"]))
    events.append(chunk([delta({"role": "assistant", "content": "", "refusal": None})]))
    words = re.findall(r"\s*\S+", choice["message"]["content"] or "")
    events += [chunk([delta({"content": word})]) for word in words]
    final = {k: v for k, v in choice.items() if k in ("finish_reason", "content_filter_results")}
    events.append(chunk([delta({}, **final)]))
    if include_usage:
        events.append(chunk([], usage=completion["usage"]))
    return events


# --------------------------------------------------------------------------- server


class FakeOpenAI:
    """OpenAI-compatible fake server; see the module docstring for routes and usage."""

    def __init__(
        self,
        reply: Reply = echo_reply,
        *,
        latency: float = 0.0,
        chunk_delay: float = 0.0,
        embedding_dim: int = 64,
    ) -> None:
        self.reply = reply
        self.latency = latency
        self.chunk_delay = chunk_delay
        self.embedding_dim = embedding_dim
        self.streams_cut = 0
        """Streamed answers whose client went away before their end (closed, not read on)."""
        self.requests: list[dict[str, Any]] = []
        self._faults: deque[Fault] = deque()
        self._embedding_faults: deque[Fault] = deque()
        self._ids = itertools.count(1)
        self._stopping = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._port: int | None = None

    # ---------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/openai/v1/chat/completions", self._chat)
        app.router.add_post("/openai/deployments/{deployment}/chat/completions", self._chat)
        app.router.add_post("/v1/embeddings", self._embeddings)
        app.router.add_post("/openai/v1/embeddings", self._embeddings)
        app.router.add_post("/openai/deployments/{deployment}/embeddings", self._embeddings)
        self._stopping.clear()
        self._runner = web.AppRunner(
            app, access_log=None, handle_signals=False, shutdown_timeout=1.0
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self._port = int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        self._stopping.set()  # wakes up hanging handlers and streaming delays
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeOpenAI:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def url(self) -> str:
        if self._port is None:
            raise RuntimeError("FakeOpenAI is not started")
        return f"http://127.0.0.1:{self._port}"

    @property
    def base_url(self) -> str:
        """``base_url`` for ``openai.AsyncOpenAI``."""
        return f"{self.url}/v1"

    @property
    def azure_endpoint(self) -> str:
        """``azure_endpoint`` for ``openai.AsyncAzureOpenAI``."""
        return self.url

    # ---------------------------------------------------------------- scripting / inspection

    def script(self, *faults: Fault) -> None:
        """Queue faults for the next chat-completion requests, one fault per request, in order."""
        self._faults.extend(faults)

    def script_embeddings(self, *faults: Fault) -> None:
        """Like ``script`` but for embeddings requests (a separate queue)."""
        self._embedding_faults.extend(faults)

    @property
    def pending_faults(self) -> int:
        return len(self._faults) + len(self._embedding_faults)

    def chat_requests(self) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["kind"] == "chat"]

    def last_messages(self) -> list[Message]:
        """``messages`` of the most recent chat-completion request."""
        chats = self.chat_requests()
        if not chats:
            raise AssertionError("no chat-completion request reached FakeOpenAI")
        return list(chats[-1]["body"].get("messages", []))

    def reset(self) -> None:
        self.requests.clear()
        self._faults.clear()
        self._embedding_faults.clear()

    # ---------------------------------------------------------------- handlers

    async def _record(self, request: web.Request, kind: str) -> dict[str, Any]:
        raw = await request.text()
        try:
            body = json.loads(raw) if raw else {}
        except json.JSONDecodeError:
            body = {"_raw": raw}
        record: dict[str, Any] = {
            "kind": kind,
            "method": request.method,
            "path": request.path,
            "query": dict(request.query),
            "headers": {k.lower(): v for k, v in request.headers.items()},
            "deployment": request.match_info.get("deployment"),
            "body": body,
            "time": time.monotonic(),
            # The client's address: one reused client keeps one connection (one port).
            "peer": request.transport.get_extra_info("peername") if request.transport else None,
        }
        self.requests.append(record)
        return record

    async def _sleep(self, seconds: float) -> None:
        """Sleep, but return early when the server is stopping."""
        if seconds > 0:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=seconds)

    async def _fault_response(
        self, request: web.Request, fault: Fault, stream: bool = False
    ) -> web.Response | None:
        """Response for a fault, or ``None`` when the request should continue normally."""
        if isinstance(fault, RateLimited):
            body = _error_body(
                "Rate limit reached for requests. Please try again later.",
                type_="requests",
                code="rate_limit_exceeded",
            )
            return web.json_response(
                body, status=429, headers={"Retry-After": f"{fault.retry_after:g}"}
            )
        if isinstance(fault, ServerError):
            message = (
                "The engine is currently overloaded, please try again later."
                if fault.status == 503
                else "The server had an error while processing your request. Sorry about that!"
            )
            return web.json_response(
                _error_body(message, type_="server_error", code=None), status=fault.status
            )
        if isinstance(fault, Hang):
            await self._sleep(fault.seconds)
            if self._stopping.is_set() and request.transport is not None:
                request.transport.close()  # never answer a hung request: drop the connection
                return web.Response(status=499)
            return None
        if isinstance(fault, Disconnect):
            if request.transport is not None:
                request.transport.close()
            return web.Response(status=499)  # never reaches the client
        if isinstance(fault, ContentFilterError):
            body = _error_body(
                "The response was filtered due to the prompt triggering Azure OpenAI's "
                "content management policy. Please modify your prompt and retry.",
                type_=None,
                code="content_filter",
                param="prompt",
            )
            body["error"]["status"] = 400
            body["error"]["innererror"] = {
                "code": "ResponsibleAIPolicyViolation",
                "content_filter_result": _filter_results(fault.category),
            }
            return web.json_response(body, status=400)
        if isinstance(fault, Malformed):
            if stream:  # a broken SSE event; the client's JSON decoding fails while iterating
                return web.Response(
                    text=f"data: {fault.body}\n\n", content_type="text/event-stream"
                )
            return web.Response(text=fault.body, content_type=fault.content_type)
        return None  # ContentFilterFinish is handled while building the completion

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        record = await self._record(request, "chat")
        body: dict[str, Any] = record["body"]
        fault = self._faults.popleft() if self._faults else None
        if fault is not None:
            faulted = await self._fault_response(request, fault, stream=bool(body.get("stream")))
            if faulted is not None:
                return faulted

        messages: list[Message] = list(body.get("messages", []))
        filtered = fault if isinstance(fault, ContentFilterFinish) else None
        if filtered is not None:
            text = filtered.partial
        else:
            produced = self.reply(messages)
            text = await produced if inspect.isawaitable(produced) else produced
        await self._sleep(self.latency)

        completion = self._completion(body, record["deployment"], messages, text, filtered)
        if request.path.startswith("/openai/"):  # Azure adds content-filter annotations
            completion["prompt_filter_results"] = [
                {"prompt_index": 0, "content_filter_results": _filter_results(None)}
            ]
            completion["choices"][0]["content_filter_results"] = _filter_results(
                filtered.category if filtered else None
            )
        if body.get("stream"):
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            return await self._stream(request, _stream_events(completion, include_usage))
        return web.json_response(completion)

    def _completion(
        self,
        body: dict[str, Any],
        deployment: str | None,
        messages: list[Message],
        text: str,
        filtered: ContentFilterFinish | None,
    ) -> dict[str, Any]:
        prompt_tokens = sum(_count_words(message_text(m)) for m in messages)
        completion_tokens = _count_words(text)
        content = text if filtered is None else (text or None)  # Azure omits filtered output
        return {
            "id": f"chatcmpl-fake{next(self._ids)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model") or deployment or "fake-model",
            "system_fingerprint": "fp_fake",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content, "refusal": None},
                    "logprobs": None,
                    "finish_reason": "content_filter" if filtered else "stop",
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }

    async def _stream(
        self, request: web.Request, events: list[dict[str, Any]]
    ) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)
        try:
            for index, event in enumerate(events):
                if index and self.chunk_delay:
                    await self._sleep(self.chunk_delay)
                    if self._stopping.is_set():
                        return response
                await response.write(f"data: {json.dumps(event)}\n\n".encode())
            await response.write(b"data: [DONE]\n\n")
            await response.write_eof()
        except ConnectionResetError:  # the client closed the stream before its end
            self.streams_cut += 1
        return response

    async def _embeddings(self, request: web.Request) -> web.Response:
        record = await self._record(request, "embeddings")
        body: dict[str, Any] = record["body"]
        if self._embedding_faults:
            faulted = await self._fault_response(request, self._embedding_faults.popleft())
            if faulted is not None:
                return faulted
        await self._sleep(self.latency)

        raw_input = body.get("input", [])
        inputs = [raw_input] if isinstance(raw_input, str) else [str(item) for item in raw_input]
        dimensions = int(body.get("dimensions") or self.embedding_dim)
        as_base64 = body.get("encoding_format") == "base64"
        data = []
        for index, text in enumerate(inputs):
            vector = embed(text, dimensions)
            encoded: Any = (
                base64.b64encode(struct.pack(f"<{dimensions}f", *vector)).decode()
                if as_base64
                else vector
            )
            data.append({"object": "embedding", "index": index, "embedding": encoded})
        tokens = sum(_count_words(text) for text in inputs)
        return web.json_response(
            {
                "object": "list",
                "data": data,
                "model": body.get("model") or record["deployment"] or "fake-embedding",
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            }
        )
