"""In-process fake of the Bot Framework connector service (the bot's ``serviceUrl``).

The bot sends its replies to ``activity.serviceUrl`` the way it would to the Bot Framework
Emulator or to Teams. ``FakeConnector`` is an aiohttp server on 127.0.0.1 (ephemeral port)
that accepts those calls, answers ``{"id": "<generated>"}`` and records every activity:

* ``POST /v3/conversations/{conversationId}/activities/{activityId}``  reply   (``_op == "reply"``)
* ``POST /v3/conversations/{conversationId}/activities``               send    (``_op == "send"``)
* ``PUT  /v3/conversations/{conversationId}/activities/{activityId}``  update  (``_op == "update"``)
* ``DELETE`` on that same path                                        delete  (``_op == "delete"``)

Anything else is answered 404 and kept in ``unhandled`` so a test can see what the bot tried.

Each recorded activity is the JSON the bot sent plus underscore keys added by the fake:
``_op``, ``_path``, ``_conversation_id``, ``_activity_id`` (the id in the URL, i.e. the
replied-to or updated activity), ``_id`` (the id this fake answered), ``_headers``, ``_time``
and ``_peer`` (the caller's address:port, one per connection it opened).

    async with FakeConnector() as connector:
        await post_to_bot(emulator_message("hi", service_url=connector.url))
        [reply] = await connector.wait_for(lambda a: a["type"] == "message")
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections import deque
from collections.abc import Callable
from types import TracebackType
from typing import Any

from aiohttp import web

Activity = dict[str, Any]
Match = int | Callable[[Activity], bool]


class FakeConnector:
    """Bot Framework connector fake; see the module docstring for routes and record format."""

    def __init__(self, *, latency: float = 0.0) -> None:
        self.latency = latency
        self.activities: list[Activity] = []
        self.failed: list[Activity] = []  # activities answered with a scripted failure
        self.unhandled: list[dict[str, Any]] = []  # requests to routes this fake does not serve
        self._failures: deque[tuple[int, Callable[[Activity], bool] | None]] = deque()
        self._ids = itertools.count(1)
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self._port: int | None = None

    # ---------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        app = web.Application()
        base = "/v3/conversations/{conversation_id}/activities"
        app.router.add_post(base, self._handle)
        app.router.add_post(base + "/{activity_id}", self._handle)
        app.router.add_put(base + "/{activity_id}", self._handle)
        app.router.add_delete(base + "/{activity_id}", self._handle)
        app.router.add_route("*", "/{tail:.*}", self._unhandled)
        self._runner = web.AppRunner(
            app, access_log=None, handle_signals=False, shutdown_timeout=1.0
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self._port = int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeConnector:
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
        """The ``serviceUrl`` to put in incoming activities."""
        if self._port is None:
            raise RuntimeError("FakeConnector is not started")
        return f"http://127.0.0.1:{self._port}"

    # ---------------------------------------------------------------- scripting / inspection

    def fail_next(
        self, status: int = 500, times: int = 1, when: Callable[[Activity], bool] | None = None
    ) -> None:
        """Answer the next ``times`` activity calls with HTTP ``status`` instead of 200.

        With ``when``, only calls whose activity matches count (e.g. skip the typing
        indicator: ``when=lambda a: a["type"] == "message"``); others are served normally.
        """
        self._failures.extend([(status, when)] * times)

    def messages(self) -> list[Activity]:
        return [a for a in self.activities if a.get("type") == "message"]

    def texts(self) -> list[str]:
        """What a person reads of each message: its text, or a card's summary (the text of a
        message that carries a card, for clients that show no cards)."""
        return [str(a.get("text") or a.get("summary") or "") for a in self.messages()]

    def typing(self) -> list[Activity]:
        return [a for a in self.activities if a.get("type") == "typing"]

    def reset(self) -> None:
        self.activities.clear()
        self.failed.clear()
        self.unhandled.clear()
        self._failures.clear()

    async def wait_for(
        self,
        match: Match = 1,
        timeout: float = 5.0,  # noqa: ASYNC109 - plain seconds read better in tests
        *,
        count: int = 1,
    ) -> list[Activity]:
        """Wait until activities arrived and return them.

        ``match`` is either a number (wait for at least that many activities of any type, return
        all of them) or a predicate (wait for at least ``count`` matching activities, return the
        matching ones). Raises ``AssertionError`` listing what did arrive when ``timeout`` expires.
        """

        def matching() -> list[Activity]:
            return (
                list(self.activities)
                if isinstance(match, int)
                else [a for a in self.activities if match(a)]
            )

        needed = match if isinstance(match, int) else count
        try:
            async with self._changed:
                await asyncio.wait_for(
                    self._changed.wait_for(lambda: len(matching()) >= needed), timeout
                )
        except TimeoutError:
            seen = [(a.get("_op"), a.get("type"), a.get("text")) for a in self.activities]
            raise AssertionError(
                f"FakeConnector: wanted {needed} matching activities within {timeout}s, "
                f"got {len(matching())}; received (op, type, text): {seen}; unhandled: "
                f"{[(r['method'], r['path']) for r in self.unhandled]}"
            ) from None
        return matching()

    # ---------------------------------------------------------------- handlers

    async def _handle(self, request: web.Request) -> web.Response:
        conversation_id = request.match_info["conversation_id"]
        activity_id = request.match_info.get("activity_id")
        op = {"POST": "reply" if activity_id else "send", "PUT": "update", "DELETE": "delete"}[
            request.method
        ]
        raw = await request.text()
        body: Activity = json.loads(raw) if raw else {}
        new_id = activity_id if op in ("update", "delete") else f"fake-activity-{next(self._ids)}"
        body.update(
            _op=op,
            _path=request.path,
            _conversation_id=conversation_id,
            _activity_id=activity_id,
            _id=new_id,
            _headers={k.lower(): v for k, v in request.headers.items()},
            _time=time.monotonic(),
            _peer=_peer_of(request),
        )
        if self.latency:
            await asyncio.sleep(self.latency)

        if self._failures and (self._failures[0][1] is None or self._failures[0][1](body)):
            status, _ = self._failures.popleft()
            self.failed.append(body)
            error = {
                "error": {
                    "code": "ServiceError",
                    "message": f"FakeConnector scripted failure {status}",
                }
            }
            return web.json_response(error, status=status)

        async with self._changed:
            self.activities.append(body)
            self._changed.notify_all()
        return web.json_response({} if op == "delete" else {"id": new_id})

    async def _unhandled(self, request: web.Request) -> web.Response:
        self.unhandled.append(
            {"method": request.method, "path": request.path, "body": await request.text()}
        )
        return web.json_response(
            {"error": {"code": "NotFound", "message": "not served by FakeConnector"}}, status=404
        )


def _peer_of(request: web.Request) -> str:
    """The caller's address and port: one per connection it opened."""
    peer = request.transport.get_extra_info("peername") if request.transport else None
    return f"{peer[0]}:{peer[1]}" if peer else ""
