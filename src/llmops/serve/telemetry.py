"""The service's Prometheus metrics, exposed on /metrics next to BentoML's own.

    telemetry = Telemetry(bentoml.metrics)   # in the service; tests pass prometheus_client
    telemetry.observe("chat", 200, 0.12, results)

`bentoml.metrics` and `prometheus_client` offer the same Counter, Gauge and Histogram;
given neither, the metrics go to a private registry that nothing exposes.
"""

from __future__ import annotations

from typing import Any


class Telemetry:
    """Requests by endpoint and status, latency, tokens, unparsed answers, load, and the
    log sink's lines written, dropped and buffered and its failed writes."""

    def __init__(self, metrics: Any = None, registry: Any = None):
        if metrics is None:
            import prometheus_client as metrics
            from prometheus_client import CollectorRegistry

            registry = registry or CollectorRegistry()
        where = {"registry": registry} if registry is not None else {}
        self.requests = metrics.Counter(
            name="llmops_requests",
            documentation="Requests by endpoint and status",
            labelnames=["endpoint", "status"],
            **where,
        )
        self.latency = metrics.Histogram(
            name="llmops_request_seconds",
            documentation="Request latency in seconds",
            labelnames=["endpoint"],
            **where,
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60),
        )
        self.tokens = metrics.Counter(
            name="llmops_tokens",
            documentation="Prompt and generated tokens",
            labelnames=["kind"],
            **where,
        )
        self.unparsed = metrics.Counter(
            name="llmops_unparsed_answers", documentation="Answers that did not parse", **where
        )
        self.rejected = metrics.Counter(
            name="llmops_overload_rejections", documentation="Requests refused with 503", **where
        )
        self.unlogged = metrics.Counter(
            name="llmops_unlogged_refusals",
            documentation="Refused requests counted but not logged: unauthenticated ones, and "
            "others past serve.logs.refusals_per_s",
            **where,
        )
        self.in_flight = metrics.Gauge(
            name="llmops_in_flight",
            documentation="Generation requests in flight",
            multiprocess_mode="livesum",
            **where,
        )
        self.sink_written = metrics.Counter(
            name="llmops_log_sink_written_lines",
            documentation="Log lines written to serve.log_uri, by kind",
            labelnames=["kind"],
            **where,
        )
        self.sink_dropped = metrics.Counter(
            name="llmops_log_sink_dropped_lines",
            documentation="Log lines never written to serve.log_uri (buffer full, or left at "
            "shutdown), by kind",
            labelnames=["kind"],
            **where,
        )
        self.sink_failures = metrics.Counter(
            name="llmops_log_sink_write_failures",
            documentation="Failed writes to serve.log_uri (each retried)",
            **where,
        )
        self.sink_buffered = metrics.Gauge(
            name="llmops_log_sink_buffered_lines",
            documentation="Log lines waiting to be written to serve.log_uri",
            multiprocess_mode="livesum",
            **where,
        )
        for kind in ("requests", "feedback"):  # on /metrics from the start, with a sink or not
            self.sink_written.labels(kind=kind)
            self.sink_dropped.labels(kind=kind)

    def observe(self, endpoint: str, status: int, seconds: float, results: list) -> None:
        self.requests.labels(endpoint=endpoint, status=str(status)).inc()
        if status == 200:
            self.latency.labels(endpoint=endpoint).observe(seconds)
        for r in results:
            self.tokens.labels(kind="prompt").inc(r.prompt_tokens)
            self.tokens.labels(kind="completion").inc(r.completion_tokens)
            if not r.parsed:
                self.unparsed.inc()
