"""Prometheus metrics of one server instance (its own registry, so several apps in one process
do not collide), served as text at /metrics."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE_LATEST", "Metrics"]


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter("ragdesk_http_requests", "HTTP requests answered",
                                ["route", "method", "status"], registry=r)
        self.duration = Histogram("ragdesk_http_request_duration_seconds",
                                  "Time from request to the end of the response (whole stream)",
                                  ["route"], registry=r,
                                  buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
                                           300))
        self.first_token = Histogram("ragdesk_chat_first_token_seconds",
                                     "Time from question to the first answer text", registry=r,
                                     buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30))
        self.streams = Gauge("ragdesk_streams_active", "Answers being streamed now", registry=r)
        self.auth_failures = Counter("ragdesk_auth_failures",
                                     "Requests with no, a wrong or a revoked token", registry=r)
        self.throttled = Counter("ragdesk_auth_throttled",
                                 "Requests refused while their address is throttled", registry=r)
        self.rejected = Counter("ragdesk_rejected", "Requests refused by a limit", ["reason"], registry=r)
        self.answers = Counter("ragdesk_answers", "Answers finished", ["mode", "status"], registry=r)
        fine = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
        self.search_wait = Histogram("ragdesk_search_wait_seconds",
                                     "Time an admitted answer waited for a search thread", registry=r,
                                     buckets=fine)
        self.search_part = Histogram("ragdesk_search_seconds",
                                     "An answer's search by part: embed (waiting for the question's "
                                     "vector), keyword, vector, total", ["part"], registry=r, buckets=fine)
        self.embed_batch = Histogram("ragdesk_embed_batch_size", "Questions embedded in one call",
                                     registry=r, buckets=(1, 2, 4, 8, 16, 32))
        self.loop_lag = Histogram("ragdesk_event_loop_lag_seconds",
                                  "How late the event loop wakes a 50 ms sleep", registry=r, buckets=fine)

    def render(self) -> bytes:
        return generate_latest(self.registry)
