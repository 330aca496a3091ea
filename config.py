"""Settings: the one immutable object every room is configured from.

Read from the environment and an optional `.env` file (the environment wins). Every missing or
malformed value is collected and reported at once, naming the variable and the expected form;
secret values are never echoed back.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, TypeVar
from urllib.parse import urlparse

from dotenv import dotenv_values

StoreKind = Literal["sqlite", "cosmos"]
ModelKind = Literal["azure-openai", "openai-compatible", "offline"]
AppType = Literal["MultiTenant", "SingleTenant", "UserAssignedMSI"]

DEFAULT_SYSTEM_PROMPT = (
    "You are MemoryBot, a helpful assistant in Microsoft Teams. You remember what each person "
    "told you in earlier conversations; use it when it helps, and say so when you do not know."
)
SECRET_VARIABLES = frozenset(
    {
        "MicrosoftAppPassword",
        "COSMOS_KEY",
        "AZURE_OPENAI_API_KEY",
        "OPENAI_API_KEY",
    }
)
_APP_TYPES: dict[str, AppType] = {
    "multitenant": "MultiTenant",
    "singletenant": "SingleTenant",
    "userassignedmsi": "UserAssignedMSI",
}


class ConfigError(Exception):
    """Start-up configuration is unusable; the message lists every problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        lines = "\n".join(f"  - {problem}" for problem in problems)
        super().__init__(
            f"MemoryBot cannot start: fix these settings (environment or .env):\n{lines}"
        )


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything configurable, already validated. Secrets are excluded from repr."""

    port: int = 3978
    host: str = "127.0.0.1"
    log_level: str = "INFO"
    applicationinsights_connection_string: str = field(default="", repr=False)
    max_request_bytes: int = 1024 * 1024

    app_id: str = ""
    app_password: str = field(default="", repr=False)
    app_type: AppType = "MultiTenant"
    app_tenant_id: str = ""

    memory_store: StoreKind = "sqlite"
    sqlite_path: Path = Path("data/memory.db")
    cosmos_endpoint: str = ""
    cosmos_key: str = field(default="", repr=False)
    cosmos_database: str = "memorybot"
    cosmos_container: str = "memory"
    cosmos_verify_tls: bool = True
    cosmos_create_if_missing: bool = False
    # Both stores: a record is kept this long after its last write, an archived message this
    # long after it was archived.
    memory_ttl_days: int = 90

    model_kind: ModelKind = "offline"
    azure_openai_endpoint: str = ""
    azure_openai_api_key: str = field(default="", repr=False)
    azure_openai_deployment: str = ""
    azure_openai_api_version: str = "2024-10-21"
    openai_base_url: str = ""
    openai_api_key: str = field(default="", repr=False)
    openai_model: str = ""
    embeddings_model: str = ""
    model_timeout_seconds: float = 30.0
    model_max_retries: int = 2
    model_max_tokens: int = 1000

    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    memory_max_messages: int = 20
    memory_context_tokens: int = 3000
    memory_summary_every: int = 10
    memory_summary_concurrency: int = 4
    memory_extract_every: int = 4
    allowed_tenant_ids: frozenset[str] = frozenset()
    rate_limit_per_minute: int = 20
    # Derived, not a variable of ours: whether HTTP(S)_PROXY is set, so that HTTP clients that
    # would otherwise ignore the environment (aiohttp sessions) use the proxy.
    proxy_configured: bool = False

    @property
    def auth_enabled(self) -> bool:
        """With no app id the bot runs in Emulator mode, without Bot Framework tokens."""
        return bool(self.app_id)

    @property
    def model_name(self) -> str:
        return (
            self.azure_openai_deployment if self.model_kind == "azure-openai" else self.openai_model
        )


DEFAULTS = Settings()
"""Every default, once: what each variable means when it is not set."""


def load_settings(
    environ: Mapping[str, str] | None = None, dotenv_path: str | Path | None = ".env"
) -> Settings:
    """Read settings from `.env` (if present) overlaid by the process environment."""
    merged: dict[str, str] = {}
    if dotenv_path is not None and Path(dotenv_path).is_file():
        merged.update({k: v for k, v in dotenv_values(dotenv_path).items() if v is not None})
    merged.update(os.environ if environ is None else environ)
    return settings_from(merged)


T = TypeVar("T")


class _Reader:
    """Reads typed values from a mapping, collecting every problem instead of stopping at one."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.problems: list[str] = []

    def text(self, name: str, default: str = "") -> str:
        return self.env.get(name, "").strip() or default

    def parsed(self, name: str, default: T, parse: Callable[[str], T], expected: str) -> T:
        raw = self.text(name)
        if not raw:
            return default
        try:
            return parse(raw)
        except ValueError:
            shown = "a value that is not" if name in SECRET_VARIABLES else f"{raw!r}, not"
            self.problems.append(f"{name}: got {shown} {expected}")
            return default

    def whole(self, name: str, default: int, low: int, high: int) -> int:
        def parse(raw: str) -> int:
            value = int(raw)
            if not low <= value <= high:
                raise ValueError(raw)
            return value

        return self.parsed(name, default, parse, f"a whole number from {low} to {high}")

    def seconds(self, name: str, default: float) -> float:
        def parse(raw: str) -> float:
            value = float(raw)
            if not 0 < value <= 600:
                raise ValueError(raw)
            return value

        return self.parsed(name, default, parse, "a number of seconds from 0 to 600")

    def flag(self, name: str, default: bool) -> bool:
        words = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}

        return self.parsed(name, default, lambda raw: _lookup(words, raw), "true or false")

    def choice(self, name: str, default: str, choices: Mapping[str, str]) -> str:
        expected = "one of " + ", ".join(choices.values())
        return self.parsed(name, default, lambda raw: _lookup(choices, raw), expected)

    def url(self, name: str) -> str:
        def parse(raw: str) -> str:
            parts = urlparse(raw)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ValueError(raw)
            return raw

        return self.parsed(name, "", parse, "an http(s) URL such as https://name.example.com/")

    def require(self, condition: bool, problem: str) -> None:
        if not condition:
            self.problems.append(problem)


