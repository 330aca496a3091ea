"""A local stand-in for the Bot Framework and Entra ID identity endpoints, for offline auth tests.

With `MicrosoftAppId` set, botbuilder checks every incoming token against OpenID metadata it
downloads (login.botframework.com for channels, login.microsoftonline.com for the Emulator) and,
to send a reply, asks Entra ID for an outbound token through MSAL. `IdentityServer` serves all of
that from 127.0.0.1 for an RSA key made here, and `auth_overrides()` points botbuilder at it (pass
them to `AppServer(..., auth_overrides=...)`), so no code path leaves the machine:

* ``GET  /botframework/v1/.well-known/openidconfiguration`` and ``/botframework/keys``: the
  channel's metadata and JWKS; each key carries Bot Framework ``endorsements`` (the channel ids
  it may sign for).
* ``GET  /emulator/v2.0/.well-known/openid-configuration`` and ``/emulator/keys``: the same for
  Emulator tokens.
* ``GET  /adfs/.well-known/openid-configuration`` and ``POST /adfs/oauth2/token``: the authority
  MSAL uses for the bot's own outbound token (client-credentials grant, checked against the app
  id and password given to `register_app`). MSAL only accepts an https authority and, for a host
  it does not know, asks login.microsoftonline.com to vouch for it unless the authority is ADFS
  shaped (``/adfs``): hence https, with a certificate made here, and that path.

botbuilder fetches metadata with `requests` and MSAL fetches tokens with `requests`, both
synchronously on the bot's event loop, so this server runs its own event loop on a thread of its
own (on the bot's loop it would never get to answer). Both trust the certificate through
``REQUESTS_CA_BUNDLE``: `trust_env()` gives the value to set (tests use ``monkeypatch.setenv``).
botbuilder caches metadata per URL for a day; every server listens on a fresh ephemeral port, so
no test sees another's keys.

`token(...)` mints tokens as the real channel (or Emulator) does, and also the wrong kinds:
expired or not valid yet, for another app or serviceUrl, signed by a key the metadata does not
list, forged under a listed key id, or unsigned.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import functools
import ipaddress
import itertools
import json
import ssl
import tempfile
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import jwt
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

CHANNEL_ISSUER = "https://api.botframework.com"
"""The issuer of tokens the Bot Framework channels (Teams included) send to bots."""
EMULATOR_ISSUER = "https://sts.windows.net/d6d49420-f39b-4df7-a1dc-d59a935871db/"
"""An issuer botbuilder takes as the Emulator's (Entra ID v1 tokens, ``ver`` 1.0)."""
OUTBOUND_SCOPE = "https://api.botframework.com"
DEFAULT_ENDORSEMENTS = ("msteams", "emulator")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
KeyChoice = Literal["trusted", "unknown", "impostor", "unsigned"]


@dataclass
class SigningKey:
    """An RSA key pair with the ``kid`` it is published (or not) under."""

    kid: str
    private: rsa.RSAPrivateKey
    endorsements: Sequence[str] = DEFAULT_ENDORSEMENTS

    @classmethod
    def generate(cls, role: str, endorsements: Sequence[str] = DEFAULT_ENDORSEMENTS) -> SigningKey:
        """A key under a new ``kid``; the RSA pair is made once per `role` per run (slow)."""
        return cls(kid=uuid.uuid4().hex, private=_rsa_key(role), endorsements=tuple(endorsements))

    def pem(self) -> bytes:
        return self.private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def jwk(self) -> dict[str, Any]:
        numbers = self.private.public_key().public_numbers()
        return {
            "kty": "RSA",
            "use": "sig",
            "kid": self.kid,
            "n": _b64uint(numbers.n),
            "e": _b64uint(numbers.e),
            "endorsements": list(self.endorsements),
        }


@dataclass
class IdentityRequest:
    """One request the server answered (form fields for token requests, never logged elsewhere)."""

    method: str
    path: str
    form: dict[str, str] = field(default_factory=dict)


