"""The Bot Framework adapter, and the botbuilder clients it keeps from turn to turn.

botbuilder makes new credentials, a new connector client and a new user-token client for every
activity. Here each is made once per app id, audience and service URL and reused, and connector
clients send through one aiohttp session (`bots.connector`), closed with `close_adapter`.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable, Mapping
from types import SimpleNamespace
from typing import Any

import aiohttp
from botbuilder.core import TurnContext
from botbuilder.integration.aiohttp import (
    CloudAdapter,
    ConfigurationBotFrameworkAuthentication,
    ConfigurationServiceClientCredentialFactory,
)
from botbuilder.schema import Activity
from botframework.connector.auth import (
    AuthenticateRequestResult,
    AuthenticationConstants,
    ClaimsIdentity,
    ConnectorFactory,
    ServiceClientCredentialsFactory,
    UserTokenClient,
)

from bots.connector import send_through
from bots.signing_keys import fetch_signing_keys_off_the_loop
from bots.wording import TURN_FAILED
from config import Settings

log = logging.getLogger(__name__)


def create_adapter(
    settings: Settings, auth_overrides: Mapping[str, Any] | None = None
) -> CloudAdapter:
    """A CloudAdapter that checks Bot Framework tokens whenever an app id is configured.

    `auth_overrides` sets more of botbuilder's configuration attributes, such as
    TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL (tests point it at a local identity server).
    """
    fetch_signing_keys_off_the_loop()
    configuration = SimpleNamespace(
        APP_ID=settings.app_id,
        APP_PASSWORD=settings.app_password,
        APP_TYPE=settings.app_type,
        APP_TENANTID=settings.app_tenant_id,
        **(auth_overrides or {}),
    )
    credentials = ReusedCredentialsFactory(
        ConfigurationServiceClientCredentialFactory(configuration)
    )
    adapter = CloudAdapter(
        ReusedClientsAuthentication(
            configuration, credentials_factory=credentials, trust_env=settings.proxy_configured
        )
    )

    async def on_turn_error(turn_context: TurnContext, error: Exception) -> None:
        log.error("turn failed: %s", type(error).__name__, exc_info=error)
        try:
            await turn_context.send_activity(TURN_FAILED)
        except Exception as send_error:
            log.error("could not tell the person either: %s", type(send_error).__name__)

    adapter.on_turn_error = on_turn_error
    return adapter


async def close_adapter(adapter: CloudAdapter) -> None:
    """Release what the adapter keeps between turns (the connector's HTTP session)."""
    authentication = adapter.bot_framework_authentication
    if isinstance(authentication, ReusedClientsAuthentication):
        await authentication.close()


class ReusedCredentialsFactory(ServiceClientCredentialsFactory):  # type: ignore[misc]
    """Hands out one credentials object per audience instead of a new one per turn.

    botbuilder builds fresh credentials (a new MSAL app, with an empty token cache) for every
    turn, so each reply would fetch a new token, synchronously, on the event loop. Reused
    credentials keep their token until MSAL refreshes it.
    """

    def __init__(self, inner: ServiceClientCredentialsFactory) -> None:
        self._inner = inner
        self._made: dict[tuple[str, str, str, bool], Any] = {}

    async def is_valid_app_id(self, app_id: str) -> bool:
        return bool(await self._inner.is_valid_app_id(app_id))

    async def is_authentication_disabled(self) -> bool:
        return bool(await self._inner.is_authentication_disabled())

    async def create_credentials(
        self, app_id: str, oauth_scope: str, login_endpoint: str, validate_authority: bool
    ) -> Any:
        key = (app_id, oauth_scope, login_endpoint, validate_authority)
        if key not in self._made:
            self._made[key] = await self._inner.create_credentials(
                app_id, oauth_scope, login_endpoint, validate_authority
            )
        return self._made[key]


class ReusedClientsAuthentication(ConfigurationBotFrameworkAuthentication):  # type: ignore[misc]
    """botbuilder's authentication, but the clients it makes for each turn are made once.

    For every activity botbuilder builds a connector client (the reply channel) and a user-token
    client. Each build costs about 3 ms of CPU (msrest's retry set-up scans a 500-item list for
    each of 999 status codes) and a new HTTP session, so every reply opened a new connection.
    Here each client is kept per app id, audience and service URL, and connector clients send
    through one aiohttp session (`bots.connector`): connections and the token in the reused
    credentials carry over from turn to turn. `close` releases the session.
    """

    MAX_CLIENTS = 256  # service URLs are per region (and tenant): a few in practice

    def __init__(self, configuration: Any, *, trust_env: bool = False, **kwargs: Any) -> None:
        super().__init__(configuration, **kwargs)
        self._clients: OrderedDict[Hashable, Any] = OrderedDict()
        self._session: aiohttp.ClientSession | None = None
        self._trust_env = trust_env  # a proxy from HTTPS_PROXY, as requests would have used

    def session(self) -> aiohttp.ClientSession:
        """The session replies go out through, opened on first use (inside the event loop)."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(trust_env=self._trust_env)
        return self._session

    async def close(self) -> None:
        self._clients.clear()
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    async def authenticate_request(
        self, activity: Activity, auth_header: str
    ) -> AuthenticateRequestResult:
        result = await super().authenticate_request(activity, auth_header)
        if result.connector_factory is not None:
            result.connector_factory = _ReusedConnectorFactory(
                result.connector_factory, self, _app_id(result.claims_identity)
            )
        return result

    def create_connector_factory(self, claims_identity: ClaimsIdentity) -> ConnectorFactory:
        inner = super().create_connector_factory(claims_identity)
        return _ReusedConnectorFactory(inner, self, _app_id(claims_identity))

    async def create_user_token_client(self, claims_identity: ClaimsIdentity) -> UserTokenClient:
        make = super().create_user_token_client
        key = ("user-token", _app_id(claims_identity))
        return await self.reused(key, lambda: make(claims_identity))

    async def reused(self, key: Hashable, make: Callable[[], Awaitable[Any]]) -> Any:
        """The client kept under `key`, made by `make` the first time (least recent evicted)."""
        client = self._clients.get(key)
        if client is None:
            client = await make()
            self._clients[key] = client
            if len(self._clients) > self.MAX_CLIENTS:
                self._clients.popitem(last=False)
        else:
            self._clients.move_to_end(key)
        return client


class _ReusedConnectorFactory(ConnectorFactory):  # type: ignore[misc]
    def __init__(
        self, inner: ConnectorFactory, owner: ReusedClientsAuthentication, app_id: str | None
    ) -> None:
        self._inner = inner
        self._owner = owner
        self._app_id = app_id

    async def create(self, service_url: str, audience: str | None = None) -> Any:
        async def make() -> Any:
            client = await self._inner.create(service_url, audience)
            return send_through(client, self._owner.session())

        key = ("connector", self._app_id, service_url, audience)
        return await self._owner.reused(key, make)


def _app_id(claims_identity: ClaimsIdentity | None) -> str | None:
    """The bot's app id as botbuilder reads it from the caller's claims (audience, else appid)."""
    if claims_identity is None:
        return None
    app_id = claims_identity.get_claim_value(AuthenticationConstants.AUDIENCE_CLAIM)
    if app_id is None:
        app_id = claims_identity.get_claim_value(AuthenticationConstants.APP_ID_CLAIM)
    return app_id if isinstance(app_id, str) else None
