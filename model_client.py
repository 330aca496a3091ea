"""The model client: the only module that imports `openai`.

Three kinds behind one small interface: Azure OpenAI (API key, or Entra ID when no key is set),
any OpenAI-compatible server (OpenAI, Ollama, vLLM, LM Studio), and an offline model that needs
no network. Each failure becomes a `ModelError` subclass naming what went wrong (the sentence a
person reads about it is the bot's: `bots.wording`); retries with back-off (honouring Retry-After)
are the `openai` client's own.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Protocol

import openai
from azure.core.credentials_async import AsyncTokenCredential
from azure.core.exceptions import ClientAuthenticationError
from azure.identity.aio import DefaultAzureCredential, get_bearer_token_provider
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from config import Settings
from memory.context import MEMORY_HEADING
from telemetry import record_model_usage

log = logging.getLogger(__name__)

Prompt = Sequence[Mapping[str, Any]]  # role and content, as memory.ChatMessage
AZURE_OPENAI_SCOPE = "https://cognitiveservices.azure.com/.default"
_CHAT_COMPLETIONS = "/chat/completions"  # AsyncAzureOpenAI maps it to the body's deployment
_BEARER_AUTH: openai.RequestOptions = {"security": {"bearer_auth": True}}


class ModelError(Exception):
    """The model could not answer; the subclass says why, the message gives detail for the log."""


class ModelTimeout(ModelError):
    """No answer within the configured timeout."""


class ModelBusy(ModelError):
    """Still rate-limited (429) after the client's retries."""


class ModelUnavailable(ModelError):
    """The service could not be reached, or answered with an error status."""


class ModelRefused(ModelError):
    """The service's content filter declined the prompt or the answer."""


class ModelMisconfigured(ModelError):
    """The bot's credentials, permissions, deployment or embeddings model are wrong or missing."""


class ModelBadAnswer(ModelError):
    """An answer that is not a usable chat completion or set of embeddings."""


class ChatModel(Protocol):
    def describe(self) -> str:
        """A short, secret-free description for the start-up log line."""

    async def complete(self, messages: Prompt) -> str:
        """The model's whole answer to `messages`."""

    def stream(self, messages: Prompt) -> AsyncGenerator[str, None]:
        """The model's answer as it is generated, in pieces."""

    @property
    def can_embed(self) -> bool:
        """Whether an embeddings model is configured for semantic recall."""

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """One embedding vector per text."""

    async def close(self) -> None:
        """Release the HTTP client and credentials; safe to call twice."""