class IdentityServer:
    """Bot Framework / Entra ID identity endpoints on 127.0.0.1 over https; see the module doc."""

    def __init__(self, *, endorsements: Sequence[str] = DEFAULT_ENDORSEMENTS) -> None:
        self.key = SigningKey.generate("trusted", endorsements)
        # Never published: tokens it signs must be refused. The impostor reuses the trusted kid.
        self.unknown_key = SigningKey.generate("unknown", endorsements)
        self.impostor_key = SigningKey(kid=self.key.kid, private=self.unknown_key.private)
        self.requests: list[IdentityRequest] = []
        self.issued_tokens: list[str] = []
        self._apps: dict[str, str] = {}
        self._token_ids = itertools.count(1)
        self._directory = tempfile.TemporaryDirectory(prefix="identity-server-")
        self.ca_bundle = Path(self._directory.name) / "identity-server.pem"
        self._ssl = self._make_tls()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._port: int | None = None

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> None:
        """Serve on a thread with its own event loop; returns once the port is bound."""
        if self._thread is not None:
            return
        ready: Future[int] = Future()
        loop = asyncio.new_event_loop()
        self._loop = loop

        def serve() -> None:
            asyncio.set_event_loop(loop)
            try:
                ready.set_result(loop.run_until_complete(self._start_serving()))
            except BaseException as error:
                ready.set_exception(error)
                return
            loop.run_forever()
            loop.run_until_complete(self._stop_serving())
            loop.close()

        self._thread = threading.Thread(target=serve, name="identity-server", daemon=True)
        self._thread.start()
        self._port = ready.result(timeout=10)

    def stop(self) -> None:
        thread, self._thread = self._thread, None
        if thread is not None and self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            thread.join(timeout=10)
        self._directory.cleanup()

    async def __aenter__(self) -> IdentityServer:
        await asyncio.to_thread(self.start)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.to_thread(self.stop)

    async def _start_serving(self) -> int:
        app = web.Application(middlewares=[_close_after_answering])
        app.router.add_get("/botframework/v1/.well-known/openidconfiguration", self._channel_config)
        app.router.add_get("/emulator/v2.0/.well-known/openid-configuration", self._emulator_config)
        app.router.add_get("/botframework/keys", self._keys)
        app.router.add_get("/emulator/keys", self._keys)
        app.router.add_get("/adfs/.well-known/openid-configuration", self._authority_config)
        app.router.add_post("/adfs/oauth2/token", self._token)
        app.router.add_route("*", "/{tail:.*}", self._unknown)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=self._ssl).start()
        return int(self._runner.addresses[0][1])

    async def _stop_serving(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        for _ in range(3):  # let closing transports finish before the loop closes
            await asyncio.sleep(0)

    # ---------------------------------------------------------------- wiring

    @property
    def url(self) -> str:
        if self._port is None:
            raise RuntimeError("IdentityServer is not started")
        return f"https://127.0.0.1:{self._port}"

    def auth_overrides(self) -> dict[str, Any]:
        """botbuilder configuration attributes that point every identity call at this server."""
        return {
            "TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL": (
                f"{self.url}/botframework/v1/.well-known/openidconfiguration"
            ),
            "TO_BOT_FROM_CHANNEL_TOKEN_ISSUER": CHANNEL_ISSUER,
            "TO_BOT_FROM_EMULATOR_OPENID_METADATA_URL": (
                f"{self.url}/emulator/v2.0/.well-known/openid-configuration"
            ),
            "TO_CHANNEL_FROM_BOT_LOGIN_URL": f"{self.url}/adfs",
            "TO_CHANNEL_FROM_BOT_OAUTH_SCOPE": OUTBOUND_SCOPE,
            "OAUTH_URL": f"{self.url}/user-token-service",
        }

    def trust_env(self) -> dict[str, str]:
        """Environment that makes `requests` (botbuilder, MSAL) trust this server's certificate."""
        return {"REQUESTS_CA_BUNDLE": str(self.ca_bundle)}

    def register_app(self, app_id: str, password: str) -> None:
        """Let `app_id` with `password` obtain outbound tokens (client-credentials grant)."""
        self._apps[app_id] = password

    def paths(self) -> list[str]:
        return [request.path for request in self.requests]

    # ---------------------------------------------------------------- tokens

    def token(
        self,
        *,
        audience: str,
        service_url: str | None,
        issuer: str = CHANNEL_ISSUER,
        key: KeyChoice = "trusted",
        expires_in: float = 3600,
        issued_at: float | None = None,
        claims: dict[str, Any] | None = None,
    ) -> str:
        """A channel token (as Teams sends) for the bot `audience`, signed by `key`.

        ``key``: "trusted" (published with endorsements), "unknown" (a ``kid`` the metadata does
        not list), "impostor" (the trusted ``kid``, but signed by another key), "unsigned"
        (``alg: none`` under the trusted ``kid``). A negative ``expires_in`` gives an expired
        token, a future ``issued_at`` one not valid yet; ``claims`` adds or replaces claims.
        """
        now = time.time() if issued_at is None else issued_at
        payload: dict[str, Any] = {
            "iss": issuer,
            "aud": audience,
            "nbf": int(now) - 5,
            "iat": int(now) - 5,
            "exp": int(now + expires_in),
        }
        if service_url is not None:
            payload["serviceurl"] = service_url
        payload.update(claims or {})
        if key == "unsigned":
            header = {"alg": "none", "typ": "JWT", "kid": self.key.kid}
            return f"{_b64json(header)}.{_b64json(payload)}."
        signer = {"trusted": self.key, "unknown": self.unknown_key, "impostor": self.impostor_key}
        chosen = signer[key]
        return jwt.encode(payload, chosen.pem(), algorithm="RS256", headers={"kid": chosen.kid})

    def emulator_token(
        self, *, app_id: str, key: KeyChoice = "trusted", expires_in: float = 3600
    ) -> str:
        """A token as the Bot Framework Emulator sends when given the bot's app id (v1.0)."""
        return self.token(
            audience=app_id,
            service_url=None,
            issuer=EMULATOR_ISSUER,
            key=key,
            expires_in=expires_in,
            claims={"ver": "1.0", "appid": app_id},
        )

    @staticmethod
    def bearer(token: str) -> dict[str, str]:
        """The Authorization header carrying `token`."""
        return {"Authorization": f"Bearer {token}"}

    # ---------------------------------------------------------------- handlers

    def _record(self, request: web.Request, form: dict[str, str] | None = None) -> None:
        self.requests.append(IdentityRequest(request.method, request.path, form or {}))

    async def _channel_config(self, request: web.Request) -> web.Response:
        self._record(request)
        return web.json_response(
            {
                "issuer": CHANNEL_ISSUER,
                "authorization_endpoint": f"{self.url}/botframework/v1/auth",
                "jwks_uri": f"{self.url}/botframework/keys",
                "id_token_signing_alg_values_supported": ["RS256"],
                "token_endpoint_auth_methods_supported": ["private_key_jwt"],
            }
        )

    async def _emulator_config(self, request: web.Request) -> web.Response:
        self._record(request)
        return web.json_response(
            {
                "issuer": EMULATOR_ISSUER,
                "authorization_endpoint": f"{self.url}/emulator/oauth2/v2.0/authorize",
                "token_endpoint": f"{self.url}/emulator/oauth2/v2.0/token",
                "jwks_uri": f"{self.url}/emulator/keys",
                "id_token_signing_alg_values_supported": ["RS256"],
            }
        )

    async def _keys(self, request: web.Request) -> web.Response:
        self._record(request)
        return web.json_response({"keys": [self.key.jwk()]})

    async def _authority_config(self, request: web.Request) -> web.Response:
        self._record(request)
        return web.json_response(
            {
                "issuer": f"{self.url}/adfs",
                "authorization_endpoint": f"{self.url}/adfs/oauth2/authorize",
                "token_endpoint": f"{self.url}/adfs/oauth2/token",
                "token_endpoint_auth_methods_supported": ["client_secret_post"],
            }
        )

    async def _token(self, request: web.Request) -> web.Response:
        form = {name: str(value) for name, value in (await request.post()).items()}
        self._record(request, form)
        client = form.get("client_id", "")
        if form.get("grant_type") != "client_credentials":
            return _oauth_error("unsupported_grant_type", "only client_credentials is served")
        if client not in self._apps or self._apps[client] != form.get("client_secret"):
            return _oauth_error("invalid_client", "unknown app id or wrong secret", status=401)
        access_token = f"outbound-{next(self._token_ids)}-{uuid.uuid4().hex}"
        self.issued_tokens.append(access_token)
        return web.json_response(
            {"access_token": access_token, "expires_in": 3600, "token_type": "Bearer"}
        )

    async def _unknown(self, request: web.Request) -> web.Response:
        self._record(request)
        return web.json_response({"error": "not_found"}, status=404)

    # ---------------------------------------------------------------- TLS

    def _make_tls(self) -> ssl.SSLContext:
        """A self-signed certificate for 127.0.0.1, written to `ca_bundle` for clients to trust."""
        key = _rsa_key("tls")
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "identity-server.test")])
        now = datetime.datetime.now(datetime.UTC)
        public = key.public_key()
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(
                x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False,
            )
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    key_encipherment=True,
                    key_cert_sign=True,
                    content_commitment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False
            )
            .sign(key, hashes.SHA256())
        )
        self.ca_bundle.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        key_file = self.ca_bundle.with_name("identity-server.key")
        key_file.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.ca_bundle, key_file)
        return context


@functools.cache
def _rsa_key(role: str) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@web.middleware
async def _close_after_answering(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answer with ``Connection: close``: botbuilder and MSAL never close their `requests`
    sessions, so a kept-alive socket would outlive every test as an unclosed-socket warning."""
    response = await handler(request)
    response.force_close()
    return response


def _b64json(value: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


def _b64uint(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _oauth_error(error: str, description: str, status: int = 400) -> web.Response:
    return web.json_response({"error": error, "error_description": description}, status=status)
