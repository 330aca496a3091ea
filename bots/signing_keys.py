"""The channel's token-signing keys, fetched off the event loop, with a time limit.

botbuilder (4.17, in maintenance) refreshes the keys that sign Bot Framework tokens with a
synchronous `requests.get`, with no timeout, on the event loop: on start, daily, for a token
whose key id it does not know (at most hourly), and on every request after a failed refresh. A
forged token, or a slow identity endpoint, could then hold every turn of the process. Here that
one method, `_OpenIdMetadata._refresh` in `botframework.connector.auth.jwt_token_extractor`,
is replaced: the two requests run on a worker thread with a timeout, one refresh at a time per
metadata URL, and after a failure the next attempt waits RETRY_AFTER_SECONDS (callers get a
503 meanwhile, as for any failed refresh). `tests/bots/test_signing_keys.py` fails if the
pinned botbuilder no longer has the method this replaces.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from typing import Any

import requests
from botframework.connector.auth import jwt_token_extractor

TIMEOUT_SECONDS = 10.0
RETRY_AFTER_SECONDS = 30.0
_ORIGINAL = getattr(jwt_token_extractor._OpenIdMetadata, "_refresh", None)


class SigningKeysUnavailable(requests.ConnectionError):
    """A recent refresh failed; not tried again yet (an OSError, as requests' errors are)."""


def fetch_signing_keys_off_the_loop() -> None:
    """Install the replacement (idempotent; done when the adapter is made)."""
    metadata = jwt_token_extractor._OpenIdMetadata
    if _ORIGINAL is None:
        raise RuntimeError(
            "botbuilder's _OpenIdMetadata._refresh is gone: see bots/signing_keys.py"
        )
    metadata._refresh = _refresh


async def _refresh(self: Any) -> None:
    lock = self.__dict__.setdefault("_memorybot_lock", asyncio.Lock())
    async with lock:
        failed_at = self.__dict__.get("_memorybot_failed_at")
        if failed_at is not None and time.monotonic() - failed_at < RETRY_AFTER_SECONDS:
            raise SigningKeysUnavailable("the signing keys could not be fetched just now")
        try:
            keys = await asyncio.to_thread(_fetch, self.url)
        except Exception:
            self._memorybot_failed_at = time.monotonic()
            raise
        self._memorybot_failed_at = None
        self.keys = keys
        self.last_updated = datetime.now()


def _fetch(metadata_url: str) -> list[dict[str, Any]]:
    """The OpenID metadata, then the keys it points at (botbuilder's two requests)."""
    response = requests.get(metadata_url, timeout=TIMEOUT_SECONDS)
    response.raise_for_status()
    keys = requests.get(response.json()["jwks_uri"], timeout=TIMEOUT_SECONDS)
    keys.raise_for_status()
    found: list[dict[str, Any]] = keys.json()["keys"]
    return found
