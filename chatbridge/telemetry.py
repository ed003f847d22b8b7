"""Metrics and traces, when their libraries are installed: Prometheus metrics with
``prometheus-client`` (``pip install 'chatbridge[server]'``), spans with
``opentelemetry-api``. Without them every call here does nothing.

Metrics live in prometheus-client's default registry, or in its multiprocess files when
``PROMETHEUS_MULTIPROC_DIR`` is set (``chatbridge serve --workers N`` sets it), and
:func:`exposition` renders them for ``GET /metrics``. Labels are channel names,
outcomes, statuses and refusal reasons: never addresses, ids, text or secrets.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

try:
    import prometheus_client as prometheus
except ImportError:  # pragma: no cover - the metrics extra is not installed
    prometheus = None  # type: ignore[assignment]
try:
    from opentelemetry import trace
except ImportError:  # pragma: no cover - opentelemetry-api is not installed
    trace = None  # type: ignore[assignment]

#: Latency buckets (seconds): providers give a webhook seconds, a handler a minute.
_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class _Unmeasured:
    """Stands in for a metric when prometheus-client is not installed."""

    def labels(self, *values: str, **labels: str) -> _Unmeasured:
        return self

    def inc(self, amount: float = 1) -> None:
        pass

    def observe(self, value: float) -> None:
        pass

    def set(self, value: float) -> None:
        pass


def _counter(name: str, doc: str, labels: Sequence[str]) -> Any:
    return prometheus.Counter(name, doc, labels) if prometheus else _Unmeasured()


def _histogram(name: str, doc: str) -> Any:
    return (
        prometheus.Histogram(name, doc, ["channel"], buckets=_BUCKETS)
        if prometheus
        else _Unmeasured()
    )


def _gauge(name: str, doc: str) -> Any:
    # Every process of ``serve --workers`` sees the same outbox: the latest value is right.
    if prometheus is None:
        return _Unmeasured()
    return prometheus.Gauge(name, doc, multiprocess_mode="mostrecent")


EVENTS_RECEIVED = _counter(
    "chatbridge_events_received", "Events in verified webhooks, redeliveries included", ["channel"]
)
EVENTS_ACKNOWLEDGED = _counter(
    "chatbridge_events_acknowledged",
    "New events committed to the outbox and acknowledged",
    ["channel"],
)
EVENTS_HANDLED = _counter(
    "chatbridge_events_handled", "Events the handler returned from", ["channel"]
)
EVENTS_RETRIED = _counter(
    "chatbridge_events_retried", "Handler failures that will be retried", ["channel"]
)
EVENTS_DEAD = _counter(
    "chatbridge_events_dead_lettered",
    "Events (or unreadable records) kept as dead letters",
    ["channel"],
)
WEBHOOKS_REFUSED = _counter(
    "chatbridge_webhooks_refused", "Webhook requests answered 4xx or 5xx", ["channel", "status"]
)
ACK_SECONDS = _histogram("chatbridge_ack_seconds", "From a webhook's arrival to its answer")
HANDLING_SECONDS = _histogram(
    "chatbridge_handling_seconds", "From an event's acknowledgement to its handler's return"
)
OUTBOX_DEPTH = _gauge(
    "chatbridge_outbox_depth", "Events waiting in the outbox (dead letters apart)"
)
OUTBOX_LAG = _gauge(
    "chatbridge_outbox_lag_seconds", "How long the longest-waiting due event has waited"
)
SENDS = _counter(
    "chatbridge_sends",
    "Sends by outcome: sent, refused (policy), invalid, failed, unknown (may be out)",
    ["channel", "outcome"],
)
POLICY_REFUSALS = _counter(
    "chatbridge_policy_refusals", "Sends the policy refused, by reason", ["channel", "reason"]
)
QUOTA_UNITS = _counter(
    "chatbridge_quota_units", "Billable sends counted against a monthly quota", ["channel"]
)


@functools.cache
def sends(channel: str, outcome: str) -> Any:
    """``SENDS`` labelled with ``channel`` and ``outcome``: the child prometheus-client
    keeps for those labels, looked up once (the send path counts every send)."""
    return SENDS.labels(channel, outcome)


def exposition() -> tuple[bytes, str]:
    """The metrics in Prometheus' text format, and its content type (every process's,
    under ``PROMETHEUS_MULTIPROC_DIR``)."""
    if prometheus is None:
        return b"# prometheus-client is not installed\n", "text/plain; charset=utf-8"
    registry = prometheus.REGISTRY
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = prometheus.CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return prometheus.generate_latest(registry), prometheus.CONTENT_TYPE_LATEST


@contextmanager
def span(name: str, **attributes: str) -> Iterator[None]:
    """An OpenTelemetry span named ``name`` around the block (nothing without
    opentelemetry-api, and nothing recorded without an SDK configured)."""
    if trace is None or isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        yield  # no SDK configured (yet): the span would be a no-op
        return
    with _tracer().start_as_current_span(name, attributes=attributes):
        yield


@functools.cache
def _tracer() -> Any:
    """chatbridge's tracer, got once: before an SDK is configured OpenTelemetry hands out
    a proxy that follows the tracer provider set later."""
    return trace.get_tracer("chatbridge")
