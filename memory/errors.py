"""The store errors the rest of the product sees; stores translate their SDKs' errors into these."""


class StoreError(Exception):
    """The memory store could not do what was asked."""


class StoreUnavailable(StoreError):
    """The store cannot be reached or keeps refusing (network, throttling after retries)."""


class StoreConflict(StoreError):
    """Concurrent writers kept winning; the update was abandoned after the allowed attempts."""


class StoreNotReady(StoreError):
    """The store is reachable but not set up (database or container missing)."""
