"""Requests to Cosmos DB: the retry policy, and the one path every SDK call takes.

Throttling (429) and dropped connections are retried by the SDK itself, configured from
`CosmosRetryPolicy`; the few transient statuses the SDK leaves alone (449 always, 408 and 5xx on
writes, 503 after one try) are retried here with back-off. Whatever still fails leaves as a
`memory.errors` class whose message says what failed and what to do, with no secret or chat
text. Each request, and its request charge (from the response headers), is counted in the
turn's telemetry.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import aiohttp
from azure.core.exceptions import AzureError, ClientAuthenticationError
from azure.cosmos.exceptions import CosmosBatchOperationError, CosmosHttpResponseError

from memory.errors import StoreError, StoreNotReady, StoreUnavailable
from telemetry import record_request_charge, record_store_request

log = logging.getLogger(__name__)

T = TypeVar("T")

NOT_FOUND = 404
CONFLICT = 409
PRECONDITION_FAILED = 412
THROTTLED = 429
TRANSIENT_STATUSES = frozenset({408, 449, 500, 502, 503, 504})


@dataclass(frozen=True, slots=True)
class CosmosRetryPolicy:
    """Every retry number of the Cosmos DB store, in one place.

    The defaults keep one store operation well inside the 15 seconds Teams waits for a reply.
    `throttle_*` and `connection_*` configure the SDK's own retries; `transient_*` covers what
    the SDK does not retry; `write_attempts` bounds the compare-and-swap loop against
    concurrent writers.
    """

    throttle_retries: int = 9
    """429s retried per request, each after the service's x-ms-retry-after-ms (at least 1)."""
    throttle_wait_seconds: int = 5
    """Most time spent waiting on 429s for one request before giving up."""
    connection_retries: int = 3
    """Retries after a refused, reset or dropped connection, per request."""
    connection_backoff_seconds: float = 0.5
    """Pause between connection retries."""
    read_timeout_seconds: float = 10.0
    """How long one request waits for an answer (the SDK's default is 65 s)."""
    transient_attempts: int = 4
    """Tries of one request answered 408, 449, 500, 502, 503 or 504."""
    transient_backoff_seconds: float = 0.2
    """First pause after a transient status; doubled each time, with jitter."""
    write_attempts: int = 10
    """Conditional writes tried by `update` before it gives up with StoreConflict."""
    conflict_backoff_seconds: float = 0.02
    """Upper bound of the random pause after losing a write race, times the attempt number."""

    def client_options(self) -> dict[str, Any]:
        """The CosmosClient keyword arguments that carry this policy."""
        return {
            "retry_total": max(1, self.throttle_retries),
            "retry_backoff_max": max(1, self.throttle_wait_seconds),
            "retry_connect": self.connection_retries,
            "retry_read": self.connection_retries,
            "retry_backoff_factor": self.connection_backoff_seconds,
            "read_timeout": self.read_timeout_seconds,
        }


def charged(headers: Mapping[str, str], _result: object) -> None:
    """The SDK's `response_hook`: adds a response's request charge (RU) to the turn's figures."""
    try:
        record_request_charge(float(headers.get("x-ms-request-charge", 0) or 0))
    except (TypeError, ValueError):
        return


class CosmosRequests:
    """Runs SDK calls for one account: retries what the SDK leaves alone, translates failures."""

    def __init__(self, endpoint: str, retry: CosmosRetryPolicy) -> None:
        self.endpoint = endpoint
        self.retry = retry

    async def __call__(
        self,
        action: str,
        operation: Callable[[], Awaitable[T]],
        *,
        expected: set[int] | frozenset[int] = frozenset(),
        at_start: bool = False,
    ) -> T:
        """Run one SDK call, retrying the transient statuses the SDK leaves alone.

        An HTTP status in `expected` is re-raised as the SDK's error for the caller to handle;
        every other failure becomes a StoreError (StoreNotReady when `at_start`).
        """
        delay = self.retry.transient_backoff_seconds
        attempt = 1
        while True:
            record_store_request()  # its charge arrives through `charged`
            try:
                return await operation()
            except (CosmosHttpResponseError, CosmosBatchOperationError) as error:
                if error.status_code in expected:
                    raise
                if (
                    error.status_code in TRANSIENT_STATUSES
                    and attempt < self.retry.transient_attempts
                ):
                    log.debug("Cosmos DB answered %s; retrying", error.status_code)
                    await asyncio.sleep(delay * random.uniform(0.5, 1.5))
                    delay *= 2
                    attempt += 1
                    continue
                raise self.translate(error, action, at_start) from error
            except (AzureError, aiohttp.ClientError, OSError, TimeoutError) as error:
                raise self.translate(error, action, at_start) from error

    def translate(self, error: Exception, action: str, at_start: bool) -> StoreError:
        """A StoreError that says what failed and what to do, without secrets or chat text."""
        failed = f"Cosmos DB at {self.endpoint} could not {action}"
        if isinstance(error, ClientAuthenticationError):
            return StoreNotReady(
                f"{failed}: no Entra ID token ({type(error).__name__}); set COSMOS_KEY, or give "
                "the bot a managed identity (locally: `az login`)"
            )
        status = getattr(error, "status_code", None)
        if status == 401:
            return StoreNotReady(f"{failed}: the credentials were refused (401); check COSMOS_KEY")
        if status == 403:
            return StoreNotReady(
                f"{failed}: access denied (403); with Entra ID, give the bot's identity the "
                "'Cosmos DB Built-in Data Contributor' role on the account (data-plane roles "
                "cannot create databases or containers: the deployment does)"
            )
        if status == THROTTLED:
            return StoreUnavailable(
                f"{failed}: still throttled (429) after {self.retry.throttle_retries} retries; "
                "raise the container's throughput (RU/s) or spread the load"
            )
        if status in TRANSIENT_STATUSES:
            return StoreUnavailable(
                f"{failed}: the service kept answering {status} after "
                f"{self.retry.transient_attempts} attempts; try again shortly"
            )
        if isinstance(status, int):
            substatus = getattr(error, "sub_status", None)
            detail = f"HTTP {status}" + (f", substatus {substatus}" if substatus else "")
            kind = StoreNotReady if at_start else StoreError
            return kind(f"{failed} ({detail})")
        return StoreUnavailable(
            f"{failed}: the service cannot be reached ({type(error).__name__}); check "
            "COSMOS_ENDPOINT and the network, or whether the account is up"
        )
