"""Telemetry: each turn's latency, model tokens and store requests, never its content.

The bot opens a `TurnMetrics` for each turn; the model client and the stores add to whichever
turn is current (a context variable, so concurrent turns never mix). With
APPLICATIONINSIGHTS_CONNECTION_STRING set, logs and traces go to Application Insights through
OpenTelemetry (azure-monitor-opentelemetry); without it, nothing leaves the process.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

log = logging.getLogger("memorybot.turns")


@dataclass
class TurnMetrics:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    store_requests: int = 0
    store_request_charge: float = 0.0


_current: ContextVar[TurnMetrics | None] = ContextVar("memorybot_turn", default=None)


@contextmanager
def measure_turn() -> Iterator[TurnMetrics]:
    """Counts what is recorded inside it for one turn; inside another, that turn's figures."""
    metrics = _current.get()
    if metrics is not None:
        yield metrics
        return
    metrics = TurnMetrics()
    token = _current.set(metrics)
    try:
        yield metrics
    finally:
        _current.reset(token)


def record_model_usage(prompt_tokens: int, completion_tokens: int) -> None:
    metrics = _current.get()
    if metrics is not None:
        metrics.prompt_tokens += prompt_tokens
        metrics.completion_tokens += completion_tokens


def record_store_request() -> None:
    """One request to the store (a retried request counts once per try)."""
    metrics = _current.get()
    if metrics is not None:
        metrics.store_requests += 1


def record_request_charge(request_units: float) -> None:
    """What a Cosmos DB response says it cost (x-ms-request-charge); SQLite has none."""
    metrics = _current.get()
    if metrics is not None:
        metrics.store_request_charge += request_units


def log_turn(metrics: TurnMetrics, latency_ms: float, outcome: str) -> None:
    """One line per turn, figures only; also custom dimensions in Application Insights."""
    log.info(
        "turn %s: %.0f ms, model tokens %d in / %d out, store %d requests / %.1f RU",
        outcome,
        latency_ms,
        metrics.prompt_tokens,
        metrics.completion_tokens,
        metrics.store_requests,
        metrics.store_request_charge,
        extra={
            "turn_outcome": outcome,
            "turn_latency_ms": round(latency_ms, 1),
            "model_prompt_tokens": metrics.prompt_tokens,
            "model_completion_tokens": metrics.completion_tokens,
            "store_requests": metrics.store_requests,
            "store_request_charge": metrics.store_request_charge,
        },
    )


def configure_exporter(connection_string: str) -> bool:
    """Send logs and traces to Application Insights; False when no connection string is set."""
    if not connection_string:
        return False
    from azure.monitor.opentelemetry import configure_azure_monitor

    configure_azure_monitor(connection_string=connection_string)
    return True
