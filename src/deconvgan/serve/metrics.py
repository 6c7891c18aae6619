"""Prometheus metrics of one app, in their own registry (two apps in one process never mix counts).

``GET /metrics`` answers :meth:`ServeMetrics.render` in the Prometheus text format:

* ``deconvgan_http_requests_total{route, method, status}``: ``route`` is the route *template*
  (``/v1/models/{name}/images/{seed}.png``), ``unmatched`` for paths no route has, so neither seeds nor
  made-up paths create new series;
* ``deconvgan_http_request_duration_seconds{route}``: latency histogram, request in to last byte out;
* ``deconvgan_batch_size_images{model}``: images per generator call (what dynamic batching merged);
* ``deconvgan_queue_depth{model}``: requests queued or running, read at scrape time;
* ``deconvgan_images_generated_total{model}``.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

LATENCY_BUCKETS_S = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096)
CONTENT_TYPE = CONTENT_TYPE_LATEST


class ServeMetrics:
    """The server's counters, histograms and gauges (see the module doc)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter("deconvgan_http_requests", "HTTP requests by route template, method and status",
                                ["route", "method", "status"], registry=self.registry)
        self.latency = Histogram("deconvgan_http_request_duration_seconds", "HTTP request latency by route",
                                 ["route"], buckets=LATENCY_BUCKETS_S, registry=self.registry)
        self.batch_size = Histogram("deconvgan_batch_size_images", "Images per generator call (dynamic batching)",
                                    ["model"], buckets=BATCH_BUCKETS, registry=self.registry)
        self.queue_depth = Gauge("deconvgan_queue_depth", "Requests queued or running per model", ["model"],
                                 registry=self.registry)
        self.images = Counter("deconvgan_images_generated", "Images generated per model", ["model"],
                              registry=self.registry)

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count one answered request and its latency."""
        self.requests.labels(route, method, str(status)).inc()
        self.latency.labels(route).observe(seconds)

    def batch_observer(self, model: str) -> Callable[[int], None]:
        """A callback for the model's batcher: one generator call of ``n`` images."""
        histogram, counter = self.batch_size.labels(model), self.images.labels(model)

        def observe(n: int) -> None:
            histogram.observe(n)
            counter.inc(n)

        return observe

    def track_queue(self, model: str, depth: Callable[[], int]) -> None:
        """Report ``depth()`` as the model's queue depth at every scrape."""
        self.queue_depth.labels(model).set_function(depth)

    def render(self) -> bytes:
        """The registry in the Prometheus text format."""
        return generate_latest(self.registry)
