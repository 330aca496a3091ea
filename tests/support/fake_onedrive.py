"""In-process stand-in for a OneDrive upload session: the `uploadUrl` of a file consent.

When a person allows a file consent card, Teams creates an upload session in their OneDrive and
hands the bot its URL. The bot PUTs the file there, whole or in fragments, each with
`Content-Range: bytes <first>-<last>/<total>`. ``FakeOneDrive`` is an aiohttp server on
127.0.0.1 that checks each fragment continues the last one, answers 202 (with
``nextExpectedRanges``) until the file is whole, then 201 with the drive item, and keeps the
bytes and each request's headers:

    async with FakeOneDrive() as drive:
        info = drive.upload_info("memorybot-export-2026-01-05.json")
        ...  # the bot PUTs to info["uploadUrl"]
        assert json.loads(drive.files[info["uniqueId"]])
"""

from __future__ import annotations

import itertools
import re
from types import TracebackType
from typing import Any

from aiohttp import web

_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+)")


class FakeOneDrive:
    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}  # whole files, by upload session id
        self.partial: dict[str, bytearray] = {}
        self.requests: list[dict[str, Any]] = []  # method, session, headers of every request
        self.fail_with: int | None = None  # answer every request with this status instead
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self._port: int | None = None

    async def __aenter__(self) -> FakeOneDrive:
        app = web.Application(client_max_size=256 * 1024 * 1024)
        app.router.add_route("*", "/upload/{session}", self._upload)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self._port = int(self._runner.addresses[0][1])
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    def upload_info(self, name: str) -> dict[str, Any]:
        """What Teams puts in `uploadInfo` when the person allows the file: a new session."""
        session = f"session-{next(self._ids)}"
        return {
            "contentUrl": f"https://contoso-my.sharepoint.com/personal/megan/Documents/{name}",
            "name": name,
            "uploadUrl": f"{self.url}/upload/{session}",
            "uniqueId": session,
            "fileType": "json",
        }

    async def _upload(self, request: web.Request) -> web.Response:
        session = request.match_info["session"]
        self.requests.append(
            {"method": request.method, "session": session, "headers": dict(request.headers)}
        )
        if self.fail_with is not None:
            return web.json_response({"error": {"code": "generalException"}}, status=self.fail_with)
        if request.method != "PUT" or "Authorization" in request.headers:
            return web.json_response({"error": {"code": "invalidRequest"}}, status=400)
        matched = _RANGE.fullmatch(request.headers.get("Content-Range", ""))
        body = await request.read()
        received = self.partial.setdefault(session, bytearray())
        if matched is None:
            return web.json_response({"error": {"code": "invalidRange"}}, status=400)
        first, last, total = (int(group) for group in matched.groups())
        if (
            first != len(received)
            or last - first + 1 != len(body)
            or int(request.headers.get("Content-Length", -1)) != len(body)
            or last >= total
        ):
            return web.json_response({"error": {"code": "invalidRange"}}, status=416)
        received += body
        if len(received) < total:
            return web.json_response({"nextExpectedRanges": [f"{len(received)}-"]}, status=202)
        self.files[session] = bytes(self.partial.pop(session))
        return web.json_response({"id": session, "size": total}, status=201)
