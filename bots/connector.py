"""Replies to the Bot Framework connector over one shared aiohttp session.

botbuilder's `ConnectorClient` builds each request with msrest (operations, models, credentials)
and then sends it with the `requests` library on a worker thread: every reply, and every typing
indicator, is a hand-over to a thread and back, and under load that thread work is a large share
of a turn's CPU. Here the client keeps all of botbuilder's request building and only the last
step changes: the bytes go out through an aiohttp session on the event loop, shared by every
connector client of the process, so connections to the connector are kept alive and reused.

Behaviour kept as botbuilder's: the credentials sign each request the way msrest asks them to
(`signed_session`), the answer is deserialized by msrest's own policy, and a failed request is
not retried (botbuilder's pipeline did not retry either); a non-2xx answer becomes botbuilder's
`ErrorResponseException`, raised by the generated operation as before.
"""

from __future__ import annotations

from typing import Any

import aiohttp
import requests
from msrest.pipeline import Request, Response, SansIOHTTPPolicy
from msrest.pipeline.async_abc import AsyncHTTPSender, AsyncPipeline
from msrest.pipeline.universal import RawDeserializer
from msrest.universal_http import ClientRequest
from msrest.universal_http.aiohttp import AioHttpClientResponse

Outgoing = Request[ClientRequest]


def send_through(client: Any, session: aiohttp.ClientSession) -> Any:
    """`client` (a botbuilder `ConnectorClient`) made to send through `session`; returns it."""
    config = client.config
    timeout = aiohttp.ClientTimeout(total=float(config.connection.timeout), connect=10.0)
    policies = [
        config.user_agent_policy,
        _SignedBy(config.credentials),
        RawDeserializer(),
        config.http_logger_policy,
    ]
    # The generated operations send through `client._client` (msrest's ServiceClientAsync),
    # whose configuration is the client's own: one pipeline serves both.
    config.pipeline = AsyncPipeline(policies, _AiohttpSender(session, timeout))
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
        async with self._session.request(
            outgoing.method,
            outgoing.url,
            headers=outgoing.headers,
            data=body,
            timeout=self._timeout,
        ) as answer:
            response = AioHttpClientResponse(outgoing, answer)
            await response.load_body()
        return Response(request, response)