def _lookup(table: Mapping[str, T], raw: str) -> T:
    try:
        return table[raw.lower()]
    except KeyError:
        raise ValueError(raw) from None


PROXY_VARIABLES = tuple(
    name for base in ("https_proxy", "http_proxy", "all_proxy") for name in (base, base.upper())
)


def proxy_configured(env: Mapping[str, str]) -> bool:
    """Whether an HTTP(S) proxy is set in `env`.

    aiohttp sessions use a proxy from the environment only when told to trust it, and trusting
    it also makes them look for a ~/.netrc entry on a worker thread before every request; so
    they trust it only when there is a proxy to find.
    """
    return any(env.get(name) for name in PROXY_VARIABLES)


def settings_from(env: Mapping[str, str]) -> Settings:
    """Validate a mapping of variables into Settings, or raise ConfigError listing every problem."""
    read = _Reader(env)

    app_id = read.text("MicrosoftAppId")
    app_password = read.text("MicrosoftAppPassword")
    app_type: AppType = read.choice("MicrosoftAppType", DEFAULTS.app_type, _APP_TYPES)  # type: ignore[assignment]
    app_tenant_id = read.text("MicrosoftAppTenantId")
    if app_id:
        read.require(
            app_type == "UserAssignedMSI" or bool(app_password),
            f"MicrosoftAppPassword: required with MicrosoftAppType={app_type} when "
            "MicrosoftAppId is set (or use UserAssignedMSI)",
        )
        read.require(
            app_type == "MultiTenant" or bool(app_tenant_id),
            f"MicrosoftAppTenantId: required with MicrosoftAppType={app_type}",
        )
    else:
        read.require(
            app_type == "MultiTenant",
            f"MicrosoftAppId: required with MicrosoftAppType={app_type}; leave both empty "
            "to run locally with the Emulator",
        )

    cosmos_endpoint = read.url("COSMOS_ENDPOINT")
    store_default = "cosmos" if cosmos_endpoint else "sqlite"
    memory_store: StoreKind = read.choice(  # type: ignore[assignment]
        "MEMORY_STORE", store_default, {"sqlite": "sqlite", "cosmos": "cosmos"}
    )
    if memory_store == "cosmos":
        read.require(
            bool(cosmos_endpoint) or "COSMOS_ENDPOINT" in read.env,
            "COSMOS_ENDPOINT: required with MEMORY_STORE=cosmos "
            "(for example https://myaccount.documents.azure.com:443/)",
        )

    azure_endpoint = read.url("AZURE_OPENAI_ENDPOINT")
    azure_deployment = read.text("AZURE_OPENAI_DEPLOYMENT")
    openai_base_url = read.url("OPENAI_BASE_URL")
    openai_api_key = read.text("OPENAI_API_KEY")
    openai_model = read.text("OPENAI_MODEL")
    model_kind: ModelKind = "offline"
    if azure_endpoint or read.text("AZURE_OPENAI_ENDPOINT"):
        model_kind = "azure-openai"
        read.require(
            bool(azure_deployment),
            "AZURE_OPENAI_DEPLOYMENT: required with AZURE_OPENAI_ENDPOINT "
            "(the name of your chat model deployment)",
        )
    elif openai_base_url or read.text("OPENAI_BASE_URL") or openai_api_key:
        model_kind = "openai-compatible"
        read.require(
            bool(openai_model),
            "OPENAI_MODEL: required with OPENAI_BASE_URL or OPENAI_API_KEY "
            "(the model name the server knows, for example gpt-4o-mini or llama3.1)",
        )

    tenants = frozenset(
        t.strip().lower() for t in read.text("ALLOWED_TENANT_IDS").split(",") if t.strip()
    )
    system_prompt = read.text("SYSTEM_PROMPT", DEFAULTS.system_prompt)

    settings = Settings(
        port=read.whole("PORT", DEFAULTS.port, 1, 65535),
        # Without an app id nothing checks callers, so listen on this machine only unless told.
        host=read.text("HOST", "0.0.0.0" if app_id else "127.0.0.1"),  # noqa: S104
        log_level=read.choice(
            "LOG_LEVEL",
            DEFAULTS.log_level,
            {n.lower(): n for n in ("DEBUG", "INFO", "WARNING", "ERROR")},
        ),
        applicationinsights_connection_string=read.text("APPLICATIONINSIGHTS_CONNECTION_STRING"),
        max_request_bytes=read.whole(
            "MAX_REQUEST_BYTES", DEFAULTS.max_request_bytes, 4096, 64 * 1024 * 1024
        ),
        app_id=app_id,
        app_password=app_password,
        app_type=app_type,
        app_tenant_id=app_tenant_id,
        memory_store=memory_store,
        sqlite_path=Path(read.text("SQLITE_PATH", str(DEFAULTS.sqlite_path))),
        cosmos_endpoint=cosmos_endpoint,
        cosmos_key=read.text("COSMOS_KEY"),
        cosmos_database=read.text("COSMOS_DATABASE", DEFAULTS.cosmos_database),
        cosmos_container=read.text("COSMOS_CONTAINER", DEFAULTS.cosmos_container),
        cosmos_verify_tls=read.flag("COSMOS_VERIFY_TLS", DEFAULTS.cosmos_verify_tls),
        cosmos_create_if_missing=read.flag(
            "COSMOS_CREATE_IF_MISSING", DEFAULTS.cosmos_create_if_missing
        ),
        memory_ttl_days=read.whole("MEMORY_TTL_DAYS", DEFAULTS.memory_ttl_days, 1, 3650),
        model_kind=model_kind,
        azure_openai_endpoint=azure_endpoint,
        azure_openai_api_key=read.text("AZURE_OPENAI_API_KEY"),
        azure_openai_deployment=azure_deployment,
        azure_openai_api_version=read.text(
            "AZURE_OPENAI_API_VERSION", DEFAULTS.azure_openai_api_version
        ),
        openai_base_url=openai_base_url,
        openai_api_key=openai_api_key,
        openai_model=openai_model,
        embeddings_model=read.text(
            "AZURE_OPENAI_EMBEDDINGS_DEPLOYMENT"
            if model_kind == "azure-openai"
            else "OPENAI_EMBEDDINGS_MODEL"
        ),
        model_timeout_seconds=read.seconds("MODEL_TIMEOUT_SECONDS", DEFAULTS.model_timeout_seconds),
        model_max_retries=read.whole("MODEL_MAX_RETRIES", DEFAULTS.model_max_retries, 0, 10),
        model_max_tokens=read.whole("MODEL_MAX_TOKENS", DEFAULTS.model_max_tokens, 16, 16_000),
        system_prompt=system_prompt,
        memory_max_messages=read.whole(
            "MEMORY_MAX_MESSAGES", DEFAULTS.memory_max_messages, 2, 10_000
        ),
        memory_context_tokens=read.whole(
            "MEMORY_CONTEXT_TOKENS", DEFAULTS.memory_context_tokens, 200, 1_000_000
        ),
        memory_summary_every=read.whole(
            "MEMORY_SUMMARY_EVERY", DEFAULTS.memory_summary_every, 1, 10_000
        ),
        memory_summary_concurrency=read.whole(
            "MEMORY_SUMMARY_CONCURRENCY", DEFAULTS.memory_summary_concurrency, 1, 1000
        ),
        memory_extract_every=read.whole(
            "MEMORY_EXTRACT_EVERY", DEFAULTS.memory_extract_every, 0, 10_000
        ),
        allowed_tenant_ids=tenants,
        rate_limit_per_minute=read.whole(
            "RATE_LIMIT_PER_MINUTE", DEFAULTS.rate_limit_per_minute, 0, 10_000
        ),
        proxy_configured=proxy_configured(env),
    )
    if read.problems:
        raise ConfigError(read.problems)
    return settings