class OpenAIChatModel:
    """Azure OpenAI or an OpenAI-compatible server, through one reused `openai` client."""

    def __init__(
        self,
        client: openai.AsyncOpenAI,
        model: str,
        description: str,
        on_close: Callable[[], Awaitable[None]] | None = None,
        *,
        embeddings_model: str = "",
        max_tokens: int,
    ) -> None:
        self._client = client
        self._model = model
        self._max_tokens = max_tokens  # an answer's length, bounded: cost, and what Teams takes
        self._description = description
        self._on_close = on_close
        self._embeddings_model = embeddings_model

    def describe(self) -> str:
        if self._embeddings_model:
            return f"{self._description}, embeddings {self._embeddings_model}"
        return self._description

    @property
    def can_embed(self) -> bool:
        return bool(self._embeddings_model)

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        if not self._embeddings_model:
            raise ModelMisconfigured("no embeddings model is configured")
        with _translated_errors():
            response = await self._client.embeddings.create(
                model=self._embeddings_model, input=list(texts)
            )
        if len(response.data) != len(texts):
            raise ModelBadAnswer("wrong number of embeddings")
        return [list(item.embedding) for item in sorted(response.data, key=lambda d: d.index)]

    async def complete(self, messages: Prompt) -> str:
        with _translated_errors():
            response = await self._client.post(
                _CHAT_COMPLETIONS,
                body=self._chat_body(messages),
                cast_to=ChatCompletion,
                options=_BEARER_AUTH,
            )
        # A server that answers with something other than JSON makes the client return a str.
        if not isinstance(response, ChatCompletion) or not response.choices:
            raise ModelBadAnswer("the response is not a chat completion")
        if response.usage is not None:
            record_model_usage(response.usage.prompt_tokens, response.usage.completion_tokens)
        choice = response.choices[0]
        if choice.finish_reason == "content_filter":
            raise ModelRefused("finish_reason content_filter")
        content: object = choice.message.content
        if not isinstance(content, str) or not content.strip():
            raise ModelBadAnswer("the response has no text")
        return content

    async def stream(self, messages: Prompt) -> AsyncGenerator[str, None]:
        with _translated_errors():
            chunks = await self._client.post(
                _CHAT_COMPLETIONS,
                body={
                    **self._chat_body(messages),
                    "stream": True,
                    "stream_options": {"include_usage": True},
                },
                cast_to=ChatCompletion,
                options=_BEARER_AUTH,
                stream=True,
                stream_cls=openai.AsyncStream[ChatCompletionChunk],
            )
            said = False
            try:
                async for chunk in chunks:
                    if chunk.usage is not None:
                        record_model_usage(chunk.usage.prompt_tokens, chunk.usage.completion_tokens)
                    if not chunk.choices:
                        continue
                    choice = chunk.choices[0]
                    if choice.finish_reason == "content_filter":
                        raise ModelRefused("finish_reason content_filter")
                    content: object = choice.delta.content
                    if content is not None and not isinstance(content, str):
                        raise ModelBadAnswer("a streamed piece is not text")
                    if content:
                        said = said or bool(content.strip())
                        yield content
            finally:
                # Closed early too (the person pressed Stop): the connection goes at once, so
                # the model stops generating and no more tokens are billed.
                await chunks.close()
            if not said:
                raise ModelBadAnswer("the streamed answer has no text")

    def _chat_body(self, messages: Prompt) -> dict[str, Any]:
        """The request body, as `chat.completions.create` sends it for plain text messages.

        Sent through the client's `post`, which skips `create`'s transform of the parameters
        against their typed definitions: about 3.5 ms of CPU for a 25-message prompt, and a
        no-op for messages that are only a role and a string.
        """
        return {
            "model": self._model,
            "messages": [{"role": m["role"], "content": m["content"]} for m in messages],
            "max_tokens": self._max_tokens,
        }

    async def close(self) -> None:
        await self._client.close()
        if self._on_close is not None:
            on_close, self._on_close = self._on_close, None
            await on_close()


class OfflineModel:
    """Answers without any AI service, so the bot runs with nothing configured.

    Every reply says it comes from the offline model and how to configure a real one, and shows
    that memory works by counting and quoting what this person said before.
    """

    NOTICE = (
        "(Offline model: no AI service is configured, so I can't really answer. Set "
        "AZURE_OPENAI_ENDPOINT and AZURE_OPENAI_DEPLOYMENT, or OPENAI_BASE_URL and OPENAI_MODEL, "
        "to use a real model.)"
    )

    def describe(self) -> str:
        return "offline (no AI service configured)"

    async def complete(self, messages: Prompt) -> str:
        said = [m["content"] for m in messages[:-1] if m["role"] == "user"]
        # Memory's quotation of what it recalled is a user message too, not one of theirs.
        earlier = [text for text in said if not text.startswith(MEMORY_HEADING)]
        recalled = len(earlier) < len(said)
        if earlier:
            count = len(earlier)
            noun = "message" if count == 1 else "messages"
            memory = (
                f"I remember {count} earlier {noun} of yours; the most recent was: "
                f"\u201c{_shorten(earlier[-1])}\u201d"
            )
            if recalled:
                memory += " I also found older things you told me that may be related."
        elif recalled:
            memory = "I found older things you told me that may be related."
        else:
            memory = "This is the first message of yours I have."
        return f"{memory}\n\n{self.NOTICE}"

    async def stream(self, messages: Prompt) -> AsyncGenerator[str, None]:
        yield await self.complete(messages)

    @property
    def can_embed(self) -> bool:
        return False

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        raise ModelMisconfigured("the offline model has no embeddings")

    async def close(self) -> None:
        return None


