"""Replies to the Bot Framework connector over one shared aiohttp session.

botbuilder's `ConnectorClient` builds each request with msrest (operations, models, credentials)
and then sends it with the `requests` library on a worker thread: every reply, and every typing
indicator, is a hand-over to a thread and back, and under load that thread work is a large share
of a turn's CPU. Here the client keeps all of botbuilder's request building and only the last
step changes: the bytes go out through an aiohttp session on the event loop, shared by every
connector client of the process, so connections to the connector are kept alive and reused.

Behaviour kept as botbuilder's: the credentials sign each request the way msrest asks them to
(`signed_session`), the answer is deserialized by msrest's own policy, and a non-2xx answer
becomes botbuilder's `ErrorResponseException`, raised by the generated operation as before. A
request that could not connect (refused, unresolved, connect timeout) is tried again, up to four
times in all with growing pauses (tenacity), as msrest's `requests` pipeline retried connection
errors; a request the connector may have received is not repeated, so no reply is sent twice.

msrest has no public way to do this, so three of its internals are relied on, with msrest 0.7.1
under botbuilder 4.17 (tests/bots/test_connector.py fails if one no longer holds):
- `client.config.pipeline`: the generated operations send through `client._client`, whose
  configuration is the client's own, and that runs `config.pipeline`; a pipeline put there with
  our sender carries every operation's request.
- `client._serialize.client_side_validation`: the one serializer the client shares with its
  operation groups reads this flag before walking each body against the models' `_validation`;
  it is the only switch msrest has for that walk.
- `AioHttpClientResponse._body`: where msrest's aiohttp response keeps the body `load_body()`
  read; `_Answer.body` reads it there so that an empty body is b"" instead of msrest's ValueError.
"""

from __future__ import annotations

from typing import Any, cast

import aiohttp
import requests
from msrest.pipeline import Request, Response, SansIOHTTPPolicy
from msrest.pipeline.async_abc import AsyncHTTPSender, AsyncPipeline
from msrest.pipeline.universal import RawDeserializer
from msrest.universal_http import ClientRequest
from msrest.universal_http.aiohttp import AioHttpClientResponse
from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
)

Outgoing = Request[ClientRequest]

CONNECT_ATTEMPTS = 4
# How long one request to the connector may take in all: msrest's own default is 100 s, and a
# connector that never answers then held the person's turn (and the channel's request) for
# minutes. The Bot Framework connector answers in well under a second.
REPLY_TIMEOUT_SECONDS = 15.0
CONNECT_BACKOFF_SECONDS = 0.5  # then 1 s, 2 s
# Failures before the request could reach the connector: safe to try again.
_NOT_CONNECTED = (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError)


def send_through(client: Any, session: aiohttp.ClientSession) -> Any:
    """`client` (a botbuilder `ConnectorClient`) made to send through `session`; returns it."""
    config = client.config
    total = min(float(config.connection.timeout), REPLY_TIMEOUT_SECONDS)
    timeout = aiohttp.ClientTimeout(total=total, connect=min(10.0, total))
    policies = [
        config.user_agent_policy,
        _SignedBy(config.credentials),
        RawDeserializer(),
        config.http_logger_policy,
    ]
    # The generated operations send through `client._client` (msrest's ServiceClientAsync),
    # whose configuration is the client's own: one pipeline serves both.
    config.pipeline = AsyncPipeline(policies, _AiohttpSender(session, timeout))
    # msrest walks every outgoing activity against the models' `_validation` constraints, and
    # botbuilder's schema models declare none: the walk can never fail, only cost time.
    client._serialize.client_side_validation = False
    return client


class _SignedBy(SansIOHTTPPolicy):  # type: ignore[type-arg]
    """Adds the Authorization header botbuilder's credentials give (none in Emulator mode).

    Credentials sign a `requests.Session` (msrest's contract, `signed_session`); the header is
    copied from a session kept for that alone. A token is fetched only when the credentials'
    own cache has none or it is expiring.
    """

    def __init__(self, credentials: Any) -> None:
        self._credentials = credentials
        self._signed = requests.Session()

    def on_request(self, request: Outgoing, **kwargs: Any) -> None:
        self._credentials.signed_session(self._signed)
        authorization = self._signed.headers.get("Authorization")
        headers = request.http_request.headers
        if authorization:
            headers["Authorization"] = authorization
        else:
            headers.pop("Authorization", None)


class _AiohttpSender(AsyncHTTPSender):  # type: ignore[type-arg]
    def __init__(self, session: aiohttp.ClientSession, timeout: aiohttp.ClientTimeout) -> None:
        self._session = session
        self._timeout = timeout

    async def __aenter__(self) -> _AiohttpSender:
        return self

    async def __aexit__(self, *exc_details: object) -> None:
        return None  # the session is the process's, closed at shutdown

    def build_context(self) -> None:
        return None

    async def send(self, request: Outgoing, **config: Any) -> Response[ClientRequest, Any]:
        outgoing = request.http_request
        body = outgoing.data.encode() if isinstance(outgoing.data, str) else outgoing.data
        async for attempt in AsyncRetrying(
            retry=retry_if_exception_type(_NOT_CONNECTED),
            stop=stop_after_attempt(CONNECT_ATTEMPTS),
            wait=wait_exponential(multiplier=CONNECT_BACKOFF_SECONDS),
            reraise=True,
        ):
            with attempt:
                async with self._session.request(
                    outgoing.method,
                    outgoing.url,
                    headers=outgoing.headers,
                    data=body,
                    timeout=self._timeout,
                ) as answer:
                    response = _Answer(outgoing, answer)
                    await response.load_body()
        return Response(request, response)


class _Answer(AioHttpClientResponse):
    """msrest's aiohttp response, except that an empty body is a body (b""), not an error.

    msrest's version raises ValueError for one, so a 200, 202 or 204 with nothing in it (or a
    gateway's bare 502) would fail before the operation could look at the status.
    """

    def body(self) -> bytes:
        loaded = cast(bytes | None, self._body)  # msrest declares it None until load_body()
        if loaded is None:
            raise ValueError("the body was not loaded")
        return loaded