def create_chat_model(
    settings: Settings, *, credential: AsyncTokenCredential | None = None
) -> ChatModel:
    """The model the settings ask for; one per process, closed at shutdown.

    Azure OpenAI without a key uses Entra ID: `credential`, or DefaultAzureCredential (managed
    identity in Azure, the developer's az login locally), which is then closed with the model.
    """
    if settings.model_kind == "offline":
        return OfflineModel()
    timeout = openai.Timeout(settings.model_timeout_seconds, connect=10.0)
    if settings.model_kind == "openai-compatible":
        client = openai.AsyncOpenAI(
            api_key=settings.openai_api_key or "not-needed",
            base_url=settings.openai_base_url or None,
            timeout=timeout,
            max_retries=settings.model_max_retries,
            http_client=_http_client(timeout),
        )
        where = settings.openai_base_url or "api.openai.com"
        return OpenAIChatModel(
            client,
            settings.openai_model,
            f"{settings.openai_model} at {where}",
            embeddings_model=settings.embeddings_model,
            max_tokens=settings.model_max_tokens,
        )

    on_close: Callable[[], Awaitable[None]] | None = None
    auth: dict[str, Any]
    if settings.azure_openai_api_key:
        auth = {"api_key": settings.azure_openai_api_key}
        how = "key"
    else:
        if credential is None:
            credential = DefaultAzureCredential()
            on_close = credential.close
        auth = {
            "azure_ad_token_provider": get_bearer_token_provider(credential, AZURE_OPENAI_SCOPE)
        }
        how = "Entra ID"
    azure = openai.AsyncAzureOpenAI(
        azure_endpoint=settings.azure_openai_endpoint,
        api_version=settings.azure_openai_api_version,
        timeout=timeout,
        max_retries=settings.model_max_retries,
        http_client=_http_client(timeout),
        **auth,
    )
    deployment = settings.azure_openai_deployment
    description = (
        f"Azure OpenAI deployment {deployment} at {settings.azure_openai_endpoint} ({how})"
    )
    return OpenAIChatModel(
        azure,
        deployment,
        description,
        on_close,
        embeddings_model=settings.embeddings_model,
        max_tokens=settings.model_max_tokens,
    )


def _http_client(timeout: openai.Timeout) -> openai.DefaultAioHttpClient:
    """The client's HTTP over aiohttp (the `openai[aiohttp]` transport), as the rest of the bot
    already speaks it. With many people at once, the default transport's connection pool checked
    every pooled connection's socket on each request; aiohttp saves about 11% of the bot's CPU
    per turn on SQLite and 20% on Cosmos DB (bench.load). Timeouts and proxies from the
    environment behave as before. The transport maps aiohttp's errors to the ones `openai`
    raises, but a failed connection as a timeout: `_timed_out` tells them apart."""
    return openai.DefaultAioHttpClient(timeout=timeout)


@contextmanager
def _translated_errors() -> Iterator[None]:
    """Turns the `openai` client's exceptions into ModelError subclasses, keeping the cause."""
    try:
        yield
    except ModelError:
        raise
    except Exception as error:
        translated = _translate(error)
        if translated is None:
            raise
        raise translated from error


def _translate(error: Exception) -> ModelError | None:
    if isinstance(error, openai.APITimeoutError) and _timed_out(error):
        return ModelTimeout("timed out")
    if isinstance(error, openai.RateLimitError):
        return ModelBusy("429 after retries")
    if isinstance(error, openai.BadRequestError) and _is_content_filter(error):
        return ModelRefused("content filter")
    if isinstance(
        error, openai.AuthenticationError | openai.PermissionDeniedError | ClientAuthenticationError
    ):
        return ModelMisconfigured(type(error).__name__)
    if isinstance(error, openai.NotFoundError):
        return ModelMisconfigured("model or deployment not found")
    if isinstance(error, openai.APIStatusError):
        return ModelUnavailable(f"HTTP {error.status_code}")
    if isinstance(error, openai.APIConnectionError):
        return ModelUnavailable("connection failed")
    if isinstance(error, openai.APIResponseValidationError | ValueError):
        return ModelBadAnswer(type(error).__name__)
    return None


def _timed_out(error: BaseException) -> bool:
    """Whether a time limit ran out somewhere under `error`. The aiohttp transport reports every
    failed connection (refused, reset, an unknown host) as a connect timeout; only a real one
    has a TimeoutError among its causes."""
    seen: set[int] = set()
    cause: BaseException | None = error
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, TimeoutError):
            return True
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return False


def _is_content_filter(error: openai.BadRequestError) -> bool:
    return error.code == "content_filter" or "content_filter" in str(error.body or "")


def _shorten(text: str, limit: int = 200) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "\u2026"
